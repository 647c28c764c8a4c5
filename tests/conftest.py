"""Shared test helpers: paths, small scenarios and a cached default run."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, scenario_from_dict
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BASS = SCENARIOS / "validation" / "bass.yaml"
THREE = SCENARIOS / "three_provinces.yaml"


def bass_closed_form(t, p: float, q: float):
    """Bass (1969): F(t) = (1 - exp(-(p+q)t)) / (1 + (q/p) exp(-(p+q)t))."""
    t = np.asarray(t, dtype=float)
    e = np.exp(-(p + q) * t)
    return (1 - e) / (1 + (q / p) * e)


def at_year(records: np.ndarray, scenario, year: float) -> np.ndarray:
    """Rows of `records` (..., steps, provinces, columns) at mid-`year`."""
    k = round((year + 0.5 - scenario.start_year) * scenario.steps_per_year)
    return records[..., k, :, :]


@pytest.fixture(scope="session")
def prior_runs():
    """The default scenario with its prior parameters over several seeds: (scenario, records (R, T, P, C))."""
    scenario = load_scenario(THREE)
    records = np.stack([simulate(scenario, seed) for seed in (11, 12, 13, 14)])
    return scenario, records


_RUNS: OrderedDict = OrderedDict()
KEPT_RUNS = 400  # about 0.4 MB each at the default horizon: the lever tests' arms and seeds fit


def simulate_once(scenario, seed: int) -> np.ndarray:
    """simulate(scenario, seed), run once per test session and shared (read-only) by the tests that ask for the
    same scenario and seed. A run is a deterministic function of the two (tests/test_kernels.py, test_experiment.py
    check it), so the lever tests' arms (the same baseline under several outcomes, provinces and parameters)
    need not be simulated again."""
    key = (json.dumps(scenario.to_dict(), sort_keys=True, default=str), seed)
    if key in _RUNS:
        _RUNS.move_to_end(key)
        return _RUNS[key]
    records = simulate(scenario, seed)
    records.flags.writeable = False
    _RUNS[key] = records
    if len(_RUNS) > KEPT_RUNS:
        _RUNS.popitem(last=False)
    return records


def column(records: np.ndarray, name: str) -> np.ndarray:
    return records[..., COL[name]]


def without_portal(scenario):
    """The scenario with the national portal never offering a procedure (its events set portal_services 0)."""
    data = scenario.to_dict()
    for event in data["central"]["events"]:
        if "portal_services" in event.get("set", {}):
            event["set"]["portal_services"] = 0.0
    return scenario_from_dict(data)


def every_column_described(folder: Path) -> dict[str, dict]:
    """columns.csv's rows by name, after checking that every column of every table the command wrote at the top
    of `folder` (CSV, Parquet) has a row with a meaning, and that the row lists that file."""
    import csv

    import pyarrow.parquet as pq

    rows = {r["name"]: r for r in csv.DictReader((folder / "columns.csv").open(encoding="utf-8"))}
    tables = [p for p in folder.iterdir() if p.suffix in (".csv", ".parquet") and p.name != "columns.csv"]
    assert tables, f"no tables in {folder}"
    for table in tables:
        if table.suffix == ".parquet":
            header = pq.read_schema(table).names
        else:
            header = next(csv.reader(table.open(encoding="utf-8")))
        for column in header:
            assert column in rows, f"{table.name}: {column} is not in columns.csv"
            row = rows[column]
            assert row["meaning"] and row["meaning"] != "(not described)", f"{table.name}: {column} not described"
            assert table.name in row["files"].split(), f"{column}: columns.csv does not list {table.name}"
    return rows
