"""What produced a result: the git commit (and whether the tree had uncommitted edits), the versions of
egovsim and its dependencies, the sha256 of uv.lock, the command line, seeds and platform."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from egovsim.engine import default_engine

REPO_ROOT = Path(__file__).resolve().parents[1]

DEPENDENCIES = (
    "mesa",
    "numpy",
    "numba",
    "scipy",
    "networkx",
    "SALib",
    "matplotlib",
    "PyYAML",
    "pyarrow",
    "dask",
    "distributed",
    "pyabc",
    "tqdm",
)


# where a new, untracked file counts as an uncommitted change (a new module of the package); elsewhere only edits
# to tracked files do (scenarios, calibration files, code), not a user's own files
CODE = ("egovsim", "pyproject.toml", "uv.lock")
# the state when the command started (note_start): a command's own results written into tracked folders (the
# shipped posterior, rewritten in place by `egovsim calibrate`) must not make what produced them look edited
_AT_START: dict | None = None


def note_start() -> None:
    """Record the git state now, before the command writes anything; provenance() reports it."""
    global _AT_START
    _AT_START = git_commit()


def forget_start() -> None:
    global _AT_START
    _AT_START = None


def git_commit() -> dict:
    """The code's git commit and whether the work tree differed from it: an edited tracked file anywhere (code,
    scenarios, calibration config and observations), or a new file in the package (CODE)."""

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
            return res.stdout.strip() if res.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    tracked = git("status", "--porcelain", "--untracked-files=no")
    new_code = git("status", "--porcelain", "--untracked-files=normal", "--", *CODE)
    dirty = None if tracked is None or new_code is None else bool(tracked or new_code)
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in ("egovsim", *DEPENDENCIES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def lock_file_hash() -> dict:
    """The sha256 of uv.lock, the exact set of packages `make` installs; None outside a checkout (pip install)."""
    import hashlib

    lock = REPO_ROOT / "uv.lock"
    try:
        digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"file": "uv.lock", "sha256": digest}


def provenance(
    *,
    seeds: list[int],
    wall_time_s: float,
    scenario_file: str | None,
    extra: dict | None = None,
    command: list[str] | None = None,
) -> dict:
    return {
        "egovsim_command": command if command is not None else sys.argv[:],
        "scenario_file": scenario_file,
        "seeds": seeds,
        "wall_time_s": round(wall_time_s, 3),
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": _AT_START if _AT_START is not None else git_commit(),  # as the command found the tree
        "versions": package_versions(),
        "lock": lock_file_hash(),
        "engine": default_engine(),  # the model's implementation (EGOVSIM_ENGINE): plain's results differ in the last bits
        "platform": {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count()},
        **(extra or {}),
    }
