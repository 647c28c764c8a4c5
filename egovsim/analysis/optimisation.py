"""Model-agnostic multi-objective search (NSGA-II, from pymoo) and robustness statistics over draws.

The layer knows nothing about the simulator::

    problem = Problem(("a", "b"), lower=(0, 0), upper=(1, 1), senses=("max", "min"), constraints=1)
    front = search(problem, evaluate, population=16, generations=10, seed=1)
    # evaluate(X) -> (F, G): X (n, d) candidates; F (n, k) objectives in their own units and sense;
    #                G (n, constraints), a candidate feasible where every G <= 0
    front.X, front.F                     # the non-dominated feasible candidates found

`evaluate` receives a whole generation at once, so a caller can run its candidates in parallel. `robust`
turns values over draws (candidates, draws) into one number per candidate: the mean, a percentile, or the share
of draws that meet a target.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Front", "Problem", "generational_distance", "non_dominated", "robust", "search"]

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Problem:
    """Decision variables (names, bounds), the sense of each objective and how many constraints G <= 0."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    senses: tuple[str, ...]
    constraints: int = 0

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.lower) == len(self.upper)) or not self.names:
            raise ValueError("names, lower and upper must have one entry per variable")
        if any(not lo < hi for lo, hi in zip(self.lower, self.upper)):
            raise ValueError(f"bounds need lower < upper: {list(zip(self.lower, self.upper))}")
        if len(self.senses) < 2 or any(s not in ("min", "max") for s in self.senses):
            raise ValueError(f"two or more objectives, each 'min' or 'max', got {self.senses}")

    def signs(self) -> np.ndarray:
        """+1 for a minimised objective, -1 for a maximised one (pymoo minimises)."""
        return np.array([1.0 if s == "min" else -1.0 for s in self.senses])


@dataclass
class Front:
    """The non-dominated feasible candidates: X (n, d), F (n, k) in the objectives' own sense, G (n, m); and
    every candidate evaluated, in order (for plots of the search)."""

    X: np.ndarray
    F: np.ndarray
    G: np.ndarray
    all_X: np.ndarray
    all_F: np.ndarray
    all_G: np.ndarray


def search(problem: Problem, evaluate: Evaluate, *, population: int, generations: int, seed: int) -> Front:
    """NSGA-II over `problem` for `generations` generations of `population` candidates. Same seed and the
    same evaluate give the same front."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.optimize import minimize

    signs = problem.signs()
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    class Wrapped(PymooProblem):
        def __init__(self):
            super().__init__(
                n_var=len(problem.names),
                n_obj=len(problem.senses),
                n_ieq_constr=problem.constraints + 1,
                xl=np.array(problem.lower, dtype=float),
                xu=np.array(problem.upper, dtype=float),
            )

        def _evaluate(self, x, out, *args, **kwargs):
            F, G = _checked(evaluate, np.asarray(x, dtype=float), problem)
            seen.append((np.array(x, dtype=float), F, G))
            out["F"] = F * signs
            out["G"] = G

    algorithm = NSGA2(pop_size=population, eliminate_duplicates=True)
    minimize(Wrapped(), algorithm, ("n_gen", generations), seed=int(seed) % 2**32, verbose=False)
    all_X = np.concatenate([s[0] for s in seen])
    all_F = np.concatenate([s[1] for s in seen])
    all_G = np.concatenate([s[2] for s in seen])
    # the front of everything evaluated, not only of the last population: a good candidate found early stays
    feasible = np.flatnonzero((all_G <= 0).all(axis=1))
    keep = feasible[non_dominated(all_F[feasible], problem.senses)]
    keep = np.sort(keep[np.unique(all_X[keep], axis=0, return_index=True)[1]])
    G = all_G[:, : problem.constraints]  # the caller's constraints
    return Front(all_X[keep], all_F[keep], G[keep], all_X, all_F, G)


def _checked(evaluate: Evaluate, X: np.ndarray, problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """F and G, with one more constraint: a candidate whose objectives cannot be computed (its runs failed)
    violates it, so it is ranked below every feasible one and is never a false optimum (its F is set to 0:
    pymoo's crowding distances cannot take nan or inf). An infinite objective (a time to a level some draws never
    reach) is not a failure: it is ranked beyond every finite value."""
    F, G = evaluate(X)
    F = np.asarray(F, dtype=float).reshape(len(X), len(problem.senses))
    G = np.asarray(G, dtype=float).reshape(len(X), problem.constraints)
    bad = np.isnan(F).any(axis=1) | ~np.isfinite(G).all(axis=1)
    # an infinite objective (a level some draws never reach) is a score, the worst (or, maximised, the best):
    # ranked at a finite stand-in, since pymoo's crowding distances cannot take inf
    F = np.clip(F, -NEVER, NEVER)
    F = np.where(bad[:, None], 0.0, F)
    G = np.column_stack([np.where(bad[:, None], 1.0, G), np.where(bad, 1.0, -1.0)])
    return F, G


def non_dominated(F: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Indices of the rows of F no other row dominates (at least as good in every objective, better in one)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    signs = np.array([1.0 if s == "min" else -1.0 for s in senses])
    return np.sort(NonDominatedSorting().do(F * signs, only_non_dominated_front=True))


def generational_distance(F: np.ndarray, front: np.ndarray) -> float:
    """Mean distance from each point of F to the nearest point of the true front (pymoo's GD): 0 on it."""
    from pymoo.indicators.gd import GD

    return float(GD(np.asarray(front, dtype=float))(np.asarray(F, dtype=float)))


PERCENTILE = re.compile(r"^p(\d{1,3})$")
NEVER = 1e300  # inf's stand-in in pymoo's objectives: far beyond any outcome (years, shares, bn VND)


def robust(values: np.ndarray, statistic: str, meets: np.ndarray | None = None) -> np.ndarray:
    """One number per candidate from its values over draws (candidates, draws), ignoring failed draws (nan;
    inf, a level never reached, counts: a mean or high percentile of it is inf):
    `mean`; `pNN`, the NN-th percentile, interpolated between draws (p20 of an outcome to maximise: about what
    80% of draws reach; it can lie a little below a level exactly 80% of draws reach);
    `share`, the share of draws where `meets` (candidates, draws, bool) is true."""
    values = np.asarray(values, dtype=float)
    if statistic == "share":
        if meets is None:
            raise ValueError("statistic 'share' needs `meets`")
        ok = ~np.isnan(values)  # a failed draw; inf (a level never reached) is a result
        with np.errstate(invalid="ignore"):
            return np.where(ok, meets, False).sum(axis=1) / ok.sum(axis=1)
    if statistic == "mean":
        with np.errstate(invalid="ignore"):
            return np.nanmean(values, axis=1)
    m = PERCENTILE.match(statistic)
    if not m or int(m[1]) > 100:
        raise ValueError(f"unknown statistic {statistic!r}: mean, share or p0-p100")
    # numpy interpolates between the two draws either side of the rank (n - 1) q / 100. A rank beyond the last
    # finite draw takes weight from an inf (a level never reached): the percentile is inf (compared exactly, in
    # whole numbers). Below it only finite draws count, but numpy's rounding can give the next draw a weight of
    # 1e-15, so an inf stands in as the largest finite draw there, which moves the result by nothing visible.
    q = int(m[1])
    counted = (~np.isnan(values)).sum(axis=1)
    last_finite = np.isfinite(values).sum(axis=1) - 1
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no finite draw: its max is nan, masked below
        largest = np.nanmax(np.where(np.isfinite(values), values, np.nan), axis=1)
        found = np.nanpercentile(np.where(np.isposinf(values), largest[:, None], values), q, axis=1)
    found = np.where((counted - 1) * q > last_finite * 100, np.inf, found)
    return np.where(counted == 0, np.nan, found)
