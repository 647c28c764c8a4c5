"""Output folders: a run swapped in whole, summary sets that never mix two runs, one command per folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from egovsim.analysis import replicates
from egovsim.cli import main
from egovsim.folders import LOCK, OUTPUTS, STORES, claimed, new_folder
from egovsim.report import plots
from egovsim.runner import runner as experiment

ROOT = Path(__file__).resolve().parents[1]
DAKLAK = ROOT / "scenarios" / "daklak.yaml"
TINY = ["--scale", "0.001", "--set", "end_year=2008", "--quiet"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def only_egovsim_names(folder: Path) -> bool:
    """Every name in an output folder is one egovsim writes (folders.OUTPUTS is whole: nothing goes unremoved)."""
    return {p.name for p in folder.iterdir()} <= OUTPUTS | STORES | {LOCK}


# ---- a single run: the folder is swapped whole ----------------------------------------------------------


def test_a_rerun_killed_while_writing_leaves_the_earlier_run_whole(tmp_path, monkeypatch, capsys):
    out = tmp_path / "D"
    assert main(["run", str(DAKLAK), "--seed", "1", *TINY, "--out", str(out)]) == 0
    before = snapshot(out)
    assert "plots/supply_index.png" in before

    def killed(*args, **kwargs):  # the plots come after timeseries.csv and summary.json
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "run_plots", killed)
    assert main(["run", str(DAKLAK), "--seed", "7", *TINY, "--out", str(out)]) == 130
    assert snapshot(out) == before  # entirely the earlier run: seed 1's time series and provenance alike
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D"]  # no staging folder left beside it


def test_a_rerun_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "D"
    assert main(["run", str(DAKLAK), "--seed", "1", *TINY, "--out", str(out)]) == 0
    assert main(["run", str(DAKLAK), "--seed", "7", *TINY, "--no-plots", "--out", str(out)]) == 0
    assert not (out / "plots").exists()  # no plot of seed 1 beside seed 7's results
    assert json.loads((out / "provenance.json").read_text())["seeds"] == [7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D"]


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    out = tmp_path / "D"
    stale = tmp_path / ".D.abcd1234.egovsim-stage"
    stale.mkdir()
    (stale / "timeseries.csv").write_text("half")
    other = tmp_path / ".D.x.abcd1234.egovsim-stage"  # another folder's (D.x): not ours to remove
    other.mkdir()
    assert main(["run", str(DAKLAK), *TINY, "--no-plots", "--out", str(out)]) == 0
    assert not stale.exists() and other.exists()


def test_a_run_into_a_folder_of_other_files_is_refused_before_running(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["run", str(DAKLAK), *TINY, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"egovsim: error: {tmp_path}: --out: holds files egovsim")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# ---- experiment folders: the summary is one set ---------------------------------------------------------


def test_replicates_rerun_with_fewer_outputs_keeps_none_of_the_earlier_set(tmp_path):
    out = tmp_path / "D"
    args = ["run", str(DAKLAK), *TINY, "--executor", "serial", "--out", str(out)]
    assert main([*args, "--replicates", "3"]) == 0
    (out / "notes.txt").write_text("mine")  # not egovsim's: kept
    assert main([*args, "--replicates", "2", "--no-plots"]) == 0
    assert sorted(p.name for p in (out / "timeseries").iterdir()) == ["replicate_000.csv", "replicate_001.csv"]
    assert not (out / "plots").exists() and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "provenance.json").read_text())["replicates"] == 2


def test_a_summary_rewrite_killed_part_way_leaves_no_file_of_the_earlier_set(tmp_path, monkeypatch):
    out = tmp_path / "D"
    args = ["run", str(DAKLAK), *TINY, "--executor", "serial", "--out", str(out), "--no-plots"]
    assert main([*args, "--replicates", "3"]) == 0
    assert (out / "summary.json").exists()

    def killed(*a, **k):  # after timeseries/ and replicates.csv, before the band and summary
        raise KeyboardInterrupt

    monkeypatch.setattr(replicates, "band_csv", killed)
    assert main([*args, "--replicates", "2"]) == 130
    assert not (out / "provenance.json").exists()  # no marker: the set is incomplete, and says so
    assert not (out / "summary.json").exists()  # the earlier run's summary is not passed off as this one's
    assert len(list((out / "timeseries").iterdir())) == 2
    monkeypatch.undo()
    assert main([*args, "--replicates", "2"]) == 0 and (out / "provenance.json").exists()


def test_every_command_writes_only_names_it_can_remove(tmp_path):
    cmp_ = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(DAKLAK),
                str(DAKLAK),
                "--replicates",
                "2",
                *TINY,
                "--executor",
                "serial",
                "--out",
                str(cmp_),
            ]
        )
        == 0
    )
    assert only_egovsim_names(cmp_) and (cmp_ / "plots").is_dir()
    assert (
        main(
            [
                "compare",
                str(DAKLAK),
                str(DAKLAK),
                "--replicates",
                "2",
                *TINY,
                "--executor",
                "serial",
                "--no-plots",
                "--out",
                str(cmp_),
            ]
        )
        == 0
    )
    assert not (cmp_ / "plots").exists()
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"scenario: {DAKLAK}\nscale: 0.001\nset: [end_year=2007]\ndesign: {{points: [{{citizens.q0: 0.2}}]}}\n"
    )
    assert main(["sweep", str(exp), "--out", str(tmp_path / "sw"), "--executor", "serial", "--quiet"]) == 0
    assert only_egovsim_names(tmp_path / "sw")
    run = tmp_path / "run"
    assert main(["run", str(DAKLAK), *TINY, "--out", str(run)]) == 0
    assert only_egovsim_names(run)


# ---- one command per folder -------------------------------------------------------------------------------


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"scenario: {DAKLAK}\nscale: 0.001\nset: [end_year=2007]\ndesign: {{points: [{{citizens.q0: 0.2}}]}}\n"
    )
    serial = ["--executor", "serial"]
    return {
        "run": ["run", str(DAKLAK), *TINY],
        "replicates": ["run", str(DAKLAK), *TINY, "--replicates", "2", *serial],
        "compare": ["compare", str(DAKLAK), str(DAKLAK), "--replicates", "1", *TINY, *serial],
        "sweep": ["sweep", str(exp), "--quiet", *serial],
        "sensitivity": ["sensitivity", str(ROOT / "experiments" / "morris.yaml"), "--quiet", *serial],
        "calibrate": ["calibrate", str(ROOT / "calibration" / "config.yaml"), "--quiet", *serial],
    }


@pytest.mark.parametrize("command", ["run", "replicates", "compare", "sweep", "sensitivity", "calibrate"])
def test_a_folder_in_use_is_refused_with_one_line(tmp_path, capsys, monkeypatch, command):
    def no_run(*args, **kwargs):
        raise AssertionError("a run started in a folder in use")

    monkeypatch.setattr(experiment, "simulate", no_run)
    monkeypatch.setattr("egovsim.model.model.EGovModel.run", no_run)
    out = tmp_path / "D"
    with claimed(out):
        assert main([*_commands(tmp_path)[command], "--out", str(out)]) == 2
        assert [p.name for p in out.iterdir()] == [LOCK]
    err = capsys.readouterr().err
    assert err == (
        f"egovsim: error: {out} is in use by another egovsim process (pid {os.getpid()}); "
        "wait for it or choose another --out\n"
    )


def test_two_processes_on_one_folder(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    grid = ", ".join(f"{0.1 + 0.01 * i:.2f}" for i in range(40))
    exp.write_text(
        f"scenario: {DAKLAK}\nscale: 0.001\nset: [end_year=2012]\ndesign: {{grid: {{citizens.q0: [{grid}]}}}}\n"
    )
    out = tmp_path / "D"
    cmd = [sys.executable, "-m", "egovsim", "sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list((out / "runs").glob("*.json")) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.02)
        assert main(["sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]) == 2
        assert f"is in use by another egovsim process (pid {first.pid})" in capsys.readouterr().err
    finally:
        first.kill()
        first.wait()
    assert main(["sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]) == 0  # free again


def test_commands_started_in_the_same_second_get_a_default_folder_each(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    a, b = new_folder("hue"), new_folder("hue")
    assert a != b and a.is_dir() and b.is_dir()
    with claimed(a), claimed(b):  # neither finds the other's folder in use
        pass
    assert not a.exists() and not b.exists()  # made for a command that wrote nothing: removed again
    assert main(["run", str(DAKLAK), *TINY, "--replicates", "2", "--workers", "0"]) == 2  # bad input
    assert "--workers: must be >= 1" in capsys.readouterr().err
    assert list((tmp_path / "results").iterdir()) == []  # no empty default folder left behind
