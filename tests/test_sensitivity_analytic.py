"""Analytic checks of egovsim.analysis.gsa: every expected value below comes
from closed-form variance decompositions or elementary effects worked out
here, never from SALib's output or its bundled test functions."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from egovsim.analysis.gsa import (
    IndexRecord,
    Problem,
    analyze,
    evaluate,
    records_to_rows,
    sample,
    time_resolved,
    unreliable,
)

TOL = 0.03  # allowed |estimate - analytic| for Sobol indices


def by_key(records, index, output=None):
    """{parameter: value} for one index (and optionally one output)."""
    return {r.parameter: r.value for r in records if r.index == index and (output is None or r.output == output)}


# --------------------------------------------------------------------------
# Ishigami: Y = sin x1 + a sin^2 x2 + b x3^4 sin x1, x_i ~ U(-pi, pi)
# --------------------------------------------------------------------------

ISHI_A, ISHI_B = 7.0, 0.1
ISHI_NAMES = ("x1", "x2", "x3")


def ishigami(X: np.ndarray) -> np.ndarray:
    x1, x2, x3 = X[:, 0], X[:, 1], X[:, 2]
    return np.sin(x1) + ISHI_A * np.sin(x2) ** 2 + ISHI_B * x3**4 * np.sin(x1)


def ishigami_truth(a: float = ISHI_A, b: float = ISHI_B):
    """Partial variances of Ishigami & Homma (1990); Saltelli et al. (2010).

    Only V1, V2 and the x1-x3 interaction V13 are non-zero (x3 acts only
    through its product with sin x1), so ST1 = (V1 + V13)/V, ST2 = V2/V,
    ST3 = V13/V.
    """
    pi = math.pi
    V = a**2 / 8 + b * pi**4 / 5 + b**2 * pi**8 / 18 + 0.5
    V1 = 0.5 * (1 + b * pi**4 / 5) ** 2
    V2 = a**2 / 8
    V13 = b**2 * pi**8 * (1 / 18 - 1 / 50)
    S1 = {"x1": V1 / V, "x2": V2 / V, "x3": 0.0}
    ST = {"x1": (V1 + V13) / V, "x2": V2 / V, "x3": V13 / V}
    S2 = {"x1:x2": 0.0, "x1:x3": V13 / V, "x2:x3": 0.0}
    return S1, ST, S2


def ishigami_problem() -> Problem:
    return Problem.from_dict({n: [-math.pi, math.pi] for n in ISHI_NAMES})


def test_ishigami_analytic_values_match_literature():
    S1, ST, S2 = ishigami_truth()
    assert [round(S1[n], 4) for n in ISHI_NAMES] == [0.3139, 0.4424, 0.0]
    assert [round(ST[n], 4) for n in ISHI_NAMES] == [0.5576, 0.4424, 0.2437]
    assert round(S2["x1:x3"], 4) == 0.2437


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ishigami_sobol_recovers_analytic_indices(seed):
    # N = 4096 (32768 runs): max error ~0.002 over seeds 1-5, 0.3 s per seed.
    problem = ishigami_problem()
    X = sample(problem, "sobol", 4096, seed)
    Y = evaluate(ishigami, X)
    records = analyze(problem, X, Y, "sobol", seed=seed)
    S1, ST, S2 = ishigami_truth()
    for name in ISHI_NAMES:
        assert by_key(records, "S1")[name] == pytest.approx(S1[name], abs=TOL)
        assert by_key(records, "ST")[name] == pytest.approx(ST[name], abs=TOL)
    for pair, truth in S2.items():
        assert by_key(records, "S2")[pair] == pytest.approx(truth, abs=TOL)
    # At this size every interval is tighter than its index (or the index is
    # a genuine zero), so nothing should be reported as unreliable.
    assert unreliable(records) == []


def test_two_outputs_are_analysed_separately_and_affine_invariant():
    # Sobol indices are ratios of variances, unchanged by Y -> 2Y + 5, so
    # both columns must give the same (analytic) indices under their names.
    problem = ishigami_problem()
    X = sample(problem, "sobol", 1024, seed=7)
    Y = evaluate(lambda x: np.column_stack([ishigami(x), 2 * ishigami(x) + 5]), X)
    records = analyze(problem, X, Y, "sobol", seed=7)
    assert {r.output for r in records} == {"y0", "y1"}
    S1, ST, _ = ishigami_truth()
    for out in ("y0", "y1"):
        for name in ISHI_NAMES:
            assert by_key(records, "S1", out)[name] == pytest.approx(S1[name], abs=TOL)
            assert by_key(records, "ST", out)[name] == pytest.approx(ST[name], abs=TOL)


def test_sampling_is_reproducible_by_seed():
    problem = ishigami_problem()
    for method, n in (("sobol", 64), ("morris", 10)):
        same = sample(problem, method, n, seed=11)
        np.testing.assert_array_equal(same, sample(problem, method, n, seed=11))
        assert not np.array_equal(same, sample(problem, method, n, seed=12))
    X = sample(problem, "sobol", 64, seed=11)
    Y = ishigami(X)
    assert analyze(problem, X, Y, "sobol", seed=0) == analyze(problem, X, Y, "sobol", seed=0)


# --------------------------------------------------------------------------
# Linear additive model, including a normal input
# --------------------------------------------------------------------------


def test_linear_additive_model_sobol():
    # Y = sum_i c_i x_i with independent inputs: Var(Y) = sum_i c_i^2 var_i and
    # E[Y | x_i] = c_i x_i + const, so V_i = c_i^2 var_i; there are no
    # interactions, hence S1_i = ST_i = c_i^2 var_i / sum_j c_j^2 var_j.
    # U(lo, hi) has var (hi - lo)^2 / 12; N(mean, sd) has var sd^2.
    problem = Problem.from_dict(
        {
            "a": [0.0, 1.0],
            "b": {"bounds": [-2.0, 4.0], "dist": "unif"},
            "c": {"bounds": [10.0, 0.5], "dist": "norm"},
            "d": [5.0, 5.5],
        }
    )
    coef = np.array([3.0, -1.0, 2.0, 0.5])
    var = np.array([1 / 12, 36 / 12, 0.25, 0.25 / 12])
    truth = coef**2 * var / np.sum(coef**2 * var)

    X = sample(problem, "sobol", 2048, seed=3, calc_second_order=False)
    records = analyze(problem, X, evaluate(lambda x: x @ coef, X), "sobol", calc_second_order=False, seed=3)
    assert not any(r.index == "S2" for r in records)
    for name, s in zip(problem.names, truth):
        assert by_key(records, "S1")[name] == pytest.approx(s, abs=TOL)
        assert by_key(records, "ST")[name] == pytest.approx(s, abs=TOL)


# --------------------------------------------------------------------------
# Sobol' G-function: Y = prod_i (|4 x_i - 2| + a_i) / (1 + a_i), x_i ~ U(0, 1)
# --------------------------------------------------------------------------

G_A = np.array([0.0, 1.0, 4.5, 9.0, 99.0, 99.0])


def g_function(X: np.ndarray) -> np.ndarray:
    return np.prod((np.abs(4 * X - 2) + G_A) / (1 + G_A), axis=1)


def test_g_function_sobol():
    # Each factor has mean 1 and variance V_i = 1/(3(1+a_i)^2), so
    # Var(Y) = prod(1+V_j) - 1, S_i = V_i / Var(Y) and
    # ST_i = V_i prod_{j!=i}(1+V_j) / Var(Y).
    Vi = 1 / (3 * (1 + G_A) ** 2)
    total_var = np.prod(1 + Vi) - 1
    S1 = Vi / total_var
    ST = Vi * np.prod(1 + Vi) / (1 + Vi) / total_var

    problem = Problem.from_dict({f"g{i}": [0.0, 1.0] for i in range(len(G_A))})
    X = sample(problem, "sobol", 4096, seed=5, calc_second_order=False)
    records = analyze(problem, X, evaluate(g_function, X), "sobol", calc_second_order=False, seed=5)
    for i, name in enumerate(problem.names):
        assert by_key(records, "S1")[name] == pytest.approx(S1[i], abs=TOL)
        assert by_key(records, "ST")[name] == pytest.approx(ST[i], abs=TOL)


# --------------------------------------------------------------------------
# Morris on linear functions: exact elementary effects
# --------------------------------------------------------------------------
#
# How SALib 1.6 scales elementary effects (read from SALib/analyze/morris.py
# and SALib/sample/morris/morris.py): trajectories move by delta =
# p / (2 (p - 1)) in the unit hypercube (p = num_levels), and scale_samples
# then maps u -> low + u (high - low), so the actual step in x_i is
# delta * (high_i - low_i). With scaled=False (the default) analyze divides
# the output difference by delta, the *unit-hypercube* step, not by the step
# in x_i. The elementary effects are therefore NOT in the original input
# units: for Y = sum beta_i x_i,
#     EE_i = beta_i * delta * (high_i - low_i) / delta = beta_i * (high_i - low_i),
# the same at every point (the sign is that of beta_i, as SALib always takes
# Y(higher x_i) - Y(lower x_i)). Hence, exactly up to rounding,
#     mu_i = beta_i (high_i - low_i), mu_star_i = |mu_i|, sigma_i = 0.

MORRIS_CASES = [
    # (bounds, beta, num_levels)
    ([[0, 1], [0, 1], [0, 1]], [1.0, 2.0, 3.0], 4),
    ([[-1, 3], [10, 10.5], [0, 100], [2, 7]], [2.5, -4.0, 0.01, -1.0], 4),
    ([[-5, -1], [0.1, 0.2]], [-7.0, 30.0], 6),
    ([[0, 2], [1, 4], [-3, 3], [0, 1], [5, 6]], [0.0, 1.0, -1.0, 1e3, -2e-3], 8),
]


@pytest.mark.parametrize("bounds, beta, levels", MORRIS_CASES)
def test_morris_linear_exact(bounds, beta, levels):
    problem = Problem.from_dict({f"p{i}": b for i, b in enumerate(bounds)})
    beta = np.array(beta)
    width = np.array([hi - lo for lo, hi in bounds])
    X = sample(problem, "morris", 20, seed=4, num_levels=levels)
    records = analyze(problem, X, evaluate(lambda x: x @ beta, X), "morris", num_levels=levels, seed=4)
    for i, name in enumerate(problem.names):
        expected = beta[i] * width[i]
        assert by_key(records, "mu")[name] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert by_key(records, "mu_star")[name] == pytest.approx(abs(expected), rel=1e-9, abs=1e-9)
        assert by_key(records, "sigma")[name] == pytest.approx(0.0, abs=1e-9)
    # All effects identical -> every bootstrap mean identical -> zero interval.
    for r in records:
        if r.index == "mu_star":
            assert r.conf == pytest.approx(0.0, abs=1e-9)
        else:
            assert math.isnan(r.conf)


# --------------------------------------------------------------------------
# Time-resolved indices
# --------------------------------------------------------------------------


def test_time_resolved_influence_moves_from_x1_to_x2():
    # y(t) = (1 - t) x1 + t x2 (+ 0 * x3), x_i iid U(0, 1): additive, so
    # S1_x1(t) = (1-t)^2 / ((1-t)^2 + t^2), S1_x2(t) = t^2 / (...), S_x3 = 0,
    # and ST = S1. x1's share falls from 1 to 0 while x2's rises from 0 to 1.
    times = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    problem = Problem.from_dict({"x1": [0, 1], "x2": [0, 1], "x3": [0, 1]})
    X = sample(problem, "sobol", 1024, seed=9)
    Y_time = np.column_stack([(1 - t) * X[:, 0] + t * X[:, 1] for t in times])
    records = time_resolved(problem, X, Y_time, "sobol", times, seed=9)

    assert {r.index for r in records} == {"S1", "ST"}
    s1_x1, s1_x2 = [], []
    for t in times:
        denom = (1 - t) ** 2 + t**2
        truth = {"x1": (1 - t) ** 2 / denom, "x2": t**2 / denom, "x3": 0.0}
        for index in ("S1", "ST"):
            est = by_key(records, index, f"t={t}")
            for name, value in truth.items():
                assert est[name] == pytest.approx(value, abs=TOL), (t, index, name)
        s1_x1.append(by_key(records, "S1", f"t={t}")["x1"])
        s1_x2.append(by_key(records, "S1", f"t={t}")["x2"])
    assert np.all(np.diff(s1_x1) < 0) and np.all(np.diff(s1_x2) > 0)


def test_constant_output_gives_nan_indices_with_warning():
    # Variance-based indices of a constant output are 0/0, e.g. year 0 of a
    # simulation where nothing has happened yet.
    problem = Problem.from_dict({"x1": [0, 1], "x2": [0, 1]})
    X = sample(problem, "sobol", 64, seed=1)
    Y_time = np.column_stack([np.full(len(X), 3.0), X[:, 0]])
    with pytest.warns(RuntimeWarning, match="constant"):
        records = time_resolved(problem, X, Y_time, "sobol", [2020, 2021])
    assert all(math.isnan(r.value) for r in records if r.output == "t=2020")
    assert by_key(records, "S1", "t=2021")["x1"] == pytest.approx(1.0, abs=TOL)


# --------------------------------------------------------------------------
# Validation and error messages
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"alpha": [0.0, 1.0], "beta": [2.0, 2.0]}, "'beta'"),
        ({"alpha": [1.0, 0.0], "beta": [0.0, 1.0]}, "'alpha'"),
        ({"alpha": [0, 1], "gamma": {"bounds": [0, 1], "dist": "cauchy"}}, "'gamma'"),
        ({"alpha": [0, 1], "sigma": {"bounds": [0, -1], "dist": "norm"}}, "'sigma'"),
        ({"alpha": [0, 1], "tri": {"bounds": [0, 1], "dist": "triang"}}, "'tri'"),
        ({"alpha": [0, 1], "nanb": [0, float("nan")]}, "'nanb'"),
        ({"alpha": [0, 1], "short": [0.5]}, "'short'"),
        ({"alpha": [0, 1], "word": "0..1"}, "'word'"),
        ({"alpha": [0, 1], "nokey": {"dist": "unif"}}, "'nokey'"),
    ],
)
def test_problem_validation_names_the_parameter(spec, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        Problem.from_dict(spec)
    assert "\n" not in str(err.value)


def test_problem_empty_and_direct_construction():
    with pytest.raises(ValueError, match="no parameters"):
        Problem.from_dict({})
    with pytest.raises(ValueError, match="no parameters"):
        Problem((), ())
    with pytest.raises(ValueError, match="'b'"):
        Problem(("a", "b"), ((0, 1), (3, 1)))
    p = Problem(["a", "b"], [[0, 1], [1, 3]])
    assert p.dists == ("unif", "unif") and p.bounds == ((0.0, 1.0), (1.0, 3.0))
    assert p.to_salib() == {
        "num_vars": 2,
        "names": ["a", "b"],
        "bounds": [[0.0, 1.0], [1.0, 3.0]],
        "dists": ["unif", "unif"],
    }
    tri = Problem.from_dict({"t": {"bounds": [1, 3, 0.5], "dist": "triang"}, "u": [0, 1]})
    assert tri.dists == ("triang", "unif")


def test_sobol_needs_two_parameters_and_warns_off_power_of_two():
    single = Problem.from_dict({"only": [0, 1]})
    with pytest.raises(ValueError, match="'only'"):
        sample(single, "sobol", 64, seed=1)
    sample(single, "morris", 4, seed=1)  # Morris is fine with one input
    unbounded = Problem.from_dict({"u": [0, 1], "n": {"bounds": [0, 1], "dist": "norm"}})
    with pytest.raises(ValueError, match="'n'"):
        sample(unbounded, "morris", 4, seed=1)  # levels 0 and 1 would be +-inf
    problem = ishigami_problem()
    with pytest.warns(UserWarning, match="power of 2"):
        X = sample(problem, "sobol", 100, seed=1)
    assert X.shape == (100 * (2 * 3 + 2), 3)
    with pytest.raises(ValueError, match="unknown sensitivity method"):
        sample(problem, "fast", 64, seed=1)


def test_non_finite_outputs_are_refused_with_a_count():
    problem = ishigami_problem()
    X = sample(problem, "sobol", 64, seed=1)
    Y = ishigami(X)
    Y[[3, 17, 40]] = [np.nan, np.inf, np.nan]
    with pytest.raises(ValueError, match=r"3 of 512 model evaluations are non-finite"):
        analyze(problem, X, Y, "sobol")


def test_second_order_mismatch_is_caught():
    # D = 2 and N = 6 give 24 first-order rows, a multiple of both D+2 = 4 and
    # 2D+2 = 6, so SALib's own row-count check would accept the mismatch and
    # silently compute wrong indices.
    problem = Problem.from_dict({"x1": [0, 1], "x2": [0, 1]})
    with pytest.warns(UserWarning, match="power of 2"):
        X = sample(problem, "sobol", 6, seed=1, calc_second_order=False)
    with pytest.raises(ValueError, match="calc_second_order"):
        analyze(problem, X, X[:, 0], "sobol")  # default calc_second_order=True


# --------------------------------------------------------------------------
# Reporting helpers
# --------------------------------------------------------------------------


def test_unreliable_rule_and_rows():
    records = [
        IndexRecord("sobol", "y", "a", "S1", 0.30, 0.05),  # tight: fine
        IndexRecord("sobol", "y", "b", "S1", 0.05, 0.20),  # wide: flagged
        IndexRecord("sobol", "y", "c", "S1", -0.004, 0.02),  # true zero: fine
        IndexRecord("sobol", "y", "d", "S1", 0.004, 0.09),  # zero but wide: flagged
        IndexRecord("morris", "y", "e", "sigma", 0.5, math.nan),  # no interval
    ]
    assert [r.parameter for r in unreliable(records)] == ["b", "d"]

    rows = records_to_rows(records)
    assert list(rows[0]) == ["method", "output", "parameter", "index", "value", "conf"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    assert buf.getvalue().splitlines()[2] == "sobol,y,b,S1,0.05,0.2"


def test_noise_share_recovers_the_share_of_noise_it_was_given():
    """Known answers: replicates that agree give 0; noise common to every point (common random numbers) with no
    point effect gives 1 (the old estimator gave 23/12 at 12 points); simulated tables recover the share of noise
    they were built with, independent noise and common noise alike (the within-point sum of squares over the total
    gave about half the noise at 2 replicates); a point with a failed run is left out; one replicate, or no
    variation, gives nan."""
    from egovsim.analysis.sensitivity import noise_share

    points = np.array([0.0, 1.0, 2.0, 3.0])
    assert noise_share(np.broadcast_to(points[:, None, None, None], (4, 2, 1, 1)).copy())[0, 0] == 0.0
    same = np.broadcast_to(np.array([0.1, 0.3])[None, :, None, None], (12, 2, 1, 1)).copy()
    assert noise_share(same)[0, 0] == pytest.approx(1.0)
    rng = np.random.default_rng(7)
    for r in (2, 5):  # independent noise of variance 1 around point effects of variance 1: half the variance
        Y = rng.normal(size=(4000, 1, 1, 1)) + rng.normal(size=(4000, r, 1, 1))
        assert noise_share(Y)[0, 0] == pytest.approx(0.5, abs=0.03)
    # common noise (variance 1) and independent noise (variance 1) around point effects (variance 1): two thirds
    Y = rng.normal(size=(2000, 1, 1, 1)) + rng.normal(size=(1, 200, 1, 1)) + rng.normal(size=(2000, 200, 1, 1))
    assert noise_share(Y)[0, 0] == pytest.approx(2 / 3, abs=0.05)
    Y = rng.normal(size=(30, 3, 2, 2))
    failed = Y.copy()
    failed[4, 1, 1, 0] = np.nan
    shares = noise_share(failed)
    assert shares[1, 0] == pytest.approx(noise_share(np.delete(Y, 4, axis=0))[1, 0])
    assert shares[0, 0] == pytest.approx(noise_share(Y)[0, 0])  # the other outcomes keep every point
    assert np.isnan(noise_share(np.ones((3, 1, 1, 1)))[0, 0])
    assert np.isnan(noise_share(np.ones((3, 2, 1, 1)))[0, 0])
