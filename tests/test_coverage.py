"""Coverage of the calibration method on a model with a known posterior (simulation-based calibration).

The simulator here is a linear function of two parameters plus noise, so the exact posterior is known in form
(a normal likelihood times the uniform prior); each sampler that calibrates egovsim must put the truth inside its
90% credible interval about 90% of the time over truths drawn from the prior (Talts et al. 2018)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

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
    """With one value term per parameter the posterior is a normal around the observation: the toy run adds
    normal noise RUN_NOISE to 5 p0, so 5 p0 ~ N(0.2, hypot(sd, RUN_NOISE)) -> p0 ~ N(0.04, hypot(sd, RUN_NOISE) / 5).
    ABC-SMC's interval must match the exact one."""
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


def _study(folder, rows, seed, settings=None):
    """A finished study's folder, as `egovsim coverage` leaves it: study.json and truths.csv."""
    from egovsim.analysis.calibration.coverage import STUDY, write_tables
    from egovsim.files import write_json

    folder.mkdir(parents=True, exist_ok=True)
    write_tables(folder, [], rows)
    abc_settings = settings or {"population_size": 2000}
    truths = len({r["truth_index"] for r in rows}) or 1
    write_json(folder / STUDY, {"problem_sha256": "p", "abc": abc_settings, "seed": seed, "truths": truths})
    return folder


def _truth(i, name, truth, rank, interval=(0.0, 1.0)):
    p5, p95 = interval
    inside = p5 <= truth <= p95
    return {"truth_index": i, "parameter": name, "truth": truth, "p5": p5, "p95": p95, "inside": inside, "rank": rank}


def test_pooled_studies_count_every_truth_once_and_refuse_mixed_or_repeated_studies(tmp_path):
    """Two studies of 3 and 2 truths pool to 5 per parameter: 4 of 5 inside is 80%, exactly as if one study had
    fitted all five. A study twice, another seed's twin, other parameters or other sampler settings are refused."""
    from egovsim.analysis.calibration.coverage import pool
    from egovsim.errors import InputError

    a = _study(tmp_path / "a", [_truth(i, n, 0.1 * i + 0.05, 0.2 * i, (0.1, 1.0)) for i in range(3) for n in "xy"], 1)
    b = _study(tmp_path / "b", [_truth(i, n, 0.5 + 0.1 * i, 0.9) for i in range(2) for n in "xy"], 10)
    rows, per_truth, record = pool([a, b])
    assert [(r["parameter"], r["truths"], r["inside"], r["coverage"]) for r in rows] == [
        ("x", 5, 4, 0.8),
        ("y", 5, 4, 0.8),
    ]
    assert rows[0]["mean_rank"] == pytest.approx((0 + 0.2 + 0.4 + 0.9 + 0.9) / 5)
    assert {r["study"] for r in per_truth} == {"seed 1", "seed 10"} and len(per_truth) == 10
    assert [s["seed"] for s in record["pool_of"]] == [1, 10]
    with pytest.raises(InputError, match="given twice"):
        pool([a, a])
    for seed in (1, 3):  # the same seed; or fits seeded 4, 5, 6 against a's 2, 3, 4: shared draws
        twin = _study(tmp_path / f"twin{seed}", [_truth(i, n, 0.3 + i, 0.5) for i in range(3) for n in "xy"], seed)
        with pytest.raises(InputError, match="overlap an earlier study"):
            pool([a, twin])
    unfinished = _study(tmp_path / "unfinished", [_truth(0, n, 0.3, 0.5) for n in "xy"], 50)
    (unfinished / "study.json").write_text(
        (unfinished / "study.json").read_text().replace('"truths": 1', '"truths": 20')
    )
    with pytest.raises(InputError, match="1 of its study's 20 truths"):
        pool([a, unfinished])
    for bad in ('"seed": [3]', '"seed": -1', '"seed": true', '"seed": "5"'):
        (unfinished / "study.json").write_text(
            json.dumps({"problem_sha256": "p", "abc": {}, "truths": 1}).replace("{", "{" + bad + ", ", 1)
        )
        with pytest.raises(InputError, match="whole numbers"):
            pool([unfinished])
    other = _study(tmp_path / "c", [_truth(0, "z", 0.3, 0.5)], 30)
    with pytest.raises(InputError, match="different parameters"):
        pool([a, other])
    smaller = _study(tmp_path / "d", [_truth(0, "x", 0.3, 0.5), _truth(0, "y", 0.3, 0.5)], 40, {"population_size": 300})
    with pytest.raises(InputError, match="differs"):
        pool([a, smaller])


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        ("0,x,0.5,0.9,0.1,False,0.3", "p5 <= p95"),  # the interval backwards
        ("0,x,0.5,0.0,1.0,True,7", r"in \[0, 1\]"),  # a quantile of 7
        ("0,x,0.5,0.6,1.0,True,0.3", "contradicts"),  # inside, but below its interval
        ("0,x,0.5,0,1,True,0.3\n0,x,0.5,0,1,True,0.3", "appears twice"),  # one truth counted twice
        ("0,x,nan,0,1,True,0.3", "finite"),
    ],
)
def test_a_truths_table_that_contradicts_itself_is_refused_naming_its_row(tmp_path, row, complaint):
    from egovsim.analysis.calibration.coverage import pool
    from egovsim.errors import InputError

    folder = _study(tmp_path / "s", [], 1)
    (folder / "truths.csv").write_text("truth_index,parameter,truth,p5,p95,inside,rank\n" + row + "\n")
    with pytest.raises(InputError, match=complaint) as refused:
        pool([folder])
    assert refused.value.field.startswith("row ")


def test_a_truths_table_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path):
    from egovsim.analysis.calibration.coverage import pool

    folder = _study(tmp_path / "s", [], 1)
    table = b"\xef\xbb\xbftruth_index,parameter,truth,p5,p95,inside,rank\n0,x,0.5,0,1,TRUE,0.3\n"
    (folder / "truths.csv").write_bytes(table)  # a spreadsheet's BOM and its TRUE
    rows, _, _ = pool([folder])
    assert (rows[0]["truths"], rows[0]["inside"]) == (1, 1)


def test_the_uniform_quantile_test_tells_calibrated_truths_from_piled_ones():
    """Quantiles spread evenly over (0, 1) are what a calibrated method gives: the Kolmogorov-Smirnov p is near
    1. Twenty truths all at their posterior's median (too-wide posteriors), or all below their 20% point (a
    biased one), are all inside or mostly so, yet the shape test rejects both (p < 0.001)."""
    even = [_truth(i, "a", 0.5, (i + 0.5) / 20) for i in range(20)]
    middle = [_truth(i, "b", 0.5, 0.5) for i in range(20)]
    low = [_truth(i, "c", 0.5, 0.01 * i) for i in range(20)]
    a, b, c = coverage_rows(["a", "b", "c"], even + middle + low)
    assert a["rank_uniform_p"] > 0.99
    assert b["rank_uniform_p"] < 1e-3 and c["rank_uniform_p"] < 1e-3


def _egovsim(args, capsys):
    from egovsim.cli import main

    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err.strip()


def test_the_pool_command_writes_the_pooled_tables_whole_and_never_over_a_study_or_the_users_files(tmp_path, capsys):
    a = _study(tmp_path / "a", [_truth(i, "x", 0.1 * i, 0.1 * i) for i in range(3)], 1)
    b = _study(tmp_path / "b", [_truth(i, "x", 0.5 + 0.1 * i, 0.99, (0.0, 0.4)) for i in range(2)], 20)
    (b / "scenario.yaml").write_text("name: the_studies_scenario\n")  # a, written before studies kept it, has none
    pooled = tmp_path / "pooled"
    code, out, _ = _egovsim(["coverage", "--pool", str(a), str(b), "--out", str(pooled), "--quiet"], capsys)
    assert code == 0 and out.strip() == str(pooled)
    assert (pooled / "scenario.yaml").read_text() == "name: the_studies_scenario\n"  # the scenario pooled over
    written = list(csv.DictReader((pooled / "coverage.csv").read_text().splitlines()))
    assert (written[0]["truths"], written[0]["inside"]) == ("5", "3")
    assert len(list(csv.DictReader((pooled / "truths.csv").read_text().splitlines()))) == 5
    assert json.loads((pooled / "provenance.json").read_text())["coverage"]["pool_of"][1]["seed"] == 20
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "coverage.csv").write_text("the user's own table\n")
    before = (a / "truths.csv").read_text()
    for bad in (
        ["--pool", str(a), str(b), "--out", str(mine)],  # over the user's files
        ["--pool", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        ["--pool", str(a), str(pooled), "--out", str(tmp_path / "o")],  # a pool is not a study
        ["--pool", str(a), "--seed", "3", "--out", str(tmp_path / "o")],  # a study's setting, ignored by a pool
        ["--pool", str(a), "--workers", "2", "--out", str(tmp_path / "o")],  # a pool runs nothing
        ["--truths", "2"],  # neither a config nor --pool
    ):
        code, _, err = _egovsim(["coverage", *bad], capsys)
        assert code == 2, bad
        assert err.startswith("egovsim") and "\n" not in err and "Traceback" not in err, err
    assert (a / "truths.csv").read_text() == before and (mine / "coverage.csv").read_text() == "the user's own table\n"
    assert not (tmp_path / "o").exists()


def test_a_study_refuses_another_studys_folder_and_sizes_the_config_would_refuse(tmp_path, capsys):
    """Another seed into a study's folder would continue that study's fits on other data; sizes below the
    config's rules are refused as the config would refuse them; all before any run."""
    toy_problem(tmp_path)  # writes toy.yaml and its base scenario
    config, first = tmp_path / "toy.yaml", tmp_path / "first"
    code, _, err = _egovsim(
        ["coverage", str(config), "--truths", "1", "--population", "6", "--chain-length", "3", "--populations", "8"]
        + ["--workers", "1", "--executor", "serial", "--out", str(first), "--quiet"],
        capsys,
    )
    assert code == 0, err
    study = json.loads((first / "study.json").read_text())
    assert (study["seed"], study["truths"], study["abc"]["population_size"]) == (11, 1, 6)
    assert {"coverage.csv", "truths.csv", "provenance.json", "runs", "scenario.yaml"} <= {
        p.name for p in first.iterdir()
    }
    # the resolved scenario every fit ran, as the calibration's own folder records it
    resolved = yaml.safe_load((first / "scenario.yaml").read_text())
    assert list(resolved["provinces"]) == ["synthetic"] and resolved["end_year"] == 2003  # the toy's base scenario
    table = (first / "truths.csv").read_text()
    sizes = ["--truths", "1", "--population", "6", "--chain-length", "3", "--populations", "8", "--workers", "1"]
    code, _, err = _egovsim(["coverage", str(config), *sizes, "--out", str(first), "--quiet"], capsys)
    assert code == 0 and (first / "truths.csv").read_text() == table, err  # the same study again: replayed, equal
    for bad, complaint in (
        ([*sizes, "--out", str(first), "--seed", "9"], "differ"),  # the one difference: the seed
        (["--truths", "1", "--population", "3"], "population_size"),
        (["--truths", "1", "--population", "6", "--chain-length", "4"], "fewer than 2 chains"),
    ):
        code, _, err = _egovsim(["coverage", str(config), "--workers", "1", "--quiet", *bad], capsys)
        assert code == 2 and complaint in err and "\n" not in err, err
    # a pool into a study's folder: refused as another command's, the study's table untouched
    code, _, err = _egovsim(["coverage", "--pool", str(first), "--out", str(first)], capsys)
    assert code == 2 and "not a coverage --pool" in err and (first / "truths.csv").read_text() == table, err


def test_a_coverage_study_refuses_a_fit_that_stopped_before_the_posterior(tmp_path):
    """A tempered posterior is wider than the posterior: counting its intervals would overstate the method's
    coverage (one population of a sharply informed toy stops far above temperature 1)."""
    from egovsim.errors import InputError

    problem = toy_problem(tmp_path, sd=0.005)
    settings = ABCSettings(sampler="smc", population_size=40, chain_length=2, max_populations=1, predictive_draws=0)
    with pytest.raises(InputError, match="stopped before the posterior") as refused:
        coverage(problem, settings, SerialExecutor(), truths=2, seed=3, folder=tmp_path / "sbc", run=toy_run)
    assert refused.value.source == "--populations" and "truth 0" in refused.value.message
