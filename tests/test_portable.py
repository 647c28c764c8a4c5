"""The model's exp, expm1 and log (egovsim/model/portable.py) against correctly rounded values, and a run's records
on the same machine with the CPU features numpy and numba may use switched off: the bits must not change."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from decimal import Decimal, getcontext
from pathlib import Path

import numpy as np
import pytest

from egovsim.model import portable

ROOT = Path(__file__).resolve().parents[1]


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between doubles of the same sign (and zero)."""
    ia, ib = np.asarray(a, float).view(np.int64), np.asarray(b, float).view(np.int64)
    ia = np.where(ia < 0, np.int64(-(2**63)) - ia, ia)
    ib = np.where(ib < 0, np.int64(-(2**63)) - ib, ib)
    return np.abs(ia - ib)


def _correctly_rounded(values: np.ndarray, f) -> np.ndarray:
    getcontext().prec = 60
    return np.array([float(f(Decimal(x))) for x in values.tolist()])


RNG = np.random.default_rng(20261128)
ARGS = np.concatenate(
    [
        RNG.uniform(-1, 1, 1500),
        RNG.uniform(-0.5, 0.5, 1500),  # fdlibm's branches at 0.5 ln 2 and 1.5 ln 2
        RNG.uniform(-60, 60, 1500),
        RNG.uniform(-745, 709.7, 1500),  # to the ends of the doubles, subnormal results included
        RNG.uniform(-1e-9, 1e-9, 300),
    ]
)


def test_exp_is_within_one_ulp_of_the_correctly_rounded_value():
    assert _ulps(portable.exp(ARGS), _correctly_rounded(ARGS, Decimal.exp)).max() <= 1


def test_expm1_is_within_one_ulp_of_the_correctly_rounded_value():
    exact = _correctly_rounded(ARGS, lambda d: d.exp() - 1)
    assert _ulps(portable.expm1(ARGS), exact).max() <= 1


def test_log_is_within_one_ulp_of_the_correctly_rounded_value():
    positive = np.concatenate(
        [
            np.exp(RNG.uniform(-700, 700, 3000)),
            RNG.uniform(0.5, 2.0, 2000),
            1.0 + RNG.uniform(-1e-6, 1e-6, 1000),  # fdlibm's branch for |f| < 2^-20
            RNG.uniform(0, 1e-310, 200),  # subnormal arguments
        ]
    )
    assert _ulps(portable.log(positive), _correctly_rounded(positive, Decimal.ln)).max() <= 1


def test_special_values_are_those_of_ieee_and_the_c_library():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 709.8, -745.2, 1e-300])
    np.testing.assert_array_equal(portable.exp(x), [np.nan, np.inf, 0.0, 1.0, 1.0, np.inf, 0.0, 1.0])
    np.testing.assert_array_equal(portable.expm1(x), [np.nan, np.inf, -1.0, 0.0, -0.0, np.inf, -1.0, 1e-300])
    assert math.copysign(1.0, portable.expm1(-0.0)) == -1.0
    y = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1.0, 2.0, 5e-324])
    expected = [np.nan, np.inf, np.nan, -np.inf, -np.inf, np.nan, 0.0, math.log(2), -744.4400719213812]
    np.testing.assert_array_equal(portable.log(y), expected)


def test_power_is_exp_of_y_log_x_within_a_few_ulp():
    x, y = RNG.uniform(0.1, 10.0, 500), RNG.uniform(-2.0, 2.0, 500)
    ours = np.array([portable.power(a, b) for a, b in zip(x.tolist(), y.tolist())])
    assert _ulps(ours, x**y).max() <= 8


def test_the_model_calls_no_transcendental_function_of_numpy_or_the_c_library():
    """numpy's exp, log, expm1, log1p and power (and `**` on floats) are chosen by the CPU; the C library's differ
    between systems: the model's code uses portable's (the geometric draw's log1p mirrors numpy's generator,
    which calls the C library's itself)."""
    banned = re.compile(
        r"\bnp\.(exp|expm1|log|log1p|log2|log10|power|exp2|tanh|sinh|cosh|sin|cos)\(|\bmath\.(exp|log|expm1|pow)\("
    )
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted((ROOT / "egovsim" / "model").glob("*.py"))
        if path.name != "portable.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if banned.search(line.split("#")[0])
    ]
    assert found == []


_RUN = """
import hashlib, sys
from egovsim.config.scenario import load_scenario, with_values
from egovsim.model.model import EGovModel
for name in ("three_provinces", "reorganised_2025"):
    scenario = with_values(load_scenario(f"scenarios/{name}.yaml", scale=0.003), {"end_year": 2027})
    model = EGovModel(scenario, 7, collect=False)
    print(name, hashlib.sha256(model.run().tobytes()).hexdigest())
"""


def test_a_run_gives_the_same_bits_without_the_cpus_vector_extensions(tmp_path):
    """The same run on this machine as it is, and as a machine without its vector extensions: numpy's dispatch
    switched off above its baseline (NPY_DISABLE_CPU_FEATURES), numba's loops compiled for a generic x86-64 (or
    aarch64) CPU, OpenBLAS on its oldest kernel. Before portable.py, 32 of the shipped scenarios' 34 runs differed."""
    from numpy._core import _multiarray_umath as umath

    dispatched = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    if not dispatched:
        pytest.skip("numpy dispatches nothing beyond its baseline on this CPU: there is nothing to switch off")

    def run(extra: dict) -> str:
        env = {**os.environ, **extra}
        return subprocess.run(
            [sys.executable, "-c", _RUN], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout

    as_is = run({})
    generic = run(
        {
            "NPY_DISABLE_CPU_FEATURES": " ".join(dispatched),
            "NUMBA_CPU_NAME": "generic",
            "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
            "OPENBLAS_CORETYPE": "Prescott",
        }
    )
    assert len(as_is.splitlines()) == 2
    assert generic == as_is


_CALLER = "from egovsim.model import agents; print(agents._approach_one(0.0, 0.5, 1.0))"


def test_an_edit_to_a_compiled_callee_reaches_its_callers_in_another_file(tmp_path):
    """numba keys its cache on a function's own file: the model's compiled code is cached by a hash of all of
    egovsim/model (model/compiled.py), so a change to portable.exp_scalar reaches agents._approach_one, which
    compiled it in, at the next start, not only after agents.py changes."""
    import shutil

    package = tmp_path / "egovsim"
    shutil.copytree(ROOT / "egovsim", package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(tmp_path)

    def caller() -> float:
        out = subprocess.run([sys.executable, "-c", _CALLER], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return float(out.stdout)

    assert caller() == 1.0 - portable.exp(-0.5)  # compiled and cached
    source = package / "model" / "portable.py"
    text = source.read_text()
    anchor = "def exp_scalar(x: float) -> float:\n"
    source.write_text(text.replace(anchor, anchor + "    if x == -0.5:\n        return 123.0\n"))
    assert caller() == 1.0 - 123.0  # the caller's cached code is not reused
