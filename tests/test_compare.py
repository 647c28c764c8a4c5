"""What-if comparisons: t intervals, paired differences under common random numbers, the command's files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from egovsim import cli
from egovsim.analysis.compare import comparison_rows, pairs, plan_comparison, run_comparison, t_interval
from egovsim.errors import InputError
from egovsim.model.outcomes import COLUMNS
from egovsim.report.tables import SUMMARY_COLUMNS
from egovsim.runner.runner import SerialExecutor

ROOT = Path(__file__).resolve().parents[1]
DAKLAK = ROOT / "scenarios" / "daklak.yaml"
HUE = ROOT / "scenarios" / "hue.yaml"
SMALL = ["end_year=2012"]


def scenario_file(folder: Path, name: str, body: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"extends: {DAKLAK}\nname: {name}\n{body}", encoding="utf-8")
    return path


def test_t_interval_is_students_t_over_finite_values():
    x = np.array([[0.1, 1.0], [0.4, np.nan], [0.35, 3.0], [0.2, 5.0]])
    ci = t_interval(x)
    lo, hi = stats.t.interval(0.95, 3, loc=np.mean(x[:, 0]), scale=stats.sem(x[:, 0]))
    assert ci["n"].tolist() == [4, 3]
    assert ci["ci_low"][0] == pytest.approx(lo) and ci["ci_high"][0] == pytest.approx(hi)
    lo, hi = stats.t.interval(0.95, 2, loc=3.0, scale=stats.sem([1.0, 3.0, 5.0]))
    assert (ci["ci_low"][1], ci["ci_high"][1]) == (pytest.approx(lo), pytest.approx(hi))
    one = t_interval(np.array([[2.0]]))
    assert one["mean"][0] == 2.0 and np.isnan(one["ci_low"][0])  # one replicate: no interval


def test_pairs_put_the_baseline_first():
    assert pairs(["a", "b", "c"], "a") == [("a", "b"), ("a", "c"), ("b", "c")]
    assert pairs(["a", "b", "c"], "c") == [("c", "a"), ("c", "b"), ("a", "b")]


def run_pair(tmp_path, body_b: str, replicates: int = 5):
    a = scenario_file(tmp_path, "status_quo")
    b = scenario_file(tmp_path, "lever", body_b)
    plan = plan_comparison([str(a), str(b)], replicates, overrides=SMALL, scale=0.001)
    _folder, tally, rows = run_comparison(plan, SerialExecutor(), folder=tmp_path / "out", progress=False, plots=False)
    assert not tally.failed and tally.total == 2 * replicates  # different names: every run really ran
    return [r for r in rows if r["kind"] == "difference"], rows


def test_two_identical_scenarios_differ_by_exactly_zero(tmp_path):
    from egovsim.errors import EgovsimWarning

    with pytest.warns(EgovsimWarning, match="are the same scenario"):  # said, so no one reads the zero as a finding
        diffs, _rows = run_pair(tmp_path, "")
    assert len(diffs) == len(SUMMARY_COLUMNS)  # one province, one year (2012)
    for r in diffs:
        if r["n"]:  # outcomes undefined in every replicate (nan) have n = 0
            assert (r["mean"], r["ci_low"], r["ci_high"]) == (0.0, 0.0, 0.0), r


def test_more_infrastructure_spending_gives_an_interval_above_zero(tmp_path):
    diffs, _ = run_pair(tmp_path, "provinces: {daklak: {policy: {infrastructure: 3.0}}}\n")
    access = [r for r in diffs if r["outcome"] == "access_share"]
    assert access and all(r["minus"] == "status_quo" and r["scenario"] == "lever" for r in access)
    assert all(r["ci_low"] > 0 for r in access), access


def test_compare_command_writes_table_report_plots_and_honours_the_baseline(tmp_path, capsys):
    a = scenario_file(tmp_path, "status_quo")
    b = scenario_file(tmp_path, "more_training", "provinces: {daklak: {policy: {training: 3.0}}}\n")
    out = tmp_path / "cmp"
    args = [
        "compare",
        str(a),
        str(b),
        "--replicates",
        "3",
        "--baseline",
        str(b),
        "--scale",
        "0.001",
        "--set",
        "end_year=2012",
        "--executor",
        "serial",
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "difference from more_training" in err and "0 failed" in err
    assert "different sources" not in err  # both run at the priors: the difference is the what-if's
    rows = list(csv.DictReader(io.StringIO((out / "comparison.csv").read_text())))
    diff = [r for r in rows if r["kind"] == "difference"]
    assert {(r["scenario"], r["minus"]) for r in diff} == {("status_quo", "more_training")}
    assert {r["year"] for r in rows} == {"2012"} and {r["n"] for r in rows} <= {"3", "0"}
    report = (out / "report.md").read_text()
    assert "3 times" in report and "95% confidence interval of the mean" in report and "Student t" in report
    assert "5-95% of replicates" in report  # the spread of the effect, beside the interval of its mean
    # p5 and p95 of a difference are the percentiles of the per-replicate differences, read from each
    # replicate's own time series (numpy's default interpolation between the replicates)
    checked = [r for r in diff if r["outcome"] == "adopted_share" and r["province"] == "daklak"]
    assert len(checked) == 1
    for r in checked:
        per = []
        for i in range(3):
            series = [
                list(csv.DictReader((out / "scenarios" / arm / "timeseries" / f"replicate_{i:03d}.csv").open()))
                for arm in ("status_quo", "more_training")
            ]
            at = [next(x for x in rows_ if x["province"] == "daklak" and x["date"] == "2012-07-01") for rows_ in series]
            per.append(float(at[0]["adopted_share"]) - float(at[1]["adopted_share"]))
        assert float(r["p5"]) == pytest.approx(np.percentile(per, 5), abs=1e-9)
        assert float(r["p95"]) == pytest.approx(np.percentile(per, 95), abs=1e-9)
        assert float(r["mean"]) == pytest.approx(np.mean(per), abs=1e-9)
    assert "## status_quo minus more_training" in report and "![supply_index](plots/supply_index.png)" in report
    assert (out / "plots" / "supply_index.png").stat().st_size > 1000
    assert (out / "scenarios" / "status_quo" / "timeseries" / "replicate_000.csv").exists()
    # the same command again resumes everything and rewrites identical results
    before = (out / "comparison.csv").read_bytes()
    assert cli.main(args + ["--no-plots", "--quiet"]) == 0
    assert (out / "comparison.csv").read_bytes() == before


def test_a_what_if_on_other_parameters_than_its_baseline_is_flagged_where_its_difference_is_printed(tmp_path, capsys):
    """The prior Dak Lak against a what-if built on the calibrated one: most of the difference is the change of
    parameters. The warning goes with the difference to the terminal, not only into report.md."""
    whatif = ROOT / "scenarios" / "whatif" / "daklak_local_software.yaml"
    out = tmp_path / "cmp"
    common = ["--replicates", "2", "--scale", "0.001", "--set", "end_year=2008", "--executor", "serial", "--no-plots"]
    assert cli.main(["compare", str(DAKLAK), str(whatif), *common, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "different sources" in line]
    assert len(warning) == 1 and warning[0].startswith("egovsim: warning: the scenarios' parameters come from")
    assert "(daklak: prior parameters" in warning[0] and "| daklak_local_software: posterior medians" in warning[0]
    assert "mix the what-if with the change of parameters" in (out / "report.md").read_text()


def test_compare_rejects_an_unknown_baseline(tmp_path, capsys):
    a, b = scenario_file(tmp_path, "a"), scenario_file(tmp_path, "b")
    assert cli.main(["compare", str(a), str(b), "--baseline", "c.yaml", "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--baseline" in err and "'c.yaml' is not one of" in err


def test_comparison_rows_skip_provinces_a_pair_does_not_share():
    # rows are built only from what both scenarios hold (three provinces vs Dak Lak alone)
    from egovsim.analysis.compare import Arm
    from egovsim.config.scenario import load_scenario

    three = load_scenario(ROOT / "scenarios" / "three_provinces.yaml", SMALL, 0.001)
    one = load_scenario(DAKLAK, SMALL, 0.001)
    rec3 = np.zeros((2, 85, 3, len(COLUMNS)))
    rec1 = np.ones((2, 85, 1, len(COLUMNS)))
    rows = comparison_rows(
        [Arm("three", three, "", rec3, [0, 1]), Arm("one", one, "", rec1, [0, 1])], "three", outcomes=("supply_index",)
    )
    diffs = [r for r in rows if r["kind"] == "difference"]
    assert [(r["province"], r["mean"]) for r in diffs] == [("daklak", 1.0)]


def test_scenarios_with_no_province_in_common_compare_without_a_difference(tmp_path):
    """Dak Lak against Hue: each scenario's values and plots, no difference plot (it was a matplotlib traceback
    from a row of 0 panels) and a report that says why there is no difference."""
    from egovsim.analysis.compare import Arm, difference_plots
    from egovsim.config.scenario import load_scenario

    hue, daklak = load_scenario(HUE, SMALL, 0.001), load_scenario(DAKLAK, SMALL, 0.001)
    arms = [Arm("daklak", daklak, "", np.ones((2, 85, 1, len(COLUMNS))), [0, 1])]
    arms.append(Arm("hue", hue, "", np.ones((2, 85, 1, len(COLUMNS))), [0, 1]))
    assert difference_plots(tmp_path / "plots", arms, "daklak") == []
    out = tmp_path / "cmp"
    args = ["compare", str(DAKLAK), str(HUE), "--replicates", "2", "--scale", "0.001", "--set", "end_year=2008"]
    assert cli.main([*args, "--executor", "serial", "--quiet", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "No province is in both hue and daklak: there is no paired difference" in report
    assert not list((out / "plots").glob("difference_*"))


def test_compare_over_posterior_draws(tmp_path, capsys):
    """--posterior: replicate i of every scenario runs with the i-th posterior draw (and seed i), so the
    spread between replicates now includes parameter uncertainty while differences stay paired."""
    import csv as _csv
    import json as _json

    from egovsim.cli import main as cli_main

    post = tmp_path / "cal"
    post.mkdir()
    (post / "posterior.csv").write_text(
        "citizens.q0,provinces.hue.leader.will_effect,weight\n0.1,0.7,0.5\n0.5,0.9,0.5\n"
    )
    hue = ROOT / "scenarios" / "hue.yaml"
    common = [
        "--replicates",
        "6",
        "--scale",
        "0.001",
        "--set",
        "end_year=2016",
        "--workers",
        "2",
        "--quiet",
        "--no-plots",
    ]
    out = tmp_path / "with"
    assert cli_main(["compare", str(hue), str(hue), "--posterior", str(post), "--out", str(out), *common]) == 0
    prov = _json.loads((out / "provenance.json").read_text())
    draws = prov["posterior_draws"]
    assert len(draws) == 6 and all(d["citizens.q0"] in (0.1, 0.5) for d in draws)
    assert {d["citizens.q0"] for d in draws} == {0.1, 0.5}  # with 6 draws of a 50/50 posterior, seed-fixed
    with open(out / "comparison.csv", newline="") as fh:
        rows = list(_csv.DictReader(fh))
    diffs = [r for r in rows if r["kind"] == "difference"]
    assert diffs and all(float(r["mean"]) == 0 for r in diffs)  # same scenario, same draws: paired exactly
    # a missing posterior is bad input
    assert (
        cli_main(["compare", str(hue), str(hue), "--posterior", str(tmp_path), "--out", str(tmp_path / "x"), *common])
        == 2
    )
    assert "posterior.csv" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["{outside}", "../../outside", "'..'"])
def test_a_scenario_name_cannot_write_outside_the_comparison_folder(tmp_path, capsys, name):
    """compare writes each scenario into <out>/scenarios/<name>: a name that is a path must not lead out."""
    name = name.format(outside=tmp_path / "outside")
    a, b = scenario_file(tmp_path, "a"), tmp_path / "b.yaml"
    b.write_text(f"extends: {DAKLAK}\nname: {name}\n")
    out = tmp_path / "out"
    args = ["compare", str(a), str(b), "--replicates", "2", "--scale", "0.001", "--set", SMALL[0], "--out", str(out)]
    status = cli.main([*args, "--executor", "serial", "--no-plots", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"{b}: name: must be" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml"]  # nothing written, inside or out


@pytest.mark.parametrize("stems", [("..", "x"), (".", "a b"), ("-", "../up")])
def test_labels_from_file_names_are_plain_folder_names(tmp_path, stems):
    """Scenarios with the same name are labelled by file name; the label names a folder of the comparison."""
    from egovsim.analysis.compare import labels_for
    from egovsim.config.scenario import load_scenario
    from egovsim.files import child

    sc = load_scenario(DAKLAK)
    labels = labels_for([sc, sc], [f"{tmp_path}/{stem}.yaml" for stem in stems])
    assert len(set(labels)) == 2
    for label in labels:
        assert child(tmp_path, label).parent == tmp_path and label not in (".", "..")


@pytest.mark.parametrize(
    "content, field",
    [
        (bytes(range(256)) * 8, "--posterior: cannot be read"),  # not text
        (b"citizens.q0,weight\n" + b"x" * 200_000 + b",1\n", "--posterior: cannot be read"),  # beyond csv's field limit
        (b"citizens.q0,weight\n0.1\n", "row 2: 1 cells, but 2 columns"),  # a short row
        (b"citizens.q0,weight\n1e300,1\n", "citizens.q0"),  # a draw the scenario cannot take
    ],
)
def test_a_bad_posterior_is_one_line(tmp_path, capsys, content, field):
    post = tmp_path / "cal"
    post.mkdir()
    (post / "posterior.csv").write_bytes(content)
    a = scenario_file(tmp_path, "a")
    args = ["compare", str(a), str(a), "--posterior", str(post), "--out", str(tmp_path / "out"), "--quiet"]
    assert cli.main([*args, "--replicates", "2", "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "posterior.csv" in err and field in err and len(err) < 400, err
    assert not (tmp_path / "out").exists()


def test_a_comparison_of_one_replicate_is_refused_by_the_library_too(tmp_path):
    """report.md promises t intervals of the mean; one replicate has none (the command line refuses it first)."""
    a = scenario_file(tmp_path, "status_quo")
    with pytest.raises(InputError, match="must be >= 2"):
        plan_comparison([str(a), str(a)], 1, overrides=SMALL, scale=0.001)
