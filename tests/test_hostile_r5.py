"""Bad input to the newest commands (round 5's hostile pass): discover and optimize files, posterior.csv files,
calibrate's options, mergers with discovery, and where outputs may go. Each gets one line naming the file
and the field, exit status 2, and nothing written; nothing a user had is moved or lost."""

from __future__ import annotations

import csv
import functools
import math

import numpy as np
import pytest

from egovsim.analysis.calibration.posterior import posterior_draws, read_posterior
from egovsim.cli import EXIT_RUNS_FAILED, main
from egovsim.config.analysis import parse_rule
from egovsim.errors import InputError
from egovsim.folders import replaced
from tests.conftest import ROOT
from tests.test_discovery import write_tiny

POSTERIOR = ROOT / "calibration" / "posterior" / "posterior.csv"
CONFIG = str(ROOT / "calibration" / "config.yaml")


def one_error_line(capsys, source: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"egovsim: error: {source}: "), err
    return err


def write_posterior(folder, header: list[str], rows: list[list]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "posterior.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return str(folder)


def shipped() -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(POSTERIOR.open()))
    return header, rows


# ---- posterior.csv --------------------------------------------------------------------------------------------


def test_a_column_named_twice_is_refused(tmp_path):
    folder = write_posterior(tmp_path, ["citizens.p0", "citizens.p0", "weight"], [[0.01, 0.02, 1]])
    with pytest.raises(InputError) as exc:
        read_posterior(folder)
    assert exc.value.field == "citizens.p0" and "more than once" in exc.value.message


@pytest.mark.parametrize("row", [[0.01, 1, 7], [0.01]])
def test_a_row_of_the_wrong_length_is_refused(tmp_path, row):
    folder = write_posterior(tmp_path, ["citizens.p0", "weight"], [[0.02, 1], row])
    with pytest.raises(InputError) as exc:
        read_posterior(folder)
    assert exc.value.field == "row 3" and f"{len(row)} cells, but 2 columns" in exc.value.message


def test_huge_weights_are_relative_weights(tmp_path):
    # two equal weights whose sum overflows: an even draw, not numpy's "probabilities do not sum to 1"
    folder = write_posterior(tmp_path, ["citizens.p0", "weight"], [[0.01, 1e308], [0.02, 1e308], [0.03, 0]])
    names, _, weights = read_posterior(folder)
    assert names == ["citizens.p0"] and weights.tolist() == [0.5, 0.5, 0.0]
    picked = {d["citizens.p0"] for d in posterior_draws(folder, 50, seed=1)}
    assert picked == {0.01, 0.02}


def test_blank_lines_are_skipped(tmp_path):
    (tmp_path / "posterior.csv").write_text("citizens.p0,weight\n0.01,1\n\n0.02,3\n\n")
    _, samples, weights = read_posterior(tmp_path)
    assert samples[:, 0].tolist() == [0.01, 0.02] and weights.tolist() == [0.25, 0.75]


def test_discover_checks_every_drawn_particle_before_any_run(tmp_path, capsys):
    """A particle out of its parameter's range that is not draw 0 failed its runs one by one; now the file is
    refused before any run, naming the column."""
    header, rows = shipped()
    n, seed = 16, 5  # the tiny file's n and seed
    pick = np.random.default_rng(seed).choice(2, size=n, p=[0.5, 0.5])  # posterior_draws' draws
    bad = 1 - pick[0]  # draw 0 is the good particle; a later one the bad
    assert bad in pick[1:]
    p0, weight = header.index("citizens.p0"), header.index("weight")
    two = [list(rows[0]), list(rows[1])]
    two[bad][p0] = "-1"
    for row in two:
        row[weight] = "1"
    folder = write_posterior(tmp_path / "cal", header, two)
    path = write_tiny(tmp_path, **{"resamples: 2": f"resamples: 2\nposterior: {folder}"})
    out = tmp_path / "out"
    assert main(["discover", path, "--out", str(out), "--executor", "serial", "--quiet"]) == 2
    err = one_error_line(capsys, path)
    assert "posterior: " in err and "does not fit the scenario: citizens.p0: must be >= 0.0" in err
    assert not out.exists()


# ---- discover and optimize on a scenario with mergers ------------------------------------------------------------

MERGED = {
    f"scenario: {ROOT / 'scenarios' / 'calibrated' / 'bentre.yaml'}": f"scenario: {ROOT / 'scenarios' / 'reorganised_2025.yaml'}",
    'set: ["end_year=2010"]': 'set: ["end_year=2027"]',
    "levers_from: 2008": "levers_from: 2026",
}


def test_levers_of_a_province_merged_away_are_refused(tmp_path, capsys):
    """Ben Tre takes Vinh Long's policy from mid-2025: its own levers from 2026 would lapse, every point alike."""
    path = write_tiny(tmp_path, **MERGED)
    out = tmp_path / "out"
    assert main(["discover", path, "--out", str(out), "--executor", "serial"]) == 2
    err = one_error_line(capsys, path)
    assert "levers_from: bentre's own levers lapse from 2025.5, when it takes vinhlong's policy" in err
    assert not out.exists()
    # the unit's policy province, or levers set before the merger, are fine
    assert main(["validate", write_tiny(tmp_path, **MERGED, **{"province: bentre": "province: vinhlong"})]) == 0
    assert main(["validate", write_tiny(tmp_path, **{**MERGED, "levers_from: 2008": "levers_from: 2024"})]) == 0


def test_optimize_refuses_levers_that_lapse_too(tmp_path, capsys):
    text = (ROOT / "experiments" / "optimize_bentre.yaml").read_text()
    text = text.replace("../scenarios/calibrated/bentre.yaml", str(ROOT / "scenarios" / "reorganised_2025.yaml"))
    text = text.replace("../calibration/posterior", str(ROOT / "calibration" / "posterior"))
    path = tmp_path / "opt.yaml"
    path.write_text(text)
    assert main(["optimize", str(path), "--out", str(tmp_path / "out"), "--executor", "serial"]) == 2
    assert "levers_from: bentre's own levers lapse" in one_error_line(capsys, str(path))


# ---- rules -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e999", "-1e400"])
def test_a_rule_number_that_overflows_is_refused(number):
    with pytest.raises(InputError) as exc:
        parse_rule(f"use >= {number}", {"use": None}, "f.yaml", "target")
    assert exc.value.field == "target" and "not a finite number" in exc.value.message
    assert parse_rule("use >= 1e3", {"use": None}, "f.yaml", "target")[0].value == 1000.0


# ---- calibrate's options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-runs", "0"], "--max-runs: must be >= 1, got 0"),
        (["--max-runs", "-5"], "--max-runs: must be >= 1, got -5"),
        (["--max-time", "nan"], "--max-time: must be a number of seconds > 0, got nan"),
        (["--max-time", "inf"], "--max-time: must be a number of seconds > 0, got inf"),
        (["--max-time", "0"], "--max-time: must be a number of seconds > 0"),
        (["--fit-until", "1990"], "--fit-until: 1990 is before every fitted target"),
    ],
)
def test_calibrate_budgets_and_fit_until_are_checked_first(tmp_path, capsys, option, message):
    out = tmp_path / "out"
    assert main(["calibrate", CONFIG, "--method", "abc", "--out", str(out), "--executor", "serial", *option]) == 2
    assert message in one_error_line(capsys, CONFIG)
    assert not out.exists()


def test_a_bad_end_year_names_the_calibration_file(tmp_path, capsys):
    text = (ROOT / "calibration" / "config.yaml").read_text().replace("end_year: 2024", "end_year: -5")
    text = text.replace("../scenarios/", str(ROOT / "scenarios") + "/").replace(
        "observations: observations.yaml", f"observations: {ROOT / 'calibration' / 'observations.yaml'}"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    assert f"{path}: end_year: must be >= 1900, got -5" in capsys.readouterr().err  # was "<parameters>: end_year"


def test_install_into_a_file_is_refused_and_the_file_kept(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    out = tmp_path / "out"
    args = ["calibrate", CONFIG, "--method", "abc", "--out", str(out), "--install", str(notes)]
    assert main([*args, "--executor", "serial"]) == 2
    assert "--install: is a file, not a folder" in one_error_line(capsys, str(notes))
    assert notes.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_whole_folder_never_replaces_a_file(tmp_path):
    """The swap of a whole folder exchanges two paths: given a file, it put the file aside under a hidden name."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    with pytest.raises(InputError, match="is a file, not a folder"), replaced(notes) as new:
        (new / "a.yaml").write_text("x: 1\n")
    assert notes.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ---- where outputs go -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["egovsim/analysis/results", "egovsim", "."])
def test_no_output_folder_inside_the_code(tmp_path, capsys, monkeypatch, where):
    monkeypatch.chdir(tmp_path)  # the checkout is then not the working directory (refused for that reason)
    out = (ROOT / where).resolve()
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    assert main(["discover", write_tiny(tmp_path), "--out", str(out), "--executor", "serial"]) == 2
    assert "egovsim's code" in one_error_line(capsys, str(out))
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before


# ---- every run failed ------------------------------------------------------------------------------------------


def _failing(scenario, values, seed):
    return {"records": None, "error": "RuntimeError: broken", "traceback": "", "wall_time_s": 0.0, "host": "h"}


def test_discover_with_every_run_failed_writes_its_report(tmp_path, capsys, monkeypatch):
    """No finished run left no sample to analyse: numpy's ptp of an empty column was a traceback."""
    import egovsim.analysis.discover as discover

    monkeypatch.setattr(discover, "run_many", functools.partial(discover.run_many, run=_failing))
    out = tmp_path / "out"
    assert main(["discover", write_tiny(tmp_path), "--out", str(out), "--executor", "serial", "--quiet"]) == (
        EXIT_RUNS_FAILED
    )
    assert "Traceback" not in capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert "0 sample points" in report and "16 failed" in report
    rows = list(csv.DictReader((out / "sample.csv").open()))
    assert len(rows) == 16 and all(r["case"] == "" and math.isnan(float(r["use_2010"])) for r in rows)
