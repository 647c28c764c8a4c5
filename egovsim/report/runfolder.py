"""A single run's folder: the resolved scenario, time series, summary, plots and provenance, swapped in whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egovsim.config.scenario import Scenario
from egovsim.config.yamlfile import dump_yaml
from egovsim.files import atomic_write, write_json
from egovsim.report.tables import columns_csv, summary, timeseries_csv


def write_run(folder: Path, scenario: Scenario, records: np.ndarray, prov: dict, plots: bool = True) -> Path:
    """Everything a single run leaves behind, in `folder`: written whole beside it and swapped in, so the
    folder is never part this run and part an earlier one (folders.replaced)."""
    from egovsim.folders import replaced

    with replaced(folder) as new:
        atomic_write(new / "scenario.yaml", dump_yaml(scenario.to_dict()))
        atomic_write(new / "timeseries.csv", timeseries_csv(records, scenario))
        atomic_write(new / "columns.csv", columns_csv())
        write_json(new / "summary.json", summary(records, scenario))
        if plots:
            from egovsim.report.plots import run_plots

            run_plots(new / "plots", scenario, records[None])
        write_json(new / "provenance.json", prov)
    return Path(folder)
