"""The shared vocabulary of analysis files (egovsim.config.analysis): the head keys, ParameterRange and the
outcome statistic with its one parser and one evaluator, as sweeps and sensitivity studies use them."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import yaml

from egovsim.analysis.sensitivity import load_study, outcome_values
from egovsim.analysis.sweep import design_points, load_experiment
from egovsim.cli import main
from egovsim.config.analysis import OutcomeStat, evaluate, parse_outcome
from egovsim.config.scenario import load_scenario
from egovsim.errors import InputError
from egovsim.model.outcomes import COL, COLUMNS

from .conftest import THREE

# ---- the evaluator on a hand-made run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run():
    """Three provinces, two steps a year over four years (rows at 0, 0.5, ..., 4 years after the start):
    adopted_share rises by 0.1 a row in hue, by 0.05 a row in daklak, and stays 0 in bentre."""
    scenario = load_scenario(THREE, ["end_year=2009", "steps_per_year=2"], scale=0.001)
    assert (scenario.start_year, list(scenario.provinces)) == (2006, ["hue", "daklak", "bentre"])
    n = scenario.n_steps + 1
    records = np.zeros((n, 3, len(COLUMNS)))
    k = np.arange(n)
    records[:, 0, COL["adopted_share"]] = k / 10
    records[:, 1, COL["adopted_share"]] = k / 20
    return scenario, records


def stat(text_or_mapping):
    return parse_outcome(text_or_mapping, "test", "x")


def test_the_value_at_a_year_is_the_mid_year_row(run):
    scenario, records = run
    # mid-2007 is row 3 (1.5 years in); @end is mid-2009, row 7, not the last row (8, the end of 2009)
    assert evaluate(stat("adopted_share@2007"), records, scenario).tolist() == pytest.approx([0.3, 0.15, 0.0])
    end = stat("adopted_share@end")
    assert (end.stat, end.year, end.label) == ("at", None, "adopted_share@end")
    assert evaluate(end, records, scenario).tolist() == pytest.approx([0.7, 0.35, 0.0])
    assert evaluate(stat({"outcome": "adopted_share"}), records, scenario).tolist() == pytest.approx([0.7, 0.35, 0])


def test_final_mean_and_one_province(run):
    scenario, records = run
    assert evaluate(stat({"outcome": "adopted_share", "stat": "final"}), records, scenario).tolist() == pytest.approx(
        [0.8, 0.4, 0.0]
    )
    # 2006-2007: from the start of 2006 (row 0) to the end of 2007 (row 4): mean of rows 0..4
    mean = stat({"outcome": "adopted_share", "stat": "mean", "period": [2006, 2007]})
    assert evaluate(mean, records, scenario).tolist() == pytest.approx([0.2, 0.1, 0.0])
    one = stat({"outcome": "adopted_share", "year": 2007, "province": "daklak"})
    assert evaluate(one, records, scenario) == pytest.approx(0.15) and one.label == "adopted_share@2007.daklak"
    national = stat({"outcome": "adopted_share", "year": 2007, "province": "national"})
    weights = np.array([p.population for p in scenario.provinces.values()], dtype=float)
    assert evaluate(national, records, scenario) == pytest.approx(np.dot(weights, [0.3, 0.15, 0.0]) / weights.sum())


def test_time_to_a_level_never_reached_is_censored(run):
    scenario, records = run
    time_to = stat({"outcome": "adopted_share", "stat": "time_to", "level": 0.35})
    hue, daklak, bentre = evaluate(time_to, records, scenario)
    assert (hue, daklak) == pytest.approx((2.0, 3.5)) and math.isnan(bentre)  # nan, not the run's length
    assert math.isnan(
        evaluate(OutcomeStat("adopted_share", "time_to", level=0.35, province="bentre"), records, scenario)
    )
    # the sensitivity study counts it as the run's length (4 years) and marks it censored for its report
    values, censored = outcome_values(records, scenario, time_to)
    assert values.tolist() == pytest.approx([2.0, 3.5, 4.0]) and censored.tolist() == [False, False, True]


@pytest.mark.parametrize(
    "value, field, message",
    [
        ("adopted_share@20x", "x", "expected outcome@year or outcome@end"),
        ("adopted_shar@2010", "x", "did you mean 'adopted_share'?"),
        ({"outcome": "adopted_shar"}, "x.outcome", "did you mean 'adopted_share'?"),
        ({"outcome": "adopted_share", "stat": "time_to"}, "x.level", "needs level"),
        ({"outcome": "adopted_share", "stat": "time_to", "level": 2}, "x.level", "never reaches"),
        ({"outcome": "adopted_share", "stat": "mean", "period": [2010]}, "x.period", "needs period"),
        ({"outcome": "adopted_share", "stat": "mode"}, "x.stat", "expected one of"),
        (3, "x", "expected outcome@year, outcome@end or a mapping"),
    ],
)
def test_bad_outcome_statistics_name_the_field(value, field, message):
    with pytest.raises(InputError) as err:
        stat(value)
    assert err.value.field == field and message in err.value.message


def test_derived_outcomes_are_allowed_where_the_file_names_them(run):
    scenario, records = run
    derived = {"twice_adopted": lambda r: 2 * r[..., COL["adopted_share"]]}
    s = parse_outcome({"outcome": "twice_adopted", "year": 2007}, "test", "x", derived)
    assert evaluate(s, records, scenario, derived).tolist() == pytest.approx([0.6, 0.3, 0.0])
    with pytest.raises(InputError):
        stat({"outcome": "twice_adopted"})


# ---- files using the shared head keys ---------------------------------------------------------------------


def test_a_sweep_file_in_the_shared_vocabulary(tmp_path):
    """outcomes (not outputs) in both forms, a hypercube over ParameterRanges: the same design as the older
    bounds form, and runs.csv columns named after each statistic."""
    head = f"scenario: {THREE}\nscale: 0.0005\nset: [end_year=2009]\nreplicates: 1\nseed: 5\n"
    old = tmp_path / "old.yaml"
    old.write_text(head + "design: {lhs: {n: 3, bounds: {citizens.q0: [0.1, 0.5]}}}\n")
    new = tmp_path / "new.yaml"
    new.write_text(
        head
        + "name: shared\ndescription: the shared keys\n"
        + "design: {lhs: {n: 3, parameters: {citizens.q0: {bounds: [0.1, 0.5], source: prior}}}}\n"
        + "outcomes: [adopted_share@2009, {outcome: supply_index, stat: mean, period: [2008, 2009], name: supply_mean},"
        + " {outcome: access_share, stat: final, province: hue}]\n"
    )
    exp, _ = load_experiment(new)
    assert exp.name == "shared" and design_points(exp) == design_points(load_experiment(old)[0])
    assert [s.label for s in exp.stats] == ["adopted_share@2009", "supply_mean", "access_share@final.hue"]
    out = tmp_path / "out"
    assert main(["sweep", str(new), "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    with open(out / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {"hue.adopted_share@2009", "bentre.supply_mean", "access_share@final.hue"} <= set(rows[0])
    assert all(0 <= float(r["access_share@final.hue"]) <= 1 for r in rows)


@pytest.mark.parametrize(
    "body, field, message",
    [
        ("outputs: [supply_index@end]\noutcomes: [supply_index@end]\n", "outputs", "not both"),
        ("outcomes: [supply_index@2040]\n", "outcomes[0]", "outside"),
        ("outcomes: [{outcome: supply_index, province: hu}]\n", "outcomes[0].province", "did you mean 'hue'?"),
        ("outcomes: [supply_index@end, supply_index@end]\n", "outcomes[1]", "listed twice"),
        ("design: {lhs: {n: 2, parameters: {citizens.q0: {bounds: [0, 1], dist: norm}}}}\n", "design.lhs", "unif"),
        ("design: {lhs: {n: 2, parameters: {citizens.q0: {bounds: [0.5, 0.1]}}}}\n", "design.lhs.parameters", "low"),
        (
            "design: {lhs: {n: 2, parameters: {provinces.*.policy.training: {bounds: [1, 500]}}}}\n",
            "design.lhs.parameters",
            "<=",
        ),
        ("design: {lhs: {n: 2}}\n", "design.lhs", "missing parameters"),
    ],
)
def test_bad_shared_keys_in_a_sweep_name_the_field(tmp_path, capsys, body, field, message):
    path = tmp_path / "exp.yaml"
    design = "" if body.startswith("design") else "design: {grid: {citizens.q0: [0.2]}}\n"
    path.write_text(f"scenario: {THREE}\nscale: 0.0005\nset: [end_year=2009]\n" + design + body)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"egovsim: error: {path}: {field}") and message in err, err


def test_a_study_file_in_the_shared_vocabulary(tmp_path, capsys):
    """No name (the file's), the default of replicates (2), an at-statistic without a year (the end year)."""
    study = {
        "scenario": str(THREE),
        "scale": 0.0005,
        "set": ["end_year=2010"],
        "method": "morris",
        "n": 2,
        "seed": 1,
        "parameters": {"citizens.q0": {"bounds": [0.1, 0.5], "source": "prior"}, "citizens.p0": {"bounds": [0, 0.1]}},
        "outcomes": [{"name": "adopted_end", "outcome": "adopted_share"}],
    }
    path = tmp_path / "my_study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    loaded, _, problem = load_study(path)
    assert (loaded.name, loaded.replicates, loaded.stats[0].year) == ("my_study", 2, None)
    assert list(problem.names) == ["citizens.q0", "citizens.p0"] and loaded.parameters["citizens.q0"].source == "prior"
    for changes, field in [
        ({"outcomes": ["adopted_share@2009"]}, "outcomes[0].name"),
        ({"scale": 2}, "scale"),
        ({"outcomes": [{"name": "a", "outcome": "adopted_share", "province": "x"}]}, "outcomes[0].province"),
    ]:
        path.write_text(yaml.safe_dump({**study, **changes}, sort_keys=False))
        assert main(["sensitivity", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path}: {field}" in err, err
