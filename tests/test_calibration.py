"""Calibration: targets read from the observations, loss terms, parameter recovery, the command."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from egovsim.analysis.calibration import (
    NATIONAL,
    OutcomeStat,
    Term,
    load_config,
    make_problem,
    measure_quantities,
    optimize,
)
from egovsim.cli import main
from egovsim.config.scenario import load_scenario, with_values
from egovsim.errors import InputError
from egovsim.folders import OUTPUTS, STORES
from egovsim.model.model import simulate
from egovsim.runner.runner import make_executor, replicate_seeds

from .conftest import BASS, ROOT, every_column_described

CONFIG = ROOT / "calibration" / "config.yaml"
OBS = yaml.safe_load((ROOT / "calibration" / "observations.yaml").read_text())


def obs_entry(ident):
    return next(e for sec in ("targets", "citizen_targets") for e in OBS[sec] if e["id"] == ident)


@pytest.fixture(scope="module")
def shipped():
    config, folder = load_config(CONFIG)
    return config, make_problem(config, folder, str(CONFIG))


def test_value_terms_carry_the_observed_numbers(shipped):
    _, problem = shipped
    by = {(t.target, t.label): t for t in problem.terms}
    mic = obs_entry("mic_index_2017")["values"]
    assert by[("mic_index_2017", "hue 2017")].observed == mic["hue"]
    assert by[("mic_index_2017", "daklak 2017")].observed == mic["daklak"]
    assert ("mic_index_2017", "bentre 2017") not in by  # null in the observations: no term, no guess
    internet = obs_entry("internet_at_home_national")["values"]
    for year, value in internet.items():
        assert by[("internet_at_home", f"{NATIONAL} {year}")].observed == value
    dg = obs_entry("dti_values")["values"][2022]["hue_digital_government_activity"]
    assert by[("dti_digital_government_2022", "hue 2022")].observed == dg


def test_ranks_become_orderings_not_values(shipped):
    _, problem = shipped
    orders = [t for t in problem.terms if t.target.startswith("dti_rank")]
    ranks = obs_entry("dti_2020_2023_ranks")["ranks_of_63"]
    assert len(orders) == 3 and all(t.kind == "at_least" and t.observed is None for t in orders)
    for t in orders:  # the better-ranked province's index minus the next one's must be >= 0
        assert ranks[t.year][t.plus.province] < ranks[t.year][t.minus.province]
    # Ben Tre's MIC 2017 rank (57th, below Daklak's 48th and 0.525): a bound on Ben Tre's own index
    (bound,) = [t for t in problem.terms if t.target == "mic_2017_bentre_below_daklaks_value"]
    assert bound.plus.province == "bentre" and bound.minus is None
    assert bound.score(-0.50)[1] and not bound.score(-0.55)[1]  # scores the term value, -S
    dti = [t for t in problem.terms if t.target == "dti_rank_2022"]
    assert {(t.plus.province, t.minus.province) for t in dti} == {("daklak", "bentre")}


# The publication behind each observation the calibration reads: an index's values and its ranks are entries of
# their own in observations.yaml but one publication a year (MIC's ICT index, the DTI ranking); a new observation
# must be placed here before the test below can pass.
PUBLICATION = {
    "mic_index_2017": "MIC ICT index",
    "mic_index_2019_hue": "MIC ICT index",
    "dti_values": "DTI ranking",
    "dti_2020_2023_ranks": "DTI ranking",
    "internet_at_home_national": "PAPI",
    "papi_egov_2019": "PAPI",
    "national_portal_use": "PAPI",
    "provincial_portal_use_2023": "PAPI",
    "online_submission_2024": "National Committee on Digital Transformation, July 2024",
    "provincial_full_cycle_submissions": "National Committee on Digital Transformation, July 2024",
}


def test_each_observation_enters_the_likelihood_once(shipped):
    """No published figure is used both as a value and as a rank (issue 17): an ordering only joins provinces
    whose value from the same publication and year is not itself a term, and no term is repeated."""
    config, problem = shipped
    observation = {t.name: t.observation for t in config.targets}
    assert {o for o in observation.values() if o} <= set(PUBLICATION), "place each observation in PUBLICATION"
    publication = {name: PUBLICATION.get(o) for name, o in observation.items()}
    fitted = [t for t, f in zip(problem.terms, problem.fitted) if f]
    valued = {(publication[t.target], t.plus.province, t.year) for t in fitted if t.kind == "value"}
    orderings = [t for t in fitted if t.kind == "at_least" and t.minus is not None and publication[t.target]]
    assert orderings  # the ranks of the shipped config are orderings
    for t in orderings:
        for province in (t.plus.province, t.minus.province):
            assert (publication[t.target], province, t.year) not in valued, (t.target, t.label)
    keys = [(t.kind, t.plus.label, t.minus.label if t.minus else "", t.observed) for t in fitted]
    assert len(keys) == len(set(keys))


def test_a_bound_on_one_province_reads_in_the_outcomes_own_units(shipped):
    """Ben Tre's MIC 2017 bound is scored as -S >= -0.525 but reported as it reads: S <= 0.525, the simulated S
    itself (not -S) beside it, and met exactly when S is at most 0.525."""
    from egovsim.analysis.calibration.report import term_table

    _, problem = shipped
    for supply, met in ((0.40, True), (0.60, False)):
        stats = np.full((2, len(problem.quantities)), supply)
        (row,) = [r for r in term_table(problem, stats) if r["target"] == "mic_2017_bentre_below_daklaks_value"]
        assert row["observed"] == "<= 0.525" and row["met"] is met and row["scale"] == 1.0
        assert row["simulated_mean"] == pytest.approx(supply) and row["sd"] > 0


def test_term_scores_are_minus_two_log_likelihood():
    """Each term's loss is -2 log of a normal likelihood relative to its best (hand-computed values)."""
    from scipy.stats import norm

    q = OutcomeStat("supply_index", stat="at", year=2017, province="hue")
    value = Term("t", "hue 2017", "value", q, None, 2017, sd=0.05, weight=1.0, observed=0.7)
    assert value.score(0.75) == (pytest.approx(1.0), True)
    assert value.score(0.85) == (pytest.approx(9.0), False)
    # a range observation [0.1, 0.2] with error sd 0.1: -2 log P(x + e in range) / P(centre + e in range)
    rng = Term("t", "x", "range", q, None, 2017, sd=0.1, weight=2.0, low=0.1, high=0.2)
    inside = lambda x: norm.cdf((0.2 - x) / 0.1) - norm.cdf((0.1 - x) / 0.1)  # noqa: E731
    assert rng.score(0.15) == (pytest.approx(0.0), True)
    assert rng.score(0.4) == (pytest.approx(2 * -2 * math.log(inside(0.4) / inside(0.15))), False)
    assert math.isfinite(rng.score(5.0)[0])  # far outside: large, not infinite or nan
    # an ordering seen with chance Phi(margin / sd): a tie costs 2 log 2, two sd the wrong way -2 log Phi(-2)
    least = Term("t", "x", "at_least", q, q, 2017, sd=0.02, weight=1.0, low=0.0)
    assert least.score(0.0) == (pytest.approx(2 * math.log(2)), True)
    assert least.score(-0.04) == (pytest.approx(-2 * math.log(norm.cdf(-2.0))), False)
    assert least.score(0.2)[0] == pytest.approx(0.0, abs=1e-9)
    assert value.score(math.nan) == (math.inf, False)


def test_national_quantity_is_population_weighted():
    sc = load_scenario(ROOT / "scenarios" / "three_provinces.yaml", scale=0.002)
    sc = with_values(sc, {"end_year": 2018})
    records = simulate(sc, 1)
    q = [OutcomeStat("access_share", stat="at", year=2017, province=p) for p in (*sc.provinces, NATIONAL)]
    values = measure_quantities(records, sc, q)
    pops = np.array([p.population for p in sc.provinces.values()])
    assert values[-1] == pytest.approx((values[:-1] * pops).sum() / pops.sum())


RECOVERY = """\
scenario: {scenario}
observations: ""
scale: 0.2
replicates: 2
seed: 5
parameters:
  citizens.p0: {{bounds: [0.005, 0.08]}}
  citizens.q0: {{bounds: [0.1, 0.9]}}
targets:
{targets}
optimize: {{popsize: 6, max_generations: 12, tol: 0.0}}
abc: {{population_size: 200, chain_length: 10, max_populations: 10}}
"""


def recovery_config(tmp_path, truth: dict) -> str:
    """Synthetic observations: adopted share at several years simulated at known parameters (same seeds)."""
    sc = load_scenario(BASS, scale=0.2)
    sc = with_values(sc, {"steps_per_year": 12, "end_year": 2009, **truth})
    seeds = replicate_seeds(5, 2)
    years = [2001, 2003, 2005, 2007, 2009]
    qs = [OutcomeStat("adopted_share", stat="at", year=y, province="synthetic") for y in years]
    observed = np.mean([measure_quantities(simulate(sc, s), sc, qs) for s in seeds], axis=0)
    targets = "\n".join(
        f"  - {{name: adopted_{y}, type: value, outcome: adopted_share, year: {y}, observed: {v:.6f}, sd: 0.01}}"
        for y, v in zip(years, observed)
    )
    base = tmp_path / "base.yaml"
    base.write_text(f"extends: {BASS}\nsteps_per_year: 12\nend_year: 2009\n")
    path = tmp_path / "recover.yaml"
    path.write_text(RECOVERY.format(scenario=base.name, targets=targets))
    return str(path)


def test_parameter_recovery_with_differential_evolution(tmp_path):
    truth = {"citizens.p0": 0.03, "citizens.q0": 0.45}
    path = recovery_config(tmp_path, truth)
    config, folder = load_config(path)
    problem = make_problem(config, folder, path)
    with make_executor(2, "process") as executor:
        fit = optimize(problem, executor, config.optimize, seed=1)
    widths = problem.bounds[:, 1] - problem.bounds[:, 0]
    errors = np.abs(fit.x - np.array(list(truth.values()))) / widths
    assert np.all(errors < 0.05), f"recovered {fit.x}, relative errors {errors}"
    assert fit.loss < 1.0


def test_calibrate_command_writes_outputs_and_resumes(tmp_path, capsys):
    path = recovery_config(tmp_path, {"citizens.p0": 0.02, "citizens.q0": 0.3})
    out = tmp_path / "fit"
    args = ["calibrate", path, "--out", str(out), "--workers", "2", "--quiet", "--max-runs", "72"]
    assert main(args) == 0
    fit = json.loads((out / "fit.json").read_text())
    assert fit["model_runs"] <= 72 and set(fit["parameters"]) == {"citizens.p0", "citizens.q0"}
    assert all("met" in t and "loss" in t for t in fit["terms"])
    assert (out / "observed_vs_simulated.csv").read_text().count("\n") == 1 + len(fit["terms"])
    assert (out / "plots" / "fit.png").stat().st_size > 0
    calibrated = load_scenario(out / "calibrated" / "synthetic.yaml")
    assert calibrated.citizens.p0 == pytest.approx(fit["parameters"]["citizens.p0"])
    generation = int(np.load(out / "checkpoint.npz")["generation"])
    assert main([*args[:-1], "144"]) == 0  # same folder, larger budget: continues from the checkpoint
    assert int(np.load(out / "checkpoint.npz")["generation"]) > generation
    assert {p.name for p in out.iterdir()} <= OUTPUTS | STORES  # every name a rerun can replace


def test_a_tempered_posterior_is_checked_against_the_stated_errors(tmp_path):
    """abc.temperature widens the likelihood the posterior is of, not the yardstick: fit.json's terms, the
    observed-vs-simulated table and the predictive keep the stated sd (0.01 here), and met is |z| <= 2 on it."""
    path = Path(recovery_config(tmp_path, {"citizens.p0": 0.03, "citizens.q0": 0.45}))
    text = path.read_text().replace("max_populations: 10}", "max_populations: 6, predictive_draws: 4, temperature: 4}")
    path.write_text(text.replace("population_size: 200, chain_length: 10", "population_size: 24, chain_length: 4"))
    out = tmp_path / "fit"
    assert main(["calibrate", str(path), "--method", "abc", "--out", str(out), "--quiet", "--executor", "serial"]) == 0
    fit = json.loads((out / "fit.json").read_text())
    assert fit["temperature"] == 4
    for term in fit["terms"]:
        assert term["sd"] == 0.01
        assert term["met"] == (abs(term["simulated_mean"] - term["observed"]) <= 2 * 0.01 + 1e-12)
    for name in ("observed_vs_simulated.csv", "predictive.csv"):
        assert {float(r["sd"]) for r in csv.DictReader((out / name).open())} == {0.01}, name
    words = every_column_described(out)  # the posterior's parameter columns are the config's
    assert words["citizens.q0"]["files"] == "posterior.csv" and "weights sum to 1" in words["weight"]["meaning"]


def test_the_shipped_posterior_s_dictionary_describes_its_tables():
    every_column_described(ROOT / "calibration" / "posterior")


def test_abc_posterior_concentrates_near_the_truth_and_is_the_same_on_any_executor(tmp_path):
    path = recovery_config(tmp_path, {"citizens.p0": 0.03, "citizens.q0": 0.45})
    out = tmp_path / "fit"
    assert main(["calibrate", path, "--method", "abc", "--out", str(out), "--quiet", "--workers", "2"]) == 0
    fit = json.loads((out / "fit.json").read_text())
    post = fit["posterior"]
    assert post["citizens.p0"]["p5"] <= 0.03 <= post["citizens.p0"]["p95"]
    assert post["citizens.q0"]["p5"] <= 0.45 <= post["citizens.q0"]["p95"]
    assert post["citizens.q0"]["p95"] - post["citizens.q0"]["p5"] < 0.8  # narrower than the prior box
    assert fit["generations"][-1]["temperature"] == 1.0 and fit["chain_effective_sample_size"] > 10
    assert len((out / "posterior.csv").read_text().splitlines()) > 10
    # The same on any executor, for both samplers, checked on small fits of the same problem (no predictive
    # draws): every draw of the smc sampler is made in the calling process, and pyabc's particle tasks draw from
    # their own seeds, so a posterior that depended on which worker ran a run shows here as well.
    small = {
        "smc": "abc: {population_size: 24, chain_length: 4, max_populations: 4, predictive_draws: 0}",
        "pyabc": "abc: {sampler: pyabc, population_size: 8, max_populations: 3, predictive_draws: 0}",
    }
    for sampler, settings in small.items():
        config = tmp_path / f"small-{sampler}.yaml"
        config.write_text(
            Path(path)
            .read_text()
            .replace("abc: {population_size: 200, chain_length: 10, max_populations: 10}", settings)
        )
        posteriors = []
        for name, executor in [
            ("pool", ["--workers", "2"]),
            ("serial", ["--executor", "serial"]),
            ("dask", ["--executor", "dask", "--workers", "2"]),
        ]:
            out = tmp_path / f"{sampler}-{name}"
            assert main(["calibrate", str(config), "--method", "abc", "--out", str(out), "--quiet", *executor]) == 0
            assert (out / "abc.db").exists() == (sampler == "pyabc")
            posteriors.append((out / "posterior.csv").read_text())
        assert len(posteriors[0].splitlines()) > 5
        assert posteriors[1] == posteriors[0] and posteriors[2] == posteriors[0], sampler


@pytest.mark.parametrize(
    "edit, field",
    [
        ({"parameters": {"citizens.q00": {"bounds": [0, 1]}}}, "parameters.citizens.q00"),
        ({"parameters": {"citizens.q0": {"bounds": [0.5, 0.1]}}}, "parameters.citizens.q0.bounds"),
        # a search box / uniform prior only, as a sweep's hypercube (issue 14)
        ({"parameters": {"citizens.q0": {"bounds": [0.3, 0.1], "dist": "norm"}}}, "parameters.citizens.q0.dist"),
        (
            {
                "targets": [
                    {
                        "name": "x",
                        "type": "value",
                        "outcome": "supply_indx",
                        "year": 2017,
                        "observation": "mic_index_2017",
                    }
                ]
            },
            "targets[0].outcome",
        ),
        (
            {
                "targets": [
                    {"name": "x", "type": "value", "outcome": "supply_index", "year": 2017, "observation": "no_such_id"}
                ]
            },
            "targets[0].observation",
        ),
        ({"replicates": 0}, "replicates"),
        ({"parameters": {"services.n_procedures": {"bounds": [10, 40]}}}, "parameters.services.n_procedures"),
        (
            {"parameters": {"provinces.hue.leader.will_effect": {"bounds": [0.5, 3.0]}}},
            "parameters.provinces.hue.leader.will_effect",
        ),
        (
            {
                "targets": [
                    {
                        "name": "x",
                        "type": "at_least",
                        "outcome": "supply_index",
                        "year": 2017,
                        "provinces": ["hue"],
                        "minus_province": "heu",
                    }
                ]
            },
            "targets[0].minus_province",
        ),
        (
            {"targets": [{"name": "x", "type": "value", "outcome": "supply_index", "year": 2001, "observed": 0.5}]},
            "targets",
        ),
        (
            {
                "targets": [
                    {
                        "name": "x",
                        "type": "value",
                        "outcome": "supply_index",
                        "year": 2031,
                        "observation": "mic_index_2017",
                    }
                ]
            },
            "end_year",
        ),
        # referenced files that are not observations (issue 13)
        ({"observations": "/etc/passwd"}, "/etc/passwd: (top level): expected a mapping of observations"),
        ({"observations": "."}, "observations: "),
        ({"observations": "/dev/zero"}, "observations: /dev/zero: not a regular file"),
        ({"observations": "nowhere.yaml"}, "observations: "),
        ({"observations": "binary.yaml"}, "binary.yaml: cannot be read"),
        ({"observations": "list.yaml"}, "list.yaml: (top level)"),
        ({"observations": "entries.yaml"}, "entries.yaml: targets"),
        ({"scenario": "."}, "scenario: "),
        # counts with upper bounds, names with a pattern
        ({"replicates": 1.0e308}, "replicates"),
        ({"optimize": {"popsize": 10**9}}, "optimize.popsize"),
        ({"abc": {"population_size": 1.0e300}}, "abc.population_size"),
        ({"seed": 2**64}, "seed"),
        (
            {"targets": [{"name": "../x", "type": "value", "outcome": "supply_index", "year": 2017, "observed": 0.5}]},
            "targets[0].name",
        ),
        (
            {"targets": [{"name": "x", "type": "value", "outcome": "supply_index", "year": 10**30, "observed": 0.5}]},
            "targets[0].year",
        ),
        (
            {"targets": [{"name": "x", "type": "value", "outcome": "supply_index", "year": 2017, "observed": 1e300}]},
            "targets[0].observed",
        ),
    ],
)
def test_bad_calibration_config_is_rejected(tmp_path, capsys, edit, field):
    data = yaml.safe_load(CONFIG.read_text())
    data["scenario"] = str(ROOT / "scenarios" / "three_provinces.yaml")
    data["observations"] = str(ROOT / "calibration" / "observations.yaml")
    data.update(edit)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "entries.yaml").write_text("targets: [1, 2]\n")
    assert main(["calibrate", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and len(err) < 400, err
    assert field in err, err
    assert "bad.yaml" in err or err.startswith(f"egovsim: error: {tmp_path / field.split(':')[0]}"), err
    assert not (tmp_path / "o").exists()


def test_observations_copy_keeps_every_source():
    """The project's copy of the observations has a source beside every figure."""
    for section in ("targets", "citizen_targets"):
        for entry in OBS[section]:
            assert entry.get("source"), entry["id"]
    for key, prov in OBS["provinces"].items():
        assert prov.get("population_source"), key


def test_input_errors_survive_a_process_boundary():
    import pickle

    err = pickle.loads(pickle.dumps(InputError("a.yaml", "x.y", "bad")))
    assert str(err) == "a.yaml: x.y: bad"


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short", b"not a zip"])
def test_a_damaged_checkpoint_is_said_once_and_the_fit_starts_afresh(tmp_path, capsys, content):
    from egovsim.analysis.calibration import OptimizeSettings
    from egovsim.runner.runner import SerialExecutor

    path = recovery_config(tmp_path, {"citizens.p0": 0.02, "citizens.q0": 0.3})
    config, folder = load_config(path)
    problem = make_problem(config, folder, path)
    checkpoint = tmp_path / "checkpoint.npz"
    checkpoint.write_bytes(content)
    settings = OptimizeSettings(popsize=4, max_generations=1)
    fit = optimize(problem, SerialExecutor(), settings, seed=1, checkpoint=checkpoint)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"egovsim: warning: {checkpoint}: unreadable checkpoint")
    assert int(np.load(checkpoint)["generation"]) == 1 and np.isfinite(fit.loss)


def test_a_damaged_abc_history_is_kept_aside_and_the_fit_starts_afresh(tmp_path, capsys):
    from egovsim.analysis.calibration import ABCSettings, abc, seeded_sampler
    from egovsim.runner.runner import SerialExecutor

    path = recovery_config(tmp_path, {"citizens.p0": 0.02, "citizens.q0": 0.3})
    config, folder = load_config(path)
    problem = make_problem(config, folder, path)
    db = tmp_path / "abc.db"
    db.write_bytes(b"not a database")
    settings = ABCSettings(population_size=5, max_populations=1)
    fit = abc(problem, settings, db=db, sampler=seeded_sampler(SerialExecutor(), 1), seed=1)
    err = capsys.readouterr().err
    assert f"egovsim: warning: {db}: unreadable ABC history" in err
    assert (tmp_path / "abc.db.unreadable").read_bytes() == b"not a database"
    assert fit.posterior.shape == (5, 2)


def test_install_replaces_the_calibrated_files_as_one_set(tmp_path, monkeypatch, capsys):
    from egovsim.analysis.calibration import report

    target = tmp_path / "calibrated"
    report.install_files(target, {"three.yaml": "old 3", "hue.yaml": "old hue"})
    calls = []

    def killed_after_one(path, text):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        (path.parent.mkdir(parents=True, exist_ok=True), path.write_text(text))

    monkeypatch.setattr(report, "atomic_write", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        report.install_files(target, {"three.yaml": "new 3", "hue.yaml": "new hue"})
    assert {p.name: p.read_text() for p in target.iterdir()} == {"three.yaml": "old 3", "hue.yaml": "old hue"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibrated"]  # nothing staged is left beside it
    monkeypatch.undo()

    (target / "notes.md").write_text("mine")  # a folder holding other files is refused before any fitting
    path = recovery_config(tmp_path, {"citizens.p0": 0.02, "citizens.q0": 0.3})
    assert main(["calibrate", path, "--out", str(tmp_path / "fit"), "--install", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{target}: --install: holds other files" in err
    assert not (tmp_path / "fit").exists()


# ---- through the runner: stored, resumable, failure-isolated, wildcards (issue 14) --------------------------


def test_an_interrupted_fit_resumes_from_its_stored_runs(tmp_path, monkeypatch, capsys):
    from egovsim.runner import runner

    path = recovery_config(tmp_path, {"citizens.p0": 0.02, "citizens.q0": 0.3})
    real = runner.simulate
    calls = []

    def killed_at_21(scenario, seed):
        calls.append(seed)
        if len(calls) == 21:  # Ctrl-C during the first population (24 runs), before any checkpoint
            raise KeyboardInterrupt
        return real(scenario, seed)

    monkeypatch.setattr(runner, "simulate", killed_at_21)
    out = tmp_path / "fit"
    args = ["calibrate", path, "--out", str(out), "--executor", "serial", "--quiet", "--max-runs", "72"]
    assert main(args) == 130
    assert len(list((out / "runs").glob("*.json"))) == 20 and not (out / "checkpoint.npz").exists()
    monkeypatch.setattr(runner, "simulate", lambda scenario, seed: (calls.append(seed), real(scenario, seed))[1])
    calls.clear()
    assert main(args) == 0
    runs = json.loads((out / "fit.json").read_text())["runs"]
    ran = yaml.safe_load((out / "scenario.yaml").read_text())  # as the fit ran it: at the config's scale
    assert ran["end_year"] == 2009 and ran["provinces"]["synthetic"]["scale"] == 0.2
    assert runs["resumed"] == 20 and runs["run_now"] == len(calls) == runs["total"] - 20 and runs["failed"] == 0
    calls.clear()
    whole = tmp_path / "whole"  # the resumed fit is the fit an uninterrupted command makes
    assert main([*args[:3], str(whole), *args[4:]]) == 0
    assert len(calls) == runs["total"]
    assert (
        json.loads((whole / "fit.json").read_text())["parameters"]
        == json.loads((out / "fit.json").read_text())["parameters"]
    )


def test_a_check_of_weight_0_shows_its_misfit_and_adds_nothing_to_the_fit():
    """observed_vs_simulated.csv's loss is each term's own -2 log likelihood: a check (weight 0) 3 sd off shows 9,
    not the 0 it adds to the fit, and its weight says so; the fit's loss counts the fitted terms only."""
    from egovsim.analysis.calibration import term_table
    from egovsim.analysis.calibration.terms import FitProblem, quantities

    hue = OutcomeStat("supply_index", stat="at", year=2017, province="hue")
    bentre = OutcomeStat("supply_index", stat="at", year=2017, province="bentre")
    fitted = Term("a", "hue 2017", "value", hue, None, 2017, sd=0.1, weight=2.0, observed=0.5)
    check = Term("b", "bentre 2017", "value", bentre, None, 2017, sd=0.1, weight=0.0, observed=0.2)
    qs = quantities([fitted, check])
    problem = FitProblem({}, [], np.empty((0, 2)), [], qs, [fitted, check], None)
    stats = np.array([[0.6, 0.5], [0.6, 0.5]])  # two replicates: hue 1 sd above its figure, bentre 3 sd
    rows = {r["target"]: r for r in term_table(problem, stats)}
    assert rows["a"]["loss"] == pytest.approx(1.0) and rows["a"]["weight"] == 2.0 and rows["a"]["in_fit"]
    assert rows["b"]["loss"] == pytest.approx(9.0) and rows["b"]["weight"] == 0.0 and not rows["b"]["in_fit"]
    assert not rows["b"]["met"]
    assert problem.loss(stats) == pytest.approx(2.0)  # weight x misfit of the fitted term only


def test_orderings_met_counts_fitted_orderings_and_is_null_without_one():
    from egovsim.analysis.calibration.report import orderings_met

    check = {"kind": "at_least", "in_fit": False, "met": False}  # a check of weight 0, or held out
    fitted_met, fitted_missed = ({"kind": "at_least", "in_fit": True, "met": m} for m in (True, False))
    value = {"kind": "value", "in_fit": True, "met": False}
    assert orderings_met([check, value]) is None  # nothing to say: no ordering is fitted
    assert orderings_met([check, fitted_met, value]) is True
    assert orderings_met([fitted_met, fitted_missed]) is False


def test_a_failing_run_gives_nan_for_its_terms_and_the_fit_goes_on(tmp_path):
    from egovsim.analysis.calibration import Evaluation, OptimizeSettings, term_table
    from egovsim.runner.runner import SerialExecutor, run_one

    path = recovery_config(tmp_path, {"citizens.p0": 0.02, "citizens.q0": 0.3})
    config, folder = load_config(path)
    problem = make_problem(config, folder, path)

    def failing(scenario, values, seed):  # every run with p0 above 0.05 fails, and replicate 0 of p0 = 0.03
        if values["citizens.p0"] > 0.05 or (values["citizens.p0"] == 0.03 and seed == problem.seeds[0]):
            raise RuntimeError("boom")
        return run_one(scenario, values, seed)

    evaluation = Evaluation(problem, SerialExecutor(), run=failing)
    stats = evaluation.statistics([[0.06, 0.3], [0.03, 0.3], [0.02, 0.3]])
    assert np.isnan(stats[0]).all() and np.isnan(stats[1, 0]).all() and np.isfinite(stats[1, 1:]).all()
    assert np.isfinite(stats[2]).all()
    losses, met = problem.losses(stats[0])
    assert np.isinf(losses).all() and not met.any()  # no run finished: the terms are not met
    assert np.isfinite(problem.loss(stats[1]))  # the replicates that finished are scored
    assert all(math.isnan(row["simulated_mean"]) for row in term_table(problem, stats[0]))
    assert evaluation.tally() == {"total": 6, "run_now": 6, "resumed": 0, "failed": 3}

    settings = OptimizeSettings(popsize=6, max_generations=3, tol=0.0)
    fit = optimize(problem, SerialExecutor(), settings, seed=1, run=failing)
    assert fit.runs["failed"] > 0 and fit.x[0] <= 0.05 and np.isfinite(fit.loss)


def test_a_provinces_wildcard_is_a_calibration_parameter(tmp_path):
    from egovsim.analysis.calibration import calibrated_scenarios, run_vectors
    from egovsim.runner.runner import SerialExecutor

    data = yaml.safe_load(CONFIG.read_text())
    data.update(
        scenario=str(ROOT / "scenarios" / "three_provinces.yaml"),
        observations=str(ROOT / "calibration" / "observations.yaml"),
        scale=0.0005,
        end_year=2017,
        replicates=1,
        parameters={"provinces.*.leader.will_effect": {"bounds": [-1.0, 1.0]}},
        targets=[t for t in data["targets"] if t["name"] == "mic_index_2017"],
    )
    path = tmp_path / "wild.yaml"
    path.write_text(yaml.safe_dump(data))
    config, folder = load_config(path)
    problem = make_problem(config, folder, str(path))
    assert {p.leader.will_effect for p in problem.scenario_at([0.55]).provinces.values()} == {0.55}
    low, high = run_vectors(problem, [[-1.0], [1.0]], SerialExecutor())[0]
    assert np.isfinite(low).all() and np.isfinite(high).all() and not np.array_equal(low, high)
    full = load_scenario(ROOT / "scenarios" / "three_provinces.yaml")
    files = calibrated_scenarios(problem, full, [0.55], "")
    for key in full.provinces:  # every province's own file carries the shared value
        assert yaml.safe_load(files[f"{key}.yaml"])["provinces"][key]["leader"]["will_effect"] == 0.55

    data["parameters"] = {"provinces.*.leader.will_efect": {"bounds": [-1.0, 1.0]}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"parameters\.provinces\.\*\.leader\.will_efect"):
        make_problem(*load_config(path), str(path))


# ---- a normal prior on a free parameter (design-model-v2 3.3) -----------------------------------------------

PRIOR_CONFIG = """scenario: {scenario}
observations: ""
parameters:
  citizens.p0: {{bounds: [0.005, 0.08]}}
  citizens.q0: {{bounds: [0.1, 0.9], prior: "normal(0.6, 0.05)"}}
targets:
  - {{name: ignored, type: value, outcome: adopted_share, year: 2003, observed: 0.5, sd: 0.1, weight: 0}}
optimize: {{popsize: 6, max_generations: 30, tol: 0.0}}
"""


def prior_problem(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(f"extends: {BASS}\nend_year: 2003\n")
    path = tmp_path / "prior.yaml"
    path.write_text(PRIOR_CONFIG.format(scenario=base.name))
    config, folder = load_config(path)
    return make_problem(config, folder, str(path))


def no_run(scenario, values, seed):
    """A run that costs nothing: records of zeros (the only data term has weight 0 anyway)."""
    from egovsim.config.scenario import scenario_from_dict
    from egovsim.model.outcomes import COLUMNS

    sc = scenario_from_dict(scenario)
    records = np.zeros((sc.n_steps + 1, len(sc.provinces), len(COLUMNS)))
    return {"records": records, "error": None, "traceback": None, "wall_time_s": 0.0, "host": "test"}


def test_with_no_data_the_optimiser_estimates_the_prior_mean(tmp_path):
    from egovsim.runner.runner import SerialExecutor

    problem = prior_problem(tmp_path)
    assert problem.priors == [None, (0.6, 0.05)]
    # -2 log prior + const, on the scale of a data term's z^2: one sd off costs 1
    assert problem.prior_penalty([0.01, 0.65]) == pytest.approx(1.0)
    assert problem.prior_penalty([0.07, 0.6]) == 0.0  # a parameter without a prior adds nothing
    config, _ = load_config(tmp_path / "prior.yaml")
    fit = optimize(problem, SerialExecutor(), config.optimize, seed=3, run=no_run)
    assert fit.x[1] == pytest.approx(0.6, abs=0.01)
    assert fit.loss == pytest.approx(((fit.x[1] - 0.6) / 0.05) ** 2)


def _truncated_normal_moments(mean, sd, lo, hi):
    """Mean and sd of a normal truncated to [lo, hi] (Johnson, Kotz & Balakrishnan 1994, eq. 13.134-135)."""
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    a, b = (lo - mean) / sd, (hi - mean) / sd
    Z = Phi(b) - Phi(a)
    m = mean + sd * (phi(a) - phi(b)) / Z
    var = sd**2 * (1 + (a * phi(a) - b * phi(b)) / Z - ((phi(a) - phi(b)) / Z) ** 2)
    return m, math.sqrt(var)


@pytest.mark.parametrize("normal, bounds", [((0.0, 1.0), (-2.5, 2.5)), ((1.0, 0.5), (0.0, 3.0))])
def test_abc_prior_is_the_normal_truncated_to_the_bounds(tmp_path, normal, bounds):
    """ABC-SMC searches a logistic scale; mapped back, its prior is the stated one."""
    from egovsim.analysis.calibration.abcsmc import abc_prior, to_parameters

    problem = prior_problem(tmp_path)
    problem.bounds = np.array([[0.005, 0.08], bounds])
    problem.priors = [None, normal]
    prior = abc_prior(problem)
    np.random.seed(1)
    z = np.column_stack([prior["x0"].rvs(size=40_000), prior["x1"].rvs(size=40_000)])
    uniform, draws = to_parameters(problem, z).T
    assert uniform.min() >= 0.005 and uniform.max() <= 0.08 and np.mean(uniform) == pytest.approx(0.0425, abs=5e-4)
    assert draws.min() >= bounds[0] and draws.max() <= bounds[1]
    mean, sd = _truncated_normal_moments(*normal, *bounds)
    assert np.mean(draws) == pytest.approx(mean, abs=0.02 * normal[1])
    assert np.std(draws) == pytest.approx(sd, rel=0.02)


@pytest.mark.parametrize("prior", ["normal(0)", "normal(0, -1)", "normal(0, 0)", "gamma(1, 2)", "normal(a, 1)", "1"])
def test_a_bad_prior_is_one_line_naming_the_field(tmp_path, capsys, prior):
    data = yaml.safe_load(CONFIG.read_text())
    data["scenario"] = str(ROOT / "scenarios" / "three_provinces.yaml")
    data["observations"] = str(ROOT / "calibration" / "observations.yaml")
    data["parameters"] = {"citizens.q0": {"bounds": [0.1, 0.9], "prior": prior}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["calibrate", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.yaml" in err and "parameters.citizens.q0.prior" in err, err


def test_every_label_of_a_fit_says_what_makes_it_less_than_a_fit_to_all_the_data():
    """The `fit` words of calibrated files (their header, summary.json, every report): a fit to data up to a year,
    and a tempered posterior (stopped before temperature 1), say so; a full fit does not."""
    from egovsim.analysis.calibration.fit import TEMPERED
    from egovsim.analysis.calibration.report import fit_words

    full = {"method": "abc", "model_runs": 80, "loss": 63.0, "targets_met": 7, "targets_in_fit": 11}
    assert fit_words(full) == "abc, 80 model runs, loss 63.000, 7/11 fitted targets met"
    words = fit_words({**full, "fit_until": 2019, "stopped": f"1 populations, temperature 4.15{TEMPERED}"})
    assert "fitted to the data up to 2019 only" in words and "a tempered posterior" in words


def test_a_run_budget_that_stops_differential_evolution_is_named_so(tmp_path):
    """fit.json said 'max generations' when --max-runs allowed only the first population."""
    from egovsim.runner.runner import SerialExecutor

    problem = prior_problem(tmp_path)
    config, _ = load_config(tmp_path / "prior.yaml")
    settings = dataclasses.replace(config.optimize, max_generations=50, tol=0.0)
    per_generation = settings.popsize * len(problem.names) * len(problem.seeds)
    fit = optimize(problem, SerialExecutor(), settings, seed=3, run=no_run, max_runs=3 * per_generation)
    assert fit.stopped == "run budget (2 of 50 generations after the first)", fit.stopped


def test_a_tempered_posterior_is_not_installed_as_the_posterior(tmp_path, capsys):
    """Scenarios run from an install would present it as the posterior: refused in one line, its files (labelled
    tempered) left in the output folder."""
    path = Path(recovery_config(tmp_path, {"citizens.p0": 0.03, "citizens.q0": 0.45}))
    text = path.read_text().replace("max_populations: 10}", "max_populations: 1, predictive_draws: 0}")
    path.write_text(text.replace("population_size: 200, chain_length: 10", "population_size: 24, chain_length: 2"))
    out, target = tmp_path / "fit", tmp_path / "installed"
    args = ["calibrate", str(path), "--method", "abc", "--out", str(out), "--quiet", "--executor", "serial"]
    assert main([*args, "--install", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--install" in err and "stopped before the posterior" in err, err
    assert not target.exists() or not list(target.iterdir())
    written = list((out / "calibrated").glob("*.yaml"))
    assert written and all("a tempered posterior" in f.read_text() for f in written)


def test_a_smaller_budget_given_again_keeps_the_finished_posterior(tmp_path, capsys):
    """Given the same --out with a budget that stops the fit before temperature 1, the fit replaced the finished
    posterior with a tempered one, exit 0: it is refused in one line and the folder's posterior kept."""
    path = Path(recovery_config(tmp_path, {"citizens.p0": 0.03, "citizens.q0": 0.45}))
    text = path.read_text().replace("max_populations: 10}", "max_populations: 15, predictive_draws: 0}")
    path.write_text(text.replace("population_size: 200, chain_length: 10", "population_size: 24, chain_length: 2"))
    out = tmp_path / "fit"
    args = ["calibrate", str(path), "--method", "abc", "--out", str(out), "--quiet", "--executor", "serial"]
    assert main(args) == 0
    fit = json.loads((out / "fit.json").read_text())
    assert "tempered" not in fit["stopped"], fit["stopped"]  # the test needs a finished posterior first
    posterior = (out / "posterior.csv").read_bytes()
    capsys.readouterr()
    assert main([*args, "--max-runs", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds the finished posterior" in err, err
    assert (out / "posterior.csv").read_bytes() == posterior and json.loads((out / "fit.json").read_text()) == fit


def test_measurement_reads_only_the_fields_measuring_scenario_guards():
    """A run is measured on its base scenario unless its values touch what evaluate reads (MEASURED_FIELDS): a
    scenario holding only those fields measures every kind of statistic as the full one does, so a
    behavioural parameter cannot change a measurement by leaving the scenario unvalidated."""
    from types import SimpleNamespace

    from egovsim.config.analysis import OutcomeStat, evaluate, measuring_scenario
    from egovsim.config.outcomes import DERIVED
    from egovsim.config.scenario import load_scenario
    from egovsim.model.outcomes import COLUMNS

    full = load_scenario(ROOT / "scenarios" / "three_provinces.yaml", ["end_year=2012"], scale=0.001)
    bare = SimpleNamespace(
        start_year=full.start_year,
        end_year=full.end_year,
        steps_per_year=full.steps_per_year,
        dt=full.dt,  # 1 / steps_per_year
        provinces={k: SimpleNamespace(population=p.population) for k, p in full.provinces.items()},
    )
    records = np.random.default_rng(0).random((full.n_steps + 1, len(full.provinces), len(COLUMNS)))
    stats = [
        OutcomeStat("adopted_share"),
        OutcomeStat("adopted_share", year=2009, province="national"),
        OutcomeStat("supply_index", stat="mean", period=[2007, 2010], province="hue"),
        OutcomeStat("access_share", stat="final"),
        OutcomeStat("use_share_12m", stat="time_to", level=0.5),
        OutcomeStat("trust_mean", stat="time_to", level=0.3, direction="down", province="bentre"),
        OutcomeStat("urban_rural_use_gap", year=2011, province="national"),
    ]
    for stat in stats:
        np.testing.assert_array_equal(evaluate(stat, records, bare, DERIVED), evaluate(stat, records, full, DERIVED))
    assert measuring_scenario(full, {"citizens.q0": 0.4, "provinces.*.policy.training": 2.0}) is full
    for key, value in (("end_year", 2011), ("provinces.*.population", 10_000), ("provinces.hue.population", 9_000)):
        assert measuring_scenario(full, {key: value}) is not full, key
