"""Worker functions for tests that run in a process pool: a small module, so workers import it quickly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from egovsim.runner.runner import run_one


def killing_run(scenario, values, seed):
    """run_one, except that a run with `_kill` in its values kills its own worker as the kernel's OOM killer
    would: every time ("always") or the first time (the value is a file that marks it done)."""
    values = dict(values)
    kill = values.pop("_kill", None)
    if kill == "always":
        os.kill(os.getpid(), signal.SIGKILL)
    if kill:
        try:
            Path(kill).touch(exist_ok=False)
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
    return run_one(scenario, values, seed)
