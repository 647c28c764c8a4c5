"""Output folders: one egovsim command at a time in each, and never the files of two runs mixed.

- Lock: a command holds an exclusive lock (flock) on `.egovsim.lock` inside its output folder for its whole
  life (and removes it at the end); a second command on the same folder stops at once (exit 2) instead of
  running every run beside it.
- A single run's folder is written whole into a fresh sibling and swapped in (one rename), so it is always
  entirely the old run or entirely the new one.
- An experiment folder keeps its store (runs/, calibrate's checkpoint) across commands; its summary files are
  a set: before writing one, the earlier set is removed, provenance.json first, and the new provenance.json
  is written last. A folder with provenance.json holds one whole set; one without holds part of one set.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from egovsim.errors import InputError
from egovsim.files import TEMPORARY, safe_name

try:
    import fcntl
except ImportError:  # not on Windows: no lock there
    fcntl = None

LOCK = ".egovsim.lock"
MARKER = "provenance.json"  # written last, removed first
# every name egovsim writes into an output folder (a test keeps this whole): only these are ever removed
OUTPUTS = frozenset(
    {
        MARKER,
        "scenario.yaml",
        "timeseries.csv",
        "summary.json",
        "plots",
        "timeseries",
        "timeseries_band.csv",
        "replicates.csv",
        "scenarios",
        "comparison.csv",
        "report.md",
        "experiment.yaml",
        "runs.csv",
        "timeseries.parquet",
        "indices.csv",
        "time_resolved.csv",
        "fit.json",
        "posterior.csv",
        "observed_vs_simulated.csv",
        "calibrated",
        "columns.csv",
        "report.html",
    }
)
STORES = frozenset({"runs", "checkpoint.npz", "abc.db", "abc.db.unreadable"})  # kept: reruns resume from them
_STAGE = ".egovsim-stage"


class FolderInUse(InputError):
    def __str__(self) -> str:
        return f"{self.source} {self.message}"


@contextlib.contextmanager
def claimed(folder: Path, whole: bool = False) -> Iterator[Path]:
    """Hold `folder` (created if need be) for one command: locked against other egovsim processes until the
    block ends. whole=True: the command replaces the folder whole (`replaced`), so a folder holding anything
    egovsim did not write is refused before any work, not deleted."""
    folder = Path(folder)
    if whole:
        foreign = sorted(p.name for p in _entries(folder) if not _ours(p.name))
        if foreign:
            raise InputError(
                str(folder),
                "--out",
                f"holds files egovsim did not write ({foreign[0]}...): choose a new or empty folder",
            )
    created = not folder.exists() or folder in _MADE
    folder.mkdir(parents=True, exist_ok=True)
    fd = _lock(folder)
    try:
        _remove_stale_stages(folder)  # left by a killed run: no live process can own them while we hold the lock
        yield folder
    finally:
        # unlinked while still locked: a process that opened it meanwhile sees it gone (_lock) and starts over
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(folder / LOCK)):
                (folder / LOCK).unlink()
        if created:  # no empty folder behind a command that wrote nothing (bad input, Ctrl-C)
            with contextlib.suppress(OSError):
                folder.rmdir()
        os.close(fd)


RESULTS = Path("results")


def default_run_folder(name: str, root: Path = RESULTS) -> Path:
    """results/<scenario>-<UTC time>; a suffix keeps two runs in the same second apart."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    safe = safe_name(name, "run")
    folder = root / f"{safe}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{safe}-{stamp}-{n}"
    return folder


_MADE: set[Path] = set()  # default folders new_folder made for this command: removed again if left empty


def new_folder(name: str) -> Path:
    """A default output folder, results/<name>-<time>, created here: two commands started in the same second
    get a folder each instead of finding the other's in use."""
    while True:
        folder = default_run_folder(name)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(parents=True)
            _MADE.add(folder)
            return folder


def remove_unused() -> None:
    """At the end of a command: the default folders it made and left empty (bad input, Ctrl-C) go again."""
    for folder in _MADE:
        with contextlib.suppress(OSError):
            folder.rmdir()
    _MADE.clear()


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _lock(folder: Path) -> int:
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FolderInUse(
                str(folder),
                "--out",
                f"is in use by another egovsim process (pid {pid}); wait for it or choose another --out",
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)  # the file was removed or replaced while we waited for it: lock the one there now
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def replaced(folder: Path) -> Iterator[Path]:
    """A fresh folder beside `folder` to write a whole run into, swapped in for `folder` when the block
    succeeds and removed when it fails: `folder` is always entirely the old run or entirely the new one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=_STAGE))
    try:
        yield stage
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)  # mkdtemp makes 0700; a run folder is readable like any other
        if not _exchange(stage, folder):
            if folder.exists():  # no atomic exchange here: two renames, the old run kept until the new is in
                old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=_STAGE))
                os.replace(folder, old)
                os.replace(stage, folder)
                stage = old
            else:
                os.replace(stage, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # the new run if it failed, the old one if it was swapped out


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (2, 22, 38, 95):  # ENOENT (b missing), EINVAL, ENOSYS, EOPNOTSUPP: fall back to renames
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove_stale_stages(folder: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.[a-z0-9_]{{8}}{re.escape(_STAGE)}")
    for entry in _entries(folder.parent):
        if pattern.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def fresh_outputs(folder: Path) -> None:
    """Before an experiment folder's summary files are written: remove the earlier set (provenance.json
    first, then every name egovsim writes, with their temporary files), keeping the stores and anything else."""
    folder = Path(folder)
    (folder / MARKER).unlink(missing_ok=True)
    for entry in _entries(folder):
        if entry.name in OUTPUTS or _is_temporary(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)


def _is_temporary(name: str) -> bool:
    """A file `atomic_write` was writing when its process was killed (.NAME.XXXXXXXX.tmp)."""
    return TEMPORARY.fullmatch(name) is not None and name[1:-4].rsplit(".", 1)[0] in OUTPUTS


def _ours(name: str) -> bool:
    return name in OUTPUTS or name in STORES or name == LOCK or _is_temporary(name)
