"""Coverage of the calibration method on a model with a known posterior (simulation-based calibration).

The simulator here is a linear function of two parameters plus noise, so the exact posterior is known in form
(a normal likelihood times the uniform prior); each sampler that calibrates egovsim must put the truth inside its
90% credible interval about 90% of the time over truths drawn from the prior (Talts et al. 2018)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from egovsim.analysis.calibration import load_config, make_problem
from egovsim.analysis.calibration.abcsmc import abc, seeded_sampler
from egovsim.analysis.calibration.config import ABCSettings
from egovsim.analysis.calibration.coverage import coverage, coverage_rows, credible_interval, synthetic_observations
from egovsim.runner.runner import SerialExecutor

from .conftest import BASS

TOY = """scenario: base.yaml
observations: ""
seed: 11
parameters:
  citizens.p0: {{bounds: [0.005, 0.08]}}
  citizens.q0: {{bounds: [0.1, 0.9]}}
targets:
  - {{name: a, type: value, outcome: adopted_share, year: 2002, observed: 0.2, sd: {sd}}}
  - {{name: b, type: value, outcome: use_share_12m, year: 2002, observed: 0.5, sd: {sd}}}
  - {{name: c, type: value, outcome: access_share, year: 2002, observed: 0.4, sd: {sd}}}
  - {{name: d, type: at_least, outcome: access_share, minus: use_share_12m, year: 2002, threshold: 0.0, sd: {sd}}}
"""
RUN_NOISE = 0.01  # the toy simulator's own chance, as a stochastic model's


def toy_run(scenario, values, seed):
    """A model whose outcomes are linear in (p0, q0) plus the run's own noise: adopted 5 p0, use q0, access
    2.5 p0 + 0.5 q0."""
    from egovsim.model.outcomes import COL, COLUMNS

    steps = (scenario["end_year"] - scenario["start_year"] + 1) * scenario["steps_per_year"]
    p0, q0 = values["citizens.p0"], values["citizens.q0"]
    noise = np.random.default_rng(seed).normal(0.0, RUN_NOISE, size=3)
    records = np.zeros((steps + 1, len(scenario["provinces"]), len(COLUMNS)))
    records[..., COL["adopted_share"]] = 5 * p0 + noise[0]
    records[..., COL["use_share_12m"]] = q0 + noise[1]
    records[..., COL["access_share"]] = 2.5 * p0 + 0.5 * q0 + noise[2]
    return {"records": records, "error": None, "traceback": None, "wall_time_s": 0.0, "host": "toy"}


def toy_problem(tmp_path, sd=0.05):
    (tmp_path / "base.yaml").write_text(f"extends: {BASS}\nend_year: 2003\n")
    path = tmp_path / "toy.yaml"
    path.write_text(TOY.format(sd=sd))
    config, folder = load_config(path)
    return make_problem(config, folder, str(path))


def test_synthetic_observations_follow_the_likelihoods_generative_model(tmp_path):
    problem = toy_problem(tmp_path, sd=0.05)
    truth = np.array([0.04, 0.5])
    observed = np.array(
        [[t.observed for t in synthetic_observations(problem, truth, s, toy_run).terms[:3]] for s in range(400)]
    )
    # mean: the noiseless outcome; sd: the run's noise and the observation error, independent
    assert observed.mean(axis=0) == pytest.approx([0.2, 0.5, 0.35], abs=0.01)
    assert observed.std(axis=0) == pytest.approx([np.hypot(0.05, RUN_NOISE)] * 3, rel=0.12)
    # the ordering access >= use (margin 0.35 - 0.5 = -0.15, 3 sd) is seen about Phi(-3) of the time
    flipped = [synthetic_observations(problem, truth, s, toy_run).terms[3].scale < 0 for s in range(400)]
    assert np.mean(flipped) > 0.95


def test_abc_posterior_matches_the_exact_posterior_of_a_linear_model(tmp_path):
    """With one value term per parameter and no run noise the posterior is a normal around the observation:
    5 p0 ~ N(0.2, sd) -> p0 ~ N(0.04, sd / 5). ABC-SMC's interval must match the exact one."""
    problem = toy_problem(tmp_path, sd=0.05)
    problem.terms = problem.terms[:2]
    fit = abc(
        problem,
        ABCSettings(population_size=150, max_populations=4, predictive_draws=0),
        db=tmp_path / "abc.db",
        sampler=seeded_sampler(SerialExecutor(), 5),
        seed=5,
        run=toy_run,
    )
    interval = credible_interval(fit.posterior, fit.weights)
    exact_sd = np.hypot(0.05, RUN_NOISE)
    assert interval[0] == pytest.approx([0.04 - 1.645 * exact_sd / 5, 0.04 + 1.645 * exact_sd / 5], abs=0.003)
    assert interval[1] == pytest.approx([0.5 - 1.645 * exact_sd, 0.5 + 1.645 * exact_sd], abs=0.03)


@pytest.mark.parametrize(
    "settings",
    [
        ABCSettings(sampler="smc", population_size=200, chain_length=10, max_populations=10, predictive_draws=0),
        ABCSettings(sampler="pyabc", population_size=40, max_populations=3, predictive_draws=0),
    ],
    ids=["smc", "pyabc"],
)
def test_ninety_percent_intervals_cover_the_truth_about_ninety_percent_of_the_time(tmp_path, settings):
    problem = toy_problem(tmp_path, sd=0.05)
    rows, per_truth = coverage(
        problem, settings, SerialExecutor(), truths=20, seed=3, folder=tmp_path / "sbc", run=toy_run
    )
    for row in rows:  # 20 truths: 18 expected; a broken method (e.g. intervals half as wide) gives about 11
        assert 0.75 <= row["coverage"] <= 1.0, rows
    ranks = np.array([r["rank"] for r in per_truth])
    assert 0.35 < ranks.mean() < 0.65  # the truth is neither systematically below nor above its posterior
    written = csv.DictReader((tmp_path / "sbc" / "coverage.csv").read_text().splitlines())
    assert [int(r["inside"]) for r in written] == [r["inside"] for r in rows]
    assert len(list(csv.DictReader((tmp_path / "sbc" / "truths.csv").read_text().splitlines()))) == len(per_truth)


def test_a_resumed_abc_fit_goes_on_to_the_same_last_population(tmp_path):
    """Stopped after its first population (a budget of runs) and run again on the same history, the fit keeps
    what it had and ends, as an uninterrupted fit does, at temperature 1 in population max_populations - 1.
    (Not bit for bit: pyabc keeps the acceptance records that set the next temperature in memory only.)"""
    problem = toy_problem(tmp_path)
    settings = ABCSettings(population_size=30, max_populations=4, predictive_draws=0)

    def fit(db, **budget):
        return abc(problem, settings, db=db, sampler=seeded_sampler(SerialExecutor(), 9), seed=9, run=toy_run, **budget)

    whole = fit(tmp_path / "whole.db")
    cut = fit(tmp_path / "cut.db", max_runs=1)  # pyabc stops once a population is done and the budget is spent
    assert len(cut.generations) < settings.max_populations and cut.generations[-1]["temperature"] > 1
    resumed = fit(tmp_path / "cut.db")
    assert resumed.generations[: len(cut.generations)] == cut.generations  # what it had is kept
    for run in (whole, resumed):
        assert [g["population"] for g in run.generations] == list(range(settings.max_populations))
        assert run.generations[-1]["temperature"] == 1.0
    interval = credible_interval(resumed.posterior, resumed.weights)
    truth_like = credible_interval(whole.posterior, whole.weights)
    assert np.all(np.abs(interval - truth_like) < 0.5 * (truth_like[:, 1:] - truth_like[:, :1]))


def test_coverage_rows_count_each_side_and_give_the_exact_interval_of_the_coverage_itself():
    """20 truths of "a", all inside: the exact (Clopper-Pearson) 90% interval of the coverage is [0.05^(1/20), 1]
    (the p at which 20 of 20 has chance 5%); of "b", none inside, 12 below the interval and 8 above:
    [0, 1 - 0.05^(1/20)]."""
    per_truth = []
    for i in range(20):
        per_truth.append({"parameter": "a", "truth": 0.5, "p5": 0.4, "p95": 0.6, "inside": True, "rank": 0.5})
        low = i < 12
        per_truth.append(
            {
                "parameter": "b",
                "truth": 0.3 if low else 0.7,
                "p5": 0.4,
                "p95": 0.6,
                "inside": False,
                "rank": float(not low),
            }
        )
    a, b = coverage_rows(["a", "b"], per_truth)
    assert (a["truths"], a["inside"], a["coverage"], a["below_p5"], a["above_p95"]) == (20, 20, 1.0, 0, 0)
    assert a["coverage_low"] == pytest.approx(0.05 ** (1 / 20)) and a["coverage_high"] == 1.0
    assert (b["inside"], b["coverage"], b["below_p5"], b["above_p95"]) == (0, 0.0, 12, 8)
    assert b["coverage_low"] == 0.0 and b["coverage_high"] == pytest.approx(1 - 0.05 ** (1 / 20))
    assert b["mean_rank"] == pytest.approx(0.4)


def _write_truths(folder, rows):
    from egovsim.analysis.calibration.coverage import write_tables

    folder.mkdir(parents=True, exist_ok=True)
    write_tables(folder, [], rows)


def _truth(i, name, truth, inside, rank):
    return {"truth_index": i, "parameter": name, "truth": truth, "p5": 0.0, "p95": 1.0, "inside": inside, "rank": rank}


def test_pooled_studies_count_every_truth_once_and_refuse_mixed_or_repeated_studies(tmp_path):
    """Two studies of 3 and 2 truths pool to 5 per parameter: 4 of 5 inside is 80%, exactly as if one study had
    fitted all five. A study twice, or one of other parameters, or a copy of the same truths, is refused."""
    from egovsim.analysis.calibration.coverage import pool
    from egovsim.errors import InputError

    a, b = tmp_path / "a", tmp_path / "b"
    _write_truths(a, [_truth(i, n, 0.1 * i + (n == "y"), i != 0, 0.2 * i) for i in range(3) for n in ("x", "y")])
    _write_truths(b, [_truth(i, n, 0.5 + 0.1 * i + (n == "y"), True, 0.9) for i in range(2) for n in ("x", "y")])
    rows, per_truth = pool([a, b])
    assert [(r["parameter"], r["truths"], r["inside"], r["coverage"]) for r in rows] == [
        ("x", 5, 4, 0.8),
        ("y", 5, 4, 0.8),
    ]
    assert rows[0]["mean_rank"] == pytest.approx((0 + 0.2 + 0.4 + 0.9 + 0.9) / 5)
    assert {r["study"] for r in per_truth} == {"a", "b"} and len(per_truth) == 10
    with pytest.raises(InputError, match="given twice"):
        pool([a, a])
    c = tmp_path / "c"
    _write_truths(c, [_truth(0, "z", 0.3, True, 0.5)])
    with pytest.raises(InputError, match="different parameters"):
        pool([a, c])
    d = tmp_path / "d"
    _write_truths(d, [_truth(i, n, 0.1 * i + (n == "y"), True, 0.5) for i in range(3) for n in ("x", "y")])
    with pytest.raises(InputError, match="earlier study"):
        pool([a, d])
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "truths.csv").write_text("truth_index,parameter,truth\n0,x,0.1\n")
    with pytest.raises(InputError, match=r"p5.*missing"):
        pool([tmp_path / "e"])


def test_the_uniform_quantile_test_tells_calibrated_truths_from_piled_ones():
    """Quantiles spread evenly over (0, 1) are what a calibrated method gives: the Kolmogorov-Smirnov p is near
    1. Twenty truths all at their posterior's median (too-wide posteriors), or all below their 20% point (a
    biased one), are all inside or mostly so, yet the shape test rejects both (p < 0.001)."""
    even = [_truth(i, "a", i, True, (i + 0.5) / 20) for i in range(20)]
    middle = [_truth(i, "b", i, True, 0.5) for i in range(20)]
    low = [_truth(i, "c", i, True, 0.01 * i) for i in range(20)]
    a, b, c = coverage_rows(["a", "b", "c"], even + middle + low)
    assert a["rank_uniform_p"] > 0.99
    assert b["rank_uniform_p"] < 1e-3 and c["rank_uniform_p"] < 1e-3


def test_the_pool_command_writes_the_pooled_tables_and_refuses_bad_folders_in_one_line(tmp_path, capsys):
    from egovsim.analysis.calibration.coverage import main

    a, b = tmp_path / "a", tmp_path / "b"
    _write_truths(a, [_truth(i, "x", 0.1 * i, True, 0.1 * i) for i in range(3)])
    _write_truths(b, [_truth(i, "x", 0.5 + 0.1 * i, False, 0.99) for i in range(2)])
    assert main(["--pool", str(a), str(b), "--out", str(tmp_path / "pooled")]) == 0
    written = list(csv.DictReader((tmp_path / "pooled" / "coverage.csv").read_text().splitlines()))
    assert (written[0]["truths"], written[0]["inside"]) == ("5", "3")
    assert len(list(csv.DictReader((tmp_path / "pooled" / "truths.csv").read_text().splitlines()))) == 5
    capsys.readouterr()
    for bad in (["--pool", str(tmp_path / "missing")], ["--pool", str(a), "--out", str(a)]):
        assert main([*bad, "--out", str(tmp_path / "o")] if "--out" not in bad else bad) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exited:  # a study and a pool at once: argparse's usage, exit 2
        main(["calibration/config.yaml", "--pool", str(a)])
    assert exited.value.code == 2
