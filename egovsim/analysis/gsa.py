"""Model-agnostic global sensitivity analysis (Sobol' and Morris) on SALib.

The layer follows SALib's plain three-step workflow and knows nothing about
the simulator::

    problem = Problem.from_dict({"alpha": [0.0, 1.0], "beta": [2.0, 5.0]})
    X = sample(problem, "sobol", n=1024, seed=1)
    Y = evaluate(model, X)            # model: (n_points, n_params) -> outputs
    records = analyze(problem, X, Y, "sobol", outputs=["adoption"])

Results come back as flat :class:`IndexRecord` rows (one per method, output,
parameter and index) so that several outputs, several years and both methods
land in one table; :func:`records_to_rows` turns them into dicts for ``csv``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from egovsim.errors import EgovsimWarning, clipped

__all__ = [
    "DISTRIBUTIONS",
    "IndexRecord",
    "Method",
    "Problem",
    "analyze",
    "evaluate",
    "records_to_rows",
    "sample",
    "time_resolved",
    "unreliable",
]

Method = Literal["sobol", "morris"]
METHODS: tuple[str, ...] = ("sobol", "morris")

# Distributions and the meaning of their bounds, exactly as SALib's
# scale_samples reads them (SALib.util._nonuniform_scale_samples).
DISTRIBUTIONS: dict[str, str] = {
    "unif": "[low, high]",
    "norm": "[mean, sd]",
    "triang": "[start, end, peak] with peak a fraction of the width in [0, 1)",
    "lognorm": "[mean, sd] of ln(x)",
}

# Saltelli's estimators lose their balance properties for other sizes, and
# scipy warns separately; we replace its warning with one naming our argument.
_SCIPY_SOBOL_WARNING = "The balance properties of Sobol' points require"


# --------------------------------------------------------------------------
# Problem definition
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Names, bounds and distributions of the uncertain parameters.

    ``bounds[i]`` is interpreted according to ``dists[i]`` (see
    :data:`DISTRIBUTIONS`); "triang" takes three numbers, the others two.
    ``dists`` defaults to all "unif". Construction validates everything, so an
    invalid ``Problem`` cannot exist.
    """

    names: tuple[str, ...]
    bounds: tuple[tuple[float, ...], ...]
    dists: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Coerce lists to tuples so the frozen instance is hashable and safe
        # to share between worker processes.
        names = tuple(str(n) for n in self.names)
        bounds = tuple(tuple(float(v) for v in b) for b in self.bounds)
        dists = tuple(self.dists) if self.dists else ("unif",) * len(names)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "dists", dists)
        _validate(names, bounds, dists)

    @property
    def num_vars(self) -> int:
        return len(self.names)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        """Build from ``{name: [lo, hi]}`` or ``{name: {"bounds": [...], "dist": "unif"}}``.

        Raises ``ValueError`` (one line, naming the parameter) on bad input.
        """
        if not d:
            raise ValueError("sensitivity problem has no parameters")
        names, bounds, dists = [], [], []
        for name, spec in d.items():
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"bounds", "dist"}
                if "bounds" not in spec or unknown:
                    raise ValueError(
                        f"parameter {clipped(name)}: expected keys 'bounds' and optional 'dist', got {sorted(spec)}"
                    )
                b, dist = spec["bounds"], spec.get("dist", "unif")
            else:
                b, dist = spec, "unif"
            if isinstance(b, (str, bytes)) or not isinstance(b, Sequence):
                raise ValueError(f"parameter {clipped(name)}: bounds must be a list of numbers, got {clipped(b)}")
            try:
                bounds.append(tuple(float(v) for v in b))
            except (TypeError, ValueError):
                raise ValueError(f"parameter {clipped(name)}: bounds must be numbers, got {clipped(b)}") from None
            names.append(name)
            dists.append(dist)
        return cls(tuple(names), tuple(bounds), tuple(dists))

    def to_salib(self) -> dict[str, Any]:
        """A fresh SALib problem dict (SALib mutates it, so never share one)."""
        return {
            "num_vars": self.num_vars,
            "names": list(self.names),
            "bounds": [list(b) for b in self.bounds],
            "dists": list(self.dists),
        }


def _validate(names: tuple[str, ...], bounds: tuple[tuple[float, ...], ...], dists: tuple[str, ...]) -> None:
    if not names:
        raise ValueError("sensitivity problem has no parameters")
    if len(bounds) != len(names) or len(dists) != len(names):
        raise ValueError(f"problem has {len(names)} names but {len(bounds)} bounds and {len(dists)} dists")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate parameter names: {clipped(dup)}")
    for name, b, dist in zip(names, bounds, dists):
        _validate_one(name, b, dist)


def _validate_one(name: str, b: tuple[float, ...], dist: str) -> None:
    """Check one parameter; mirrors SALib's checks but fails before sampling."""
    if dist not in DISTRIBUTIONS:
        raise ValueError(
            f"parameter {clipped(name)}: unknown distribution {clipped(dist)} (known: {sorted(DISTRIBUTIONS)})"
        )
    expected = 3 if dist == "triang" else 2
    if len(b) != expected or not all(math.isfinite(v) for v in b):
        raise ValueError(
            f"parameter {clipped(name)}: {dist} needs {expected} finite numbers {DISTRIBUTIONS[dist]}, got {clipped(list(b))}"
        )
    if dist == "unif" and not b[0] < b[1]:
        raise ValueError(f"parameter {clipped(name)}: uniform bounds need low < high, got {clipped(list(b))}")
    if dist in ("norm", "lognorm") and not b[1] > 0:
        raise ValueError(f"parameter {clipped(name)}: {dist} needs sd > 0, got {clipped(list(b))}")
    # SALib additionally rejects a negative end for triang (scale/end check).
    if dist == "triang" and not (b[0] < b[1] and b[1] >= 0 and 0 <= b[2] < 1):
        raise ValueError(
            f"parameter {clipped(name)}: triang needs start < end, end >= 0 and 0 <= peak < 1, got {clipped(list(b))}"
        )


def _check_method(problem: Problem, method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown sensitivity method {clipped(method)} (known: {list(METHODS)})")
    # Saltelli's scheme with one input is degenerate (S1 = ST = 1 by construction).
    if method == "sobol" and problem.num_vars < 2:
        raise ValueError(f"sobol analysis needs at least 2 parameters, got only {clipped(list(problem.names))}")


# --------------------------------------------------------------------------
# Sample -> evaluate
# --------------------------------------------------------------------------


def sample(problem: Problem, method: Method, n: int, seed: int | None, **options: Any) -> np.ndarray:
    """Design matrix of shape ``(n_points, num_vars)`` in the original units.

    ``n`` is the base sample size: N of the Saltelli scheme for "sobol"
    (``n * (2D + 2)`` rows, or ``n * (D + 2)`` with
    ``calc_second_order=False``) and the number of trajectories for "morris"
    (``n * (D + 1)`` rows; bounded distributions only, and its elementary
    effects are per unit-hypercube step, see :func:`analyze`). Same seed,
    same matrix. Remaining ``options`` go
    to ``SALib.sample.sobol.sample`` (e.g. ``skip_values``) or
    ``SALib.sample.morris.sample`` (e.g. ``num_levels``, default 4,
    ``optimal_trajectories``).
    """
    _check_method(problem, method)
    if int(n) != n or n < 1:
        raise ValueError(f"base sample size n must be a positive integer, got {clipped(n)}")
    n = int(n)
    if method == "sobol":
        return _sample_sobol(problem, n, seed, **options)
    _check_morris_dists(problem)
    options.setdefault("num_levels", 4)
    return morris_sample.sample(problem.to_salib(), n, seed=seed, **options)


def _check_morris_dists(problem: Problem) -> None:
    # Morris grids include the levels 0 and 1, which the inverse CDF of an
    # unbounded distribution maps to +-inf: the model would get infinite inputs.
    for name, dist in zip(problem.names, problem.dists):
        if dist in ("norm", "lognorm"):
            raise ValueError(
                f"parameter {clipped(name)}: Morris grid levels 0 and 1 map a {dist} "
                "to infinity; give it unif or triang bounds for Morris"
            )


class SampleSizeWarning(EgovsimWarning, UserWarning):
    """A Sobol base sample that is not a power of 2."""


class ConstantOutputWarning(EgovsimWarning, RuntimeWarning):
    """An output with no variance: its indices are undefined (nan)."""


def _sample_sobol(problem: Problem, n: int, seed: int | None, **options: Any) -> np.ndarray:
    options.setdefault("calc_second_order", True)
    options.setdefault("scramble", True)
    if n & (n - 1):
        warnings.warn(
            f"Sobol base sample size n={n} is not a power of 2; Saltelli/Sobol' "
            f"estimates converge best at powers of 2 (e.g. {1 << n.bit_length()})",
            SampleSizeWarning,
            stacklevel=3,
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SCIPY_SOBOL_WARNING)
        return sobol_sample.sample(problem.to_salib(), n, seed=seed, **options)


def evaluate(func: Callable[[np.ndarray], Any], X: np.ndarray) -> np.ndarray:
    """``func(X)`` as a float array of shape ``(n_points,)`` or ``(n_points, n_outputs)``.

    Non-finite outputs are left in place (so they can be inspected or saved);
    :func:`analyze` refuses them.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(func(X), dtype=float)
    if Y.ndim not in (1, 2) or Y.shape[0] != X.shape[0]:
        raise ValueError(f"model returned shape {Y.shape}; expected ({X.shape[0]},) or ({X.shape[0]}, k)")
    return Y


# --------------------------------------------------------------------------
# Analyze
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexRecord:
    """One sensitivity index.

    ``parameter`` is a parameter name, or "a:b" for a second-order index.
    ``conf`` is the half-width of the ``conf_level`` bootstrap interval, NaN
    where SALib gives none (Morris ``mu`` and ``sigma``).
    """

    method: str
    output: str
    parameter: str
    index: str
    value: float
    conf: float


def analyze(
    problem: Problem,
    X: np.ndarray,
    Y: np.ndarray,
    method: Method,
    *,
    outputs: Sequence[str] | None = None,
    seed: int | None = 0,
    conf_level: float = 0.95,
    **options: Any,
) -> list[IndexRecord]:
    """Sensitivity indices of each output column of ``Y`` for the design ``X``.

    ``X`` must be the unmodified matrix from :func:`sample` with the same
    method and options. ``Y`` is 1-D (one output) or 2-D (one column per
    output, named by ``outputs``; default "y0", "y1", ...). ``seed`` fixes the
    bootstrap resampling of the confidence intervals.

    Sobol gives S1, ST and, with ``calc_second_order`` (default True, must
    match sampling), S2; Morris gives mu, mu_star, sigma (mu_star with its
    interval). SALib divides Morris output differences by the step in the
    unit hypercube, so for unif inputs an effect is the output change per
    full range ``high - low`` of the input, not per unit of it (Y = b x on
    [lo, hi] gives mu_star = |b| (hi - lo)). Other ``options`` go to SALib's
    analyze (``num_resamples``;
    for Morris ``num_levels``, default 4, must match sampling, and ``scaled``).
    """
    _check_method(problem, method)
    X, Y2, names = _check_data(problem, X, Y, outputs)
    records: list[IndexRecord] = []
    for col, output in enumerate(names):
        y = np.ascontiguousarray(Y2[:, col])
        if method == "sobol":
            records += _analyze_sobol(problem, X, y, output, seed, conf_level, **options)
        else:
            records += _analyze_morris(problem, X, y, output, seed, conf_level, **options)
    return records


def _check_data(
    problem: Problem, X: np.ndarray, Y: np.ndarray, outputs: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shapes agree, outputs are named, and every output is finite."""
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if X.ndim != 2 or X.shape[1] != problem.num_vars:
        raise ValueError(f"X has shape {X.shape}; expected (n_points, {problem.num_vars})")
    Y2 = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    if Y2.ndim != 2 or Y2.shape[0] != X.shape[0]:
        raise ValueError(f"Y has shape {Y.shape}; expected ({X.shape[0]},) or ({X.shape[0]}, k)")
    names = list(outputs) if outputs is not None else [f"y{i}" for i in range(Y2.shape[1])]
    if len(names) != Y2.shape[1]:
        raise ValueError(f"{len(names)} output names given for {Y2.shape[1]} output columns")
    bad = int((~np.isfinite(Y2)).any(axis=1).sum())
    if bad:
        raise ValueError(
            f"{bad} of {Y2.shape[0]} model evaluations are non-finite (NaN/inf); "
            "SALib's Sobol/Morris estimators need every point of the design, "
            "so re-run or repair those points before analysing"
        )
    return X, Y2, names


def _analyze_sobol(
    problem: Problem,
    X: np.ndarray,
    y: np.ndarray,
    output: str,
    seed: int | None,
    conf_level: float,
    calc_second_order: bool = True,
    **options: Any,
) -> list[IndexRecord]:
    _check_saltelli_layout(X, problem.num_vars, calc_second_order)
    if np.ptp(y) == 0:
        # SALib divides by Var(Y); a constant output (e.g. year 0 of a run)
        # has no variance to apportion, so report NaN rather than crash.
        warnings.warn(
            f"output {clipped(output)} is constant; its Sobol indices are undefined",
            ConstantOutputWarning,
            stacklevel=3,
        )
        Si = _nan_sobol(problem.num_vars)
    else:
        # SALib 1.6 tests `if seed:`, so seed=0 would silently fall back to the
        # unseeded global RNG; shifting keeps distinct seeds distinct.
        salib_seed = None if seed is None else seed + 1
        Si = sobol_analyze.analyze(
            problem.to_salib(),
            y,
            calc_second_order=calc_second_order,
            conf_level=conf_level,
            seed=salib_seed,
            **options,
        )
    return _sobol_records(problem, output, Si, calc_second_order)


def _nan_sobol(d: int) -> dict[str, np.ndarray]:
    nan1, nan2 = np.full(d, np.nan), np.full((d, d), np.nan)
    return {"S1": nan1, "S1_conf": nan1, "ST": nan1, "ST_conf": nan1, "S2": nan2, "S2_conf": nan2}


def _sobol_records(
    problem: Problem, output: str, Si: Mapping[str, np.ndarray], second_order: bool
) -> list[IndexRecord]:
    names = problem.names
    recs = [
        IndexRecord("sobol", output, name, idx, float(Si[idx][i]), float(Si[f"{idx}_conf"][i]))
        for idx in ("S1", "ST")
        for i, name in enumerate(names)
    ]
    if second_order:
        recs += [
            IndexRecord(
                "sobol", output, f"{names[j]}:{names[k]}", "S2", float(Si["S2"][j, k]), float(Si["S2_conf"][j, k])
            )
            for j in range(len(names))
            for k in range(j + 1, len(names))
        ]
    return recs


def _check_saltelli_layout(X: np.ndarray, d: int, second_order: bool) -> None:
    """Catch a calc_second_order mismatch between sample() and analyze().

    SALib only checks divisibility of the row count, which both layouts can
    pass (e.g. D=2, 24 rows), giving silently wrong indices. In each block
    row 1 + j (AB_j) equals row 0 (A) except in column j.
    """
    size = 2 * d + 2 if second_order else d + 2
    if X.shape[0] % size:
        raise ValueError(
            f"{X.shape[0]} rows is not a multiple of {size}: X is not a Saltelli design "
            f"with calc_second_order={second_order} for {d} parameters"
        )
    blocks = X.reshape(-1, size, d)
    same = blocks[:, 1 : d + 1, :] == blocks[:, :1, :]  # (blocks, j, column)
    off_diagonal = ~np.eye(d, dtype=bool)
    if not same[:, off_diagonal].all():
        raise ValueError(
            f"X is not a Saltelli design with calc_second_order={second_order}; "
            "pass the same calc_second_order to sample() and analyze()"
        )


def _analyze_morris(
    problem: Problem,
    X: np.ndarray,
    y: np.ndarray,
    output: str,
    seed: int | None,
    conf_level: float,
    **options: Any,
) -> list[IndexRecord]:
    options.setdefault("num_levels", 4)
    Si = morris_analyze.analyze(problem.to_salib(), X, y, conf_level=conf_level, seed=seed, **options)

    def col(key: str) -> np.ndarray:
        # SALib returns masked arrays (its group averaging); unmask to floats.
        return np.ma.filled(np.ma.asarray(Si[key], dtype=float), np.nan)

    conf = {"mu_star": col("mu_star_conf")}
    return [
        IndexRecord("morris", output, name, idx, float(col(idx)[i]), float(conf[idx][i]) if idx in conf else math.nan)
        for idx in ("mu", "mu_star", "sigma")
        for i, name in enumerate(problem.names)
    ]


def time_resolved(
    problem: Problem,
    X: np.ndarray,
    Y_time: np.ndarray,
    method: Method,
    times: Sequence[Any],
    *,
    seed: int | None = 0,
    conf_level: float = 0.95,
    **options: Any,
) -> list[IndexRecord]:
    """Indices per time step, for how each parameter's influence evolves.

    ``Y_time`` has shape ``(n_points, n_times)``, column ``k`` being the
    output at ``times[k]``; outputs are named ``f"t={time}"``. Sobol keeps
    first (S1) and total (ST) order only; Morris keeps all its indices.
    """
    Y_time = np.asarray(Y_time, dtype=float)
    if Y_time.ndim != 2 or Y_time.shape[1] != len(times):
        raise ValueError(f"Y_time has shape {Y_time.shape}; expected (n_points, {len(times)}), one column per time")
    records = analyze(
        problem, X, Y_time, method, outputs=[f"t={t}" for t in times], seed=seed, conf_level=conf_level, **options
    )
    return [r for r in records if r.index != "S2"]


# --------------------------------------------------------------------------
# Reporting helpers
# --------------------------------------------------------------------------


def records_to_rows(records: Sequence[IndexRecord]) -> list[dict[str, Any]]:
    """Plain dicts (keys = IndexRecord fields, in order) for ``csv.DictWriter``."""
    return [dataclasses.asdict(r) for r in records]


def unreliable(
    records: Sequence[IndexRecord], *, zero_value: float = 0.01, zero_conf: float = 0.05
) -> list[IndexRecord]:
    """Records whose interval half-width exceeds ``|value|``: sample too small.

    An index that is truly zero has ``conf > |value|`` whatever N is, so
    near-zero indices with a tight interval (``|value| < zero_value`` and
    ``conf < zero_conf``) are not flagged. The thresholds suit Sobol indices
    (fractions of variance); Morris mu_star is in output units. Records
    without an interval (NaN conf) are never flagged.
    """
    return [r for r in records if r.conf > abs(r.value) and not (abs(r.value) < zero_value and r.conf < zero_conf)]
