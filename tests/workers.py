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


def half_sent_result(marker: str) -> None:
    """Send the pool's result pipe half a message, as a worker ended mid-send leaves it, then wait to be ended."""
    import struct
    import sys
    import time

    frame = sys._getframe()
    while "result_queue" not in frame.f_locals:  # concurrent.futures.process._process_worker's queue
        frame = frame.f_back
    os.write(frame.f_locals["result_queue"]._writer.fileno(), struct.pack("!i", 1000) + b"half")
    Path(marker).touch()
    time.sleep(60)


def draw_ahead_from(_) -> int | None:
    """This worker's population.DRAW_AHEAD_FROM (None: it draws no step ahead)."""
    from egovsim.model import population

    return population.DRAW_AHEAD_FROM
