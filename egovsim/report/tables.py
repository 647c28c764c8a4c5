"""The tables a run is read through: timeseries.csv (one row per province per step) and summary.json (key
outcomes at the report years), with the calendar of a scenario's steps."""

from __future__ import annotations

import csv
import io

import numpy as np

from egovsim.config.scenario import Scenario, row_of_year, years
from egovsim.model.outcomes import COL, COLUMNS

BAND = (5, 95)  # the percentiles of every replicate band in tables and plots
INTEGER_COLUMNS = {"citizens", "n_systems"}


def format_value(column: str, value: float) -> str:
    if np.isnan(value):
        return "nan"
    if column in INTEGER_COLUMNS:
        return str(round(value))
    return format(float(value), ".10g")  # fixed precision: identical text for identical runs everywhere


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


SUMMARY_COLUMNS = (
    "supply_index",
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
    "province_online_share",
    "published_share",
    "agency_it",
    "informal_payment_index",
    "leader_will",
    "it_waste",
    "spend",
    "spend_cumulative",
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
    # a province's own budget figure (bn VND/yr) is reported beside its simulated spending, never used as one
    budgets = {key: prov.budget for key, prov in scenario.provinces.items() if isinstance(prov.budget, float)}
    return {
        "scenario": scenario.name,
        "value_for_year": "state at mid-year (1 July)",
        "provinces": out,
        **({"budget_bn_vnd_per_year": budgets} if budgets else {}),
    }


def _json_number(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 6)
