"""The one error type that bad user input becomes.

Every problem with a file a user wrote (a scenario, an experiment, a calibration config) is raised as an
`InputError` naming the file and the field, so the command line can print it on one line and exit 2.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: which file, which field, what is wrong."""

    def __init__(self, source: str, field: str, message: str):
        self.source = str(source)
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __reduce__(self):  # rebuilt from its three parts when it crosses a process boundary (workers)
        return (InputError, (self.source, self.field, self.message))

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.message}"


class WorkerDied(RuntimeError):
    """A run whose worker process died (killed from outside, e.g. for lack of memory) even when it ran alone."""
