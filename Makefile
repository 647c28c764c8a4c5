# egovsim: two commands set everything up on a fresh machine.
#   make run    runs the default scenario (three provinces, 2006-2030) into results/
#   make test   runs the test suite
#   make serve  watches a run in the browser (Mesa's SolaraViz page, works offline)
# Each creates .venv (Python >= 3.12) when it is missing or pyproject.toml changed.

VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
ASSETS    := $(VENV)/.solara-assets
SCENARIO  ?= scenarios/three_provinces.yaml
PYTEST_ARGS ?=

# The first interpreter >= 3.12 found (pyenv reads .python-version, 3.12.1, inside this folder).
PYTHON_BOOT := $(shell for p in python3.12 python3.13 python3.14 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: run test venv assets serve bench clean-venv help

help:
	@echo "make run    - run $(SCENARIO) into results/ (creates .venv)"
	@echo "make test   - run the tests (creates .venv)"
	@echo "make serve  - watch $(SCENARIO) in the browser (egovsim serve)"
	@echo "make bench  - run the benchmarks"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "egovsim needs Python >= 3.12 (python3.12 not found)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON_BOOT) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

# Solara's page loads its front end from a CDN; install it from the npm registry (npm pack) into Solara's
# local cache inside the venv, so the browser view renders without internet. Redone when the venv changes.
assets: $(ASSETS)

$(ASSETS): $(STAMP) egovsim/assets.py
	$(BIN)/python -m egovsim.assets
	@touch $(ASSETS)

run: $(STAMP)
	$(BIN)/egovsim run $(SCENARIO)

test: $(STAMP) $(ASSETS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP) $(ASSETS)
	$(BIN)/egovsim serve $(SCENARIO)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
