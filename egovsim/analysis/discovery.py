"""Model-agnostic scenario discovery: where in the space of inputs does a case of interest hold?

PRIM (the patient rule induction method, Friedman & Fisher 1999, as used for scenario discovery by Bryant &
Lempert 2010) from EMA Workbench, and CART as EMA Workbench fits it (scikit-learn's tree); this module only
chooses a box and says it plainly::

    found = find_boxes(X, y, names)       # X: (n, d) inputs, y: (n,) bool, the case holds
    found.box.limits                      # {"x1": (0.70, 1.0), ...}: the restricted inputs only
    found.trajectory                      # the peeling trajectory: coverage, density, mass, res_dim per step

coverage: the share of all cases of interest that lie in the box; density: the share of the box's points that
are cases of interest; mass: the share of all points in the box. The chosen box is the one of widest coverage
among those of density at least `min_density` (the densest, if none is that dense).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Box", "Discovery", "chosen_in_words", "find_boxes", "in_box", "limits_in_words"]


@dataclass(frozen=True)
class Box:
    """A box on the peeling trajectory: limits of the restricted inputs (low, high), their quasi-p values
    (one-sided binomial tests that the limit matters, Bryant & Lempert 2010; nan on a side left open), and
    its coverage, density and mass."""

    index: int
    limits: dict[str, tuple[float, float]]
    qp: dict[str, tuple[float, float]]
    coverage: float
    density: float
    mass: float


@dataclass
class Discovery:
    """What find_boxes found: the inputs' ranges over the sample, the peeling trajectory, the chosen box, how
    often each input is restricted again on half samples (percent), and the CART tree's leaves and text."""

    names: list[str]
    ranges: dict[str, tuple[float, float]]
    trajectory: list[dict]
    box: Box | None
    stability: dict[str, float] = field(default_factory=dict)
    leaves: list[dict] = field(default_factory=list)
    tree: str = ""
    cases: int = 0
    samples: int = 0


def _ema():
    """EMA Workbench's PRIM (imported here: the package takes seconds to import, and warns about
    optional parallel back ends it does not need for analysis)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim
    logging.getLogger("EMA").setLevel(logging.WARNING)
    return prim


def find_boxes(
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    min_density: float = 0.8,
    peel_alpha: float = 0.05,
    mass_min: float = 0.05,
    resamples: int = 10,
    seed: int = 0,
) -> Discovery:
    """PRIM's first box and a CART tree for the case `y` over the inputs `X` (columns named by `names`).

    Same X, y and seed give the same result (CART's ties and the half samples of the stability check are
    drawn from `seed`)."""

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=bool)
    if X.ndim != 2 or X.shape[1] != len(names) or y.shape != (X.shape[0],):
        raise ValueError(f"X has shape {X.shape} and y {y.shape}; expected (n, {len(names)}) and (n,)")
    if not np.isfinite(X).all():
        raise ValueError("X has non-finite values")
    ranges = {n: (float(X[:, i].min()), float(X[:, i].max())) for i, n in enumerate(names)}
    found = Discovery(list(names), ranges, [], None, cases=int(y.sum()), samples=int(y.size))
    if not y.any() or y.all():  # nothing to tell apart
        return found
    with warnings.catch_warnings():
        # EMA Workbench 3.0 calls DataFrame.drop(inplace=True), which pandas 3.1 deprecates: not ours to fix
        warnings.filterwarnings("ignore", message="The inplace keyword")
        return _find(X, y, names, found, min_density, peel_alpha, mass_min, resamples, seed)


def _find(X, y, names, found: Discovery, min_density, peel_alpha, mass_min, resamples, seed) -> Discovery:
    import pandas as pd

    prim = _ema()
    frame = pd.DataFrame(X, columns=list(names))
    result = prim.Prim(frame, y.astype(int), peel_alpha=peel_alpha, mass_min=mass_min).find_box()
    traj = result.peeling_trajectory
    found.trajectory = [
        {k: float(traj[k].iloc[i]) for k in ("coverage", "density", "mass", "res_dim")} | {"id": i}
        for i in range(len(traj))
    ]
    i = choose(found.trajectory, min_density)
    found.box = _box(result, i)
    if resamples:
        found.stability = stability(prim, frame, y, min_density, peel_alpha, mass_min, resamples, seed)
    found.leaves, found.tree = _cart(frame, y, mass_min, seed)
    return found


def choose(trajectory: list[dict], min_density: float) -> int:
    """The box of widest coverage with density >= min_density, the densest of those with equal coverage (peeling
    on while no case is lost only removes points that are not cases: without this, a case with no noise got the
    loosest box above min_density, x1 >= 0.64 for x1 > 0.7); else the densest. The earliest of equals."""
    dense = [t for t in trajectory if t["density"] >= min_density]
    if dense:
        return max(dense, key=lambda t: (t["coverage"], t["density"], -t["id"]))["id"]
    return max(trajectory, key=lambda t: (t["density"], -t["id"]))["id"]


def chosen_in_words(found: Discovery, min_density: float, mass_min: float) -> str:
    """What the chosen box is, in one paragraph: the same words in report.md and on the terminal. Says so when no
    condition is needed (the whole sample is dense enough already) and when no box reaches min_density."""
    box = found.box
    share = found.cases / max(1, found.samples)
    stats = (
        f"it holds {100 * box.coverage:.0f}% of the cases (coverage); {100 * box.density:.0f}% of its points are "
        f"cases (density); it spans {100 * box.mass:.0f}% of the sample"
    )
    if not box.limits and box.density >= min_density:
        return (
            f"No condition is needed: the case holds at {100 * share:.0f}% of all points, at least the density "
            f"asked for ({min_density:g}), so PRIM's chosen box is the whole sample (box {box.index}). Raise "
            f"min_density above {share:.2f} to find where the case holds most."
        )
    if box.density < min_density:
        if box.mass <= 2 * mass_min or share < 2 * mass_min:  # PRIM stopped at its smallest box
            why = (
                f"PRIM peels no further than mass_min ({mass_min:g} of the sample) and the case holds at "
                f"{100 * share:.1f}% of the points; set mass_min below the case's share to peel further"
            )
        else:
            why = (
                "no region of the inputs holds the case that densely (it may turn on inputs that were not varied, "
                "or on chance)"
            )
        return (
            f"No box reaches the density asked for ({min_density:g}): {why}. The densest box is shown (box "
            f"{box.index} of the peeling trajectory): {stats}."
        )
    return (
        f"PRIM's chosen box (box {box.index} of the peeling trajectory: the widest with density >= {min_density:g}, "
        f"the densest of equal coverage): {stats}."
    )


def stability(prim, frame, y: np.ndarray, min_density, peel_alpha, mass_min, resamples: int, seed: int) -> dict:
    """Percent of PRIM runs on random half samples whose chosen box (the same rule, `choose`) restricts each
    input: an input restricted in (nearly) every half sample is a condition, not an accident of the sample.
    (EMA's PrimBox.resample matches boxes by coverage instead, which is degenerate at coverage 1.)"""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(frame.columns, 0)
    for _ in range(resamples):
        rows = np.sort(rng.choice(len(y), size=len(y) // 2, replace=False))
        half, yh = frame.iloc[rows].reset_index(drop=True), y[rows]
        if not yh.any() or yh.all():
            continue
        result = prim.Prim(half, yh.astype(int), peel_alpha=peel_alpha, mass_min=mass_min).find_box()
        traj = result.peeling_trajectory
        rows_ = [
            {"id": j, "coverage": traj["coverage"].iloc[j], "density": traj["density"].iloc[j]}
            for j in range(len(traj))
        ]
        for name in _box(result, choose(rows_, min_density)).limits:
            counts[name] += 1
    return {str(k): 100.0 * v / resamples for k, v in counts.items()}


def _box(result, i: int) -> Box:
    stats, lims = result.inspect(i, style="data")[0]
    limits, qp = {}, {}
    for name in lims.index:
        row = lims.loc[name].to_numpy(dtype=float)
        limits[str(name)] = (float(row[0]), float(row[1]))
        qp[str(name)] = (_nan(row[2]), _nan(row[3]))
    return Box(i, limits, qp, float(stats["coverage"]), float(stats["density"]), float(stats["mass"]))


def _nan(x: float) -> float:
    return math.nan if x is None or x < 0 else float(x)


def _cart(frame, y: np.ndarray, mass_min: float, seed: int) -> tuple[list[dict], str]:
    """CART's leaves (limits, coverage, density, mass) and the tree as text: sklearn's tree, fitted as EMA
    Workbench's CART.build_tree fits it (leaves of at least mass_min of the sample) with a seed (sklearn breaks
    ties between splits at random). The leaves are read from the tree here: EMA's CART.boxes fails on a tree of
    one input (it looks up a name for the leaves' feature -2)."""
    from sklearn.tree import DecisionTreeClassifier, export_text

    clf = DecisionTreeClassifier(min_samples_leaf=max(1, int(mass_min * len(y))), random_state=seed)
    clf.fit(frame.to_numpy(dtype=float), y)
    tree, names = clf.tree_, list(frame.columns)
    at_leaf = clf.apply(frame.to_numpy(dtype=float))
    leaves = []

    def walk(node: int, limits: dict[str, tuple[float, float]]) -> None:
        if tree.children_left[node] == tree.children_right[node]:  # a leaf
            inside = at_leaf == node
            cases = int(y[inside].sum())
            leaves.append(
                {
                    "limits": limits,
                    "coverage": cases / max(1, int(y.sum())),
                    "density": cases / max(1, int(inside.sum())),
                    "mass": float(inside.mean()),
                }
            )
            return
        name, t = names[tree.feature[node]], float(tree.threshold[node])
        lo, hi = limits.get(name, (float(frame[name].min()), float(frame[name].max())))
        walk(tree.children_left[node], {**limits, name: (lo, min(hi, t))})  # x <= t
        walk(tree.children_right[node], {**limits, name: (max(lo, t), hi)})  # x > t

    walk(0, {})
    text = export_text(clf, feature_names=names, decimals=3, show_weights=True)
    return leaves, text


def in_box(X: np.ndarray, names: Sequence[str], limits: dict[str, tuple[float, float]]) -> np.ndarray:
    """Which rows of X lie inside the limits (closed on both sides, as PRIM's boxes are)."""
    X = np.asarray(X, dtype=float)
    inside = np.ones(X.shape[0], dtype=bool)
    for name, (lo, hi) in limits.items():
        col = X[:, list(names).index(name)]
        inside &= (col >= lo) & (col <= hi)
    return inside


def limits_in_words(limits: dict[str, tuple[float, float]], ranges: dict[str, tuple[float, float]]) -> list[str]:
    """'x1 at least 0.7 (sampled 0-1)': each restricted input, saying only the side the box restricts."""
    words = []
    for name, (lo, hi) in limits.items():
        rlo, rhi = ranges[name]
        tol = 1e-9 * max(1.0, abs(rhi - rlo))
        low, high = lo > rlo + tol, hi < rhi - tol
        if low and high:
            what = f"between {lo:.3g} and {hi:.3g}"
        elif low:
            what = f"at least {lo:.3g}"
        elif high:
            what = f"at most {hi:.3g}"
        else:
            what = "anywhere in its range"
        words.append(f"{name} {what} (sampled {rlo:.3g} to {rhi:.3g})")
    return words
