"""`egovsim sensitivity`: the SALib layer applied to the simulator through the experiment runner."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from egovsim.cli import main
from egovsim.folders import OUTPUTS, STORES

from .conftest import ROOT, every_column_described

STUDY = {
    "name": "tiny",
    "scenario": str(ROOT / "scenarios" / "three_provinces.yaml"),
    "scale": 0.001,
    "set": ["end_year=2014"],
    "method": "morris",
    "n": 4,
    "replicates": 2,
    "seed": 3,
    "parameters": {
        "provinces.*.policy.infrastructure": {"bounds": [0.0, 3.0]},
        "provinces.*.policy.feedback": {"bounds": [0.0, 1.0]},
        "citizens.q0": {"bounds": [0.1, 0.5]},
    },
    "outcomes": [
        {"name": "access_2013", "outcome": "access_share", "year": 2013},
        {"name": "adopted_mean", "outcome": "adopted_share", "stat": "mean", "period": [2010, 2013]},
    ],
    "time_resolved": {"outcome": "access_share", "years": [2008, 2011, 2013]},
}


def write_study(tmp_path, **changes):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **changes}))
    return path


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("method, index", [("morris", "mu_star"), ("sobol", "ST")])
def test_a_parameter_that_cannot_act_gets_index_zero(tmp_path, method, index):
    """Internet access depends on infrastructure and never on the feedback channel (ODD 7.1), and draws are
    aligned across points, so feedback's index for access is exactly 0 and infrastructure's is not."""
    extra = {"n": 8, "second_order": False} if method == "sobol" else {}
    path = write_study(tmp_path, method=method, **extra)
    out = tmp_path / "out"
    assert main(["sensitivity", str(path), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())  # what ran, whatever the files say later
    assert resolved["end_year"] == 2014 and resolved["provinces"]["hue"]["scale"] == 0.001
    rows = [r for r in read_rows(out / "indices.csv") if r["output"] == "access_2013" and r["index"] == index]
    assert {r["province"] for r in rows} == {"hue", "daklak", "bentre"}
    for r in rows:
        value = float(r["value"])
        if r["parameter"] == "provinces.*.policy.feedback":
            assert value == 0.0
        elif r["parameter"] == "provinces.*.policy.infrastructure":
            assert value > 0.05
    report = (out / "report.md").read_text()
    assert "replicates" in report and "Noise between replicates" in report
    assert (out / "plots" / "heatmap.png").exists() and (out / "time_resolved.csv").exists()


def test_rerun_resumes_every_finished_run(tmp_path):
    path = write_study(tmp_path)
    out = tmp_path / "out"
    assert main(["sensitivity", str(path), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    first = (out / "indices.csv").read_text()
    assert main(["sensitivity", str(path), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["resumed_runs"] == prov["runs"] == 4 * 4 * 2
    assert (out / "indices.csv").read_text() == first
    assert {p.name for p in out.iterdir()} <= OUTPUTS | STORES  # every name a rerun can replace


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"method": "fast"}, "method"),
        ({"parameters": {"citizens.q0": {"bounds": [0.1, 0.5]}}}, "parameters"),
        (
            {"parameters": {"citizens.q00": {"bounds": [0, 1]}, "citizens.p0": {"bounds": [0, 0.1]}}},
            "parameters.citizens.q00",
        ),
        ({"parameters": {"citizens.q0": {"bounds": [0.5, 0.1]}, "citizens.p0": {"bounds": [0, 0.1]}}}, "citizens.q0"),
        ({"outcomes": [{"name": "x", "outcome": "use_shar", "year": 2013}]}, "outcomes[0].outcome"),
        ({"outcomes": [{"name": "x", "outcome": "use_share_12m", "year": 2040}]}, "outcomes[0]"),
        ({"outcomes": [{"name": "x", "outcome": "use_share_12m", "stat": "time_to"}]}, "outcomes[0].level"),
        (
            {"outcomes": [{"name": "x", "outcome": "use_share_12m", "stat": "time_to", "level": 1.5}]},
            "outcomes[0].level",
        ),
        (
            {"outcomes": [{"name": "x", "outcome": "use_share_12m", "stat": "mean", "period": [2013, 2010]}]},
            "outcomes[0].period",
        ),
        ({"time_resolved": {"outcome": "access_share", "years": [2008, 2020]}}, "time_resolved.years"),
        ({"replicates": 0}, "replicates"),
        (  # each range valid alone, some of the sample's points put initial access above its ceiling
            {"parameters": {"access.initial": {"bounds": [0.05, 0.8]}, "access.ceiling": {"bounds": [0.5, 0.95]}}},
            "of the morris sample: access.initial",
        ),
        (
            {"parameters": {"citizens.q0": {"bounds": [0.3, 0.3000000001]}, "citizens.p0": {"bounds": [0, 0.1]}}},
            "parameters.citizens.q0.bounds: [0.3, 0.3000000001] is too narrow",
        ),
        (
            {
                "parameters": {
                    "provinces.*.policy.feedback": {"bounds": [0.0, 2.0]},
                    "citizens.p0": {"bounds": [0, 0.1]},
                }
            },
            "parameters.provinces.*.policy.feedback",
        ),
        (
            {"parameters": {"services.n_procedures": {"bounds": [5, 30]}, "citizens.p0": {"bounds": [0, 0.1]}}},
            "parameters.services.n_procedures",
        ),
        # names become file names (issue 13); counts have upper bounds
        *(
            ({"outcomes": [{"name": name, "outcome": "access_share", "year": 2013}]}, "outcomes[0].name")
            for name in ("../../outside", "/tmp/x", "..", "a b", "x" * 65)
        ),
        ({"name": "../x"}, "name"),
        ({"n": 1.0e300}, "n"),
        ({"n": 2**21}, "n"),
        ({"n": 2**20, "replicates": 2}, "n"),  # 2**20 x (3 + 1) points x 2 replicates: too many runs
        ({"replicates": 1.0e308}, "replicates"),
        ({"num_levels": 10**6}, "num_levels"),
        ({"seed": 2**64}, "seed"),
        ({"scenario": "."}, "scenario"),
        ({"outcomes": [{"name": "x", "outcome": "u" * 10_000, "year": 2013}]}, "outcomes[0].outcome"),
    ],
)
def test_bad_study_file_is_rejected(tmp_path, capsys, changes, field):
    path = write_study(tmp_path, **changes)
    assert main(["sensitivity", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "study.yaml" in err and field in err and len(err) < 400, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_shipped_studies_are_valid():
    from egovsim.analysis.sensitivity import load_study

    for name in ("sobol", "morris"):
        study, base, problem = load_study(ROOT / "experiments" / f"{name}.yaml")
        assert study.method == name and len(problem.names) >= 10 and len(base.provinces) == 3


def test_the_report_warns_of_censoring_small_groups_and_effects_outside_the_outcomes(tmp_path):
    """Adoption never reaches 90% by the end of 2014 (every run censored, counted as the 9 years 2006-2014: said, with the
    count); Ben Tre's ethnic minority is a handful of simulated people at scale 0.001 (warned, with the scale that
    gives 200); the feedback channel cannot move internet access (ODD 7.1; its mu* is exactly 0) but acts on
    trust and reports, so it is listed as without effect on these outcomes, infrastructure is not."""
    outcomes = [
        {"name": "access_2013", "outcome": "access_share", "year": 2013},
        {"name": "years_to_90pct", "outcome": "adopted_share", "stat": "time_to", "level": 0.9},
        {"name": "minority_access", "outcome": "minority_access_share", "year": 2013},
    ]
    path = write_study(tmp_path, outcomes=outcomes, time_resolved=None)
    out = tmp_path / "out"
    assert main(["sensitivity", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "Parameters of the base scenario (those the study does not vary): prior parameters" in report
    runs = STUDY["n"] * (len(STUDY["parameters"]) + 1) * STUDY["replicates"]
    for province in ("hue", "daklak", "bentre"):
        assert f"{province}, years_to_90pct: the level is never reached in {runs} of {runs} runs (100%)" in report
    assert "they count as 9 years (the run's length)" in report
    assert "bentre: minority_access_share rest on" in report and "a scale of at least" in report
    words = every_column_described(out)
    assert "years_to_90pct = adopted_share years from 2006 to rise to 0.9" in words["output"]["meaning"]
    section = report.split("## Parameters without an effect on these outcomes")[1].split("## Plots")[0]
    assert "`provinces.*.policy.feedback`" in section
    assert "`provinces.*.policy.infrastructure`" not in section
    # the ranked indices with 3 significant digits: mu* of a share is often below 0.005, which 2 decimals print as 0
    rows = [r for r in read_rows(out / "indices.csv") if r["province"] == "hue" and r["output"] == "access_2013"]
    top = max((r for r in rows if r["index"] == "mu_star"), key=lambda r: float(r["value"]))
    line = next(x for x in report.splitlines() if x.startswith("- **hue, access_2013**"))
    assert f"`{top['parameter']}` (mu_star {float(top['value']):.3g}, 95% interval +- {float(top['conf']):.3g})" in line


def test_sensitivity_checks_its_study_once(tmp_path, monkeypatch):
    """load_study checks every point of the sample (about a millisecond each): once, before the workers start,
    not again inside the run."""
    import egovsim.analysis.sensitivity as sensitivity

    calls = []
    real = sensitivity.load_study
    monkeypatch.setattr(sensitivity, "load_study", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = write_study(tmp_path, time_resolved=None)
    assert main(["sensitivity", str(path), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 0
    assert len(calls) == 1


def test_second_order_indices_that_are_mostly_noise_are_said_to_be():
    """S2 is estimated far less precisely than S1 and ST: when one in ten or more has an interval wider than itself,
    the report says not to quote them; when nine in ten are resolved it says nothing."""
    from egovsim.analysis.sensitivity import second_order_lines

    def rows(pairs):
        one = {"method": "sobol", "output": "y", "parameter": "a:b"}
        return [{**one, "index": "S2", "value": v, "conf": c} for v, c in pairs] + [
            {**one, "parameter": "a", "index": "S1", "value": 0.5, "conf": 0.9}
        ]

    noisy = second_order_lines(rows([(0.1, 0.3), (0.02, 0.05), (0.3, 0.05)]))
    assert noisy and "2 of 3 have a 95% interval wider than the index and are not near zero" in noisy[-1]
    assert second_order_lines(rows([(0.3, 0.05)] * 9 + [(0.02, 0.03)])) == []  # 1 of 10: resolved enough
    assert second_order_lines(rows([(0.3, 0.05)] * 8 + [(0.02, 0.03)] * 2))  # 2 of 10
    # pairs that do not interact: a true zero has an interval wider than itself at any n, and is no noise
    # (gsa.unreliable's exemption), nor is an index without an interval
    assert second_order_lines(rows([(0.0005, 0.003)] * 9 + [(0.3, 0.02), (0.1, math.nan)])) == []
    assert second_order_lines([{"index": "ST", "value": 0.1, "conf": 0.5}]) == []  # no S2 (Morris, or none asked)
