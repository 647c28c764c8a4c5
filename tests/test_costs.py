"""Lever costs, budgets and budget-neutral what-ifs (docs/design-model-v2.md 4.8, tests 11.4)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from egovsim import cli
from egovsim.config.outcomes import OUTCOMES
from egovsim.config.scenario import CostParams, Policy, load_scenario, with_values
from egovsim.errors import InputError
from egovsim.model.costs import hold_spending_equal, load_with_budgets, software_spending, spending, total_spending
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL

from .conftest import SCENARIOS

HUE = SCENARIOS / "hue.yaml"
DAKLAK = SCENARIOS / "calibrated" / "daklak.yaml"  # the baseline the shipped budget-neutral what-if extends
HELD = SCENARIOS / "whatif" / "daklak_teams_instead_of_software.yaml"
REFERENCE = {  # hue.yaml's own levers back to the reference values (Policy's defaults)
    "provinces.hue.policy.training": 1.0,
    "provinces.hue.policy.infrastructure": 1.0,
    "provinces.hue.policy.monitoring": 0.5,
}
# Hue at reference levers, by hand from the table of design-model-v2 4.8 and Hue's 2017 population
# (1,154,310 people, calibration/observations.yaml provinces.hue.population): bn VND/yr
#   infrastructure 4 x 1.15431 + agency IT 4 x 1.15431 + training 2 x 1.15431
#   + detection 0.2 per 0.01 x 5 (pi = 0.05) x 1.15431 + software 5 + monitoring 3 x 0.5
HUE_REFERENCE_SPEND = 4 * 1.15431 + 4 * 1.15431 + 2 * 1.15431 + 0.2 * 5 * 1.15431 + 5 + 3 * 0.5  # 19.19741


def test_spending_at_reference_levers_is_the_lever_table_for_hue():
    sc = with_values(load_scenario(HUE, scale=0.002), REFERENCE)
    hue = sc.provinces["hue"]
    parts = spending(hue.policy, hue, sc.costs)
    assert sum(parts.values()) == pytest.approx(HUE_REFERENCE_SPEND, abs=1e-9)
    assert parts["penalty"] == 0.0 and parts["community_digital_teams"] == 0.0
    assert software_spending(hue.policy, hue, sc.costs) == pytest.approx(5.0)
    # a platform licence costs platform_cost_ratio x; c_scale multiplies everything
    platform = Policy(software_strategy="platform")
    assert software_spending(platform, hue, CostParams(platform_cost_ratio=1.4)) == pytest.approx(7.0)
    assert total_spending(hue.policy, hue, CostParams(c_scale=2.0)) == pytest.approx(2 * HUE_REFERENCE_SPEND)
    # community teams are priced per rural person: Hue's rural population 1,154,310 x (1 - 0.488)
    teams = Policy(community_digital_teams=1.0, software=0.0, infrastructure=0.0, agency_it=0.0, training=0.0)
    teams = Policy(**{**teams.__dict__, "monitoring": 0.0, "detection_prob": 0.0})
    assert total_spending(teams, hue, CostParams()) == pytest.approx(2 * 1.15431 * 0.512)


def test_the_spend_columns_record_spending_in_force_and_its_sum():
    sc = with_values(load_scenario(HUE, scale=0.002), {**REFERENCE, "end_year": 2019})
    records = simulate(sc, 1)
    spend, total = records[:, 0, COL["spend"]], records[:, 0, COL["spend_cumulative"]]
    assert spend[0] == pytest.approx(HUE_REFERENCE_SPEND) and total[0] == 0.0
    assert total[12] == pytest.approx(HUE_REFERENCE_SPEND)  # one year at reference levers
    assert np.allclose(np.diff(total), spend[1:] / 12)  # row k + 1: spending during step k
    # HueIOC (July 2019: monitoring + the shared operations-centre size) and Hue-S (mid-2019: feedback set to the
    # shared feedback-app size) cost 3 and 1 bn VND/yr per unit (the lever table)
    fx = sc.event_effects
    assert spend[-1] == pytest.approx(HUE_REFERENCE_SPEND + 3 * fx.operations_centre + 1 * fx.feedback_app)


def test_units_are_in_the_meanings_of_the_columns_and_parameters():
    meaning = dict(OUTCOMES)
    assert "bn VND/yr" in meaning["spend"] and "bn VND" in meaning["spend_cumulative"]
    import dataclasses

    for f in dataclasses.fields(CostParams):
        if f.name not in ("c_scale", "platform_cost_ratio"):
            assert "bn VND/yr" in f.metadata["unit"], f.name


HUE_WHATIF = """extends: {base}
name: hue_teams
provinces:
  hue:
    policy: {community_digital_teams: 1.0, agency_it: 1.3}
    events:
      - {date: 2006.0, name: own plan, kind: own_action_plan, source: as in hue.yaml}
      - {date: 2019.5, name: Hue-S, kind: feedback_app, source: as in hue.yaml}
      - {date: 2019.562, name: HueIOC, kind: operations_centre, source: as in hue.yaml}
      - {date: 2020.5, name: more infrastructure, set: {infrastructure: 2.0}, source: what-if}
    budget: {hold: baseline, funded_by: [software, training]}
"""


def whatif(tmp_path, body: str = HUE_WHATIF, name: str = "whatif.yaml"):
    path = tmp_path / name
    path.write_text(body.replace("{base}", str(HUE)), encoding="utf-8")
    return path


def test_holding_spending_equal_gives_the_baselines_spending_at_every_step(tmp_path):
    small = ["end_year=2022"]
    held = load_with_budgets(whatif(tmp_path), small, 0.002)
    base = load_scenario(HUE, small, 0.002)
    b, w = simulate(base, 3)[:, 0], simulate(held, 3)[:, 0]
    assert np.max(np.abs(w[:, COL["spend"]] - b[:, COL["spend"]])) <= 1e-9
    assert np.max(np.abs(w[:, COL["spend_cumulative"]] - b[:, COL["spend_cumulative"]])) <= 1e-9
    # and it is a different policy: the funded levers were cut as the what-if's own spending grew
    rebalanced = [e for e in held.provinces["hue"].events if e.name.startswith("Budget-neutral")]
    assert {e.date for e in rebalanced} == {2006.0, 2019.5, 2019.562, 2020.5}
    factors = [e.set["software"] / 1.0 for e in rebalanced]
    assert all(0 < f < 1 for f in factors) and factors[-1] < factors[0]
    assert all(e.set["training"] == pytest.approx(e.set["software"]) for e in rebalanced)  # common factor (both 1)


def test_hold_spending_equal_as_a_function():
    base = load_scenario(HUE, scale=0.002)
    changed = with_values(base, {"provinces.hue.policy.feedback": 0.5})
    held = hold_spending_equal(base, changed, ["monitoring"])
    first = min((e for e in held.provinces["hue"].events if e.name.startswith("Budget")), key=lambda e: e.date)
    # feedback 0.5 costs 0.5 bn VND/yr (1 bn VND/yr at responsiveness 1), so monitoring (3 bn VND/yr per unit)
    # falls by 0.5 / 3 from the reference 0.5 at the start
    assert base.provinces["hue"].policy.monitoring == 0.5
    assert first.date == 2006.0 and first.set["monitoring"] == pytest.approx(0.5 - 0.5 / 3)
    assert held.provinces["hue"].budget == "baseline"  # resolved: its spending path is the baseline's


@pytest.mark.parametrize(
    "body, problem",
    [
        # a lever that funds the change is itself changed
        ("policy: {training: 2.0}\n    budget: {hold: baseline, funded_by: [training]}", "training is changed"),
        # the other levers already cost more than the baseline's total: a negative factor
        ("policy: {infrastructure: 8.0}\n    budget: {hold: baseline, funded_by: [software]}", "< 0"),
        # monitoring would have to rise above 1 to make up for the cut
        ("policy: {infrastructure: 0.0}\n    budget: {hold: baseline, funded_by: [monitoring]}", "above its range"),
        # levers that cost nothing cannot fund anything
        (
            "policy: {infrastructure: 2.0}\n    budget: {hold: baseline, funded_by: [community_digital_teams]}",
            "nothing",
        ),
    ],
)
def test_infeasible_holds_are_one_line_naming_file_and_field(tmp_path, capsys, body, problem):
    path = whatif(tmp_path, "extends: {base}\nname: bad\nprovinces:\n  hue:\n    " + body + "\n")
    with pytest.raises(InputError) as err:
        load_with_budgets(path, scale=0.002)
    assert err.value.field == "provinces.hue.budget.funded_by" and problem in err.value.message
    assert cli.main(["validate", str(path)]) == 2
    out = capsys.readouterr().err.strip()
    assert len(out.splitlines()) == 1 and str(path) in out and "provinces.hue.budget.funded_by" in out, out


@pytest.mark.parametrize(
    "budget, field",
    [
        ("{hold: baseline, funded_by: [softwares]}", "provinces.hue.budget.funded_by[0]"),
        ("{hold: baseline, funded_by: [penalty]}", "provinces.hue.budget.funded_by[0]"),
        ("{hold: baseline, funded_by: []}", "provinces.hue.budget.funded_by"),
        ("{hold: other, funded_by: [software]}", "provinces.hue.budget.hold"),
        ("-3", "provinces.hue.budget"),
        ("lots", "provinces.hue.budget"),
    ],
)
def test_bad_budgets_are_rejected(tmp_path, capsys, budget, field):
    path = whatif(tmp_path, "extends: {base}\nname: bad\nprovinces:\n  hue:\n    budget: " + budget + "\n")
    assert cli.main(["validate", str(path)]) == 2
    out = capsys.readouterr().err.strip()
    assert len(out.splitlines()) == 1 and f"{path}: {field}" in out, out


def test_a_hold_needs_a_baseline_and_the_model_refuses_an_unresolved_one(tmp_path):
    import yaml

    data = load_scenario(HUE).to_dict()  # a whole scenario in one file, extending nothing
    data["provinces"]["hue"]["budget"] = {"hold": "baseline", "funded_by": ["software"]}
    lone = tmp_path / "lone.yaml"
    lone.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="must extend it"):
        load_with_budgets(lone)
    with pytest.raises(InputError, match="resolved against its baseline"):
        simulate(load_scenario(whatif(tmp_path)))


def test_a_budget_figure_is_reported_beside_simulated_spending(tmp_path):
    from egovsim.report.tables import summary

    path = whatif(tmp_path, "extends: {base}\nname: funded\nprovinces:\n  hue:\n    budget: 40.6\n")
    sc = load_with_budgets(path, ["end_year=2007"], 0.002)
    summ = summary(simulate(sc, 1), sc)
    assert summ["budget_bn_vnd_per_year"] == {"hue": 40.6}
    assert summ["provinces"]["hue"]["end"]["spend"] == pytest.approx(19.19741)  # reference levers, by hand:
    # infrastructure 4 x 1.15431 + agency IT 4 x 1.15431 + software 5 + training 2 x 1.15431 + monitoring 0.5 x 3
    # + detection 5 x 0.2 x 1.15431 (per 0.01 of pi at 0.05)


def test_compare_reports_a_budget_neutral_what_if_as_a_user_runs_it(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(DAKLAK), str(HELD), "--replicates", "2", "--scale", "0.001", "--set", "end_year=2010"]
    assert cli.main([*args, "--executor", "serial", "--no-plots", "--quiet", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO((out / "comparison.csv").read_text())))
    spent = [r for r in rows if r["kind"] == "difference" and r["outcome"] in ("spend", "spend_cumulative")]
    assert spent and all(float(r["mean"]) == 0.0 for r in spent)
    scenario_spend = [float(r["mean"]) for r in rows if r["kind"] == "scenario" and r["outcome"] == "spend_cumulative"]
    assert len(scenario_spend) == 2 and scenario_spend[0] > 0  # both spend, the same
    per = [r for r in rows if r["kind"] == "per_100bn_vnd"]
    assert per and all(math.isnan(float(r["mean"])) for r in per)  # no extra spending to divide by
    report = (out / "report.md").read_text()
    assert "budget-neutral" in report and "costs.*" in report
    # and what was cut: teams in Dak Lak's rural communes cost 2 bn VND/yr per million rural people
    # (1,869,322 x (1 - 0.241) = 1.41882 million), paid from software at 5 bn VND/yr: software x (1 - 2.83765 / 5)
    assert "To hold spending equal" in report and "| 2006.000 | 0.432 |" in report


def test_compare_gives_differences_per_100_bn_vnd_of_extra_spending(tmp_path):
    from egovsim.analysis.compare import plan_comparison, run_comparison
    from egovsim.runner.runner import SerialExecutor

    more = tmp_path / "more.yaml"
    more.write_text(f"extends: {DAKLAK}\nname: more\nprovinces: {{daklak: {{policy: {{infrastructure: 3.0}}}}}}\n")
    plan = plan_comparison([str(DAKLAK), str(more)], 3, overrides=["end_year=2010"], scale=0.001)
    _, _, rows = run_comparison(plan, SerialExecutor(), folder=tmp_path / "out", progress=False, plots=False)
    # infrastructure +2 costs 2 x 4 x 1.869322 bn VND/yr in Dak Lak; by mid-2010, 4.5 years of it
    extra = 2 * 4 * 1.869322 * 4.5
    by = {(r["kind"], r["outcome"]): r for r in rows if r["year"] == 2010 and r["scenario"] == "more"}
    assert by[("difference", "spend_cumulative")]["mean"] == pytest.approx(extra)
    access = by[("difference", "access_share")]["mean"]
    assert access > 0 and by[("per_100bn_vnd", "access_share")]["mean"] == pytest.approx(100 * access / extra)


def test_analyses_refuse_a_budget_hold_they_cannot_resolve(tmp_path):
    from egovsim.config.analysis import AnalysisHead

    with pytest.raises(InputError) as err:
        AnalysisHead(scenario=str(HELD)).base_scenario(tmp_path / "sweep.yaml")
    assert err.value.field == "provinces.daklak.budget" and "baseline" in err.value.message
