"""The app `egovsim serve` hands Solara: egovsim.app.page, loaded while the browser loads the front end.

Solara imports its app module before it answers HTTP. Importing the page (Mesa and its visualization package,
which bring pandas, scipy, networkx, matplotlib and altair; the model's numba kernels) and building the first
tab's model takes 1.5-2.5 s; a browser, once answered, takes 1-1.5 s to load the front end before it opens the
page's connection. So this module is light: Solara answers HTTP at once, a thread imports the page and builds
the first model meanwhile, and the page's component waits for that thread before it renders.

Two threads importing at once is safe (Python locks each module while it runs); reading a module from
sys.modules while another thread still runs it is not, and on this page's path Solara does that once, in
`patch_heavy_imports` at the end of its start: the thread starts after that. While it imports, the main thread serves the front end's
files, and nothing of the page is rendered before the thread is done. `solara run egovsim.app.page` serves the
same page without any of this.
"""

from __future__ import annotations

import gc
import sys
import threading
import traceback

import solara

_loaded = threading.Event()
_failure: list[BaseException] = []


def _load_page() -> None:
    gc.disable()  # as for Solara's import (egovsim/app/server.py): what the page imports lives on
    try:
        from egovsim.app import page

        page.build_ahead()  # the first tab's model: built now, not after the tab asks
    except BaseException as exc:  # in the terminal, and on the page instead of a page that never renders
        traceback.print_exc()
        _failure.append(exc)
    finally:
        gc.enable()
        _loaded.set()
    if not _failure:
        page.load_step_kernels()  # while the browser renders the page: the first Step then costs what others do


def _start_when_solara_started() -> None:
    # Solara marks its app initialized only after patch_heavy_imports has read sys.modules: until then this waits
    # (milliseconds). Outside Solara's server (a plain import, the tests) there is nothing to wait for.
    solara_app = sys.modules.get("solara.server.app")
    while solara_app is not None and not all(getattr(a, "_initialized", True) for a in list(solara_app.apps.values())):
        threading.Event().wait(0.01)
    _load_page()


threading.Thread(target=_start_when_solara_started, name="egovsim-load-page", daemon=True).start()


@solara.component
def Page():
    _loaded.wait()
    if _failure:
        raise _failure[0]
    from egovsim.app import page

    return page.Page()
