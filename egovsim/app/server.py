"""`egovsim serve`'s server process: the page's front end checked, then Solara serving egovsim.app.page (through
egovsim.app.serving, which loads the page while the browser loads the front end).

`egovsim serve` (egovsim/cli.py) checks the scenario and its options, then replaces itself with this module.
Checking the front end needs Solara's settings, and so Solara's import (a second or more): done here, in the
process that imports Solara anyway to serve the page, it costs nothing.

    python -m egovsim.app.server [options of `solara run`]
"""

from __future__ import annotations

import os
import sys

from egovsim.app import assets


def main(argv: list[str]) -> int:
    missing = assets.missing()
    if missing:
        # offline, the page would stay blank: one line, what is missing and how to install it
        print(
            f"egovsim: error: the page's front end is not installed ({', '.join(a.spec for a in missing)} missing "
            f"in {assets.cache_dir()}): install it with `{sys.executable} -m egovsim.app.assets` (or `make serve`)",
            file=sys.stderr,
        )
        return 2
    if os.environ.get("EGOVSIM_SERVING"):
        print(os.environ["EGOVSIM_SERVING"], flush=True)  # egovsim serve's "serving ... at ..." line
    from solara.__main__ import cli

    cli(["run", "egovsim.app.serving", *argv], prog_name="solara")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
