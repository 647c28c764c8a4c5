"""Compile once, at set-up, what every `egovsim serve` start would otherwise compile again.

A start of the server process imports about 2,500 Python modules (Solara, Mesa and its visualization package,
pandas, matplotlib, altair, numba, egovsim) and loads the model's numba kernels. Both come from caches when
they are filled: Python's bytecode next to each module, numba's compiled kernels in
egovsim/model/__pycache__ (a folder per version of the model's sources: model/compiled.py). Python fills its cache on first import, unless PYTHONDONTWRITEBYTECODE is set (it is
on some CI and sandboxed machines) or the folder is not writable; uv installs packages without it. Without it,
every start compiles every module from source again: 4-5 s of CPU of the 8-9 s a start took. numba fills its
cache the first time a model is built (seconds, once per change of egovsim/model).

This module does both, in a child process that imports what the server imports and builds a small model:

    python -m egovsim.app.warm          (run by `python -m egovsim.app.assets`, so `make assets` does it)

Bytecode files are written next to their sources (site-packages and egovsim's own __pycache__ folders, which
git ignores) in Python's default, timestamp-checked form: a source changed later is compiled again as usual.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import time

# what the server process imports: Solara's server, then the page (Mesa's SolaraViz, the model); one small
# model built and stepped fills numba's cache with every kernel a Step uses
SERVER_IMPORTS = """
import solara.server.starlette
from egovsim.app import page
model = page.EGovViz(scale=0.0005)
model.step()
"""


def python_sources() -> list[str]:
    """The source file of every module imported so far that Python caches as bytecode."""
    sources = []
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.cached and spec.origin and spec.origin.endswith(".py"):
            sources.append(spec.origin)
    return sorted(set(sources))


def compile_sources(sources: list[str]) -> int:
    """Write the bytecode of each source whose cache is missing or stale; returns how many could not be
    written (a read-only folder: that module is compiled on import, as before)."""
    failed = 0
    for source in sources:
        if not compileall.compile_file(source, quiet=2):
            failed += 1
    return failed


def warm_here() -> int:
    exec(SERVER_IMPORTS, {})
    return compile_sources(python_sources())


def warm(quiet: bool = False) -> int:
    """Warm the caches in a child process (so the caller stays light); exit status of the child."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "egovsim.app.warm", "--here"], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"egovsim.app.warm: error: {(proc.stderr or proc.stdout).strip()[-800:]}", file=sys.stderr)
    elif not quiet:
        print(f"egovsim.app.warm: {proc.stdout.strip()} ({time.monotonic() - started:.0f} s)")
    return proc.returncode


def main(argv: list[str]) -> int:
    if argv == ["--here"]:
        failed = warm_here()
        n = len(python_sources())
        print(
            f"bytecode of {n} modules and the model's numba kernels cached"
            + (f" ({failed} not writable)" if failed else "")
        )
        return 0
    return warm()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
