"""Replicates of one scenario (`egovsim run --replicates R`): R runs with seeds spawned from a master seed,
through the runner, and their folder: every replicate's time series, the mean and 5-95% band, plots with bands."""

from __future__ import annotations

import csv
import io
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from egovsim.analysis.calibration.posterior import restricted
from egovsim.config.scenario import Scenario
from egovsim.errors import InputError
from egovsim.files import atomic_write, write_json
from egovsim.model.outcomes import COLUMNS
from egovsim.report.runfolder import write_page, write_scenario
from egovsim.report.tables import BAND, columns_csv, dates, format_value, summary, timeseries_csv, years
from egovsim.runner.runner import RunResult, RunSpec, Store, Tally, replicate_seeds, run_many


def stack(results: Sequence[RunResult]) -> tuple[np.ndarray, list[int]]:
    """Records of the successful runs, (replicates, steps + 1, provinces, columns), and their replicate indices."""
    ok = [r for r in results if r.ok]
    if not ok:
        return np.empty((0,)), []
    return np.stack([r.records for r in ok]), [r.spec.replicate for r in ok]


def band(records: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, median and 5th/95th percentiles over replicates (axis 0), ignoring nan (an outcome undefined in some
    replicates, e.g. the informal payment index before anyone has dealt with government). The plots draw the
    median with the band, the tables lead with the mean: both are here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, mid, hi = np.nanpercentile(records, [BAND[0], 50, BAND[1]], axis=0)
        return {
            "n": np.isfinite(records).sum(axis=0),
            "mean": np.nanmean(records, axis=0),
            "median": mid,
            f"p{BAND[0]}": lo,
            f"p{BAND[1]}": hi,
        }


BAND_KEYS = ("year", "date", "province", "outcome", "replicates", "mean", "median", "p5", "p95")  # columns.csv


def band_csv(records: np.ndarray, scenario: Scenario) -> str:
    """Long table: year, date, province, outcome, replicates (n with a value), mean, median, p5, p95."""
    stats = band(records)
    names = [k for k in stats if k != "n"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["year", "date", "province", "outcome", "replicates", *names])
    provinces = list(scenario.provinces)
    n_rows = records.shape[1]
    for k, (year, date) in enumerate(zip(years(scenario, n_rows), dates(scenario, n_rows))):
        year_text = format(round(float(year), 6), ".6f")
        for p, key in enumerate(provinces):
            for c, col in enumerate(COLUMNS):
                writer.writerow(
                    [
                        year_text,
                        date,
                        key,
                        col,
                        int(stats["n"][k, p, c]),
                        *(format_value("", stats[s][k, p, c]) for s in names),
                    ]
                )
    return buf.getvalue()


def replicate_summary(records: np.ndarray, scenario: Scenario) -> dict:
    """summary.json of a replicated run: every value of the single-run summary as mean, median, p5 and p95."""
    stats = {name: summary(arr, scenario) for name, arr in band(records).items() if name != "n"}
    first = next(iter(stats.values()))
    provinces = {}
    for key, by_label in first["provinces"].items():
        provinces[key] = {}
        for label, row in by_label.items():
            provinces[key][label] = {
                "year": row["year"],
                "date": row["date"],
                **{
                    col: {name: s["provinces"][key][label][col] for name, s in stats.items()}
                    for col in row
                    if col not in ("year", "date")
                },
            }
    return {
        "scenario": scenario.name,
        "parameters": first["parameters"],
        "replicates": int(records.shape[0]),
        "statistics": f"mean, median and {BAND[0]}th/{BAND[1]}th percentiles over replicates",
        "value_for_year": first["value_for_year"],
        "small_groups": first["small_groups"],
        "provinces": provinces,
    }


def runs_table(results: Sequence[RunResult]) -> str:
    """replicates.csv: replicate, seed, status, wall time, error."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["replicate", "seed", "status", "wall_time_s", "run", "error"])
    for r in results:
        writer.writerow(
            [r.spec.replicate, r.spec.seed, r.status, format_value("", r.wall_time_s), r.key, r.error or ""]
        )
    return buf.getvalue()


def write_replicates(
    folder: Path,
    scenario: Scenario,
    results: Sequence[RunResult],
    prov: dict,
    plots: bool = True,
    page: bool = True,
) -> np.ndarray:
    """Everything a replicated run leaves behind in `folder` (provenance.json last: it marks the set whole):

    scenario.yaml; timeseries/replicate_###.csv (each byte-identical to `egovsim run --seed <its seed>`);
    timeseries_band.csv (mean, p5, p95 per outcome); replicates.csv (seeds, status); summary.json (mean, p5,
    p95 at the report years); plots/ with mean lines and 90% bands; report.html (page=True: the one-page
    report, plots embedded); provenance.json. Returns the stacked records of the successful replicates."""
    folder = Path(folder)
    write_scenario(folder, scenario)
    width = max(3, len(str(max(r.spec.replicate for r in results))))
    for r in results:
        if r.ok:
            atomic_write(
                folder / "timeseries" / f"replicate_{r.spec.replicate:0{width}d}.csv",
                timeseries_csv(r.records, scenario),
            )
    atomic_write(folder / "replicates.csv", runs_table(results))
    atomic_write(folder / "columns.csv", columns_csv(BAND_KEYS))
    records, _ = stack(results)
    if records.size:
        atomic_write(folder / "timeseries_band.csv", band_csv(records, scenario))
        summ = replicate_summary(records, scenario)
        write_json(folder / "summary.json", summ)
        if page:
            from egovsim.analysis.calibration.report import observed_vs_simulated

            write_page(folder, scenario, records, prov, plots, observed_vs_simulated(scenario, records), summ)
        elif plots:
            from egovsim.report.plots import run_plots

            run_plots(folder / "plots", scenario, records)
    write_json(folder / "provenance.json", prov)
    return records


def run_replicates(
    scenario: Scenario,
    master_seed: int,
    replicates: int,
    folder: Path,
    executor: Executor,
    *,
    progress: str | None = None,
    plots: bool = True,
    provenance_extra: dict | None = None,
    scenario_file: str | None = None,
    draws: list[dict] | None = None,
) -> tuple[list[RunResult], np.ndarray]:
    """`egovsim run --replicates R`: R runs with seeds spawned from `master_seed`, stored under
    folder/runs/ (run again with the same folder to resume), written by `write_replicates`. With `draws`
    (posterior draws, one per replicate) replicate i runs with draw i and seed i: the band is then the
    posterior predictive, parameter uncertainty and chance together."""
    from egovsim.folders import claimed, fresh_outputs
    from egovsim.provenance import provenance

    if replicates < 1:
        raise InputError("--replicates", "", f"must be >= 1, got {replicates}")
    seeds = replicate_seeds(master_seed, replicates)
    values = [restricted(d, scenario) for d in draws] if draws is not None else [{}] * replicates
    specs = [RunSpec(scenario.name, i, s, v) for i, (s, v) in enumerate(zip(seeds, values))]
    with claimed(folder):
        start = time.perf_counter()
        results = run_many(
            specs, {scenario.name: scenario}, executor, store=Store(Path(folder) / "runs"), progress=progress
        )
        prov = provenance(
            seeds=seeds,
            wall_time_s=time.perf_counter() - start,
            scenario_file=scenario_file,
            extra={
                "master_seed": master_seed,
                "replicates": replicates,
                "seed_rule": "numpy SeedSequence(master_seed).spawn(replicates)",
                "runs": Tally.of(results).as_dict(),
                **({"posterior_draws": draws} if draws is not None else {}),
                **(provenance_extra or {}),
            },
        )
        fresh_outputs(folder)  # the earlier summary goes first: the folder never mixes two runs' files
        return results, write_replicates(folder, scenario, results, prov, plots=plots)
