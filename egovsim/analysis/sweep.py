"""Parameter sweeps (`egovsim sweep experiments/NAME.yaml`): an experiment file, its design, and its outputs.

An experiment file names a base scenario, a design over parameters (a grid, a Latin hypercube or a list of
points), replicates and a master seed. Every design point runs with the same replicate seeds (common random
numbers, like `compare`) unless `seeds: independent`. Outputs: runs.csv (one row per run: parameters, seed,
status, key outcomes, wall time), timeseries.parquet (every successful run's full time series, with its
parameter values as columns), and report.md with plots/ (main effects and interactions with replicate bands:
analysis/sweep_report.py), all rebuilt from the run store at the end, so an interrupted sweep resumes where it
stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import io
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from egovsim.analysis.calibration.posterior import scenario_draws
from egovsim.analysis.sweep_report import SweepRuns, dictionary, write_report
from egovsim.config.analysis import (
    NATIONAL,
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
from egovsim.config.scenario import Scenario, apply_values, check_real_parameter, expand_wildcards
from egovsim.config.schema import build, param, to_plain
from egovsim.config.yamlfile import dump_yaml, read_yaml
from egovsim.errors import InputError, clipped
from egovsim.files import atomic_path, atomic_write, child, write_json
from egovsim.folders import RESULTS, claimed, fresh_outputs
from egovsim.model.outcomes import COLUMNS
from egovsim.provenance import provenance
from egovsim.report.dictionary import dictionary_csv
from egovsim.report.runfolder import write_scenario
from egovsim.report.tables import format_value, state_date, years
from egovsim.runner.runner import MAX_RUNS, RunResult, RunSpec, Store, Tally, replicate_seeds, run_many

DEFAULT_OUTPUTS = ("supply_index@end", "adopted_share@end", "access_share@end")


@dataclass
class LatinHypercube:
    """n points spread over a box (scipy.stats.qmc.LatinHypercube), reproducible from `seed`. The box is given
    as `parameters` (a ParameterRange per parameter, as in every analysis file; uniform only) or, in the older
    form, as `bounds` ([low, high] per parameter)."""

    n: int = param(lo=2, hi=1_000_000, doc="number of design points (a sweep compares them: at least 2)")
    parameters: dict[str, ParameterRange] | None = param(None, doc="range per parameter (dotted key), dist: unif")
    bounds: dict[str, list[float]] | None = param(None, doc="older form: [low, high] per parameter (dotted key)")
    seed: int | None = param(None, lo=0, hi=2**63 - 1, doc="seed of the sample (default: the experiment's)")

    def validate(self, source: str, path: str) -> None:
        if (self.parameters is None) == (self.bounds is None):
            raise InputError(
                source,
                path,
                "give parameters (or the older bounds), not both"
                if self.bounds is not None
                else "missing parameters: the range of each parameter (dotted key: {bounds: [low, high]})",
            )
        if not (self.parameters or self.bounds):
            raise InputError(source, f"{path}.{self.key}", "name at least one parameter")
        for key, b in (self.bounds or {}).items():
            if len(b) != 2 or not b[0] < b[1]:
                raise InputError(
                    source, f"{path}.bounds.{key}", f"expected [low, high] with low < high, got {clipped(b)}"
                )
        for key, rng in (self.parameters or {}).items():
            if rng.dist != "unif":
                raise InputError(
                    source,
                    f"{path}.parameters.{key}.dist",
                    f"a Latin hypercube is uniform: expected unif, got {rng.dist}",
                )

    @property
    def key(self) -> str:
        """The key the ranges were given under."""
        return "bounds" if self.bounds is not None else "parameters"

    @property
    def ranges(self) -> dict[str, ParameterRange]:
        if self.parameters is not None:
            return self.parameters
        return {k: ParameterRange(bounds=list(b)) for k, b in self.bounds.items()}

    def bound_field(self, key: str, end: int) -> str:
        """The field that names one end of a parameter's range in the file."""
        return f"bounds.{key}[{end}]" if self.bounds is not None else f"parameters.{key}.bounds[{end}]"


@dataclass
class Design:
    """Exactly one of: grid (every combination of the listed values), lhs (a Latin hypercube), points
    (an explicit list of parameter settings)."""

    grid: dict[str, list[Any]] | None = param(None, doc="values per parameter (dotted key)")
    lhs: LatinHypercube | None = param(None)
    points: list[dict[str, Any]] | None = param(None, doc="explicit points, each a mapping of dotted keys")

    def validate(self, source: str, path: str) -> None:
        given = [k for k in ("grid", "lhs", "points") if getattr(self, k) is not None]
        if len(given) != 1:
            raise InputError(
                source, path, "give exactly one of grid, lhs, points" + (f" (got {', '.join(given)})" if given else "")
            )
        if self.grid is not None:
            if not self.grid:
                raise InputError(source, f"{path}.grid", "name at least one parameter")
            for key, values in self.grid.items():
                if not values:
                    raise InputError(source, f"{path}.grid.{key}", "give at least one value")
                twice = next((i for i, v in enumerate(values) if values.index(v) != i), None)
                if twice is not None:  # the same level twice: its points run twice, and its effect reads as 0
                    raise InputError(
                        source, f"{path}.grid.{key}[{twice}]", f"{clipped(values[twice])} is an earlier level too"
                    )
        if self.points is not None and not self.points:
            raise InputError(source, f"{path}.points", "give at least one point")

    @property
    def kind(self) -> str:
        return next(k for k in ("grid", "lhs", "points") if getattr(self, k) is not None)

    @property
    def size(self) -> int:
        """The number of design points, counted without listing them (a grid's count multiplies)."""
        if self.grid is not None:
            return math.prod(len(values) for values in self.grid.values())
        return self.lhs.n if self.lhs is not None else len(self.points)


@dataclass(kw_only=True)
class Experiment(AnalysisHead):
    """A sweep over parameters of one base scenario (the head keys: AnalysisHead)."""

    design: Design = param()
    seeds: Literal["common", "independent"] = param(
        "common",
        doc="common: replicate r of every point uses the same seed (paired, smoother responses); "
        "independent: every run its own seed",
    )
    outcomes: list[Any] | None = param(
        None,
        doc="outcome statistics per province, as columns of runs.csv: outcome@year, outcome@end or a mapping "
        f"(config.analysis.OutcomeStat); default {', '.join(DEFAULT_OUTPUTS)}",
    )
    outputs: list[Any] | None = param(None, doc="older name of outcomes")
    stats: list[OutcomeStat] = field(default_factory=list, init=False, repr=False)  # outcomes, parsed

    @property
    def outcomes_key(self) -> str:
        return "outputs" if self.outputs is not None else "outcomes"

    def validate(self, source: str, path: str) -> None:
        if self.outcomes is not None and self.outputs is not None:
            raise InputError(source, "outputs", "give outcomes (or the older outputs), not both")
        given = self.outcomes if self.outcomes is not None else self.outputs
        if given is not None and not given:
            raise InputError(
                source, self.outcomes_key, "name at least one outcome, or leave the key out for the defaults"
            )
        raw = list(DEFAULT_OUTPUTS) if given is None else given
        self.stats = parse_outcomes(((f"{self.outcomes_key}[{i}]", v) for i, v in enumerate(raw)), source)
        refuse_repeats([s.label for s in self.stats], source, self.outcomes_key)


def load_experiment(path: str | Path) -> tuple[Experiment, Scenario]:
    """Read and validate an experiment file and its base scenario; check every design point against the
    scenario's schema before anything runs (an error names the experiment file and the field)."""
    path = Path(path)
    data = read_yaml(path)
    exp = build(Experiment, data, str(path))
    exp.named(path, "experiment")
    runs = exp.design.size * exp.replicates
    if runs > MAX_RUNS:
        raise InputError(str(path), "design", f"{runs:,} runs (points x replicates), more than {MAX_RUNS:,}")
    # the seed recorded in the sweep's scenario.yaml is the master seed its replicates were spawned from
    base = dataclasses.replace(exp.base_scenario(path), seed=exp.seed)
    check_stats({f"{exp.outcomes_key}[{i}]": stat for i, stat in enumerate(exp.stats)}, base, str(path))
    for key, where in _design_keys(exp.design):
        if key in HORIZON_KEYS:
            raise InputError(
                str(path),
                where,
                f"a design cannot vary {key}: its points are compared at the same dates; set it for all with `set:`",
            )
        if key == "seed":  # runs.csv's seed column is the run's: a design's seed would shadow it
            raise InputError(
                str(path), where, "a design cannot vary seed: replicates draw their own (replicates:, seed:)"
            )
    if exp.design.points is None:
        refuse_overlaps(base, dict(_design_keys(exp.design)), str(path))
    else:  # each point's keys are set together: a value set twice in one point would be recorded wrongly
        for i, point in enumerate(exp.design.points):
            refuse_overlaps(base, {key: f"design.points[{i}].{key}" for key in point}, str(path))
    refuse_set_and_varied(base, exp, dict(_design_keys(exp.design)), str(path))
    exp.levers_in_play(base, design_fields(exp), str(path))  # refused if never in play
    columns = [*RUN_COLUMNS, *design_keys(exp), *(n for n, _ in output_columns(exp, base))]
    twice = next((name for i, name in enumerate(columns) if name in columns[:i]), None)
    if twice is not None:  # runs.csv would hold two columns of one name, and the report keep one
        raise InputError(str(path), exp.outcomes_key, f"two columns of runs.csv would be {clipped(twice)}: rename one")
    if exp.design.lhs is not None:  # drawn anywhere between the bounds: a real-valued key, valid at both ends
        for key, rng in exp.design.lhs.ranges.items():
            for one in expand_wildcards(base, {key: 0.0}):
                check_real_parameter(base, one, *rng.reach, str(path), f"design.lhs.{exp.design.lhs.key}.{key}")
    for point, where in _checks(exp):
        if any(key.endswith(".budget") and isinstance(v, dict) for key, v in point.items()):
            raise InputError(
                str(path),
                where,
                "a budget hold is resolved against its baseline by run and compare: give a what-if scenario file, "
                "or vary budgets as numbers (bn VND/yr)",
            )
        try:
            apply_values(base, point, str(path))
        except InputError as exc:
            raise InputError(str(path), where, f"{exc.field}: {exc.message}") from None
    refuse_broken_draws(path, exp, base)
    return exp, base


def refuse_broken_draws(path: Path, exp: Experiment, base: Scenario) -> None:
    """A posterior draw and a design point, each valid alone, may break a rule together (access.initial <=
    ceiling): every pair that will run is checked, so `validate` refuses what the sweep would."""
    draws = posterior_values(path, exp, base)
    if draws is None:
        return
    for spec in {(s.point, s.replicate): s for s in specs_of(exp, design_points(exp), draws)}.values():
        try:
            apply_values(base, spec.values, str(path))
        except InputError as exc:
            where = f"design point {spec.point} with posterior draw {spec.replicate}"
            raise InputError(str(path), where, f"{exc.field}: {exc.message}") from None


# a design compares its points at the same dates: these keys are set for every point (with `set:`), not varied
HORIZON_KEYS = ("start_year", "end_year", "steps_per_year", "initial_state_year")


def design_fields(exp: Experiment) -> dict[str, str]:
    """Each key the design varies, with the field of the file that varies it."""
    return dict(_design_keys(exp.design))


def _design_keys(d: Design):
    """(key, field to blame) of every parameter the design varies."""
    if d.grid is not None:
        yield from ((key, f"design.grid.{key}") for key in d.grid)
    elif d.lhs is not None:
        yield from ((key, f"design.lhs.{d.lhs.key}.{key}") for key in d.lhs.ranges)
    else:
        for i, point in enumerate(d.points):
            yield from ((key, f"design.points[{i}].{key}") for key in point)


def _checks(exp: Experiment):
    """(values, field to blame) to validate: each grid value on its own (then every combination is valid,
    the checks being per-field ranges), each bound of a hypercube, each listed point."""
    d = exp.design
    if d.grid is not None:
        for key, values in d.grid.items():
            for i, v in enumerate(values):
                yield {key: v}, f"design.grid.{key}[{i}]"
    elif d.lhs is not None:
        for key, rng in d.lhs.ranges.items():
            yield {key: rng.bounds[0]}, f"design.lhs.{d.lhs.bound_field(key, 0)}"
            yield {key: rng.bounds[1]}, f"design.lhs.{d.lhs.bound_field(key, 1)}"
    else:
        for i, point in enumerate(d.points):
            yield point, f"design.points[{i}]"


def design_points(exp: Experiment) -> list[dict[str, Any]]:
    """The design as a list of parameter settings (plain Python values, in a fixed order)."""
    d = exp.design
    if d.grid is not None:
        keys = list(d.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*d.grid.values())]
    if d.lhs is not None:
        from scipy.stats import qmc

        ranges = d.lhs.ranges
        keys = list(ranges)
        lo, hi = np.array([ranges[k].bounds for k in keys], dtype=float).T
        seed = exp.seed if d.lhs.seed is None else d.lhs.seed
        unit = qmc.LatinHypercube(d=len(keys), rng=np.random.default_rng(seed)).random(d.lhs.n)
        return [dict(zip(keys, map(float, row))) for row in qmc.scale(unit, lo, hi)]
    return [dict(p) for p in d.points]


def specs_of(exp: Experiment, points: list[dict[str, Any]], draws: list[dict] | None = None) -> list[RunSpec]:
    """One RunSpec per design point and replicate; replicate r runs with posterior draw r (`draws`, see
    posterior_values) under the point's own values."""
    drawn = draws or [{}] * exp.replicates
    if exp.seeds == "common":
        seeds = replicate_seeds(exp.seed, exp.replicates)
        return [
            RunSpec(exp.name, r, seeds[r], values=under_point(drawn[r], v), point=i)
            for i, v in enumerate(points)
            for r in range(exp.replicates)
        ]
    seeds = replicate_seeds(exp.seed, exp.replicates * len(points))
    return [
        RunSpec(exp.name, r, seeds[i * exp.replicates + r], values=under_point(drawn[r], v), point=i)
        for i, v in enumerate(points)
        for r in range(exp.replicates)
    ]


def under_point(draw: dict, point: dict) -> dict:
    """A posterior draw's values with a design point's over them: a drawn parameter the point sets (its key, or a
    provinces.* pattern that covers it) takes the point's value."""
    kept = {k: v for k, v in draw.items() if not any(fnmatch.fnmatchcase(k, key) for key in point)}
    return {**kept, **point}


def design_keys(exp: Experiment) -> list[str]:
    """The parameters the design varies, in order (the columns of runs.csv)."""
    return list(dict.fromkeys(key for key, _ in _design_keys(exp.design)))


def posterior_values(path: str | Path, exp: Experiment, base: Scenario) -> list[dict] | None:
    """When the base scenario draws from a calibration posterior (a calibrated scenario), replicate r of every
    design point runs with draw r, as `compare` pairs its scenarios: the design's effects are then averaged over
    parameter uncertainty, and a difference between two points stays paired. A draw keeps the values the
    scenario sets itself (posterior.restricted); a design point's values go over it (under_point). None for
    other scenarios."""
    if not base.parameters.draws_from:
        return None
    return scenario_draws(base, exp.replicates, exp.seed, str(Path(path).parent / exp.scenario))


# ---- outputs ----------------------------------------------------------------------------------------------


def output_columns(exp: Experiment, base: Scenario) -> list[tuple[str, OutcomeStat]]:
    """(column name in runs.csv, statistic) for every requested outcome and province: <province>.<label>,
    or <label> alone for a statistic of one province."""
    out = []
    for stat in exp.stats:
        if stat.province is not None:
            out.append((stat.label, stat))
            continue
        for key in base.provinces:
            out.append((f"{key}.{stat.label}", dataclasses.replace(stat, province=key)))
    return out


RUN_COLUMNS = ("run", "point", "replicate", "seed", "status", "wall_time_s", "error")  # runs.csv's own


def write_outputs(folder: Path, exp: Experiment, base: Scenario, results: list[RunResult], store: Store) -> SweepRuns:
    """runs.csv (one row per run: run key, point, replicate, seed, status, wall time, parameters, outputs,
    error) and timeseries.parquet (every successful run's time series, with the run's parameter values as
    columns), in one pass over the store so each run's records are read once and memory stays flat; both files
    appear whole or not at all. Returns the successful runs' parameters and outcomes, for the report."""
    import pyarrow.parquet as pq

    params = design_keys(exp)  # a posterior draw's values are not design parameters (provenance.json has them)
    outs = output_columns(exp, base)
    national = any(stat.province == NATIONAL for _, stat in outs)
    ok = [r for r in results if r.ok]
    runs = sweep_runs(exp, ok, params, [name for name, _ in outs])
    row_of = {id(r): i for i, r in enumerate(ok)}
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\n")
    table.writerow([*RUN_COLUMNS[:-1], *params, *(name for name, *_ in outs), RUN_COLUMNS[-1]])
    schema = _timeseries_schema(params, results)
    with (
        atomic_path(folder / "timeseries.parquet") as tmp,
        pq.ParquetWriter(tmp, schema, compression="zstd") as parquet,
    ):
        for r in results:
            records = (r.records if r.records is not None else store.records(r.key)) if r.ok else None
            outputs = [""] * len(outs)
            if records is not None:
                # a national figure weights the provinces by the point's populations, which a design may vary
                own = apply_values(base, r.spec.values) if national and r.spec.values else base
                numbers = [float(evaluate(stat, records, own)) for _, stat in outs]
                outputs = [format_value(stat.outcome, v) for (_, stat), v in zip(outs, numbers)]
                for (name, _), v in zip(outs, numbers):
                    runs.outcomes[name][row_of[id(r)]] = v
                parquet.write_table(_timeseries_table(r, records, base, schema, params))
            values = [_param_text(r.spec.values.get(k, "")) for k in params]
            table.writerow(
                [
                    r.key,
                    r.spec.point,
                    r.spec.replicate,
                    r.spec.seed,
                    r.status,
                    format_value("", r.wall_time_s),
                    *values,
                    *outputs,
                    r.error or "",
                ]
            )
    atomic_write(folder / "runs.csv", buf.getvalue())
    return runs


def sweep_runs(exp: Experiment, ok: list[RunResult], params: list[str], columns: list[str]) -> SweepRuns:
    """The successful runs as the report reads them (outcomes filled in by write_outputs). A list of points
    is one categorical parameter, the point, since its points need not share parameters."""
    replicate = np.array([r.spec.replicate for r in ok], dtype=int)
    outcomes = {name: np.full(len(ok), np.nan) for name in columns}
    if exp.design.kind == "points":
        values = {"point": [f"point {r.spec.point}" for r in ok]}
        notes = [
            f"point {i}: " + ", ".join(f"{k} = {_param_text(v)}" for k, v in point.items())
            for i, point in enumerate(exp.design.points)
        ]
        return SweepRuns(["point"], values, replicate, outcomes, set(), notes)
    values = {p: [r.spec.values.get(p) for r in ok] for p in params}
    continuous = set(params) if exp.design.kind == "lhs" else set()
    return SweepRuns(params, values, replicate, outcomes, continuous)


def _param_text(v: Any) -> str:
    return format(v, ".10g") if isinstance(v, float) else str(v)


def _timeseries_schema(params: list[str], results: list[RunResult]):
    """Long format: run, point, replicate, seed, then each varied parameter (float64 if every value given is a
    number, else text; named by its dotted key, so a row needs no join with runs.csv), year, date, province,
    then every outcome as float64 (as simulated)."""
    import pyarrow as pa

    def kind(p: str):
        given = [r.spec.values[p] for r in results if p in r.spec.values]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given)
        return pa.float64() if numeric else pa.string()

    return pa.schema(
        [
            ("run", pa.string()),
            ("point", pa.int32()),
            ("replicate", pa.int32()),
            ("seed", pa.int64()),
            *((p, kind(p)) for p in params),
            ("year", pa.float64()),
            ("date", pa.date32()),
            ("province", pa.dictionary(pa.int8(), pa.string())),
            *((c, pa.float64()) for c in COLUMNS),
        ]
    )


def _timeseries_table(r: RunResult, records: np.ndarray, base: Scenario, schema, params: list[str]):
    import pyarrow as pa

    steps, n_prov, _ = records.shape
    flat = records.reshape(steps * n_prov, -1)
    n = len(flat)

    def param_column(p: str):
        value = r.spec.values.get(p)
        if schema.field(p).type == pa.string():
            return pa.array([None if value is None else _param_text(value)] * n, pa.string())
        return pa.array(np.full(n, np.nan if value is None else float(value)))

    columns = {
        "run": pa.array([r.key] * n, pa.string()),
        "point": pa.array(np.full(n, r.spec.point, np.int32)),
        "replicate": pa.array(np.full(n, r.spec.replicate, np.int32)),
        "seed": pa.array(np.full(n, r.spec.seed, np.int64)),
        **{p: param_column(p) for p in params},
        "year": pa.array(np.repeat(np.round(years(base, steps), 6), n_prov)),
        "date": pa.array(np.repeat([state_date(base, k) for k in range(steps)], n_prov), pa.date32()),
        "province": pa.DictionaryArray.from_arrays(
            pa.array(np.tile(np.arange(n_prov, dtype=np.int8), steps)), pa.array(list(base.provinces))
        ),
        **{c: pa.array(flat[:, i]) for i, c in enumerate(COLUMNS)},
    }
    return pa.table(columns, schema=schema)


# ---- the command ------------------------------------------------------------------------------------------


def run_sweep(
    path: str | Path,
    exp: Experiment,
    base: Scenario,
    executor,
    *,
    folder: Path | None = None,
    progress: bool = True,
    provenance_extra: dict | None = None,
) -> tuple[Path, Tally]:
    """Run (or resume) the experiment loaded from `path` by `load_experiment`; write experiment.yaml,
    scenario.yaml, runs.csv, timeseries.parquet and provenance.json into `folder` (default
    results/<experiment name>, so the same command resumes in the same place)."""
    folder = Path(folder) if folder is not None else child(RESULTS, exp.name)
    with claimed(folder):
        return _run_sweep(path, exp, base, executor, folder, progress, provenance_extra)


def _run_sweep(path, exp: Experiment, base: Scenario, executor, folder: Path, progress: bool, provenance_extra):
    points = design_points(exp)
    draws = posterior_values(path, exp, base)
    specs = specs_of(exp, points, draws)  # each point with each draw checked by load_experiment
    if draws is not None:  # scenario.yaml and the report say the replicates ran on posterior draws
        base = dataclasses.replace(base, parameters=base.parameters.drawn_from(base.parameters.draws_from))
    store = Store(folder / "runs")
    start = time.perf_counter()
    results = run_many(
        specs, {exp.name: base}, executor, store=store, keep_records=False, progress=exp.name if progress else None
    )
    wall = time.perf_counter() - start
    tally = Tally.of(results)
    fresh_outputs(folder)  # the earlier summary goes first: the folder never mixes two runs' files
    atomic_write(folder / "experiment.yaml", dump_yaml(to_plain(exp)))
    write_scenario(folder, base)
    runs = write_outputs(folder, exp, base, results, store)
    runs.lever_warnings = exp.levers_in_play(base, design_fields(exp), str(path))
    columns = dict(output_columns(exp, base))
    described = dictionary(design_keys(exp), columns, base, exp.seeds)
    atomic_write(folder / "columns.csv", dictionary_csv(folder, ["runs.csv", "timeseries.parquet"], described))
    missing = {name: int(np.isnan(v).sum()) + len(tally.failed) for name, v in runs.outcomes.items()}
    write_report(folder, exp, base, runs, columns, missing)
    write_json(
        folder / "provenance.json",
        provenance(
            seeds=sorted({s.seed for s in specs}),
            wall_time_s=wall,
            scenario_file=str(Path(path).parent / exp.scenario),
            extra={
                "experiment_file": str(path),
                "experiment": to_plain(exp),
                "design_points": len(points),
                "master_seed": exp.seed,
                "seed_rule": "numpy SeedSequence(seed).spawn(...); "
                + (
                    "replicate r of every point uses seed r"
                    if exp.seeds == "common"
                    else "one seed per run, point-major"
                ),
                "runs": tally.as_dict(),
                **({"posterior_draws": draws} if draws is not None else {}),
                "commits_of_runs": store.commits(r.key for r in results),
                "storage": "runs/<key>.npz and timeseries.parquet: float64, as simulated",
                **(provenance_extra or {}),
            },
        ),
    )
    return folder, tally
