"""Run folders: the resolved scenario, time series, summary, provenance and plots, each written atomically."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import InputError
from .outcomes import COL, COLUMNS
from .scenario import Scenario, dump_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("results")
INTEGER_COLUMNS = {"citizens", "n_systems"}
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


def format_value(column: str, value: float) -> str:
    if np.isnan(value):
        return "nan"
    if column in INTEGER_COLUMNS:
        return str(round(value))
    return format(float(value), ".10g")  # fixed precision: identical text for identical runs everywhere


def years(scenario: Scenario, n_rows: int) -> np.ndarray:
    return scenario.start_year + np.arange(n_rows) * scenario.dt


def timeseries_csv(records: np.ndarray, scenario: Scenario, extra: dict[str, str] | None = None) -> str:
    """One row per province per step: year (decimal), province, then every outcome column.

    `extra` adds constant leading columns (e.g. scenario name and replicate for experiments)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    extra = extra or {}
    writer.writerow([*extra, "year", "province", *COLUMNS])
    provinces = list(scenario.provinces)
    for k, year in enumerate(years(scenario, records.shape[0])):
        year_text = format(round(float(year), 6), ".6f")
        for p, key in enumerate(provinces):
            writer.writerow(
                [*extra.values(), year_text, key, *(format_value(c, records[k, p, i]) for i, c in enumerate(COLUMNS))]
            )
    return buf.getvalue()


def row_of_year(scenario: Scenario, n_rows: int, year: float) -> int:
    """Row holding the state at mid-`year` (the value reported for a calendar year), clipped to the run."""
    k = round((year + 0.5 - scenario.start_year) / scenario.dt)
    return min(max(k, 0), n_rows - 1)


SUMMARY_COLUMNS = (
    "egov_index",
    "adopted_share",
    "use_share_12m",
    "access_share",
    "urban_adopted_share",
    "rural_adopted_share",
    "minority_adopted_share",
    "urban_rural_gap",
    "ethnic_gap",
    "civil_servant_genuine_share",
    "civil_servant_ceremonial_share",
    "services_online_share",
    "informal_payment_index",
    "leader_will",
    "it_cost",
    "it_waste",
)


def summary(records: np.ndarray, scenario: Scenario) -> dict:
    """Key outcomes per province at the report years (mid-year state) and at the end of the run."""
    n_rows = records.shape[0]
    points = {
        str(y): row_of_year(scenario, n_rows, y)
        for y in scenario.report_years
        if scenario.start_year <= y <= scenario.end_year
    }
    points["end"] = n_rows - 1
    out = {}
    for p, key in enumerate(scenario.provinces):
        out[key] = {
            label: {
                "year": round(float(years(scenario, n_rows)[k]), 6),
                **{c: _json_number(records[k, p, COL[c]]) for c in SUMMARY_COLUMNS},
            }
            for label, k in points.items()
        }
    return {"scenario": scenario.name, "value_for_year": "state at mid-year (1 July)", "provinces": out}


def _json_number(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 6)


def git_commit() -> dict:
    """The code's git commit and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
            return res.stdout.strip() if res.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


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
        "git": git_commit(),
        "versions": package_versions(),
        "lock": lock_file_hash(),
        "platform": {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count()},
        **(extra or {}),
    }


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_run(folder: Path, scenario: Scenario, records: np.ndarray, prov: dict, plots: bool = True) -> Path:
    """Everything a single run leaves behind, in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "scenario.yaml", dump_yaml(scenario.to_dict()))
    atomic_write(folder / "timeseries.csv", timeseries_csv(records, scenario))
    write_json(folder / "summary.json", summary(records, scenario))
    if plots:
        from .plots import run_plots

        run_plots(folder / "plots", scenario, records[None])
    write_json(folder / "provenance.json", prov)
    return folder
