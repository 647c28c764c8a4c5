"""Files written whole or not at all: a temporary file beside the target, renamed over it (atomic on POSIX),
so an interrupted write never leaves a half-written file; and the check that an output folder can be written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

from egovsim.errors import InputError

# atomic_path's temporary files: "." + the file's name + "." + mkstemp's 8 random characters + ".tmp"
TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
STALE_AFTER_S = 3600  # a write in progress touches its file far more often; older ones were killed mid-write
_swept: set[Path] = set()


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temporary files that atomic writes killed mid-way (SIGKILL, a power cut) left in `folder`:
    ours by their name, and untouched for `older_than_s`, so another process's write in progress is kept."""
    removed = []
    cutoff = time.time() - older_than_s
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):  # gone already, or not ours to delete
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(path: Path):
    """A temporary path beside `path`, renamed onto it when the block succeeds and removed when it fails:
    readers never see a half-written file, and an interruption leaves the old file whole. The first write
    into a folder by this process also removes stale temporary files there (remove_stale_temporaries)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.resolve() not in _swept:
        _swept.add(path.parent.resolve())
        remove_stale_temporaries(path.parent)
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
    the nearest folder above it that exists, must be a writable folder. Tried by making and removing a file named
    like an atomic write's temporary (egovsim's own: another run does not count it as a stranger's, and a stale
    one is swept); nothing else is created here."""
    folder = Path(folder)
    try:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            what = "is a file, not a folder" if existing == folder else f"cannot be created: {existing} is a file"
            raise InputError(str(folder), "--out", what)
        # a file made and removed: what the system lets us do, which permissions alone do not say (root on /proc,
        # a read-only or full file system, an immutable folder)
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".command.json.", suffix=".tmp")
    except OSError as exc:
        where = "" if existing == folder else f" in {existing}"
        raise InputError(str(folder), "--out", f"cannot be written{where}: {exc.strerror or exc}") from None
    try:
        os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C (SIGINT) and SIGTERM that arrive in the block take effect as it ends, so a short write is whole or not
    begun: raised inside a library, the interruption can turn into another error (numpy's savez, stopped while
    compressing, fails to close its zip and raises ValueError instead, with a traceback). Python runs signal
    handlers in the main thread only, so elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # a handler installed from outside Python reads as None and could not be put back: it is left alone
    handlers = {sig: h for sig in (signal.SIGINT, signal.SIGTERM) if (h := signal.getsignal(sig)) is not None}
    for sig in handlers:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):  # delivered again, to the command's own handlers
            signal.raise_signal(sig)


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def safe_name(text: str, fallback: str) -> str:
    """`text` made into a plain file name (a file's stem can be anything: "..", "a b", "x/y")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".-")[:64] or fallback


def child(folder: Path, name: str) -> Path:
    """folder/name for a name that comes from a file (a scenario's or an experiment's name, a province key):
    one plain path component, so whatever the file says, nothing is written outside `folder`. Validation
    has checked the name (schema.NAME); this is the last line of defence, hence no friendly message."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", name):
        raise ValueError(f"not a plain file name: {name[:80]!a}")
    return Path(folder) / name
