"""A single run's folder: the resolved scenario, time series, summary, plots and provenance, swapped in whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egovsim.config.scenario import Scenario
from egovsim.config.yamlfile import dump_yaml
from egovsim.files import atomic_write, write_json
from egovsim.report.tables import columns_csv, key_columns, summary, timeseries_csv


def write_scenario(folder: Path, scenario: Scenario | dict) -> None:
    """scenario.yaml: the resolved scenario a command's runs were built from, every value written out, so its
    folder says what ran even after the files it was made from change."""
    atomic_write(
        Path(folder) / "scenario.yaml", dump_yaml(scenario if isinstance(scenario, dict) else scenario.to_dict())
    )


def write_run(
    folder: Path,
    scenario: Scenario,
    records: np.ndarray,
    prov: dict,
    plots: bool = True,
    observed: list[dict] | None = None,
) -> Path:
    """Everything a single run leaves behind, in `folder`: written whole beside it and swapped in, so the
    folder is never part this run and part an earlier one (folders.replaced). `observed`: the rows of the
    observed-vs-simulated table of report.html (analysis.calibration.observed_vs_simulated)."""
    from egovsim.folders import replaced

    with replaced(folder) as new:
        write_scenario(new, scenario)
        atomic_write(new / "timeseries.csv", timeseries_csv(records, scenario))
        atomic_write(new / "columns.csv", columns_csv(key_columns(scenario)))
        write_json(new / "summary.json", summary(records, scenario))
        write_page(new, scenario, records[None], prov, plots, observed or [])
        write_json(new / "provenance.json", prov)
    return Path(folder)


def write_page(
    folder: Path,
    scenario: Scenario,
    records: np.ndarray,
    prov: dict,
    plots: bool,
    observed: list[dict],
    summ: dict | None = None,
) -> None:
    """plots/ (unless plots=False) and report.html, which embeds them: records (replicates, steps + 1,
    provinces, columns)."""
    from egovsim.report.html import run_report_html

    made = []
    if plots:
        from egovsim.report.plots import run_plots

        made = run_plots(folder / "plots", scenario, records, observed)
    atomic_write(folder / "report.html", run_report_html(scenario, records, made, observed, prov, summ))
