"""columns.csv of the results folders whose tables take their column names from the experiment file (sweep,
sensitivity, discover, optimize): every column of every table the command wrote, what it means, its unit and
range, and the files it is in.

A column is described by the command first (what its file named: a lever, a parameter, an outcome statistic),
then by the columns shared by egovsim's tables (config/outcomes.py KEY_COLUMNS, TABLE_COLUMNS below), then as an
outcome column. A column none of them describes is written with the meaning NOT_DESCRIBED, and the tests run every
command to check none is."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from egovsim.config.outcomes import KEY_COLUMNS, OUTCOMES, range_text, unit, unit_of
from egovsim.config.scenario import row_of_year
from egovsim.report.tables import state_date

NOT_DESCRIBED = "(not described)"
Description = tuple[str, str, str]  # meaning, unit, range

TABLE_COLUMNS: dict[str, Description] = {
    # a run's row (runs.csv)
    "status": ("ok, or failed (`error` says why; the command runs a failed run again when run again)", "text", ""),
    "wall_time_s": ("seconds the run took on its worker", "s", "[0, inf)"),
    "error": ("why the run failed; empty when it did not", "text", ""),
    # indices.csv and time_resolved.csv (sensitivity)
    "method": ("sobol or morris", "text", ""),
    "output": (
        "what the index is of: an outcome named in the study file's `outcomes`; in time_resolved.csv, t=YEAR is the "
        "study's time_resolved.outcome in the state reported for YEAR (1 July with monthly steps)",
        "text",
        "",
    ),
    "parameter": (
        "the parameter the index is of (a scenario field); a:b for the pair of a second-order index",
        "text",
        "",
    ),
    "index": (
        "S1: first-order Sobol index (share of the output's variance the parameter explains alone); ST: total-order "
        "(with its interactions); S2: second-order (of the pair alone); mu_star: Morris mean absolute elementary "
        "effect; mu: mean signed elementary effect; sigma: standard deviation of the elementary effects",
        "text",
        "",
    ),
    "value": (
        "the index's estimate: Sobol indices are shares of variance (sampling error can put them a little below 0 "
        "or above 1); Morris effects are in the output's unit, over the parameter's whole sampled range",
        "share of variance (Sobol) or the output's unit (Morris)",
        "",
    ),
    "conf": (
        "half-width of the index's 95% confidence interval (SALib's bootstrap); nan where SALib gives none (Morris "
        "mu and sigma)",
        "as value",
        "[0, inf)",
    ),
    # sample.csv, boxes.csv, trajectory.csv (discover)
    "case": (
        "1 where the case of interest holds at the point (on the replicates' mean of each outcome), 0 where not, "
        "empty where the point's runs failed",
        "0/1",
        "{0, 1}",
    ),
    "box": ("box on PRIM's peeling trajectory (0: the whole sample; higher: peeled further)", "count", "[0, inf)"),
    "input": ("an input the chosen box restricts (a lever or parameter of sample.csv)", "text", ""),
    "low": (
        "the box's lower limit on the input (its lowest sampled value where the box leaves it open)",
        "input's unit",
        "",
    ),
    "high": ("the box's upper limit on the input (its highest sampled value where open)", "input's unit", ""),
    "qp_low": (
        "quasi-p value of the lower limit: one-sided binomial test that it matters (Bryant & Lempert 2010); nan "
        "where the side is open",
        "probability",
        "[0, 1]",
    ),
    "qp_high": ("quasi-p value of the upper limit (see qp_low)", "probability", "[0, 1]"),
    "restricted_in_half_samples_pct": (
        "percent of PRIM runs on random half samples whose chosen box restricts this input too",
        "percent",
        "[0, 100]",
    ),
    "coverage": ("share of all points where the case holds that lie in the box", "share", "[0, 1]"),
    "density": ("share of the box's points where the case holds", "share", "[0, 1]"),
    "mass": ("share of all sample points that lie in the box", "share", "[0, 1]"),
    "sampled_low": ("lowest value of the input over the sample", "input's unit", ""),
    "sampled_high": ("highest value of the input over the sample", "input's unit", ""),
    "restricted_inputs": ("how many inputs the box restricts", "count", "[0, inf)"),
    # candidates.csv, pareto.csv (optimize)
    "generation": ("generation of the evolutionary search that evaluated the mix (1: the first)", "count", "[0, inf)"),
    "candidate": ("mix on the Pareto set of the search, rechecked on fresh draws", "count", "[0, inf)"),
    "cost_bn_vnd_per_yr": (
        "yearly spending on the province's levers of the mix (model/costs.py)",
        "bn VND/yr",
        "[0, inf)",
    ),
    "target_share": ("share of the mix's draws in which the optimisation file's rule holds", "share", "[0, 1]"),
    "failed_runs": ("draws of the mix whose run failed (left out of its statistics)", "count", "[0, inf)"),
    "draws": ("draws (runs with common random numbers) the mix was rechecked on", "count", "[0, inf)"),
}


def dictionary_csv(folder: Path, files: list[str], described: dict[str, Description] | None = None) -> str:
    """columns.csv for the tables `files` (CSV or Parquet, relative to `folder`; those not written are left out):
    one row per column name, in the order first met, with the files it is in."""
    described = described or {}
    where: dict[str, list[str]] = {}
    for name in files:
        if not (Path(folder) / name).is_file():  # e.g. no run finished: no time series
            continue
        for column in _header(Path(folder) / name):
            where.setdefault(column, []).append(name)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "meaning", "unit", "range", "files"])
    for column, names in where.items():
        writer.writerow([column, *describe(column, described), " ".join(names)])
    return buf.getvalue()


def statistic_words(stat, base) -> str:
    """An outcome statistic (config.analysis.OutcomeStat) without its province, in words, naming the states it
    reads as evaluate reads them (config.analysis): 'adopted_share in 2022 (1 July)', 'adopted_share mean
    2015-2020 (the states from 1 January 2015 to 1 January 2021, both included)'."""
    start, end = base.start_year, base.end_year
    if stat.stat == "at":
        year = stat.year if stat.year is not None else end
        return f"{stat.outcome} in {year} ({day(base, row_of_year(base, base.n_steps + 1, year), year)})"
    if stat.stat == "mean" and stat.period:
        half = base.steps_per_year // 2
        first = max(0, row_of_year(base, base.n_steps + 1, stat.period[0]) - half)
        last = min(base.n_steps, row_of_year(base, base.n_steps + 1, stat.period[1]) + half)
        return (
            f"{stat.outcome} mean {stat.period[0]}-{stat.period[1]} (the states from {day(base, first)} to "
            f"{day(base, last)}, both included)"
        )
    if stat.stat == "final":
        return f"{stat.outcome} at the last state ({day(base, base.n_steps)})"
    if stat.stat == "time_to" and stat.level is not None:
        return (
            f"{stat.outcome} years from {start} to {'fall' if stat.direction == 'down' else 'rise'} to {stat.level:g}"
        )
    return f"{stat.outcome} {stat.stat}"


def day(base, row: int, year: int | None = None) -> str:
    """The date of a state in words: '1 July 2022', or '1 July' where `year` is the year it is in."""
    date = state_date(base, row)
    return f"{date.day} {date:%B}" + ("" if date.year == year else f" {date.year}")


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def lever_file_words(spec, base, over: str) -> dict[str, Description]:
    """columns.csv's words for what a discovery or policy-search file names: its levers and its outcomes (the
    statistic of each, in the file's province, `over` its runs: 'mean over the point's replicates')."""
    province = base.provinces[spec.province].name
    since = spec.levers_from if spec.levers_from is not None else base.start_year
    described = {
        lever: (
            f"{province}'s policy lever {lever}, set from {since:g} (the file's range: {lo:g} to {hi:g})",
            f"as the lever (scenario field provinces.{spec.province}.policy.{lever})",
            f"[{lo:g}, {hi:g}]",
        )
        for lever, (lo, hi) in spec.levers.items()
    }
    for name, stat in spec.stats.items():
        title = f"{name}: {province}'s {statistic_words(stat, base)}, {over}"
        meaning = dict(OUTCOMES).get(stat.outcome, stat.outcome)
        described[name] = statistic(title, meaning, stat.outcome, stat.stat == "time_to", never="inf")
    return described


def statistic(title: str, meaning: str, outcome: str, time_to: bool, never: str = "nan") -> Description:
    """A column holding one outcome statistic of a run or point, titled in words (`title`); `never`: what the
    table writes for a time to a level that is never reached."""
    if time_to:
        return f"{title}: {meaning}; {never} where the level is never reached (censored)", "years", "[0, inf)"
    return f"{title}: {meaning}", unit_of(outcome), range_text(outcome)


def describe(column: str, described: dict[str, Description]) -> Description:
    if column in described:
        return described[column]
    if column in TABLE_COLUMNS:
        return TABLE_COLUMNS[column]
    if column in KEY_COLUMNS:
        return KEY_COLUMNS[column]
    outcomes = dict(OUTCOMES)
    if column in outcomes:
        return outcomes[column], unit(column), range_text(column)
    return NOT_DESCRIBED, "", ""


def _header(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh), [])


def calibration_words(parameters: list[str]) -> dict[str, Description]:
    """columns.csv of a calibration folder: observed_vs_simulated.csv (each target at the fitted point),
    posterior.csv (the draws), posterior_summary.csv (each parameter, prior against posterior) and predictive.csv
    (each target's posterior predictive). docs/calibration.md says how each is computed."""
    words: dict[str, Description] = {
        p: (f"the draw's value of the free parameter {p} (calibration/config.yaml)", "as the field", "")
        for p in parameters
    }
    term = "the calibration target (calibration/config.yaml targets)"
    total_sd = "the term's stated uncertainty: sqrt(source sd^2 + model discrepancy^2), in the units of `observed`"
    words |= {
        "target": (f"name of {term}", "text", ""),
        "where": ("the province (or national) and year the target is read at", "text", ""),
        "outcome": ("the model outcome the target is compared with", "text", ""),
        "province": ("province key, or national (the population-weighted mean of the provinces)", "text", ""),
        "scale": ("factor from the outcome to the observed value's units (10: an index out of 10)", "factor", ""),
        "kind": (
            "value: an observed value; at_least: an ordering or a bound that must hold; range: a range",
            "text",
            "",
        ),
        "year": (
            "year of the observation (the simulated state reported for it: 1 July with monthly steps)",
            "year",
            "",
        ),
        "observed": (
            "the observed value, or the condition an ordering or bound must meet (e.g. >= 0)",
            "observed units",
            "",
        ),
        "sd": (total_sd, "observed units", "[0, inf)"),
        "simulated_mean": ("the simulated value at the fitted point: mean over its replicates", "observed units", ""),
        "simulated_p5": ("5th percentile of the simulated value over the replicates", "observed units", ""),
        "simulated_p95": ("95th percentile of the simulated value over the replicates", "observed units", ""),
        "weight": (
            "observed_vs_simulated.csv: the term's weight in the loss (0: a check, shown, not fitted); posterior.csv: "
            "the draw's weight (the weights sum to 1)",
            "weight",
            "[0, inf)",
        ),
        "loss": (
            "the term's share of the loss: -2 log likelihood relative to its best (0: at the observation)",
            "",
            "[0, inf)",
        ),
        "met": (
            "True where the fitted point meets the target: within 2 sd, inside the range, or the ordering holds",
            "bool",
            "",
        ),
        "in_fit": ("True where the target is part of the fit (not held out, weight above 0)", "bool", ""),
        "source": ("where the observed value comes from (calibration/observations.yaml)", "text", ""),
        "parameter": ("a free parameter of the calibration (a scenario field)", "text", ""),
        "prior_mean": ("mean of the parameter's prior", "as the field", ""),
        "prior_sd": ("standard deviation of the parameter's prior", "as the field", "[0, inf)"),
        "prior_p5": ("5th percentile of the prior", "as the field", ""),
        "prior_p95": ("95th percentile of the prior", "as the field", ""),
        "posterior_median": ("weighted median of the posterior draws", "as the field", ""),
        "posterior_mean": ("weighted mean of the posterior draws", "as the field", ""),
        "posterior_sd": ("weighted standard deviation of the posterior draws", "as the field", "[0, inf)"),
        "posterior_p5": ("5th percentile of the posterior draws", "as the field", ""),
        "posterior_p95": ("95th percentile of the posterior draws", "as the field", ""),
        "contraction": (
            "1 - posterior variance / prior variance: how much the data narrowed the parameter",
            "share",
            "(-inf, 1]",
        ),
        "contraction_p5": (
            "5% end of the contraction's 90% bootstrap interval (whole chains resampled)",
            "share",
            "(-inf, 1]",
        ),
        "contraction_p95": ("95% end of that interval", "share", "(-inf, 1]"),
        "informed": (
            "yes: the contraction's whole interval is at or above 0.2; no: below it; undetermined: it straddles 0.2",
            "text",
            "",
        ),
        "check": ("True for a check of weight 0: shown beside the fit, never part of it", "bool", ""),
        "draws": ("posterior draws the predictive is made of (their runs that finished)", "count", "[0, inf)"),
        "predictive_p5": (
            "5th percentile of the posterior predictive (simulated value plus observation error)",
            "observed units",
            "",
        ),
        "predictive_median": ("median of the posterior predictive", "observed units", ""),
        "predictive_p95": ("95th percentile of the posterior predictive", "observed units", ""),
        "inside": (
            "True where the observation lies inside the predictive's 90% interval (an ordering or bound: where the "
            "predictive chance of seeing it is at least 5%)",
            "bool",
            "",
        ),
        "chance_seen": (
            "for an ordering or bound: the posterior predictive chance that it holds",
            "probability",
            "[0, 1]",
        ),
        "note": ("why a term has no predictive (e.g. every run failed)", "text", ""),
    }
    return words
