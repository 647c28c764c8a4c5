"""`egovsim serve`'s server process: the page's front end checked, then Solara serving egovsim.app.page (through
egovsim.app.serving, which loads the page while the browser loads the front end).

`egovsim serve` (egovsim/cli.py) checks the scenario and its options, then replaces itself with this module.
Checking the front end needs Solara's settings, and so Solara's import (a second or more): done here, in the
process that imports Solara anyway to serve the page, it costs nothing.

    python -m egovsim.app.server [options of `solara run`]
"""

from __future__ import annotations

import gc
import os
import sys

from egovsim.app import assets


def main(argv: list[str]) -> int:
    # importing Solara creates about a million objects that live as long as the server; the garbage collector,
    # run meanwhile, finds nothing to free and costs a tenth of the import's time
    gc.disable()
    try:
        missing = assets.missing()
        if missing:
            # offline, the page would stay blank: one line, what is missing and how to install it
            print(
                f"egovsim: error: the page's front end is not installed ({', '.join(a.spec for a in missing)} "
                f"missing in {assets.cache_dir()}): install it with `{sys.executable} -m egovsim.app.assets` "
                "(or `make serve`)",
                file=sys.stderr,
            )
            return 2
        from solara.__main__ import cli
    finally:
        gc.enable()
    if os.environ.get("EGOVSIM_SERVING"):
        print(os.environ["EGOVSIM_SERVING"], flush=True)  # egovsim serve's "serving ... at ..." line
    # --no-check-version: Solara would otherwise ask pypi.org for its latest version at every start, waiting up
    # to a second for the answer before it serves (and an offline page has no business calling out)
    cli(["run", "egovsim.app.serving", "--no-check-version", *argv], prog_name="solara")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
