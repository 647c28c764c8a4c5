"""`jit`: numba's njit with its on-disk cache keyed by the whole model's source, not one file's.

numba reuses a cached function while its own source file is unchanged (its time stamp and size), so a compiled
function that calls one from another file (a leader's step or the civil servants' loop calling portable.exp_scalar)
would keep the old callee's code after that file changed, silently: two machines at the same commit could then
compute different numbers. Every compiled function of the model is therefore cached in a folder named by a hash
of all of egovsim/model's sources (inside numba's cache folder, NUMBA_CACHE_DIR, where one is set), so an edit to
any of them compiles everything afresh once (about 15 s). Folders of earlier sources are removed after a day.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numba

_MODEL = Path(__file__).resolve().parent
_STALE_AFTER_S = 86_400.0


def source_fingerprint() -> str:
    """A hash of every module of egovsim/model (their names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(_MODEL.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _cache_folder() -> str | None:
    """Where this version of the model's compiled code is cached; None if that cannot be written (numba's own
    choice then applies)."""
    base = Path(numba.config.CACHE_DIR) if numba.config.CACHE_DIR else _MODEL / "__pycache__"
    folder = base / f"egovsim-numba-{source_fingerprint()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    _remove_stale(base, folder)
    return str(folder)


def _remove_stale(base: Path, keep: Path) -> None:
    """Folders of other sources untouched for a day (best effort: another process may be using one)."""
    now = time.time()
    for other in base.glob("egovsim-numba-*"):
        try:
            if other != keep and now - other.stat().st_mtime > _STALE_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass


_FOLDER = _cache_folder()


def jit(function=None, **options):
    """numba.njit(cache=True, nogil=True, **options), cached in this model version's folder (_cache_folder).
    numba fixes a function's cache folder when it is decorated, so numba's setting is changed only meanwhile."""

    def decorate(f):
        saved = numba.config.CACHE_DIR
        if _FOLDER is not None:
            numba.config.CACHE_DIR = _FOLDER
        try:
            return numba.njit(cache=True, nogil=True, **options)(f)
        finally:
            numba.config.CACHE_DIR = saved

    return decorate(function) if function is not None else decorate
