"""The one error type that bad user input becomes, and the bounded echo of a value in any error message.

Every problem with a file a user wrote (a scenario, an experiment, a calibration config) is raised as an
`InputError` naming the file and the field, so the command line can print it on one line and exit 2.
"""

from __future__ import annotations

import reprlib

CLIP = 80  # characters of a value an error message shows


class _BoundedRepr(reprlib.Repr):
    """reprlib's repr, which stops at a few levels and items: a value's repr is never built whole (a YAML
    alias tree a few hundred bytes long can stand for billions of items)."""

    def repr_int(self, x, level):
        if abs(x).bit_length() > 128:  # repr() of a huge int is slow, and refused beyond 4300 digits
            return f"<a whole number of about {round(abs(x).bit_length() * 0.30103)} digits>"
        return super().repr_int(x, level)


_REPR = _BoundedRepr(maxlevel=3, maxlist=6, maxtuple=6, maxdict=6, maxset=6, maxstring=CLIP, maxlong=CLIP)


def clipped(value: object, limit: int = CLIP) -> str:
    """repr(value) for an error message: at most `limit` characters, cheap for any value."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        # field and message hold keys and text from the file: one line, of a readable length, whatever they are
        field, message = one_line(self.field, 2 * CLIP), one_line(self.message, 8 * CLIP)
        where = f"{one_line(self.source, 4 * CLIP)}: {field}" if field else one_line(self.source, 4 * CLIP)
        return f"{where}: {message}"


class InputErrors(InputError):
    """Every error found in one file (validation goes on past the first): it reads as the first, so a command
    that stops at bad input still says one line; `egovsim validate` lists them all."""

    def __init__(self, errors: list[InputError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.source, first.field, first.message)


def one_line(text: str, limit: int) -> str:
    """`text` clipped to `limit` characters, with line breaks and other control characters escaped."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class WorkerDied(RuntimeError):
    """A run whose worker process died (killed from outside, e.g. for lack of memory) even when it ran alone."""


class RunsFailed(RuntimeError):
    """Every run a step of an analysis needs failed (e.g. a calibration's first population): the message names
    the first error and where the runs are."""


class EgovsimWarning(Warning):
    """A warning of egovsim's own, raised through Python's warnings module: the command line prints it as its other
    warnings, one line (cli._warning_line); numpy's, pandas's and other libraries' keep Python's form."""
