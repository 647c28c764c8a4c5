"""Files written whole or not at all: a temporary file beside the target, renamed over it (atomic on POSIX),
so an interrupted write never leaves a half-written file; and the check that an output folder can be written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from egovsim.errors import InputError


@contextlib.contextmanager
def atomic_path(path: Path):
    """A temporary path beside `path`, renamed onto it when the block succeeds and removed when it fails:
    readers never see a half-written file, and an interruption leaves the old file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a result file should be readable like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a whole file atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(data)


def check_out_folder(folder: Path) -> None:
    """Fail before any run when results could not be written to `folder` (the --out of a command): it, or
    the nearest folder above it that exists, must be a writable folder. Nothing is created here."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == folder else f"cannot be created: {existing} is a file"
        raise InputError(str(folder), "--out", what)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(str(folder), "--out", f"cannot be written: no permission to write in {existing}")


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
