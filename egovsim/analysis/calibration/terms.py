"""Loss terms and the objective.

    targets + observations -> Terms (one per observed number, ordering or pattern)
    parameter vectors -> RunSpecs -> run_many (stored, failure-isolated) -> quantities -> loss terms -> loss

Each term is a likelihood, so the loss is -2 log likelihood (up to a constant) and the same terms serve the point
estimate (differential evolution) and the posterior (smc.py, or pyabc's ABC-SMC). Every observation is read as the simulated
quantity plus a normal error whose sd is the term's total sd: the source's own uncertainty (sampling, rounding)
and a stated model discrepancy (the model's quantity is built like, not identical to, the published one),
combined as sqrt(sd^2 + discrepancy^2). Each term of the loss is visible in the outputs:
- value:    z^2 with z = (simulated - observed) / sd; met when |z| <= 2;
- range:    -2 log P(observed lies in [low, high]) relative to its best, P = Phi((high - x)/sd) - Phi((low - x)/sd);
            met when inside;
- at_least: -2 log Phi((simulated - threshold) / sd): the chance that the observed ordering or pattern is seen
            (a probit); met when simulated >= threshold. An ordering of ranks becomes one at_least term per
            consecutive pair of provinces (index of the better-ranked minus index of the next >= 0): ranks are
            never turned into values.

Every parameter vector is evaluated by the experiment runner: replicate r of every vector runs with the r-th
seed (common random numbers), each run is saved in the store the moment it finishes (a rerun of the same
fit reuses it), and a run that fails gives nan for its quantities (the replicate mean is taken over the runs
that finished; a vector with no finished run scores an infinite loss) while the fit goes on.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from egovsim.analysis.calibration.config import DERIVED, CalibrationConfig, Target, read_observations
from egovsim.config.analysis import NATIONAL, OutcomeStat, evaluate, measuring_scenario, refuse_overlaps
from egovsim.config.scenario import (
    Scenario,
    apply_values,
    check_real_parameter,
    expand_wildcards,
    scenario_from_dict,
    with_values,
)
from egovsim.errors import InputError, clipped
from egovsim.runner.runner import RunResult, RunSpec, Store, replicate_seeds, run_many, run_one


@dataclass
class Term:
    target: str
    label: str  # e.g. "hue 2017"
    kind: str  # value | range | at_least
    plus: OutcomeStat  # stat "at" a year, of one province or national
    minus: OutcomeStat | None
    year: int
    sd: float
    weight: float
    scale: float = 1.0
    observed: float | None = None
    low: float = -math.inf
    high: float = math.inf
    source: str = ""

    @property
    def bound(self) -> bool:
        """An at_least term on one quantity (scale x value >= low): a bound, read in the quantity's own units."""
        return self.kind == "at_least" and self.minus is None and self.scale != 0

    def condition(self) -> str:
        """What an at_least term asks, as a reader reads it: a bound in the quantity's own units ('<= 0.525' for
        -S >= -0.525), or an ordering's or pattern's margin ('>= 0')."""
        if self.bound:
            return f"{'>=' if self.scale > 0 else '<='} {self.low / self.scale:g}"
        return f">= {self.low:g}"

    def score(self, simulated: float) -> tuple[float, bool]:
        """(loss, met) for a simulated value: the term's weight x its misfit, what it adds to a fit's loss."""
        loss, met = self.misfit(simulated)
        return (self.weight * loss if math.isfinite(loss) else loss), met

    def misfit(self, simulated: float) -> tuple[float, bool]:
        """(loss, met) at weight 1: -2 log likelihood relative to its highest value, also for a check (weight 0),
        which adds nothing to a fit but is judged on the same scale."""
        if not math.isfinite(simulated):
            return math.inf, False
        if self.kind == "value":
            z = (simulated - self.observed) / self.sd
            return z * z, abs(z) <= 2
        if self.kind == "range":
            best = _log_inside(0.0, (self.high - self.low) / 2, self.sd)
            centre = (self.low + self.high) / 2
            loss = -2.0 * (_log_inside(simulated - centre, (self.high - self.low) / 2, self.sd) - best)
            return loss, self.low <= simulated <= self.high
        margin = simulated - self.low
        return -2.0 * float(log_ndtr(margin / self.sd)), margin >= 0


def _log_inside(offset: float, half_width: float, sd: float) -> float:
    """log P(offset + e in [-half_width, half_width]) for e ~ N(0, sd^2), stable far outside."""
    a, b = (-half_width - offset) / sd, (half_width - offset) / sd
    if a > 0:  # both tails on the right: P = Phi(-a) - Phi(-b)
        a, b = -b, -a
    # P = Phi(b) - Phi(a) = Phi(b) * (1 - Phi(a) / Phi(b))
    lb, la = float(log_ndtr(b)), float(log_ndtr(a))
    return lb + math.log1p(-math.exp(la - lb)) if la < lb else -math.inf


def _lookup(node: Any, province: str, year: int) -> float | None:
    """The value for a province and year in the node a target's path leads to (_walk): indexed by province and by
    year where the data are keyed so; None where they hold nothing for them."""
    for key in (province, year, str(year)):
        if isinstance(node, dict) and key in node:
            node = node[key]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _observation_entry(obs: dict, ident: str, source: str, field: str) -> dict:
    """The entry `ident`: in the `targets` or `citizen_targets` lists (by id), or under `holdout_validation`
    (the figures after 2019 added for the held-out check, by key)."""
    for section in ("targets", "citizen_targets"):
        for entry in obs.get(section) or []:
            if entry.get("id") == ident:
                return entry
    later = obs.get("holdout_validation")
    if isinstance(later, dict) and isinstance(later.get(ident), dict):
        return later[ident]
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
        # the values the path leads to; a key that leads nowhere is a typo, not missing data
        looked_up = t.type in ("value", "order") and t.observed is None  # range and at_least targets read no data
        node = _walk(entry, t.path, source, f"{where}.path") if looked_up else {}
        if t.type == "order":
            terms += _order_terms(t, node, provinces, src, source, where)
            continue
        before = len(terms)
        for p in t.provinces or provinces:
            for y in t.years:
                plus = at_year(t.outcome, p, y)
                minus = None
                if t.minus:
                    minus = at_year(t.minus, p, y)
                elif t.minus_province:
                    minus = at_year(t.outcome, t.minus_province, y)
                term = Term(t.name, f"{p} {y}", t.type, plus, minus, y, t.total_sd, t.weight, t.scale, source=src)
                if t.type == "value":
                    term.observed = t.observed if t.observed is not None else _lookup(node, p, y)
                    if term.observed is None:
                        continue
                elif t.type == "range":
                    term.low, term.high = t.range
                else:
                    term.low = t.threshold
                terms.append(term)
        if len(terms) == before:  # dropped whole, the fit would go on without it and say nothing
            raise InputError(
                source,
                where,
                f"no observed value for any of its provinces ({', '.join(t.provinces or provinces)}) and years "
                f"({', '.join(map(str, t.years))}) under {t.observation}.{'.'.join(map(str, t.path))}",
            )
    return terms


def _walk(entry: Any, keys: Sequence[Any], source: str, field: str) -> Any:
    """The node `keys` lead to in an observations entry; a key the entry does not have is an error naming it
    (with the keys there are: a year given as text, "2022", where the data are keyed by the number 2022)."""
    node = entry
    for j, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            there = ", ".join(repr(k) for k in node) if isinstance(node, dict) else "none: not a mapping"
            raise InputError(source, f"{field}[{j}]", f"no key {key!r} in the observation (its keys: {there})")
        node = node[key]
    return node


def _order_terms(t: Target, node: Any, provinces: list[str], src: str, source: str, where: str) -> list[Term]:
    """Ranks (1 = best) of the run's provinces, as at_least terms between consecutive ranks."""
    terms = []
    for y in t.years:
        ranks = {p: _lookup(node, p, y) for p in (t.provinces or provinces)}
        ranked = sorted((r, p) for p, r in ranks.items() if r is not None)
        if len(ranked) < 2:
            raise InputError(source, where, f"fewer than two provinces have a rank for {y}")
        for (_, better), (_, worse) in itertools.pairwise(ranked):
            terms.append(
                Term(
                    t.name,
                    f"{better} > {worse} {y}",
                    "at_least",
                    at_year(t.outcome, better, y),
                    at_year(t.outcome, worse, y),
                    y,
                    t.total_sd,
                    t.weight,
                    low=t.threshold,
                    source=src,
                )
            )
    return terms


def at_year(outcome: str, province: str, year: int) -> OutcomeStat:
    """The quantity a term compares: `outcome` (a column or one of DERIVED) of `province` (or `national`, the
    population-weighted mean) at mid-`year`."""
    return OutcomeStat(outcome, stat="at", year=year, province=province)


def quantities(terms: Sequence[Term]) -> list[OutcomeStat]:
    """The distinct quantities the terms compare, in order of first use (keyed on their labels)."""
    seen: dict[str, OutcomeStat] = {}
    for term in terms:
        seen.setdefault(term.plus.label, term.plus)
        if term.minus is not None:
            seen.setdefault(term.minus.label, term.minus)
    return list(seen.values())


def measure_quantities(records: np.ndarray, scenario: Scenario, qs: Sequence[OutcomeStat]) -> np.ndarray:
    """Each quantity from one run's records (steps + 1, provinces, columns)."""
    return np.array([evaluate(q, records, scenario, DERIVED) for q in qs], dtype=float)


def term_values(terms: Sequence[Term], qs: Sequence[OutcomeStat], stats: np.ndarray) -> np.ndarray:
    """Simulated value of each term from quantity statistics (..., n_quantities)."""
    index = {q.label: i for i, q in enumerate(qs)}
    cols = []
    for t in terms:
        v = stats[..., index[t.plus.label]] * t.scale
        if t.minus is not None:
            v = v - stats[..., index[t.minus.label]] * t.scale
        cols.append(v)
    return np.stack(cols, axis=-1)


# ---- the problem: plain data a worker can be handed ----------------------------------------------------------


@dataclass
class FitProblem:
    """What a fit needs besides the search: the base scenario (plain data), the free parameters and their
    bounds, the replicate seeds, the quantities the runs are measured at and the loss terms."""

    scenario: dict
    names: list[str]
    bounds: np.ndarray
    seeds: list[int]
    quantities: list[OutcomeStat]
    terms: list[Term]
    fit_until: int | None = None
    priors: list[tuple[float, float] | None] | None = None  # (mean, sd) of a normal prior, None: uniform

    @property
    def fitted(self) -> list[bool]:
        # a term with weight 0 is a check, shown beside the fit but not part of it
        return [t.weight > 0 and (self.fit_until is None or t.year <= self.fit_until) for t in self.terms]

    def widened(self, variance_factor: float) -> FitProblem:
        """The problem with every term's error variance times `variance_factor` (ABCSettings.temperature)."""
        if variance_factor == 1.0:
            return self
        factor = math.sqrt(variance_factor)
        return dataclasses.replace(self, terms=[dataclasses.replace(t, sd=t.sd * factor) for t in self.terms])

    def values(self, x: Sequence[float]) -> dict[str, float]:
        """The parameter values of a vector, as dotted keys (`provinces.*.` allowed)."""
        return dict(zip(self.names, map(float, x)))

    def scenario_at(self, x: Sequence[float]) -> Scenario:
        return apply_values(scenario_from_dict(self.scenario), self.values(x))

    def losses(self, stats: np.ndarray, weighted: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Loss (times the term's weight unless `weighted` is False: Term.misfit) and met flag of every term, scored
        on the replicate mean (common random numbers) of the statistics of one vector (replicates, n_quantities);
        nan (a failed run) is left out of the mean."""
        values = term_values(self.terms, self.quantities, replicate_mean(stats))
        scored = [(t.score if weighted else t.misfit)(float(v)) for t, v in zip(self.terms, values)]
        return np.array([s[0] for s in scored]), np.array([s[1] for s in scored])

    def total(self, losses: np.ndarray) -> float:
        fitted = np.array(self.fitted)
        return float(losses[fitted].sum())

    def loss(self, stats: np.ndarray) -> float:
        """Total loss of the fitted terms for one vector's statistics."""
        return self.total(self.losses(stats)[0])

    def prior_penalty(self, x: Sequence[float]) -> float:
        """sum of ((x - mean) / sd)^2 over the parameters with a normal prior: -2 log prior + const, on the
        scale of the data terms (each z^2 = -2 log of a normal likelihood + const)."""
        return float(sum(((v - p[0]) / p[1]) ** 2 for v, p in zip(x, self.priors or []) if p is not None))

    def objective(self, stats: np.ndarray, x: Sequence[float]) -> float:
        """What the optimiser minimises: the data loss plus the prior penalty (-2 log posterior + const)."""
        return self.loss(stats) + self.prior_penalty(x)


def replicate_mean(stats: np.ndarray) -> np.ndarray:
    """Mean over replicates (axis -2) of the runs that finished; nan where none did."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": every replicate failed
        return np.nanmean(stats, axis=-2)


def make_problem(config: CalibrationConfig, folder: Path, source: str, fit_until: int | None = None) -> FitProblem:
    base = config.base_scenario(source)
    values: dict[str, Any] = {}
    if config.end_year is not None:
        values["end_year"] = config.end_year
    base = with_values(base, values, source) if values else base  # a bad end_year names the config
    for name, fp in config.parameters.items():  # each free parameter must be a real-valued key of the scenario
        for key in expand_wildcards(base, {name: None}):  # provinces.*.x: the key of every province
            check_real_parameter(base, key, fp.bounds[0], fp.bounds[1], source, f"parameters.{name}")
    # provinces.*.x beside provinces.hue.x: two parameters of one value, the later silently winning every run
    refuse_overlaps(base, {name: f"parameters.{name}" for name in config.parameters}, source)
    observations = read_observations(source, config.observations, folder) if config.observations else {}
    terms = build_terms(config, base, observations, source)
    if not terms:
        raise InputError(source, "targets", "no target has an observed value for this scenario")
    first, last = min(t.year for t in terms), max(t.year for t in terms)
    if last > base.end_year:
        raise InputError(source, "end_year", f"targets reach {last} but the simulation ends in {base.end_year}")
    if first < base.start_year:
        raise InputError(source, "targets", f"a target is dated {first}, before the start ({base.start_year})")
    problem = FitProblem(
        base.to_dict(),
        list(config.parameters),
        np.array([fp.bounds for fp in config.parameters.values()], dtype=float),
        replicate_seeds(config.seed, config.replicates),
        quantities(terms),
        terms,
        fit_until if fit_until is not None else config.fit_until,
        [fp.normal for fp in config.parameters.values()],
    )
    weighed = [t.year for t in terms if t.weight > 0]  # all weight 0 is a prior-only fit, asked for by name
    if weighed and not any(problem.fitted):  # a year before the data: the prior returned as if fitted
        raise InputError(
            source,
            "--fit-until" if fit_until is not None else "fit_until",
            f"{problem.fit_until} is before every fitted target (the first is dated {min(weighed)}): nothing to fit",
        )
    return problem


# ---- evaluating parameter vectors through the runner --------------------------------------------------------


def run_vectors(
    problem: FitProblem,
    xs: Sequence[Sequence[float]],
    executor: Executor,
    *,
    store: Store | None = None,
    run: Callable[..., dict] = run_one,
    base: Scenario | None = None,
    seeds: Sequence[Sequence[int]] | None = None,
) -> tuple[np.ndarray, list[RunResult]]:
    """Every replicate of every vector through `run_many`: statistics (vectors, replicates, n_quantities),
    nan where a run failed, and the runs (vector-major, in the order of `xs`). Replicate r of every vector runs
    with problem.seeds[r] (common random numbers), or with seeds[i][r] for vector i when `seeds` is given (a
    sampler whose particles each have runs of their own)."""
    base = base if base is not None else scenario_from_dict(problem.scenario)
    label = base.name
    seeds = seeds if seeds is not None else [problem.seeds] * len(xs)
    n = len(seeds[0]) if len(xs) else 0
    specs = [
        RunSpec(label, r, int(seed), problem.values(x), point=i)
        for i, x in enumerate(xs)
        for r, seed in enumerate(seeds[i])
    ]
    results = run_many(specs, {label: base}, executor, store=store, run=run)
    stats = np.full((len(xs), n, len(problem.quantities)), np.nan)
    for i, x in enumerate(xs):
        runs = results[i * n : (i + 1) * n]
        if not any(r.ok for r in runs):
            continue
        scenario = measuring_scenario(base, problem.values(x))  # valid: a run with these values finished
        for r, result in enumerate(runs):
            if result.ok:
                stats[i, r] = measure_quantities(result.records, scenario, problem.quantities)
    return stats, results


@dataclass
class Evaluation:
    """The objective on an executor: parameter vectors -> runs (through the runner) -> total loss. It keeps
    count of the runs it asked for, so a fit can say how many ran, were resumed from the store, or failed."""

    problem: FitProblem
    executor: Executor
    store: Store | None = None
    run: Callable[..., dict] = run_one
    seen: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # run key -> (resumed, ok), each run once
    vectors: int = 0  # parameter vectors evaluated (a vector asked for twice counts twice, as scipy's nfev)
    first_error: str | None = None  # the first failed run's error, to name when every run failed

    def __post_init__(self):
        self.base = scenario_from_dict(self.problem.scenario)

    def statistics(self, xs: Sequence[Sequence[float]], seeds: Sequence[Sequence[int]] | None = None) -> np.ndarray:
        """(vectors, replicates, n_quantities); `seeds`: each vector's own run seeds (run_vectors)."""
        stats, results = run_vectors(
            self.problem, xs, self.executor, store=self.store, run=self.run, base=self.base, seeds=seeds
        )
        self._count(results)
        self.vectors += len(xs)
        return stats

    def records(self, x: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """(statistics (replicates, n_quantities), records of the runs that finished) at one vector."""
        stats, results = run_vectors(self.problem, [x], self.executor, store=self.store, run=self.run, base=self.base)
        self._count(results)
        finished = [r.records for r in results if r.ok]
        return stats[0], np.stack(finished) if finished else np.empty((0,))

    def _count(self, results: Sequence[RunResult]) -> None:
        for r in results:
            self.seen.setdefault(r.key, (r.resumed, r.ok))
            if not r.ok and self.first_error is None:
                self.first_error = r.error

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """scipy's vectorized objective: x of shape (parameters, vectors) -> loss of each vector."""
        xs = np.asarray(x).T
        stats = self.statistics(xs)
        return np.array([self.problem.objective(s, v) for s, v in zip(stats, xs)])

    def tally(self) -> dict:
        """Distinct runs this evaluation asked for: run now, resumed from the store, failed."""
        runs = list(self.seen.values())
        return {
            "total": len(runs),
            "run_now": sum(not resumed for resumed, _ in runs),
            "resumed": sum(resumed for resumed, _ in runs),
            "failed": sum(not ok for _, ok in runs),
        }
