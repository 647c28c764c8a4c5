"""Calibration: fit the model's uncertain parameters to the sourced observations, and say how sure we are.

    config file -> CalibrationConfig -> Terms (one per observed number, ordering or pattern)
    parameters x -> replicate runs (common random numbers) -> statistics -> loss terms -> total loss

Two methods share everything but the search: `optimize` (scipy's differential evolution, a point estimate) and
`abc` (pyabc's ABC-SMC, a posterior). Both evaluate parameter vectors through any concurrent.futures executor
(a local process pool or a Dask cluster, as the experiment runner does).

Each term of the loss is visible in the outputs, so a user sees which target is met and which is not:
- value:    ((simulated - observed) / sd)^2, met when within 2 sd;
- range:    (distance outside [low, high] / sd)^2, met when inside;
- at_least: (max(0, threshold - simulated) / sd)^2, met when simulated >= threshold (orderings and patterns).
An ordering of ranks becomes one at_least term per consecutive pair of provinces (index of the better-ranked
minus index of the next >= 0): ranks are never turned into values.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from egovsim.config.scenario import Scenario, check_real_parameter, load_scenario, with_values
from egovsim.config.schema import NAME, build, param
from egovsim.config.yamlfile import dump_yaml, read_yaml, referenced_file
from egovsim.errors import InputError, clipped
from egovsim.files import atomic_write, child, write_json
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL, COLUMNS
from egovsim.provenance import provenance
from egovsim.report.tables import row_of_year

NATIONAL = "national"  # population-weighted mean of the run's provinces, compared with national figures


def _relative_gap(r: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - r[..., COL["rural_adopted_share"]] / r[..., COL["urban_adopted_share"]]


# outcomes computed from the recorded columns (for patterns that no single column states)
DERIVED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "urban_rural_relative_gap": _relative_gap,
    "ethnic_access_gap": lambda r: r[..., COL["majority_access_share"]] - r[..., COL["minority_access_share"]],
    "access_minus_use": lambda r: r[..., COL["access_share"]] - r[..., COL["use_share_12m"]],
    # PAPI's e-governance dimension (since 2018) scores internet access and use of e-government portals
    "access_use_mean": lambda r: (r[..., COL["access_share"]] + r[..., COL["use_share_12m"]]) / 2,
}
OUTCOMES = (*COLUMNS, *DERIVED)


# ---- the configuration file ---------------------------------------------------------------------------------


@dataclass
class FreeParameter:
    bounds: list[float] = param(doc="[low, high]: a uniform prior / search box")
    source: str = param("", doc="where the bounds come from")

    def validate(self, source: str, path: str) -> None:
        if len(self.bounds) != 2 or not self.bounds[0] < self.bounds[1]:
            raise InputError(
                source, f"{path}.bounds", f"expected [low, high] with low < high, got {clipped(self.bounds)}"
            )


@dataclass
class Target:
    name: str = param(text=NAME)
    type: Literal["value", "range", "at_least", "order"] = param()
    outcome: str = param(doc="an outcome column or a derived outcome (calibration.DERIVED)")
    provinces: list[str] = param(list, doc="province ids, or 'national' (population-weighted mean)")
    years: list[int] = param(list)
    year: int | None = param(None, doc="shorthand for years: [year]")
    observation: str = param("", doc="id of an entry in observations.yaml (targets or citizen_targets)")
    path: list[Any] = param(lambda: ["values"], doc="keys into that entry leading to the values")
    observed: float | None = param(None, doc="an observed value given here (synthetic tests)")
    sd: float = param(0.05, lo=0.0, lo_open=True, doc="uncertainty of the observation, in outcome units")
    weight: float = param(1.0, lo=0.0)
    minus: str = param("", doc="at_least: subtract this outcome of the same province")
    minus_province: str = param("", doc="at_least: subtract the same outcome of this province")
    threshold: float = param(0.0)
    range: list[float] = param(list, doc="range: [low, high]")
    scale: float = param(1.0, doc="model outcome x scale is compared (e.g. 10 for a 0-10 index)")
    source: str = param("")

    def validate(self, source: str, path: str) -> None:
        if self.outcome not in OUTCOMES:
            from egovsim.config.schema import suggest

            raise InputError(
                source, f"{path}.outcome", f"unknown outcome {clipped(self.outcome)}" + suggest(self.outcome, OUTCOMES)
            )
        if self.minus and self.minus not in OUTCOMES:
            raise InputError(source, f"{path}.minus", f"unknown outcome {clipped(self.minus)}")
        if self.year is not None:
            self.years = [self.year]
        if not self.years:
            raise InputError(source, f"{path}.years", "give year or years")
        if self.type == "range" and (len(self.range) != 2 or self.range[0] > self.range[1]):
            raise InputError(source, f"{path}.range", "expected [low, high]")
        if self.type in ("value", "order") and not self.observation and self.observed is None:
            raise InputError(source, f"{path}.observation", "a value or order target needs an observation")


@dataclass
class ABCSettings:
    population_size: int = param(60, lo=5, hi=100_000)
    max_populations: int = param(6, lo=1, hi=1000)
    min_epsilon: float = param(1.0, lo=0.0, doc="stop when sqrt(loss) of accepted particles falls below")


@dataclass
class OptimizeSettings:
    popsize: int = param(8, lo=4, hi=1000, doc="population = popsize x number of parameters")
    max_generations: int = param(25, lo=1, hi=100_000)
    tol: float = param(0.01, lo=0.0)


@dataclass
class CalibrationConfig:
    scenario: str = param(doc="base scenario file, relative to this config file")
    parameters: dict[str, FreeParameter] = param()
    targets: list[Target] = param()
    observations: str = param("observations.yaml", doc="relative to this config file")
    scale: float | None = param(None, lo=0.0, lo_open=True, doc="citizens per person while fitting")
    end_year: int | None = param(None, doc="last simulated year while fitting (the data end in 2024)")
    replicates: int = param(3, lo=1, hi=1000, doc="runs per parameter vector, common random numbers")
    seed: int = param(2024, lo=0)
    fit_until: int | None = param(None, doc="only targets up to this year enter the loss (out-of-sample test)")
    optimize: OptimizeSettings = param(OptimizeSettings)
    abc: ABCSettings = param(ABCSettings)

    def validate(self, source: str, path: str) -> None:
        if not self.parameters:
            raise InputError(source, "parameters", "at least one free parameter is required")
        if not self.targets:
            raise InputError(source, "targets", "at least one target is required")


# ---- terms: one scalar statistic and how it is scored ----------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    outcome: str
    province: str
    year: int


@dataclass
class Term:
    target: str
    label: str  # e.g. "hue 2017"
    kind: str  # value | range | at_least
    plus: Quantity
    minus: Quantity | None
    year: int
    sd: float
    weight: float
    scale: float = 1.0
    observed: float | None = None
    low: float = -math.inf
    high: float = math.inf
    source: str = ""

    def score(self, simulated: float) -> tuple[float, bool]:
        """(loss, met) for a simulated value."""
        if not math.isfinite(simulated):
            return math.inf, False
        if self.kind == "value":
            z = (simulated - self.observed) / self.sd
            return self.weight * z * z, abs(z) <= 2
        if self.kind == "range":
            outside = max(self.low - simulated, 0.0, simulated - self.high)
            z = outside / self.sd  # z * z, not z ** 2: a huge z gives an infinite loss, not OverflowError
            return self.weight * z * z, outside == 0
        short = max(0.0, self.low - simulated)
        z = short / self.sd
        return self.weight * z * z, short == 0


def load_config(path: str | Path) -> tuple[CalibrationConfig, Path]:
    path = Path(path)
    return build(CalibrationConfig, read_yaml(path), str(path)), path.parent


def read_observations(source: str, name: str, folder: Path) -> dict:
    """The observations file a calibration config names: a mapping whose `targets` and `citizen_targets`
    are lists of mappings (entries with an id)."""
    path = referenced_file(source, "observations", name, folder)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(str(path), "(top level)", f"expected a mapping of observations, got {type(data).__name__}")
    for section in ("targets", "citizen_targets"):
        entries = data.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InputError(str(path), section, "expected a list of mappings (entries with an id)")
    return data


def _lookup(entry: Any, keys: Sequence[Any], province: str, year: int) -> float | None:
    """Walk `keys` into an observations entry, then index by province and by year where the data are keyed so."""
    node = entry
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    for key in (province, year, str(year)):
        if isinstance(node, dict) and key in node:
            node = node[key]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _observation_entry(obs: dict, ident: str, source: str, field: str) -> dict:
    for section in ("targets", "citizen_targets"):
        for entry in obs.get(section) or []:
            if entry.get("id") == ident:
                return entry
    raise InputError(source, field, f"no observation with id {clipped(ident)} in the observations file")


def build_terms(config: CalibrationConfig, scenario: Scenario, observations: dict, source: str) -> list[Term]:
    """Turn targets into terms; a province or year the observations leave empty gets no term (never a guess)."""
    provinces = list(scenario.provinces)
    terms: list[Term] = []
    for i, t in enumerate(config.targets):
        where = f"targets[{i}]"
        entry = _observation_entry(observations, t.observation, source, f"{where}.observation") if t.observation else {}
        src = t.source or entry.get("source", "")
        for p in t.provinces or provinces:
            if p != NATIONAL and p not in provinces:
                raise InputError(source, f"{where}.provinces", f"{clipped(p)} is not a province of {scenario.name}")
        if t.minus_province and t.minus_province not in (*provinces, NATIONAL):
            raise InputError(
                source, f"{where}.minus_province", f"{clipped(t.minus_province)} is not a province of {scenario.name}"
            )
        if t.type == "order":
            terms += _order_terms(t, entry, provinces, src, source, where)
            continue
        for p in t.provinces or provinces:
            for y in t.years:
                plus = Quantity(t.outcome, p, y)
                minus = None
                if t.minus:
                    minus = Quantity(t.minus, p, y)
                elif t.minus_province:
                    minus = Quantity(t.outcome, t.minus_province, y)
                term = Term(t.name, f"{p} {y}", t.type, plus, minus, y, t.sd, t.weight, t.scale, source=src)
                if t.type == "value":
                    term.observed = t.observed if t.observed is not None else _lookup(entry, t.path, p, y)
                    if term.observed is None:
                        continue
                elif t.type == "range":
                    term.low, term.high = t.range
                else:
                    term.low = t.threshold
                terms.append(term)
    if not terms:
        raise InputError(source, "targets", "no target has an observed value for this scenario")
    return terms


def _order_terms(t: Target, entry: dict, provinces: list[str], src: str, source: str, where: str) -> list[Term]:
    """Ranks (1 = best) of the run's provinces, as at_least terms between consecutive ranks."""
    terms = []
    for y in t.years:
        ranks = {p: _lookup(entry, t.path, p, y) for p in (t.provinces or provinces)}
        ranked = sorted((r, p) for p, r in ranks.items() if r is not None)
        if len(ranked) < 2:
            raise InputError(source, where, f"fewer than two provinces have a rank for {y}")
        for (_, better), (_, worse) in itertools.pairwise(ranked):
            terms.append(
                Term(
                    t.name,
                    f"{better} > {worse} {y}",
                    "at_least",
                    Quantity(t.outcome, better, y),
                    Quantity(t.outcome, worse, y),
                    y,
                    t.sd,
                    t.weight,
                    low=t.threshold,
                    source=src,
                )
            )
    return terms


def quantities(terms: Sequence[Term]) -> list[Quantity]:
    seen: dict[Quantity, None] = {}
    for term in terms:
        seen[term.plus] = None
        if term.minus is not None:
            seen[term.minus] = None
    return list(seen)


def measure_quantities(records: np.ndarray, scenario: Scenario, qs: Sequence[Quantity]) -> np.ndarray:
    """Each quantity from one run's records (steps + 1, provinces, columns)."""
    provinces = list(scenario.provinces)
    weights = np.array([p.population for p in scenario.provinces.values()], dtype=float)
    out = np.empty(len(qs))
    for i, q in enumerate(qs):
        row = records[row_of_year(scenario, records.shape[0], q.year)]
        values = DERIVED[q.outcome](row) if q.outcome in DERIVED else row[:, COL[q.outcome]]
        out[i] = np.average(values, weights=weights) if q.province == NATIONAL else values[provinces.index(q.province)]
    return out


def term_values(terms: Sequence[Term], qs: Sequence[Quantity], stats: np.ndarray) -> np.ndarray:
    """Simulated value of each term from quantity statistics (..., n_quantities)."""
    index = {q: i for i, q in enumerate(qs)}
    cols = []
    for t in terms:
        v = stats[..., index[t.plus]] * t.scale
        if t.minus is not None:
            v = v - stats[..., index[t.minus]] * t.scale
        cols.append(v)
    return np.stack(cols, axis=-1)


# ---- evaluating a parameter vector -------------------------------------------------------------------------


@dataclass
class Problem:
    """Everything a worker needs to evaluate parameter vectors: plain, picklable data."""

    scenario: dict
    names: list[str]
    bounds: np.ndarray
    seeds: list[int]
    quantities: list[Quantity]
    terms: list[Term]
    fit_until: int | None = None

    @property
    def fitted(self) -> list[bool]:
        return [self.fit_until is None or t.year <= self.fit_until for t in self.terms]

    def scenario_at(self, x: Sequence[float]) -> Scenario:
        from egovsim.config.scenario import scenario_from_dict

        return with_values(scenario_from_dict(self.scenario), dict(zip(self.names, map(float, x))))

    def statistics(self, x: Sequence[float]) -> np.ndarray:
        """Quantities of each replicate: (replicates, n_quantities); nan where a run failed."""
        sc = self.scenario_at(x)
        out = np.full((len(self.seeds), len(self.quantities)), np.nan)
        for r, seed in enumerate(self.seeds):
            out[r] = measure_quantities(simulate(sc, seed), sc, self.quantities)
        return out

    def losses(self, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss and met flag of every term, scored on the replicate mean (common random numbers)."""
        values = term_values(self.terms, self.quantities, np.nanmean(stats, axis=0))
        scored = [t.score(float(v)) for t, v in zip(self.terms, values)]
        return np.array([s[0] for s in scored]), np.array([s[1] for s in scored])

    def total(self, losses: np.ndarray) -> float:
        fitted = np.array(self.fitted)
        return float(losses[fitted].sum())

    def __call__(self, x: Sequence[float]) -> float:
        """The objective: total loss of the fitted terms."""
        return self.total(self.losses(self.statistics(x))[0])


def make_problem(config: CalibrationConfig, folder: Path, source: str, fit_until: int | None = None) -> Problem:
    from egovsim.runner.runner import replicate_seeds

    base = load_scenario(referenced_file(source, "scenario", config.scenario, folder), scale=config.scale)
    values: dict[str, Any] = {}
    if config.end_year is not None:
        values["end_year"] = config.end_year
    base = with_values(base, values) if values else base
    for name, fp in config.parameters.items():  # each free parameter must be a real-valued key of the scenario
        check_real_parameter(base, name, fp.bounds[0], fp.bounds[1], source, f"parameters.{name}")
    observations = read_observations(source, config.observations, folder) if config.observations else {}
    terms = build_terms(config, base, observations, source)
    first, last = min(t.year for t in terms), max(t.year for t in terms)
    if last > base.end_year:
        raise InputError(source, "end_year", f"targets reach {last} but the simulation ends in {base.end_year}")
    if first < base.start_year:
        raise InputError(source, "targets", f"a target is dated {first}, before the start ({base.start_year})")
    return Problem(
        base.to_dict(),
        list(config.parameters),
        np.array([fp.bounds for fp in config.parameters.values()], dtype=float),
        replicate_seeds(config.seed, config.replicates),
        quantities(terms),
        terms,
        fit_until if fit_until is not None else config.fit_until,
    )


# ---- the two methods -------------------------------------------------------------------------------------------


@dataclass
class Fit:
    method: str
    x: np.ndarray
    loss: float
    evaluations: int
    stopped: str
    posterior: np.ndarray | None = None  # (particles, parameters) for abc
    weights: np.ndarray | None = None


def optimize(
    problem: Problem,
    executor,
    settings: OptimizeSettings,
    *,
    seed: int,
    max_runs: int | None = None,
    max_time: float | None = None,
    checkpoint: Path | None = None,
    progress=None,
) -> Fit:
    """Differential evolution (scipy) over the parameter box, all members of a generation evaluated in
    parallel through `executor.map`. Deterministic for a seed whatever the number of workers (deferred updating
    and common random numbers). Resumes from `checkpoint` when it holds a population of this problem."""
    from scipy.optimize import differential_evolution

    n_pop = settings.popsize * len(problem.names)
    per_generation = n_pop * len(problem.seeds)
    generations = settings.max_generations
    if max_runs is not None:  # the first population costs one generation's runs too
        if max_runs < per_generation:
            raise InputError(
                "--max-runs",
                "",
                f"differential evolution needs at least {per_generation} runs "
                f"(popsize {settings.popsize} x {len(problem.names)} parameters x "
                f"{len(problem.seeds)} replicates) for its first population, got {max_runs}",
            )
        generations = min(generations, max_runs // per_generation - 1)
    init: Any = "latinhypercube"
    done = 0
    saved = read_checkpoint(checkpoint) if checkpoint is not None else None
    if saved is not None:
        same = (
            saved["population"].shape == (n_pop, len(problem.names))
            and list(saved["names"]) == problem.names
            and np.array_equal(saved["bounds"], problem.bounds)
            and int(saved["seed"]) == seed
        )
        if same:  # continue from the saved population (not bit-identical to an uninterrupted fit)
            init, done = saved["population"], int(saved["generation"])
    start = time.monotonic()
    state = {"generation": done, "stopped": "max generations", "evaluations": 0}

    def on_generation(intermediate_result) -> bool:
        state["generation"] += 1
        if checkpoint is not None:
            import io

            buf = io.BytesIO()
            np.savez(
                buf,
                population=intermediate_result.population,
                names=np.array(problem.names),
                generation=state["generation"],
                bounds=problem.bounds,
                seed=seed,
            )
            atomic_write(checkpoint, buf.getvalue())
        if progress is not None:
            progress(state["generation"], float(intermediate_result.fun))
        if max_time is not None and time.monotonic() - start > max_time:
            state["stopped"] = "time budget"
            return True
        return False

    result = differential_evolution(
        problem,
        problem.bounds,
        maxiter=max(0, generations - done),
        popsize=settings.popsize,
        tol=settings.tol,
        rng=np.random.default_rng(seed),
        init=init,
        updating="deferred",
        workers=executor.map,
        polish=False,
        callback=on_generation,
    )
    if result.success and state["stopped"] == "max generations":
        state["stopped"] = "converged"
    return Fit(
        "optimize", np.asarray(result.x), float(result.fun), int(result.nfev) * len(problem.seeds), state["stopped"]
    )


def read_checkpoint(path: Path) -> dict | None:
    """The saved population of an interrupted fit; None when there is none or it cannot be read (said once,
    naming the file: the fit then starts afresh and overwrites it)."""
    keys = ("population", "names", "generation", "bounds", "seed")
    try:
        with np.load(path) as data:
            return {k: data[k] for k in keys}
    except FileNotFoundError:
        return None
    except Exception as exc:  # truncated, empty, not a zip, a key missing
        print(
            f"egovsim: warning: {path}: unreadable checkpoint ({type(exc).__name__}); starting afresh", file=sys.stderr
        )
        return None


class _ABCModel:
    """pyabc model: parameters -> term values (replicate means). Picklable for pyabc's samplers."""

    def __init__(self, problem: Problem):
        self.problem = problem

    def __call__(self, pars: dict) -> dict:
        x = [pars[f"x{i}"] for i in range(len(self.problem.names))]
        values = term_values(
            self.problem.terms, self.problem.quantities, np.nanmean(self.problem.statistics(x), axis=0)
        )
        return {f"t{i}": float(v) for i, v in enumerate(values)}


class _ABCDistance:
    """sqrt of the fitted loss: the distance ABC-SMC shrinks population by population."""

    def __init__(self, problem: Problem):
        self.problem = problem

    def __call__(self, x: dict, x0: dict) -> float:
        losses = np.array([t.score(x[f"t{i}"])[0] for i, t in enumerate(self.problem.terms)])
        return math.sqrt(self.problem.total(losses))


def abc(
    problem: Problem,
    settings: ABCSettings,
    *,
    db: Path,
    sampler,
    seed: int,
    max_runs: int | None = None,
    max_time: float | None = None,
) -> Fit:
    """ABC-SMC (pyabc) with uniform priors on the bounds; history in SQLite at `db` (a rerun continues it)."""
    import datetime

    import pyabc

    np.random.seed(seed % 2**32)  # what pyabc draws in this process (its particle tasks seed their own)
    prior = pyabc.Distribution(
        **{f"x{i}": pyabc.RV("uniform", lo, hi - lo) for i, (lo, hi) in enumerate(problem.bounds)}
    )
    smc = pyabc.ABCSMC(
        _ABCModel(problem), prior, _ABCDistance(problem), population_size=settings.population_size, sampler=sampler
    )
    url = f"sqlite:///{db}"
    try:
        if not db.exists():
            raise FileNotFoundError(db)
        smc.load(url, 1)
    except Exception as exc:  # none, or unreadable: start afresh, keeping a damaged history aside
        if db.exists():
            aside = db.with_name(db.name + ".unreadable")
            print(
                f"egovsim: warning: {db}: unreadable ABC history ({type(exc).__name__}); moved to {aside.name}, "
                "starting afresh",
                file=sys.stderr,
            )
            os.replace(db, aside)
        smc.new(url, {f"t{i}": 0.0 for i in range(len(problem.terms))})
    kwargs: dict[str, Any] = {"minimum_epsilon": settings.min_epsilon, "max_nr_populations": settings.max_populations}
    if max_runs is not None:
        kwargs["max_total_nr_simulations"] = max(settings.population_size, max_runs // len(problem.seeds))
    if max_time is not None:
        kwargs["max_walltime"] = datetime.timedelta(seconds=max_time)
    history = smc.run(**kwargs)
    frame, weights = history.get_distribution()
    samples = frame[[f"x{i}" for i in range(len(problem.names))]].to_numpy()
    weights = np.asarray(weights, dtype=float)
    point = np.array([_weighted_quantile(samples[:, j], weights, 0.5) for j in range(samples.shape[1])])
    evaluations = int(history.total_nr_simulations) * len(problem.seeds)
    return Fit("abc", point, problem(point), evaluations, f"{history.max_t + 1} populations", samples, weights)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(np.interp(q, cum, values[order]))


# ---- reporting ------------------------------------------------------------------------------------------------


def term_table(problem: Problem, stats: np.ndarray) -> list[dict]:
    """One row per term: observed, simulated mean and 90% interval over replicates, loss, met, in/out of fit."""
    per_rep = term_values(problem.terms, problem.quantities, stats)  # (replicates, terms)
    losses, met = problem.losses(stats)
    rows = []
    for j, t in enumerate(problem.terms):
        vals = per_rep[:, j]
        lo, hi = np.nanpercentile(vals, [5, 95]) if np.isfinite(vals).any() else (math.nan, math.nan)
        rows.append(
            {
                "target": t.target,
                "where": t.label,
                "kind": t.kind,
                "year": t.year,
                "observed": t.observed
                if t.kind == "value"
                else (f"[{t.low}, {t.high}]" if t.kind == "range" else f">= {t.low}"),
                "sd": t.sd,
                "simulated_mean": float(np.nanmean(vals)),
                "simulated_p5": float(lo),
                "simulated_p95": float(hi),
                "loss": float(losses[j]),
                "met": bool(met[j]),
                "in_fit": problem.fitted[j],
                "source": t.source,
            }
        )
    return rows


def grouped(names: Sequence[str], x: Sequence[float]) -> dict[str, dict[str, float]]:
    """Parameters by province ('shared' for the rest): provinces.hue.leader.will0 -> {'hue': {'leader.will0': ..}}."""
    out: dict[str, dict[str, float]] = {}
    for name, value in zip(names, x):
        parts = name.split(".")
        group, key = (parts[1], ".".join(parts[2:])) if parts[0] == "provinces" else ("shared", name)
        out.setdefault(group, {})[key] = round(float(value), 6)
    return out


def calibrated_name(name: str) -> str:
    """The name of a calibrated scenario: still a valid name (schema.NAME, at most 64 characters)."""
    return f"{name[:53]}_calibrated"


def calibrated_scenarios(problem: Problem, full: Scenario, x: Sequence[float], header: str) -> dict[str, str]:
    """Self-contained scenario files (every value written out) with the fitted parameters: the full run
    (all provinces) and one per province, at the base scenario's own scale and horizon."""
    values = dict(zip(problem.names, map(float, x)))
    files = {}
    fitted = with_values(full, values)
    files[f"{full.name}.yaml"] = header + dump_yaml({**fitted.to_dict(), "name": calibrated_name(full.name)})
    for key in full.provinces:
        own = {k: v for k, v in values.items() if not k.startswith("provinces.") or k.split(".")[1] == key}
        data = with_values(full, own).to_dict()
        data["provinces"] = {key: data["provinces"][key]}
        data["name"] = calibrated_name(key)
        files[f"{key}.yaml"] = header + dump_yaml(data)
    return files


def write_outputs(
    folder: Path, problem: Problem, fit: Fit, full: Scenario, stats: np.ndarray, install: Path | None = None
) -> dict:
    """fit.json, observed_vs_simulated.csv, posterior.csv (abc) and calibrated/ into `folder`; the calibrated
    scenario files also into `install`, as one set (see install_files)."""
    import csv
    import io

    folder.mkdir(parents=True, exist_ok=True)
    rows = term_table(problem, stats)
    losses = np.array([r["loss"] for r in rows])
    summary = {
        "method": fit.method,
        "stopped": fit.stopped,
        "model_runs": fit.evaluations,
        "loss": problem.total(losses),
        "parameters": dict(zip(problem.names, map(float, fit.x))),
        "by_province": grouped(problem.names, fit.x),
        "targets_met": sum(r["met"] for r in rows if r["in_fit"]),
        "targets_in_fit": sum(r["in_fit"] for r in rows),
        "orderings_met": all(r["met"] for r in rows if r["kind"] == "at_least"),
        "terms": rows,
        "replicates": len(problem.seeds),
        "fit_until": problem.fit_until,
    }
    if fit.posterior is not None:
        summary["posterior"] = {
            name: {
                "median": _weighted_quantile(fit.posterior[:, j], fit.weights, 0.5),
                "p5": _weighted_quantile(fit.posterior[:, j], fit.weights, 0.05),
                "p95": _weighted_quantile(fit.posterior[:, j], fit.weights, 0.95),
            }
            for j, name in enumerate(problem.names)
        }
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([*problem.names, "weight"])
        for sample, weight in zip(fit.posterior, fit.weights):
            w.writerow([*(format(float(v), ".8g") for v in sample), format(float(weight), ".8g")])
        atomic_write(folder / "posterior.csv", buf.getvalue())
    write_json(folder / "fit.json", _jsonable(summary))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(folder / "observed_vs_simulated.csv", buf.getvalue())
    header = (
        f"# Calibrated by `egovsim calibrate` ({fit.method}, {fit.evaluations} model runs, loss "
        f"{summary['loss']:.3f}; {summary['targets_met']}/{summary['targets_in_fit']} fitted targets met).\n"
        f"# Fitted: {', '.join(problem.names)}. Self-contained: every value is written out.\n"
    )
    files = calibrated_scenarios(problem, full, fit.x, header)
    for name, text in files.items():
        atomic_write(child(folder / "calibrated", name), text)
    if install is not None:
        install_files(install, files)
    return summary


def installed_names(full: Scenario) -> set[str]:
    """The names of the calibrated scenario files (calibrated_scenarios): the whole scenario and each province."""
    return {f"{full.name}.yaml", *(f"{key}.yaml" for key in full.provinces)}


def check_install(folder: Path, full: Scenario) -> None:
    """--install DIR is replaced whole by the calibrated files: refuse, before fitting, a folder that holds
    anything else (never delete a user's files)."""
    try:
        other = sorted(p.name for p in Path(folder).iterdir() if p.name not in installed_names(full))
    except (FileNotFoundError, NotADirectoryError):
        return
    if other:
        raise InputError(
            str(folder), "--install", f"holds other files ({other[0]}...): give a folder for the calibrated files only"
        )


def install_files(folder: Path, files: dict[str, str]) -> None:
    """The calibrated scenario files into `folder`, written beside it and swapped in whole: it never holds
    some files of one fit and some of another, even if the command is killed while installing."""
    from egovsim.folders import replaced

    with replaced(folder) as new:
        for name, text in files.items():
            atomic_write(new / name, text)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return _jsonable(obj.item())
    return obj


# ---- the command ------------------------------------------------------------------------------------------------


def run_command(args) -> int:
    """`egovsim calibrate CONFIG --method optimize|abc`: fit, then write the output folder."""
    from egovsim.folders import claimed, new_folder

    source = str(args.config)
    config, folder = load_config(args.config)
    problem = make_problem(config, folder, source, fit_until=args.fit_until)
    full = load_scenario(folder / config.scenario)
    if args.install:
        check_install(Path(args.install), full)
    out = Path(args.out) if args.out else new_folder(f"calibration-{args.method}")
    with claimed(out):
        return _calibrate(args, config, problem, full, out)


def _calibrate(args, config: CalibrationConfig, problem: Problem, full: Scenario, out: Path) -> int:
    from egovsim.folders import fresh_outputs
    from egovsim.report.plots import fit_trajectories, posterior_marginals
    from egovsim.runner.runner import make_executor

    source = str(args.config)
    start = time.perf_counter()
    if args.method == "optimize":
        with (
            make_executor(args.workers, args.executor, args.scheduler) as executor,
            _generation_bar(config.optimize.max_generations, args.quiet) as bar,
        ):
            fit = optimize(
                problem,
                executor,
                config.optimize,
                seed=config.seed,
                max_runs=args.max_runs,
                max_time=args.max_time,
                checkpoint=out / "checkpoint.npz",
                progress=bar,
            )
    else:
        if not args.quiet:  # pyabc reports each population (epsilon, acceptance) through logging
            import logging

            logging.basicConfig(format="%(name)s: %(message)s", stream=sys.stderr)
            logging.getLogger("ABC").setLevel(logging.INFO)
        with make_executor(args.workers, args.executor, args.scheduler) as executor:
            fit = abc(
                problem,
                config.abc,
                db=out / "abc.db",
                sampler=seeded_sampler(executor, config.seed),
                seed=config.seed,
                max_runs=args.max_runs,
                max_time=args.max_time,
            )
    scenario = problem.scenario_at(fit.x)
    records = np.stack([simulate(scenario, s) for s in problem.seeds])
    stats = np.stack([measure_quantities(r, scenario, problem.quantities) for r in records])
    prov = provenance(
        seeds=problem.seeds,
        wall_time_s=time.perf_counter() - start,
        scenario_file=source,
        command=getattr(args, "command_line", None),
        extra={
            "method": args.method,
            "config": read_yaml(Path(args.config)),
            "max_runs": args.max_runs,
            "max_time": args.max_time,
        },
    )
    install = Path(args.install) if args.install else None
    fresh_outputs(out)  # the earlier fit's files go first: the folder never mixes two fits
    summary = write_outputs(out, problem, fit, full, stats, install)
    fit_trajectories(scenario, records, summary["terms"], out / "plots" / "fit.png")
    if fit.posterior is not None:
        posterior_marginals(problem.names, fit.posterior, fit.weights, problem.bounds, out / "plots" / "posterior.png")
    write_json(out / "provenance.json", prov)  # last: it marks the folder's files as one whole set
    if not args.quiet:
        _print_terms(summary)
    print(out)
    return 0


def seeded_sampler(executor, seed: int):
    """A pyabc sampler that runs through one of the experiment runner's executors (process pool, Dask,
    serial) and gives the same posterior for a seed whatever the number of workers.

    It is pyabc's MappingSampler (one task per accepted particle, results kept in task order) with one
    change: task i of population t seeds numpy and `random` from SeedSequence([seed, t + 1]).spawn(n)[i],
    where pyabc reseeds from the OS. (pyabc's other parallel samplers hand out particles first-come
    first-served, so their posteriors depend on timing.)"""
    from pyabc.sampler import MappingSampler

    class SeededMappingSampler(MappingSampler):
        def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False, ana_vars=None):
            task = functools.partial(seeded_particle, self.sample_factory, self.pickle(simulate_one))
            # t = -1 is pyabc's calibration sample (it sets the first epsilon)
            seeds = [s.generate_state(4) for s in np.random.SeedSequence([seed, t + 1]).spawn(n)]
            results = list(self.map_(task, seeds))  # a task that raises stops the fit with its error
            self.nr_evaluations_ = sum(evaluations for _, evaluations in results)
            sample = self._create_empty_sample()
            for particles, _ in results:
                sample += particles
            return sample

    return SeededMappingSampler(map_=executor.map)


# pyabc's simulate_one draws from numpy's and `random`'s process-wide generators: a worker with several
# threads (a Dask worker started with --nthreads > 1) runs its particle tasks one at a time, or their draws
# would interleave by timing
_GLOBAL_RANDOM = threading.Lock()


def seeded_particle(sample_factory, simulate_one: bytes, seed: np.ndarray):
    """Simulate from one seed until a particle is accepted: (the sample, model evaluations). A module-level
    function so that process pools and Dask can ship it; the caller's global random state is restored."""
    import random

    import cloudpickle

    simulate_one = cloudpickle.loads(simulate_one)
    with _GLOBAL_RANDOM:
        saved = np.random.get_state(), random.getstate()
        np.random.seed(seed)
        random.seed(int.from_bytes(seed.tobytes(), "little"))
        try:
            sample, evaluations = sample_factory(), 0
            while True:
                particle = simulate_one()
                evaluations += 1
                sample.append(particle)
                if particle.accepted:
                    return sample, evaluations
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])


class _generation_bar:
    def __init__(self, total: int, quiet: bool):
        import sys

        from tqdm import tqdm

        self.bar = tqdm(
            total=total, desc="differential evolution", unit="generation", disable=quiet, file=sys.stderr, leave=False
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def __call__(self, generation: int, best: float) -> None:
        self.bar.n = generation
        self.bar.set_postfix(best_loss=f"{best:.3g}")


def _print_terms(summary: dict) -> None:
    import sys

    print(
        f"loss {summary['loss']:.3f}; {summary['targets_met']}/{summary['targets_in_fit']} fitted targets met; "
        f"{summary['model_runs']} model runs ({summary['stopped']})",
        file=sys.stderr,
    )
    for r in summary["terms"]:
        obs = r["observed"] if isinstance(r["observed"], str) else f"{r['observed']:.4g}"
        flag = "met" if r["met"] else "NOT met"
        fitted = "" if r["in_fit"] else " (out of sample)"
        print(
            f"  {r['target']:<28} {r['where']:<22} observed {obs:<12} simulated {r['simulated_mean']:.4g} "
            f"[{r['simulated_p5']:.3g}, {r['simulated_p95']:.3g}]  {flag}{fitted}",
            file=sys.stderr,
        )
