"""Round 9's hostile pass: a lever value given for a run (--set, a sweep's design, a study's or a discovery's
parameters) that the scenario's own dated events set again. Replaced before the first step it would never act,
and is refused in one line; replaced later it holds only until then, which every output says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from egovsim.cli import main
from egovsim.config.scenario import load_scenario, undone_by_events

from .conftest import ROOT

HUE = ROOT / "scenarios" / "calibrated" / "hue.yaml"
THREE = ROOT / "scenarios" / "three_provinces.yaml"
APP = "Hue-S citizen app launched (feedback channel)"  # Hue's event setting feedback at 2019.5


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_the_events_that_set_a_lever_are_found_with_their_dates():
    """Known from the scenario files: Hue's own plan is set by an event at 2006.0 (the start), its feedback by the
    Hue-S launch at 2019.5, the national portal's services at its launch; an event that adds to a lever, or a
    lever no event sets, or a non-lever key, is not listed; an event past the horizon never acts."""
    sc = load_scenario(THREE, scale=0.001)
    found = {
        u.key: u
        for u in undone_by_events(
            sc,
            [
                "provinces.*.policy.own_plan",
                "provinces.*.policy.feedback",
                "provinces.*.policy.training",
                "central.initial.portal_services",
                "central.initial.roadmap_clarity",
                "citizens.q0",
            ],
        )
    }
    assert found["provinces.hue.policy.own_plan"].at_start and found["provinces.hue.policy.own_plan"].date == 2006.0
    assert not found["provinces.daklak.policy.own_plan"].at_start
    assert found["provinces.hue.policy.feedback"].event == APP and found["provinces.hue.policy.feedback"].date == 2019.5
    assert not found["central.initial.portal_services"].at_start
    assert {"provinces.hue.policy.training", "central.initial.roadmap_clarity", "citizens.q0"}.isdisjoint(found)
    short = load_scenario(THREE, ["end_year=2015"], scale=0.001)  # the Hue-S launch is after the horizon
    assert "provinces.hue.policy.feedback" not in {u.key for u in undone_by_events(short, found)}


@pytest.mark.parametrize("command", ["run", "validate", "compare", "serve"])
@pytest.mark.parametrize("key", ["provinces.hue.policy.own_plan", "provinces.*.policy.own_plan"])
def test_a_lever_an_event_replaces_before_the_first_step_is_refused(tmp_path, capsys, command, key):
    args = {
        "run": ["run", str(HUE), "--scale", "0.001", "--out", str(tmp_path / "o"), "--no-plots", "--quiet"],
        "validate": ["validate", str(HUE)],
        "compare": ["compare", str(HUE), str(HUE), "--scale", "0.001", "--out", str(tmp_path / "o"), "--quiet"],
        "serve": ["serve", str(HUE), "--scale", "0.001", "--port", "1"],  # refused before any port is opened
    }[command]
    assert main([*args, "--set", f"{key}=0.5", "--set", "end_year=2010"]) == 2
    err = one_line(capsys)
    assert f"--set {key}" in err and "before the first step" in err and "never act" in err
    assert not (tmp_path / "o").exists()


def test_a_lever_an_event_replaces_later_is_run_and_said_to_hold_only_until_then(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["run", str(HUE), "--scale", "0.001", "--out", str(out), "--no-plots", "--set", "end_year=2021"]
    assert main([*args, "--set", "provinces.hue.policy.feedback=0.1"]) == 0
    err = capsys.readouterr().err
    assert "--set provinces.hue.policy.feedback: the value given holds only until 2019.5" in err and APP in err
    warnings = json.loads((out / "provenance.json").read_text())["warnings"]
    assert len(warnings) == 1 and "until 2019.5" in warnings[0]
    assert main([*args, "--set", "provinces.hue.policy.training=2", "--quiet"]) == 0  # no event sets training
    assert json.loads((out / "provenance.json").read_text())["warnings"] == []


def sweep(tmp_path, design: dict) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "s",
                "scenario": str(HUE),
                "scale": 0.001,
                "set": ["end_year=2021"],
                "replicates": 1,
                "design": design,
                "outcomes": ["supply_index@end"],
            }
        )
    )
    return str(path)


def test_a_sweep_over_a_lever_an_event_replaces_at_once_is_refused(tmp_path, capsys):
    """The hostile pass's sweep over Hue's own plan reported its effect as +0 [+0, +0]."""
    path = sweep(tmp_path, {"grid": {"provinces.hue.policy.own_plan": [0.0, 1.0]}})
    assert main(["sweep", path, "--out", str(tmp_path / "o"), "--executor", "serial", "--quiet"]) == 2
    err = one_line(capsys)
    assert "design.grid.provinces.hue.policy.own_plan" in err and "never act" in err
    assert main(["validate", path]) == 2


def test_a_sweep_over_a_lever_an_event_replaces_later_says_so_in_its_report(tmp_path, capsys):
    path = sweep(tmp_path, {"grid": {"provinces.hue.policy.feedback": [0.0, 1.0]}})
    out = tmp_path / "o"
    assert main(["sweep", path, "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "levers the base scenario's own events set again" in report
    assert "`provinces.hue.policy.feedback`: the value given holds only until 2019.5" in report
    capsys.readouterr()
    assert main(["validate", path]) == 0
    assert "holds only until 2019.5" in capsys.readouterr().err


def test_a_study_and_a_discovery_refuse_a_parameter_replaced_at_once_but_not_a_lever_mix(tmp_path, capsys):
    """A study's or discovery's parameter sets the initial value, which Hue's event replaces at 2006.0: refused. A
    discovery's levers come by an event of their own, fired after the province's events of the same date, so a
    mix of Hue's own plan from the start acts (check_not_undone refuses events after it)."""
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "scenario": str(HUE),
                "scale": 0.001,
                "set": ["end_year=2012"],
                "method": "morris",
                "n": 2,
                "parameters": {
                    "provinces.hue.policy.own_plan": {"bounds": [0.0, 1.0]},
                    "citizens.q0": {"bounds": [0.1, 0.5]},
                },
                "outcomes": [{"name": "a", "outcome": "adopted_share", "year": 2011}],
            }
        )
    )
    assert main(["validate", str(study)]) == 2
    assert "parameters.provinces.hue.policy.own_plan" in one_line(capsys)
    disc = {
        "name": "d",
        "scenario": str(HUE),
        "scale": 0.001,
        "set": ["end_year=2012"],
        "province": "hue",
        "n": 10,
        "levers": {"own_plan": [0.0, 1.0], "training": [0.0, 2.0]},
        "outcomes": {"a": "adopted_share@2011"},
        "case": "a >= 0.1",
    }
    path = tmp_path / "disc.yaml"
    path.write_text(yaml.safe_dump(disc))
    assert main(["validate", str(path)]) == 0
    del disc["levers"]["own_plan"]
    path.write_text(yaml.safe_dump({**disc, "parameters": {"provinces.hue.policy.own_plan": {"bounds": [0.0, 1.0]}}}))
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    assert "parameters.provinces.hue.policy.own_plan" in one_line(capsys)


def test_a_mix_of_its_own_from_the_start_wins_over_the_province_s_event_of_that_date():
    """What the discovery above relies on: the mix's event fires after Hue's own plan event of 2006.0."""
    from egovsim.analysis.levers import lever_values
    from egovsim.config.analysis import DiscoveryFile
    from egovsim.config.scenario import apply_values
    from egovsim.model.model import EGovModel

    base = load_scenario(HUE, ["end_year=2007"], scale=0.001)
    head = DiscoveryFile(
        scenario=str(HUE), province="hue", levers={"own_plan": [0.0, 1.0]}, outcomes={"a": "x"}, n=10, case="a >= 0"
    )
    model = EGovModel(apply_values(base, lever_values(head, base, {"own_plan": 0.25})), 1, collect=False)
    assert model.leaders[0].policy.own_plan == 0.25


@pytest.mark.parametrize(
    "scenario, key, said",
    [  # a wildcard replaced at once in Hue only; a merger taking another's policy; a budget hold's own event
        ("three_provinces.yaml", "provinces.*.policy.own_plan=0.5", "provinces.daklak.policy.own_plan: the value"),
        ("reorganised_2025.yaml", "provinces.bentre.policy.training=2.5", "until 2025.5, when the scenario's merger"),
        ("whatif/daklak_teams_instead_of_software.yaml", "provinces.daklak.policy.software=1.5", None),
    ],
)
def test_what_the_scenario_sets_again_is_warned_of_not_refused(capsys, scenario, key, said):
    assert main(["validate", str(ROOT / "scenarios" / scenario), "--set", key]) == 0
    err = capsys.readouterr().err
    if said is None:  # the hold is computed from the levers given (model/costs.py): they act through it
        assert "holds only until" not in err and "never act" not in err
    else:
        assert said in err


def test_time_to_a_level_from_above_counts_the_first_step_at_or_below_it():
    """A falling outcome (informal payments under enforcement) reaches a level from above: `direction: down`.
    Counted as `up` it was 'never reached' where the outcome stayed below the level all along, and reached at once
    where it started above. Known answer: a series falling by 0.01 a month from 0.30 is first at or below 0.15
    after 15 months."""
    import numpy as np

    from egovsim.config.analysis import OutcomeStat, evaluate
    from egovsim.errors import InputError
    from egovsim.model.outcomes import COL

    sc = load_scenario(THREE, ["end_year=2008"], scale=0.001)
    records = np.zeros((sc.n_steps + 1, len(sc.provinces), len(COL)))
    falling = 0.30 - 0.01 * np.arange(sc.n_steps + 1)
    records[:, :, COL["informal_payment_index"]] = falling[:, None]
    records[0, :, COL["informal_payment_index"]] = np.nan  # no dealings before the first step
    down = OutcomeStat("informal_payment_index", stat="time_to", level=0.15, direction="down")
    down.validate("f", "o")
    np.testing.assert_allclose(evaluate(down, records, sc), 15 / 12)
    up = OutcomeStat("informal_payment_index", stat="time_to", level=0.15)
    np.testing.assert_allclose(evaluate(up, records, sc), 1 / 12)  # up: 'reached' at the first finite value
    assert down.label == "informal_payment_index@time_down_to0.15" and up.label == "informal_payment_index@time_to0.15"
    with pytest.raises(InputError, match="does not use direction"):
        OutcomeStat("adopted_share", stat="at", year=2007, direction="down").validate("f", "o")


@pytest.mark.parametrize("key", ["parameters.kind=prior", "parameters.drawn=true", "parameters.fit=x"])
def test_the_record_of_where_the_values_come_from_cannot_be_set(tmp_path, capsys, key):
    """`--set parameters.kind=prior` on a calibrated scenario relabelled its posterior medians as sourced priors."""
    assert main(["run", str(HUE), "--scale", "0.001", "--set", key, "--out", str(tmp_path / "o")]) == 2
    assert f"--set {key.split('=')[0]}" in one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_a_range_is_too_narrow_within_a_millionth_of_its_values():
    from egovsim.config.analysis import spans

    assert spans(0.0, 1e-5) and not spans(0.0, 1e-6)  # below 1 the floor is absolute: a millionth
    assert spans(1000.0, 1000.002) and not spans(1000.0, 1000.0009)  # above 1 it is relative
    assert spans(-2.0, 2.0) and not spans(5.0, 5.0)


def test_a_calibrated_file_draws_only_from_the_posterior_it_was_calibrated_with(tmp_path, capsys):
    """A later fit into the same folder replaced posterior.csv under the earlier fit's medians and label: the
    draws of run --replicates, compare and a sweep are refused in one line; the shipped files record the hash."""
    import shutil

    for folder in ("calibration", "scenarios"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    hue = tmp_path / "scenarios" / "calibrated" / "hue.yaml"
    assert load_scenario(hue).parameters.posterior_sha256  # every shipped calibrated file records it
    tiny = ["--scale", "0.001", "--set", "end_year=2008", "--quiet", "--executor", "serial"]
    assert main(["run", str(hue), "--replicates", "2", *tiny, "--out", str(tmp_path / "before")]) == 0
    posterior = tmp_path / "calibration" / "posterior" / "posterior.csv"
    rows = posterior.read_text().splitlines(keepends=True)
    posterior.write_text("".join([rows[0], *rows[2:], rows[1]]))  # another fit's file (here: its rows reordered)
    capsys.readouterr()
    for args in (
        ["run", str(hue), "--replicates", "2", *tiny, "--out", str(tmp_path / "after")],
        ["compare", str(hue), str(hue), *tiny, "--out", str(tmp_path / "cmp")],
        ["serve", str(hue), "--port", "1"],  # the page's Draw control draws from it: refused before any port opens
    ):
        assert main(args) == 2
        err = one_line(capsys)
        assert "parameters.posterior" in err and "is not the posterior this file was calibrated with" in err
    path = sweep(tmp_path, {"grid": {"citizens.q0": [0.3, 0.4]}})
    sweep_file = Path(path)
    sweep_file.write_text(sweep_file.read_text().replace(str(HUE), str(hue)))
    assert main(["validate", path]) == 2
    assert "is not the posterior" in one_line(capsys)
