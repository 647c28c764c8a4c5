"""Global sensitivity analysis of the simulator: the model-agnostic functions of `sensitivity.py` applied to
egovsim through the experiment runner.

    study file -> Problem -> sample(X) -> RunSpecs (points x replicates, common random numbers)
      -> run_many(executor, store) -> outcome statistics Y (points, provinces, outcomes) -> analyze -> indices

Runs are parallel, resumable and failure-isolated because they go through `experiment.run_many` with a store.
"""

from __future__ import annotations

import csv
import io
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from egovsim.analysis import gsa as sa
from egovsim.config.analysis import (
    AnalysisHead,
    OutcomeStat,
    ParameterRange,
    check_stats,
    evaluate,
    parse_outcomes,
    refuse_overlaps,
    refuse_repeats,
    refuse_set_and_varied,
)
from egovsim.config.scenario import UNDONE_WARNING, Scenario, apply_values, check_real_parameter, expand_wildcards
from egovsim.config.schema import build, param
from egovsim.config.yamlfile import read_yaml
from egovsim.errors import InputError, clipped
from egovsim.files import atomic_write, write_json
from egovsim.folders import claimed, fresh_outputs
from egovsim.model.outcomes import COL, COLUMNS
from egovsim.provenance import provenance
from egovsim.report.dictionary import day, dictionary_csv, statistic_words
from egovsim.report.groups import small_group_warnings
from egovsim.report.markdown import inert
from egovsim.report.runfolder import write_scenario
from egovsim.report.tables import plots_section, row_of_year, years
from egovsim.runner.runner import MAX_RUNS, RunSpec, Store, replicate_seeds, run_many


@dataclass
class TimeResolvedSpec:
    outcome: str = param()
    years: list[int] = param()


@dataclass(kw_only=True)
class Study(AnalysisHead):
    """A sensitivity study of one base scenario (the head keys: AnalysisHead; `name` defaults to the file's)."""

    method: Literal["sobol", "morris"] = param()
    n: int = param(lo=2, hi=2**20, doc="Sobol: base sample N (a power of 2); Morris: trajectories")
    parameters: dict[str, ParameterRange] = param()
    outcomes: list[Any] = param(doc="outcome statistics (config.analysis.OutcomeStat), each with a name")
    replicates: int = param(2, lo=1, hi=100_000, doc="runs per sample point (common random numbers across points)")
    second_order: bool = param(True, doc="Sobol: also second-order indices")
    num_levels: int = param(4, lo=2, hi=1000, doc="Morris: grid levels")
    time_resolved: TimeResolvedSpec | None = param(None)
    stats: list[OutcomeStat] = field(default_factory=list, init=False, repr=False)  # outcomes, parsed

    def validate(self, source: str, path: str) -> None:
        if len(self.parameters) < 2:
            raise InputError(source, "parameters", "at least two parameters are needed")
        runs = self.points() * self.replicates
        if runs > MAX_RUNS:
            raise InputError(source, "n", f"{runs:,} runs (sample points x replicates), more than {MAX_RUNS:,}")
        if not self.outcomes:
            raise InputError(source, "outcomes", "at least one outcome is needed")
        self.stats = parse_outcomes(((f"outcomes[{i}]", v) for i, v in enumerate(self.outcomes)), source)
        for i, stat in enumerate(self.stats):
            if not stat.name:  # names label the indices and name the plot files
                raise InputError(source, f"outcomes[{i}].name", "missing required key: every outcome needs a name")
            if stat.province is not None:
                raise InputError(source, f"outcomes[{i}].province", "a study reports every province: leave it out")
        refuse_repeats([stat.name for stat in self.stats], source, "outcomes")  # names label the indices
        if self.time_resolved and self.time_resolved.outcome not in COLUMNS:
            raise InputError(source, "time_resolved.outcome", f"unknown outcome {clipped(self.time_resolved.outcome)}")

    def points(self) -> int:
        """Sample points SALib will draw (sensitivity.sample)."""
        d = len(self.parameters)
        if self.method == "morris":
            return self.n * (d + 1)
        return self.n * (2 * d + 2 if self.second_order else d + 2)


def load_study(path: str | Path) -> tuple[Study, Scenario, sa.Problem]:
    path = Path(path)
    source = str(path)
    study = build(Study, read_yaml(path), source)
    study.named(path, "study")
    base = study.base_scenario(path)
    try:
        problem = sa.Problem.from_dict({k: {"bounds": v.bounds, "dist": v.dist} for k, v in study.parameters.items()})
    except ValueError as exc:
        raise InputError(source, "parameters", str(exc)) from None
    for name, rng in study.parameters.items():  # every parameter must be a real-valued key, valid over its range
        if study.method == "morris" and rng.dist in ("norm", "lognorm"):  # its grid's end levels map to infinity
            raise InputError(source, f"parameters.{name}.dist", "Morris's grid needs a bounded range: unif or triang")
        for key in expand_wildcards(base, {name: 0.0}):
            check_real_parameter(base, key, *rng.reach, source, f"parameters.{name}")
    refuse_overlaps(base, {name: f"parameters.{name}" for name in study.parameters}, source)
    refuse_set_and_varied(base, study, {name: f"parameters.{name}" for name in study.parameters}, source)
    study.levers_in_play(base, study_fields(study), source)
    check_stats({f"outcomes[{i}]": stat for i, stat in enumerate(study.stats)}, base, source)
    given = study.time_resolved.years if study.time_resolved else []
    refuse_repeats([str(y) for y in given], source, "time_resolved.years")  # a year twice: two blocks of one t
    for y in given:
        if not base.start_year <= y <= base.end_year:
            raise InputError(source, "time_resolved.years", f"year {y} is outside {base.start_year}-{base.end_year}")
    with warnings.catch_warnings():  # the run records SALib's warnings for the report; here only the points count
        warnings.simplefilter("ignore")
        X = study_sample(study, problem)
    names = list(problem.names)
    for i, x in enumerate(X):  # values valid alone may break a rule together (access.initial <= access.ceiling)
        try:
            apply_values(base, dict(zip(names, map(float, x))), source)
        except InputError as exc:
            raise InputError(source, f"point {i} of the {study.method} sample", f"{exc.field}: {exc.message}") from None
    return study, base, problem


def study_fields(study: Study) -> dict[str, str]:
    """Each key the study varies, with the field of the file that varies it."""
    return {name: f"parameters.{name}" for name in study.parameters}


def study_sample(study: Study, problem: sa.Problem) -> np.ndarray:
    """The study's points, as SALib draws them from its seed."""
    options = {"calc_second_order": study.second_order} if study.method == "sobol" else {"num_levels": study.num_levels}
    return sa.sample(problem, study.method, study.n, study.seed, **options)


def outcome_values(records: np.ndarray, scenario: Scenario, stat: OutcomeStat) -> tuple[np.ndarray, np.ndarray]:
    """The outcome statistic of every province from one run's records (steps + 1, provinces, columns), and
    whether it is censored.

    A study counts a level never reached (time_to) as the run's length, in years, where the shared statistic
    reports it as censored (nan): SALib cannot analyse gaps. The report says how many runs are censored and
    that the cap was used (report_md)."""
    values = evaluate(stat, records, scenario)
    censored = np.zeros(np.shape(values), dtype=bool)
    if stat.stat == "time_to":
        censored = np.isnan(values)
        values = np.where(censored, censoring_cap(scenario, records.shape[0]), values)
    return values, censored


def specs_for(X: np.ndarray, names: list[str], seeds: list[int]) -> list[RunSpec]:
    return [
        RunSpec("base", r, seed, dict(zip(names, map(float, x))), point=i)
        for i, x in enumerate(X)
        for r, seed in enumerate(seeds)
    ]


@dataclass
class StudyRuns:
    """What a study's runs gave: Y (points, replicates, provinces, outcomes), which of those values are censored
    time_to caps, every column's last state (points, replicates, provinces, columns) for the search of a
    parameter's effects outside the chosen outcomes, and, if asked, Y_time (points, replicates, provinces,
    years); nan where a run failed."""

    Y: np.ndarray
    censored: np.ndarray
    ends: np.ndarray
    Yt: np.ndarray | None


def collect(study: Study, base: Scenario, results, store: Store, n_points: int) -> StudyRuns:
    P, K = len(base.provinces), len(study.stats)
    R = study.replicates
    Y = np.full((n_points, R, P, K), np.nan)
    censored = np.zeros((n_points, R, P, K), dtype=bool)
    ends = np.full((n_points, R, P, len(COLUMNS)), np.nan)
    tr = study.time_resolved
    Yt = np.full((n_points, R, P, len(tr.years)), np.nan) if tr else None
    for res in results:
        if not res.ok:
            continue
        rec = store.records(res.key)
        at = (res.spec.point, res.spec.replicate)
        for k, spec in enumerate(study.stats):
            Y[at][:, k], censored[at][:, k] = outcome_values(rec, base, spec)
        ends[at] = rec[-1]
        if tr:
            rows = [row_of_year(base, rec.shape[0], y) for y in tr.years]
            Yt[at] = rec[rows][:, :, COL[tr.outcome]].T
    return StudyRuns(Y, censored, ends, Yt)


def censoring_cap(scenario: Scenario, n_rows: int) -> float:
    """The years a time_to never reached counts as in a study: the run's length."""
    return float(years(scenario, n_rows)[-1] - scenario.start_year)


def censoring_lines(study: Study, base: Scenario, runs: StudyRuns) -> list[str]:
    """One line per time_to outcome and province with runs that never reach the level."""
    cap = censoring_cap(base, base.n_steps + 1)
    lines = []
    for k, stat in enumerate(study.stats):
        for p, province in enumerate(base.provinces):
            n = int(runs.censored[:, :, p, k].sum())
            if n:
                total = runs.censored[:, :, p, k].size
                meaning = (
                    "so its indices say nothing about the time"
                    if n == total
                    else "so its indices describe that cap as much as the time"
                )
                lines.append(
                    f"{province}, {stat.name}: the level is never reached in {n} of {total} runs "
                    f"({100 * n / total:.0f}%); they count as {cap:g} years (the run's length), {meaning}"
                )
    return lines


NEGLIGIBLE = 0.01  # a main index below this share of its outcome's largest (Morris) or this ST (Sobol): no effect


def without_effect(study: Study, rows: list[dict], names: list[str]) -> list[str]:
    """Parameters whose main index is negligible for every chosen outcome in every province, its 95% interval
    included: Sobol ST + its interval's half-width below NEGLIGIBLE, Morris mu* + its half-width below
    NEGLIGIBLE x the largest mu* of that outcome and province. An index that is small but not surely small (a
    sample too small to tell, or no interval) is not called negligible."""
    main = "ST" if study.method == "sobol" else "mu_star"
    sel = [r for r in rows if r["index"] == main and math.isfinite(r["value"])]
    largest: dict[tuple[str, str], float] = {}
    for r in sel:
        key = (r["province"], r["output"])
        largest[key] = max(largest.get(key, 0.0), r["value"])

    def negligible(r: dict) -> bool:
        conf = r.get("conf", math.nan)
        if not math.isfinite(conf):
            return False
        upper = r["value"] + abs(conf)
        if study.method == "sobol":
            return upper < NEGLIGIBLE
        return upper <= NEGLIGIBLE * largest[(r["province"], r["output"])]

    # at least one index estimated: where none is (an outcome that never varies), nothing is known of its effect
    return [n for n in names if (mine := [r for r in sel if r["parameter"] == n]) and all(map(negligible, mine))]


def effects_elsewhere(
    study: Study, base: Scenario, X: np.ndarray, names: list[str], rows: list[dict], runs: StudyRuns
) -> list[str]:
    """For each parameter without an effect on the chosen outcomes (without_effect), the outcome at the end it
    moves most, located by the rank correlation of its values with every column's last state over the sample
    (a pointer, not an index): 'does not matter for these outcomes' is not 'does not matter'."""
    from scipy.stats import spearmanr

    def rho(x: np.ndarray, y: np.ndarray) -> float:
        keep = np.isfinite(y)
        if keep.sum() < 3 or np.ptp(y[keep]) == 0 or np.ptp(x[keep]) == 0:
            return 0.0
        return float(spearmanr(x[keep], y[keep]).statistic)

    ends = np.nanmean(runs.ends, axis=1)
    lines = []
    main = "ST" if study.method == "sobol" else "mu*"
    for name in without_effect(study, rows, names):
        i = names.index(name)
        strength, c, p = max(
            (abs(rho(X[:, i], ends[:, p, c])), c, p) for p in range(ends.shape[1]) for c in range(ends.shape[2])
        )
        where = (
            f"over the sample its values go most with {COLUMNS[c]} at the end in {list(base.provinces)[p]} "
            f"(|Spearman rho| {strength:.2f}): add that outcome to the study to measure its effect"
            if strength >= 0.3
            else "no outcome at the end moves clearly with it over this sample"
        )
        lines.append(f"`{name}`: {main} negligible for every chosen outcome and province; {where}")
    return lines


def noise_share(Y: np.ndarray) -> np.ndarray:
    """Share of the runs' variance that is noise between replicates, per (province, outcome), from the two-way
    table of points x replicates (one run each): variance components of points, of replicates (common random
    numbers give replicate r the same noise at every point) and of the rest, from the mean squares, clipped at 0;
    the share is (replicates + rest) / all three. Estimated on the points whose every replicate finished; nan with
    one replicate, fewer than two such points, or no variation. (The mean within-point variance over the pooled
    variance exceeds 1 when the noise is common to the points; the within-point sum of squares over the total
    understates independent noise by (r - 1) / r.)"""
    r = Y.shape[1]
    out = np.full(Y.shape[2:], np.nan)
    if r < 2:
        return out
    for index in np.ndindex(*Y.shape[2:]):
        table = Y[(slice(None), slice(None), *index)]
        table = table[np.isfinite(table).all(axis=1)]
        n = table.shape[0]
        if n < 2:
            continue
        grand = table.mean()
        points, replicates = table.mean(axis=1), table.mean(axis=0)
        ms_points = r * np.sum((points - grand) ** 2) / (n - 1)
        ms_replicates = n * np.sum((replicates - grand) ** 2) / (r - 1)
        ms_rest = np.sum((table - points[:, None] - replicates[None, :] + grand) ** 2) / ((n - 1) * (r - 1))
        of_points = max(0.0, (ms_points - ms_rest) / r)
        of_replicates = max(0.0, (ms_replicates - ms_rest) / n)
        total = of_points + of_replicates + ms_rest
        if total > 0:
            out[index] = (of_replicates + ms_rest) / total
    return out


def analyze_all(
    study: Study, base: Scenario, problem: sa.Problem, X: np.ndarray, Y: np.ndarray, Yt: np.ndarray | None
) -> tuple[list[dict], list[dict]]:
    """Index rows (method, province, outcome, parameter, index, value, conf) and time-resolved rows."""
    options = {"calc_second_order": study.second_order} if study.method == "sobol" else {"num_levels": study.num_levels}
    Ym = np.nanmean(Y, axis=1)
    rows, trows = [], []
    for p, province in enumerate(base.provinces):
        recs = sa.analyze(
            problem, X, Ym[:, p, :], study.method, outputs=[o.name for o in study.stats], seed=study.seed, **options
        )
        rows += [{"province": province, **r} for r in sa.records_to_rows(recs)]
        if Yt is not None:
            t_recs = sa.time_resolved(
                problem,
                X,
                np.nanmean(Yt, axis=1)[:, p, :],
                study.method,
                study.time_resolved.years,
                seed=study.seed,
                **options,
            )
            trows += [{"province": province, **r} for r in sa.records_to_rows(t_recs)]
    return rows, trows


def run_study(
    path: str | Path,
    executor,
    folder: Path,
    *,
    quiet: bool = False,
    command=None,
    loaded: tuple[Study, Scenario, sa.Problem] | None = None,
) -> dict:
    """Sample, run (resumably), analyse and write indices.csv, report.md, plots and provenance; `loaded`: what
    load_study gave already (the CLI checks the file, every point of its sample included, before any worker
    starts), else it is loaded here."""
    with claimed(folder):
        return _run_study(path, executor, Path(folder), quiet, command, loaded)


def _run_study(path: str | Path, executor, folder: Path, quiet: bool, command, loaded) -> dict:
    from egovsim.report.plots import sensitivity_plots

    start = time.perf_counter()
    study, base, problem = loaded if loaded is not None else load_study(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = study_sample(study, problem)
    seeds = replicate_seeds(study.seed, study.replicates)
    specs = specs_for(X, list(problem.names), seeds)
    store = Store(folder / "runs")
    results = run_many(
        specs,
        {"base": base},
        executor,
        store=store,
        keep_records=False,
        progress=None if quiet else f"{study.name} ({study.method})",
    )
    failed = [r for r in results if not r.ok]
    if failed:
        raise StudyIncomplete(len(failed), len(results), failed[0].error)
    runs = collect(study, base, results, store, len(X))
    rows, trows = analyze_all(study, base, problem, X, runs.Y, runs.Yt)
    noise = noise_share(runs.Y)
    honesty = {
        "levers": study.levers_in_play(base, study_fields(study), str(path)),
        "censored": censoring_lines(study, base, runs),
        "small groups": small_group_warnings(base, [s.outcome for s in study.stats]),
        "effects elsewhere": effects_elsewhere(study, base, X, list(problem.names), rows, runs),
    }
    flagged = unreliable_rows(rows)
    fresh_outputs(folder)  # the earlier summary goes first: the folder never mixes two runs' files
    write_scenario(folder, base)
    write_indices(folder / "indices.csv", rows)
    if trows:
        write_indices(folder / "time_resolved.csv", trows)
    atomic_write(
        folder / "columns.csv", dictionary_csv(folder, ["indices.csv", "time_resolved.csv"], described(study, base))
    )
    plots = sensitivity_plots(folder / "plots", study, base, rows, trows)
    runs_wall = sum(r.wall_time_s for r in results if not r.resumed and math.isfinite(r.wall_time_s))
    report = report_md(
        study,
        base,
        rows,
        noise,
        flagged,
        len(X),
        len(results),
        plots,
        folder,
        [str(w.message) for w in caught],
        time.perf_counter() - start,
        honesty,
    )
    atomic_write(folder / "report.md", inert(report))
    write_json(
        folder / "provenance.json",
        provenance(
            seeds=seeds,
            wall_time_s=time.perf_counter() - start,
            scenario_file=str(path),
            command=command,
            extra={
                "study": read_yaml(Path(path)),
                "runs": len(results),
                "points": len(X),
                "resumed_runs": sum(r.resumed for r in results),
                "cpu_time_of_runs_s": round(runs_wall, 2),
                "code_commits_of_runs": store.commits(r.key for r in results),
            },
        ),
    )
    return {
        "rows": rows,
        "time_rows": trows,
        "noise": noise,
        "flagged": flagged,
        "points": len(X),
        "runs": len(results),
    }


class StudyIncomplete(Exception):
    def __init__(self, failed: int, total: int, first_error: str | None):
        super().__init__(
            f"{failed} of {total} runs failed (first: {first_error}); run the same command again "
            f"to retry them: SALib cannot analyse a design with gaps"
        )


MORRIS_FLOOR = 1e-6  # outcome units: a largest mu_star below this is an outcome the parameters do not move


def unreliable_rows(rows: list[dict]) -> list[dict]:
    """Main indices whose interval is wider than the index (the rule of gsa.unreliable). Its near-zero
    exemption is in the index's units: fractions of variance for Sobol, so as they are; outcome units for Morris's
    mu_star, so relative to the largest mu_star of that outcome and province (0.0079 +- 0.0082 is no zero where
    the largest is 0.0148), with a floor so that an outcome that does not move at all is not called unreliable."""
    flagged = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["index"] in ("S1", "ST", "mu_star"):
            groups.setdefault((r["province"], r["output"], r["index"]), []).append(r)
    for (_, _, index), group in groups.items():
        scale = 1.0
        if index == "mu_star":
            largest = max((abs(r["value"]) for r in group if math.isfinite(r["value"])), default=0.0)
            scale = max(largest, MORRIS_FLOOR)
        records = [
            sa.IndexRecord(r["method"], r["output"], r["parameter"], r["index"], r["value"], r["conf"]) for r in group
        ]
        bad = {id(rec) for rec in sa.unreliable(records, zero_value=0.01 * scale, zero_conf=0.05 * scale)}
        flagged += [r for r, rec in zip(group, records) if id(rec) in bad]
    return flagged


def second_order_lines(rows: list[dict]) -> list[str]:
    """A warning when the second-order indices (Sobol S2, in indices.csv) are poorly resolved: by the rule of the main
    indices (gsa.unreliable: an interval wider than the index, a near-zero index with a tight interval exempt),
    more than one in ten unresolved. Each S2 is estimated far less precisely than a main index."""
    records = [
        sa.IndexRecord(r["method"], r["output"], r["parameter"], r["index"], r["value"], r["conf"])
        for r in rows
        if r["index"] == "S2" and math.isfinite(r["value"])
    ]
    wide = sa.unreliable(records)
    if not records or len(wide) * 10 <= len(records):  # nine in ten or more resolved: nothing to warn of
        return []
    return [
        "",
        f"**Second-order indices (S2, pairs of parameters) are poorly resolved at this sample size: {len(wide)} of "
        f"{len(records)} have a 95% interval wider than the index and are not near zero (the rule of the main "
        "indices).** They are kept in indices.csv, but do not quote "
        "them (nor read an interaction from them) without a larger `n`; the main indices above are estimated far "
        "more precisely.",
    ]


def described(study: Study, base: Scenario) -> dict[str, tuple[str, str, str]]:
    """columns.csv's words for the study's own names: each output of `output`, in words."""
    outputs = "; ".join(f"{s.name} = {statistic_words(s, base)}" for s in study.stats)
    tr = study.time_resolved
    resolved = ""
    if tr:
        rows = {y: row_of_year(base, base.n_steps + 1, y) for y in tr.years}
        at = ", ".join(f"t={y}: {day(base, k)}" for y, k in rows.items())
        resolved = f"; in time_resolved.csv, t=YEAR is {tr.outcome} in the state of that year read ({at})"
    return {"output": (f"what the index is of: {outputs}{resolved}", "text", "")}


def write_indices(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    fields = ["method", "province", "output", "parameter", "index", "value", "conf"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "value": _fmt(r["value"]), "conf": _fmt(r["conf"])})
    atomic_write(path, buf.getvalue())


def _fmt(x: Any) -> str:
    return "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(float(x), ".6g")


def top_parameters(
    rows: list[dict], province: str, output: str, index: str, k: int = 3
) -> list[tuple[str, float, float]]:
    sel = [
        r
        for r in rows
        if r["province"] == province and r["output"] == output and r["index"] == index and math.isfinite(r["value"])
    ]
    sel.sort(key=lambda r: -r["value"])
    return [(r["parameter"], r["value"], r["conf"]) for r in sel[:k]]


def report_md(
    study: Study,
    base: Scenario,
    rows,
    noise,
    flagged,
    n_points,
    n_runs,
    plots,
    folder: Path,
    sampling_warnings,
    wall,
    honesty: dict[str, list[str]] | None = None,
) -> str:
    main_index = "ST" if study.method == "sobol" else "mu_star"
    lines = [
        f"# Sensitivity analysis: {study.name}",
        "",
        study.description,
        "",
        f"Method: **{study.method}** over {len(study.parameters)} parameters, base sample n = {study.n}: "
        f"{n_points} sample points x {study.replicates} replicates = {n_runs} model runs of "
        f"`{study.scenario}` (scale {base.provinces[next(iter(base.provinces))].scale}), seed {study.seed}. "
        f"Wall time {wall:.0f} s.",
        "",
        f"Parameters of the base scenario (those the study does not vary): {base.parameters.label()}.",
        "",
    ]
    if study.method == "sobol":
        lines += [
            "S1 (first order) is the share of an outcome's variance a parameter explains alone; ST (total) "
            "includes its interactions. Intervals are SALib's bootstrap 95% confidence intervals.",
            "",
        ]
    else:
        lines += [
            "mu* is the mean absolute elementary effect (the change of the outcome over the parameter's whole "
            "range); sigma, their spread, signals non-linearity or interactions.",
            "",
        ]
    lines += ["## What matters most", ""]
    for province in base.provinces:
        for out in study.stats:
            top = top_parameters(rows, province, out.name, main_index)
            text = ", ".join(f"`{p}` ({main_index} {v:.3g}, 95% interval +- {c:.3g})" for p, v, c in top)
            lines.append(f"- **{province}, {out.name}**: {text}.")
    lines += [
        "",
        "## Noise between replicates",
        "",
        "Share of each outcome's variance over the runs that is noise between replicates (variance components "
        "of points, of replicates and of the rest, on the points whose every replicate finished; the indices are "
        "computed on replicate means, which carry 1/replicates of the noise that differs between points):",
        "",
        "| province | " + " | ".join(o.name for o in study.stats) + " |",
        "|---|" + "---|" * len(study.stats),
    ]
    for p, province in enumerate(base.provinces):
        lines.append(f"| {province} | " + " | ".join(_fmt(noise[p, k]) for k in range(len(study.stats))) + " |")
    if study.replicates < 2:
        lines += [
            "",
            "(One replicate a point: the noise between replicates cannot be told from the effects; set "
            "`replicates: 2` or more to estimate it.)",
        ]
    lines += ["", "## Reliability", ""]
    if flagged:
        lines.append(
            f"**Warning: the sample is too small for {len(flagged)} indices: their 95% interval is wider "
            f"than the index itself.** Increase `n` for these:"
        )
        lines += [
            f"- {r['province']}, {r['output']}, {r['parameter']}: {r['index']} {r['value']:.3g}, 95% interval "
            f"+- {r['conf']:.3g}"
            for r in flagged[:20]
        ]
        if len(flagged) > 20:
            lines.append(f"- and {len(flagged) - 20} more (every index and its interval is in indices.csv)")
    elif not any(r["index"] == main_index and math.isfinite(r["value"]) for r in rows):
        lines.append(
            "**No index could be estimated**: every chosen outcome took the same value in every run (no variance to "
            "apportion), or no run finished. Choose outcomes and years where the parameters can act."
        )
    else:
        lines.append("Every main index's 95% interval is narrower than the index (or the index is near zero).")
    lines += second_order_lines(rows)
    lines += [f"- sampling: {w}" for w in sampling_warnings]
    honesty = honesty or {}
    if honesty.get("levers"):
        lines += ["", UNDONE_WARNING] + [f"- {line}" for line in honesty["levers"]]
    if honesty.get("censored"):
        lines += ["", "**Warning: censored times.**"] + [f"- {line}" for line in honesty["censored"]]
    if honesty.get("small groups"):
        lines += ["", "**Warning: shares of small simulated groups** (raise `scale` in the study file):"]
        lines += [f"- {line}" for line in honesty["small groups"]]
    if honesty.get("effects elsewhere"):
        lines += ["", "## Parameters without an effect on these outcomes", ""]
        lines += ["A parameter that does not matter for the outcomes chosen here may matter for others:"]
        lines += [f"- {line}" for line in honesty["effects elsewhere"]]
    lines += plots_section(plots, folder)
    return "\n".join(lines) + "\n"
