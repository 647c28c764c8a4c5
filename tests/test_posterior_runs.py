"""A calibrated scenario carries its posterior: `run --replicates` and `compare` draw from it (replicate i runs
with draw i and seed i), and every output says so."""

from __future__ import annotations

import json

import pytest
import yaml

from egovsim.analysis.calibration.posterior import posterior_draws
from egovsim.cli import main
from egovsim.config.scenario import load_scenario

from .conftest import ROOT

FAST = ["--scale", "0.001", "--set", "end_year=2009", "--quiet", "--no-plots", "--executor", "serial"]
DRAWS = "citizens.q0,provinces.daklak.leader.will_effect,provinces.hue.leader.will_effect,weight\n"


@pytest.fixture
def calibrated(tmp_path):
    """A posterior folder with three particles (one with no weight) and a scenario that names it, in
    another folder, as `egovsim calibrate --install` writes it."""
    post = tmp_path / "calibration" / "posterior"
    post.mkdir(parents=True)
    (post / "posterior.csv").write_text(DRAWS + "0.2,0.5,1.0,1\n0.45,-1.0,1.0,1\n0.9,0.0,0.0,0\n")
    scen = tmp_path / "scenarios" / "calibrated"
    scen.mkdir(parents=True)
    base = yaml.safe_load((ROOT / "scenarios" / "daklak.yaml").read_text())
    base.pop("extends", None)
    path = scen / "daklak.yaml"
    path.write_text(
        f"extends: {ROOT / 'scenarios' / 'daklak.yaml'}\n"
        "parameters: {kind: posterior, calibration: test, posterior: ../../calibration/posterior}\n"
    )
    return path, post


def test_the_posterior_path_is_read_from_the_file_that_names_it(calibrated, tmp_path):
    path, post = calibrated
    elsewhere = tmp_path / "mine" / "whatif.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(f"extends: {path}\nprovinces: {{daklak: {{policy: {{training: 1.5}}}}}}\n")
    assert load_scenario(elsewhere).parameters.posterior == str(post.resolve())


def test_draws_follow_the_weights_and_keep_their_order_whatever_their_number(calibrated):
    _, post = calibrated
    draws = posterior_draws(post, 400, seed=3)
    assert {d["citizens.q0"] for d in draws} == {0.2, 0.45}  # the particle with weight 0 is never drawn
    assert posterior_draws(post, 5, seed=3) == draws[:5]  # replicate i is the same run whatever R


def test_run_replicates_draw_from_the_scenarios_posterior(calibrated, tmp_path):
    path, post = calibrated
    out = tmp_path / "out"
    assert main(["run", str(path), "--replicates", "3", *FAST, "--out", str(out)]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    used = prov["posterior_draws"]
    assert used == posterior_draws(post, 3, load_scenario(path).seed)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["drawn"] and "posterior draws" in summary["parameters"]["label"]
    for i, draw in enumerate(used):  # each replicate is the single run of its draw and seed
        single = tmp_path / f"single{i}"
        seed = prov["seeds"][i]
        sets = [x for k, v in draw.items() if not k.startswith("provinces.hue") for x in ("--set", f"{k}={v}")]
        assert main(["run", str(path), "--seed", str(seed), *sets, *FAST[:-2], "--out", str(single)]) == 0
        replicate = (out / "timeseries" / f"replicate_{i:03d}.csv").read_text()
        assert replicate == (single / "timeseries.csv").read_text()


def test_compare_draws_from_a_shared_posterior_only(calibrated, tmp_path):
    path, post = calibrated
    whatif = tmp_path / "whatif.yaml"
    whatif.write_text(f"extends: {path}\nname: more_training\nprovinces: {{daklak: {{policy: {{training: 2.0}}}}}}\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(path), str(whatif), "--replicates", "2", *FAST, "--out", str(out)]) == 0
    assert "posterior" in (out / "report.md").read_text()
    other = tmp_path / "other"
    other.mkdir()
    (other / "posterior.csv").write_text((post / "posterior.csv").read_text())
    stranger = tmp_path / "stranger.yaml"
    stranger.write_text(f"extends: {path}\nparameters: {{posterior: {other}}}\n")
    out2 = tmp_path / "x"  # two posteriors: no paired draws; each scenario runs at its own values
    assert main(["compare", str(path), str(stranger), "--replicates", "2", *FAST, "--out", str(out2)]) == 0
    rows = [line for line in (out2 / "report.md").read_text().splitlines() if line.startswith("| ")][1:3]
    assert len(rows) == 2 and all("posterior medians (a point)" in row for row in rows), rows


def test_a_design_point_goes_over_a_posterior_draw():
    from egovsim.analysis.sweep import under_point

    draw = {"citizens.q0": 0.2, "provinces.hue.leader.will_effect": 1.0, "provinces.daklak.leader.will_effect": -1.0}
    point = {"provinces.*.leader.will_effect": 0.5}
    assert under_point(draw, point) == {"citizens.q0": 0.2, "provinces.*.leader.will_effect": 0.5}
    assert under_point(draw, {}) == draw


def test_sweep_pairs_posterior_draws_across_its_points(calibrated, tmp_path):
    """A sweep on a calibrated scenario: replicate r of every design point runs with posterior draw r and seed r
    (a draw's value of a parameter the design varies gives way to the design's), and each run is the single run
    of those values."""
    path, post = calibrated
    exp = tmp_path / "sweep.yaml"
    exp.write_text(
        f"name: s\nscenario: {path}\nscale: 0.001\nset: [end_year=2009]\nreplicates: 2\nseed: 11\n"
        "design: {grid: {citizens.q0: [0.3, 0.6], provinces.*.policy.training: [0.5]}}\n"
        "outcomes: [adopted_share@end]\n"
    )
    out = tmp_path / "sw"
    assert main(["sweep", str(exp), "--quiet", "--executor", "serial", "--out", str(out)]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    draws = [{k: v for k, v in d.items() if "hue" not in k} for d in posterior_draws(post, 2, 11)]
    assert prov["posterior_draws"] == draws  # Daklak's scenario has no Hue
    assert "posterior draw r" in (out / "report.md").read_text()
    header, *rows = [line.split(",") for line in (out / "runs.csv").read_text().splitlines()]
    assert header[6:8] == ["citizens.q0", "provinces.*.policy.training"]  # draws are not design columns
    col = header.index("daklak.adopted_share@end")
    for row in rows:
        point, replicate, seed = int(row[1]), int(row[2]), row[3]
        sets = [f"{k}={v}" for k, v in draws[replicate].items() if k != "citizens.q0"]  # q0 is the design's
        sets += [f"citizens.q0={row[6]}", "provinces.*.policy.training=0.5", "end_year=2009"]
        single = tmp_path / f"single-{point}-{replicate}"
        args = ["run", str(path), "--seed", seed, "--scale", "0.001", "--quiet", "--no-plots", "--out", str(single)]
        assert main([*args, *(x for s in sets for x in ("--set", s))]) == 0
        ts = (single / "timeseries.csv").read_text().splitlines()
        last = ts[-1].split(",")
        adopted = float(last[ts[0].split(",").index("adopted_share")])
        assert float(row[col]) == pytest.approx(adopted, rel=1e-9, abs=1e-12), (point, replicate)


def test_a_sweep_refuses_a_point_that_breaks_a_rule_with_a_posterior_draw(calibrated, tmp_path, capsys):
    """Valid alone, invalid together: a ceiling of internet access of 0.2 is fine with the scenario's own
    initial access, and a drawn initial access of 0.25 is fine with its ceiling, but the two break
    access.initial <= access.ceiling: refused in one line, naming the point and the draw, before any run."""
    path, post = calibrated
    (post / "posterior.csv").write_text("access.initial,weight\n0.25,1\n0.24,1\n")
    exp = tmp_path / "sweep.yaml"
    exp.write_text(
        f"name: s\nscenario: {path}\nscale: 0.001\nset: [end_year=2009]\nreplicates: 2\nseed: 11\n"
        "design: {grid: {access.ceiling: [0.9, 0.2]}}\noutcomes: [adopted_share@end]\n"
    )
    out = tmp_path / "sw"
    assert main(["sweep", str(exp), "--quiet", "--executor", "serial", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(exp) in err and "design point 1 with posterior draw 0" in err, err
    assert not list((out / "runs").glob("*.json"))
    assert main(["validate", str(exp)]) == 2  # validate refuses what the sweep refuses
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "design point 1 with posterior draw 0" in err, err
