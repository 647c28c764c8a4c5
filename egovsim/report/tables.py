"""The tables a run is read through: timeseries.csv (one row per province per step) and summary.json (key
outcomes at the report years), with the calendar of a scenario's steps."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np

from egovsim.config.outcomes import dictionary_rows
from egovsim.config.scenario import Scenario, row_of_year, years
from egovsim.model.jurisdictions import unit_levels, unit_records
from egovsim.model.outcomes import COL, COLUMNS

BAND = (5, 95)  # the percentiles of every replicate band in tables and plots
FEW_FOR_A_BAND = 20  # replicates below which a 5-95% band is little more than the range of the runs
INTEGER_COLUMNS = {"citizens", "n_systems"}


def format_value(column: str, value: float) -> str:
    if np.isnan(value):
        return "nan"
    if column in INTEGER_COLUMNS:
        return str(round(value))
    return format(float(value), ".10g")  # fixed precision: identical text for identical runs everywhere


def state_date(scenario: Scenario, k: int) -> dt.date:
    """Calendar date of row k's state (row 0: 1 January of start_year). Monthly steps fall on the first of a
    month; steps that do not divide the year into whole months fall on the nearest day."""
    year, step = divmod(k, scenario.steps_per_year)
    year += scenario.start_year
    if 12 % scenario.steps_per_year == 0:
        return dt.date(year, 1 + step * 12 // scenario.steps_per_year, 1)
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    return dt.date(year, 1, 1) + dt.timedelta(days=round(step * days / scenario.steps_per_year))


def dates(scenario: Scenario, n_rows: int) -> list[str]:
    """ISO date of every row of a run's records, beside `years` (their decimal years)."""
    return [state_date(scenario, k).isoformat() for k in range(n_rows)]


def columns_csv(keys: tuple[str, ...] = ("year", "date", "province"), meanings: dict[str, str] | None = None) -> str:
    """columns.csv, the data dictionary of a results folder: name, meaning, unit and range of its tables' key
    columns `keys` and of every outcome column (config/outcomes.py)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "meaning", "unit", "range"])
    writer.writerows(dictionary_rows(keys, meanings))
    return buf.getvalue()


def key_columns(scenario: Scenario) -> tuple[str, ...]:
    """The key columns of a run's timeseries.csv: a scenario with mergers also says each row's level and unit."""
    return ("year", "date", "province", "level", "part_of") if scenario.mergers else ("year", "date", "province")


def timeseries_csv(records: np.ndarray, scenario: Scenario, extra: dict[str, str] | None = None) -> str:
    """One row per province per step: year (decimal), date (ISO), province, then every outcome column.

    `extra` adds constant leading columns (e.g. scenario name and replicate for experiments). A scenario with
    mergers also has `level` and `part_of` after `province`, and a row per step for each unit a merger forms
    (its former provinces' aggregate: model/jurisdictions.py), so both geographies are continuous."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    extra = extra or {}
    writer.writerow([*extra, *key_columns(scenario), *COLUMNS])
    provinces = list(scenario.provinces)
    units = [m.into for m in scenario.mergers]
    unit_rows = unit_records(scenario, records) if units else None
    for k, (year, date) in enumerate(zip(years(scenario, records.shape[0]), dates(scenario, records.shape[0]))):
        year_text = format(round(float(year), 6), ".6f")
        levels = unit_levels(scenario, float(year)) if units else None
        rows = [(key, records[k, p]) for p, key in enumerate(provinces)]
        rows += [(key, unit_rows[k, u]) for u, key in enumerate(units)]
        for key, values in rows:
            where = list(levels[0].get(key) or levels[1][key]) if levels else []
            writer.writerow(
                [
                    *extra.values(),
                    year_text,
                    date,
                    key,
                    *where,
                    *(format_value(c, values[i]) for i, c in enumerate(COLUMNS)),
                ]
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


def year_day(scenario: Scenario) -> str:
    """The day of the state reported for a year (config.scenario.row_of_year), in words that follow 'the state on':
    '1 July of the year' at monthly steps, '2 July of the year' at weekly ones (26 weeks in), '1 January of the next
    year' at yearly ones (the year's end); 'A or B' where it moves between years."""
    n_rows = scenario.n_steps + 1
    found: list[str] = []
    for y in range(scenario.start_year, scenario.end_year + 1):
        d = state_date(scenario, row_of_year(scenario, n_rows, y))
        words = f"{d.day} {d:%B} of the " + ("year" if d.year == y else "next year")
        if words not in found:
            found.append(words)
    return " or ".join(found)


def summary_dates(scenario: Scenario) -> str:
    """What each label of summary.json means. Each entry also names its calendar date, so no label can be mistaken
    for another: a year is the state year_day names (mid-year at monthly steps), like compare's years and a
    sweep's outcome@year (the end year too,
    which is what compare's last year and a sweep's outcome@end read); "end" is the run's last state."""
    return (
        f"<year>: the state on {year_day(scenario)} (end_year is always listed, the point compare and outcome@end "
        "read); end: the last state of the run, at 00:00 on 1 January after end_year (as stat: final)"
    )


def summary_rows(scenario: Scenario, n_rows: int) -> dict[str, int]:
    """label -> row of the records: each report year inside the horizon and end_year (row_of_year: mid-year at
    monthly steps), then end (the last state)."""
    points = {
        str(y): row_of_year(scenario, n_rows, y)
        for y in scenario.report_years
        if scenario.start_year <= y <= scenario.end_year
    }
    points[str(scenario.end_year)] = row_of_year(scenario, n_rows, scenario.end_year)
    points["end"] = n_rows - 1
    return points


def summary(records: np.ndarray, scenario: Scenario) -> dict:
    """Key outcomes per province at the report years and end_year (the states year_day names) and at the last state
    ("end"), each with its decimal year and calendar date."""
    n_rows = records.shape[0]
    points = summary_rows(scenario, n_rows)
    out = {}
    for p, key in enumerate(scenario.provinces):
        out[key] = {
            label: {
                "year": round(float(years(scenario, n_rows)[k]), 6),
                "date": state_date(scenario, k).isoformat(),
                **{c: _json_number(records[k, p, COL[c]]) for c in SUMMARY_COLUMNS},
            }
            for label, k in points.items()
        }
    # a province's own budget figure (bn VND/yr) is reported beside its simulated spending, never used as one
    budgets = {key: prov.budget for key, prov in scenario.provinces.items() if isinstance(prov.budget, float)}
    from egovsim.report.groups import small_group_warnings

    return {
        "scenario": scenario.name,
        "parameters": {**scenario.to_dict()["parameters"], "label": scenario.parameters.label()},
        "value_for_year": summary_dates(scenario),
        # subgroup outcomes (minority, urban, rural shares and the gaps) that rest on too few simulated people
        "small_groups": small_group_warnings(scenario, list(COLUMNS)),
        "provinces": out,
        **({"budget_bn_vnd_per_year": budgets} if budgets else {}),
    }


def _json_number(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 6)


def plots_section(plots: list[Path], folder: Path) -> list[str]:
    """The "## Plots" lines of a report.md in `folder`: each plot embedded; nothing when there is none (a
    heading over nothing reads as a plot gone missing)."""
    if not plots:
        return []
    return ["", "## Plots", "", *(f"![{p.stem}]({p.relative_to(folder).as_posix()})" for p in plots)]


# A single run of a calibrated posterior's scenario is at its medians: what its summary and page say it is not.
POSTERIOR_POINT = (
    "at the posterior medians, a point, not the median of the posterior predictive (--replicates R runs R "
    "posterior draws)"
)
