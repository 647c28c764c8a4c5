"""Round 6's hostile pass: counts on the command line, a Dask address that is not one, plot text from scenario
files, output folders that are links or lie inside another command's folder, --install over a user's files,
outcomes named twice, and what an optimisation recommends when the status quo already does. Bad input gets one
line and exit status 2; nothing a user had is moved, replaced or mixed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from egovsim.analysis.calibration.report import CALIBRATED_BY, check_install
from egovsim.analysis.optimize import Evaluated, status_quo_suffices
from egovsim.cli import build_parser, main
from egovsim.config.scenario import load_scenario
from egovsim.errors import InputError

from .conftest import ROOT

HUE = ROOT / "scenarios" / "hue.yaml"
DAKLAK = ROOT / "scenarios" / "daklak.yaml"
CONFIG = str(ROOT / "calibration" / "config.yaml")
TINY = ["--scale", "0.001", "--set", "end_year=2008", "--quiet", "--no-plots"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---- counts on the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", str(HUE), "--replicates", "1000000000000"], "argument --replicates: must be in 1..100,000"),
        (["run", str(HUE), "--replicates", "100001"], "argument --replicates: must be in 1..100,000"),
        (["run", str(HUE), "--replicates", "2.5"], "argument --replicates: expected a whole number"),
        (["compare", str(HUE), str(HUE), "--replicates", "1"], "argument --replicates: must be in 2..100,000"),
        (["compare", str(HUE), str(HUE), "--replicates", str(10**11)], "argument --replicates: must be in 2..100,000"),
        (["run", str(HUE), "--replicates", "2", "--workers", "100000"], "argument --workers: must be in 1..1,024"),
        (["sweep", "x.yaml", "--workers", "-1"], "argument --workers: must be in 1..1,024"),
    ],
)
def test_a_count_out_of_its_range_is_refused_before_anything_starts(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2 and message in one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_every_command_s_help_renders():
    """argparse %-formats help text: a stray "95% i..." breaks `egovsim --help` with a traceback."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for argv in ([], *([name] for name in commands)):
        proc = subprocess.run([sys.executable, "-m", "egovsim", *argv, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (argv, proc.stderr)
        assert "%%" not in proc.stdout, argv


def test_a_dask_address_that_is_not_one_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(["run", str(HUE), *TINY, "--replicates", "2", "--workers", "1", "--scheduler", "foo", "--out", str(out)])
        == 2
    )
    assert "--scheduler: cannot connect to the Dask scheduler at 'foo'" in one_line(capsys)
    assert not out.exists()


def test_executor_options_on_a_single_run_are_said_to_do_nothing(tmp_path, capsys):
    assert main(["run", str(HUE), *TINY, "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "r")]) == 0
    assert "apply to --replicates" in capsys.readouterr().err


# ---- plot text -----------------------------------------------------------------------------------------------


def test_dollar_signs_in_names_are_plotted_as_text(tmp_path):
    """matplotlib reads $...$ as TeX: "Hue $\\undefined{ $x^" made `run` fail with a parse error."""
    path = tmp_path / "dollar.yaml"
    path.write_text(
        yaml.safe_dump({"extends": str(HUE), "provinces": {"hue": {"name": "Hue $\\undefinedcmd{ $x^ and $5 to $10"}}})
    )
    out = tmp_path / "run"
    assert main(["run", str(path), "--scale", "0.001", "--set", "end_year=2008", "--quiet", "--out", str(out)]) == 0
    assert (out / "plots" / "government.png").stat().st_size > 10_000


# ---- where outputs may go ------------------------------------------------------------------------------------


def test_an_output_folder_that_is_a_link_is_refused_and_the_link_kept(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert main(["run", str(HUE), *TINY, "--out", str(link)]) == 2
    assert "--out: is a symbolic link" in one_line(capsys)
    assert link.is_symlink() and list(real.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]  # nothing staged beside it


@pytest.mark.parametrize("inner", ["nested", "plots/x", "runs"])
def test_an_output_folder_inside_another_command_s_is_refused(tmp_path, capsys, inner):
    outer = tmp_path / "r1"
    assert main(["run", str(HUE), *TINY, "--replicates", "2", "--executor", "serial", "--out", str(outer)]) == 0
    before = sorted(p.relative_to(outer).as_posix() for p in outer.rglob("*"))
    capsys.readouterr()
    assert main(["run", str(HUE), *TINY, "--out", str(outer / inner)]) == 2
    assert f"--out: is inside {outer}, the output folder of `egovsim run" in one_line(capsys)
    assert sorted(p.relative_to(outer).as_posix() for p in outer.rglob("*")) == before
    assert main(["run", str(HUE), *TINY, "--replicates", "2", "--executor", "serial", "--out", str(outer)]) == 0


def test_install_never_replaces_a_file_no_calibration_wrote_without_overwrite(tmp_path, capsys):
    full = load_scenario(ROOT / "scenarios" / "three_provinces.yaml")
    target = tmp_path / "inst"
    target.mkdir()
    (target / "hue.yaml").write_text("# my own Hue scenario\nextends: ../hue.yaml\n")
    out = tmp_path / "fit"
    assert main(["calibrate", CONFIG, "--out", str(out), "--install", str(target), "--executor", "serial"]) == 2
    assert "--install: holds hue.yaml, which no calibration wrote: give --overwrite" in one_line(capsys)
    assert (target / "hue.yaml").read_text().startswith("# my own") and not out.exists()
    check_install(target, full, overwrite=True)  # asked for: allowed
    (target / "hue.yaml").write_text(f"{CALIBRATED_BY} (abc, ...)\nname: hue_calibrated\n")
    check_install(target, full)  # a calibration's own file: replaced as before
    (target / "hue.yaml").unlink()
    (target / "hue.yaml").mkdir()  # not a file at all
    with pytest.raises(InputError, match=r"holds hue\.yaml, which no calibration wrote"):
        check_install(target, full)


@pytest.mark.parametrize("install", ["same", "inside", "holding"])
def test_install_and_out_must_not_overlap(tmp_path, capsys, install):
    out = tmp_path / "fit"
    where = {"same": out, "inside": out / "calibrated", "holding": tmp_path}[install]
    assert main(["calibrate", CONFIG, "--out", str(out), "--install", str(where), "--executor", "serial"]) == 2
    assert "--install: is --out, inside it or holding it" in one_line(capsys)
    assert not out.exists()


# ---- analysis files ------------------------------------------------------------------------------------------


def test_a_study_naming_two_outcomes_alike_is_refused(tmp_path, capsys):
    study = yaml.safe_load((ROOT / "experiments" / "morris.yaml").read_text())
    study["scenario"] = str(ROOT / "scenarios" / study["scenario"].split("/")[-1])
    first = dict(study["outcomes"][0])
    study["outcomes"] = [first, {**study["outcomes"][1], "name": first["name"]}]
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main(["sensitivity", str(path), "--out", str(tmp_path / "o"), "--executor", "serial"]) == 2
    assert f"{path}: outcomes[1]: '{first['name']}' is listed twice" in one_line(capsys)
    assert not (tmp_path / "o").exists()


# ---- what an optimisation recommends -------------------------------------------------------------------------


class Spec:
    """The parts of an optimisation file status_quo_suffices reads: target use >= 0.3 in 80% of draws."""

    def __init__(self, budget=None):
        from egovsim.config.analysis import parse_rule

        self.rule = parse_rule("use >= 0.3", {"use": None}, "f.yaml", "target")
        self.success_share, self.budget = 0.8, budget


def evaluated(use_by_draw: list[list[float]], cost: list[float]) -> Evaluated:
    values = {"use": np.array(use_by_draw, dtype=float)}
    return Evaluated(np.zeros((len(cost), 1)), values, np.array(cost, dtype=float), 0)


@pytest.mark.parametrize(
    ("status_quo_use", "status_quo_cost", "mix_cost", "budget", "expected"),
    [
        ([0.4] * 10, 20.6, 22.3, None, True),  # meets it in every draw, for less: nothing to add
        ([0.4] * 8 + [0.1] * 2, 20.6, 22.3, None, True),  # in 80%, the share asked
        ([0.4] * 7 + [0.1] * 3, 20.6, 22.3, None, False),  # in 70%: the mix is needed
        ([0.4] * 10, 25.0, 22.3, None, False),  # a cheaper mix that meets it is the recommendation
        ([0.4] * 10, 20.6, 22.3, 20.0, False),  # over the budget
    ],
)
def test_the_status_quo_is_recommended_when_it_already_meets_the_target(
    status_quo_use, status_quo_cost, mix_cost, budget, expected
):
    spec = Spec(budget)
    status_quo = evaluated([status_quo_use], [status_quo_cost])
    checked = evaluated([[0.5] * 10], [mix_cost])
    assert status_quo_suffices(spec, status_quo, checked, 0) is expected
    meets_alone = sum(u >= 0.3 for u in status_quo_use) >= 8 and (budget is None or status_quo_cost <= budget)
    assert status_quo_suffices(spec, status_quo, checked, None) is meets_alone  # no mix meets it


def test_a_run_replacing_an_earlier_run_says_so(tmp_path, capsys):
    out = tmp_path / "r"
    loud = [a for a in TINY if a != "--quiet"]
    assert main(["run", str(HUE), *loud, "--seed", "1", "--out", str(out)]) == 0
    assert "was replaced" not in capsys.readouterr().err  # nothing was there
    assert main(["run", str(HUE), *loud, "--seed", "2", "--out", str(out)]) == 0
    assert f"egovsim: the earlier run in {out} was replaced by this one" in capsys.readouterr().err
    assert yaml.safe_load((out / "scenario.yaml").read_text())["seed"] == 2


def test_one_run_of_a_posterior_s_scenario_says_it_is_at_the_medians(tmp_path, capsys):
    """A single run of a calibrated posterior's scenario is a point (the medians), not the predictive median:
    the summary and the page say so; one run of the prior scenario does not claim it."""
    calibrated = ROOT / "scenarios" / "calibrated" / "hue.yaml"
    loud = [a for a in TINY if a not in ("--quiet", "--no-plots")]
    assert main(["run", str(calibrated), *loud, "--no-plots", "--out", str(tmp_path / "c")]) == 0
    assert "one run (seed 20061) at the posterior medians, a point, not the median" in capsys.readouterr().err
    assert (
        "One run. It is at the posterior medians, a point, not the median"
        in (tmp_path / "c" / "report.html").read_text()
    )
    assert main(["run", str(HUE), *loud, "--no-plots", "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "one run (seed " in err and "posterior" not in err
    assert "posterior medians" not in (tmp_path / "p" / "report.html").read_text()


def test_compare_warns_of_intervals_past_what_an_outcome_can_be():
    from egovsim.analysis.compare import impossible_interval_lines

    def row(kind, outcome, low, high):
        return {"kind": kind, "outcome": outcome, "province": "hue", "year": 2020, "ci_low": low, "ci_high": high}

    fine = [
        row("scenario", "use_share_12m", 0.0, 0.3),
        row("difference", "use_share_12m", -0.9, 0.95),  # a difference of shares lies in [-1, 1]
        row("difference", "urban_rural_gap", -1.5, 1.5),  # of gaps (each in [-1, 1]) in [-2, 2]
        row("scenario", "spend", -5.0, 50.0),  # no bound
        row("per_10bn_vnd", "use_share_12m", -3.0, 3.0),  # per cost: no bound
        row("scenario", "use_share_12m", float("nan"), float("nan")),  # one replicate: no interval
    ]
    assert impossible_interval_lines(fine) == []
    bad = [row("scenario", "use_share_12m", -0.000414, 0.00122), row("difference", "supply_index", 0.2, 1.1)]
    (line,) = impossible_interval_lines(fine + bad)
    assert "2 intervals reach past what the outcome can be" in line and "use_share_12m, hue 2020" in line


def test_a_share_of_draws_comes_with_its_exact_interval():
    """30 of 30 draws meeting the target: the exact 95% interval is [0.025^(1/30), 1] (the share at which 30 of
    30 has chance 2.5%); a failed draw (nan) counts in neither the draws nor the successes."""
    spec = Spec()
    ev = evaluated([[0.4] * 30 + [float("nan")], [0.1] * 31], [1.0, 1.0])
    n, low, high = ev.share_interval(spec, 0)
    assert n == 30 and low == pytest.approx(0.025 ** (1 / 30)) and high == 1.0
    n, low, high = ev.share_interval(spec, 1)
    assert n == 31 and low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 31))


def test_morris_indices_are_near_zero_relative_to_their_outcome_not_in_its_units():
    """mu_star is in outcome units: for a use share whose largest mu_star is 0.0148, 0.0079 +- 0.0082 is half the
    top effect with an interval wider than itself (unreliable), not "near zero"; 0.0001 +- 0.0002 is near zero.
    Sobol indices are fractions of variance: 0.005 +- 0.02 is near zero as it stands."""
    from egovsim.analysis.sensitivity import unreliable_rows

    def row(index, parameter, value, conf, output="use_2022"):
        return {"method": "morris" if index == "mu_star" else "sobol", "province": "daklak", "output": output,
                "parameter": parameter, "index": index, "value": value, "conf": conf}  # fmt: skip

    rows = [
        row("mu_star", "training", 0.0148, 0.002),
        row("mu_star", "infrastructure", 0.0079, 0.0082),
        row("mu_star", "feedback", 0.0001, 0.0002),
        row("mu_star", "mandate", 5.0, 1.0, output="years_to_10pct"),  # another outcome, another scale
        row("mu_star", "teams", 0.009, 0.012, output="years_to_10pct"),  # near zero beside 5 years
        row("S1", "training", 0.005, 0.02),
    ]
    assert [r["parameter"] for r in unreliable_rows(rows)] == ["infrastructure"]


def test_a_sweep_says_a_time_to_a_level_left_out_the_runs_that_never_reached_it(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"scenario: {DAKLAK}\nscale: 0.001\nset: [end_year=2008]\n"
        "design: {points: [{citizens.q0: 0.2}, {citizens.q0: 0.4}]}\n"
        "outcomes: [{outcome: adopted_share, stat: time_to, level: 0.99}, access_share@2008]\n"
    )
    assert main(["sweep", str(exp), "--out", str(tmp_path / "sw"), "--executor", "serial", "--quiet"]) == 0
    report = (tmp_path / "sw" / "report.md").read_text()
    assert "**2 run(s) never reached the level (or failed)** and are left out" in report
    assert "understate the time to it" in report
    assert report.count("run(s) have no value") == 0  # the access share is there for every run


def test_a_replicated_run_s_page_names_its_own_files_and_says_what_a_band_of_few_runs_is(tmp_path):
    out = tmp_path / "r"
    assert main(["run", str(HUE), *TINY, "--replicates", "2", "--executor", "serial", "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "With 2 replicates the 5th-95th percentile band is interpolated between a few runs" in page
    assert "timeseries_band.csv (the mean" in page and "timeseries.csv (every outcome" not in page
    assert (out / "timeseries_band.csv").is_file() and not (out / "timeseries.csv").exists()


def test_install_is_checked_against_the_default_output_folder_and_like_an_output_folder(tmp_path, capsys, monkeypatch):
    """Without --out the fit goes to results/calibration-...: --install results would be swapped out at the end,
    the fit inside it. --install is replaced whole like a run's folder, so a link is refused as --out's is."""
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", CONFIG, "--install", "results", "--executor", "serial"]) == 2
    assert "results: --install: is --out, inside it or holding it (results/calibration-optimize-" in one_line(capsys)
    assert list((tmp_path / "results").iterdir()) == []  # the default folder made for it is gone again
    (tmp_path / "real").mkdir()
    (tmp_path / "lnk").symlink_to(tmp_path / "real")
    assert main(["calibrate", CONFIG, "--install", "lnk", "--out", "fit", "--executor", "serial"]) == 2
    assert "lnk: --install: is a symbolic link (to " in one_line(capsys)


def test_an_output_folder_holding_another_command_s_is_refused(tmp_path, capsys):
    """An --out of results/ holding runs would write its command.json there, and every default folder
    (results/<name>-<time>) would then be refused as lying inside it."""
    results = tmp_path / "results"
    assert main(["run", str(HUE), *TINY, "--out", str(results / "r1")]) == 0
    capsys.readouterr()
    args = ["compare", str(HUE), str(HUE), *TINY, "--replicates", "2", "--executor", "serial", "--out", str(results)]
    assert main(args) == 2
    assert f"{results}: --out: holds r1, the output folder of `egovsim run" in one_line(capsys)
    assert sorted(p.name for p in results.iterdir()) == ["r1"]


def test_another_tool_s_command_json_above_does_not_fence_off_the_folders_below(tmp_path, capsys):
    (tmp_path / "command.json").write_text('{"kind": "build", "command": "make all"}')  # not egovsim's record
    assert main(["run", str(HUE), *TINY, "--out", str(tmp_path / "r")]) == 0
