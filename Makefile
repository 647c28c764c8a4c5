# egovsim: two commands set everything up on a fresh machine.
#   make run    runs the default scenario (the three provinces, calibrated, 2006-2030) into results/
#   make test   runs the linter and the test suite
#   make serve  watches a run in the browser (Mesa's SolaraViz page, works offline)
# Each builds .venv from uv.lock, the exact versions of every package (transitive ones included), and fails
# loudly if uv.lock is stale against pyproject.toml: `make lock` refreshes it.

VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
ASSETS      := $(VENV)/.solara-assets
SCENARIO    ?= scenarios/calibrated/three_provinces.yaml
# 30 replicates: on a calibrated scenario each runs with its own draw from the shipped posterior
# (calibration/posterior), so the band is the posterior predictive (parameter uncertainty and chance)
RUN_ARGS    ?= --replicates 30
PYTEST_ARGS ?=

# uv itself, pinned, installed from PyPI into .tools/ (set UV=... to use another one, e.g. UV=uv).
UV_VERSION  := 0.13.9
UV          ?= .tools/bin/uv
UV_DEP      := $(filter .tools/bin/uv,$(UV))
# uv must not download interpreters (CI reaches the package registries only): use the machine's 3.12.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Python caches compiled modules (.pyc) in the venv and egovsim/__pycache__ on first import. Container images
# often set PYTHONDONTWRITEBYTECODE (this machine does): then every process, each test's CLI run and each
# worker, compiles numpy, pandas, scipy, Mesa and matplotlib from source again, about 3 s of CPU at each start.
unexport PYTHONDONTWRITEBYTECODE

# The first interpreter >= 3.12 found (pyenv reads .python-version inside this folder).
PYTHON_BOOT := $(shell for p in python3.12 python3.13 python3.14 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { command -v $$p; break; }; done)

.PHONY: run test lint format lock test-latest venv assets serve bench clean-venv help

help:
	@echo "make run          - run $(SCENARIO) $(RUN_ARGS) into results/ (creates .venv from uv.lock)"
	@echo "make test         - lint (ruff) and run the tests (creates .venv from uv.lock)"
	@echo "make serve        - watch $(SCENARIO) in the browser (egovsim serve)"
	@echo "make bench        - run the benchmarks"
	@echo "make lock         - refresh uv.lock after changing pyproject.toml"
	@echo "make test-latest  - the tests on the newest versions pyproject.toml allows (.venv-latest; not in CI)"
	@echo "make format       - apply ruff's formatting and safe fixes"

# Redone when the Makefile (and so UV_VERSION) changes; a half-finished earlier install is removed first.
.tools/bin/uv: Makefile
	@test -n "$(PYTHON_BOOT)" || { echo "egovsim needs Python >= 3.12 (python3.12 not found)"; exit 2; }
	@$(PYTHON_BOOT) -m pip --version >/dev/null 2>&1 || $(PYTHON_BOOT) -m ensurepip --upgrade >/dev/null
	rm -rf .tools
	$(PYTHON_BOOT) -m pip install --quiet --disable-pip-version-check --target .tools "uv==$(UV_VERSION)"

venv: $(STAMP)

$(STAMP): pyproject.toml uv.lock | $(UV_DEP)
	@test -n "$(PYTHON_BOOT)" || { echo "egovsim needs Python >= 3.12 (python3.12 not found)"; exit 2; }
	$(UV) sync --locked --quiet --python $(PYTHON_BOOT) --extra test --extra bench
	@touch $(STAMP)

lock: | $(UV_DEP)
	$(UV) lock --python $(PYTHON_BOOT)

# Solara's page loads its front end from a CDN; install it from the npm registry (npm pack) into Solara's
# local cache inside the venv, so the browser view renders without internet; then compile what the server loads
# at each start (Python's bytecode, the model's numba kernels: egovsim/app/warm.py). Redone when the venv or
# any of the model's sources change (numba's cache is keyed by all of them: egovsim/model/compiled.py).
assets: $(ASSETS)

$(ASSETS): $(STAMP) egovsim/app/assets.py egovsim/app/warm.py $(wildcard egovsim/model/*.py)
	$(BIN)/python -m egovsim.app.assets
	@touch $(ASSETS)

run: $(STAMP)
	$(BIN)/egovsim run $(SCENARIO) $(RUN_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint $(ASSETS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP) $(ASSETS)
	$(BIN)/egovsim serve $(SCENARIO)

# run.py exits 1 when a target is not met; the set-up timings still run, and make reports the failure.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py; status=$$?; \
	$(BIN)/python benchmarks/bench_setup.py --fresh-clone && exit $$status

# Drift on purpose: a separate environment with the newest versions pyproject.toml allows, not uv.lock's.
test-latest: | $(UV_DEP)
	rm -rf .venv-latest
	$(UV) venv --quiet --python $(PYTHON_BOOT) .venv-latest
	VIRTUAL_ENV=.venv-latest $(UV) pip install --quiet --upgrade --resolution highest -e '.[test,bench]'
	.venv-latest/bin/python -m egovsim.app.assets
	.venv-latest/bin/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV) .venv-latest .tools
