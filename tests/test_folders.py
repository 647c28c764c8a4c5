"""Output folders: a run swapped in whole, summary sets that never mix two runs, one command per folder."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
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
        "compare": ["compare", str(DAKLAK), str(DAKLAK), "--replicates", "2", *TINY, *serial],
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
    with pytest.raises(SystemExit) as exc:  # bad input, refused as the command line is read
        main(["run", str(DAKLAK), *TINY, "--replicates", "2", "--workers", "0"])
    assert exc.value.code == 2 and "argument --workers: must be in 1..1,024, got '0'" in capsys.readouterr().err
    assert list((tmp_path / "results").iterdir()) == []  # no empty default folder left behind


# ---- one command's results per folder (issue 18): refused, resumed only by the same command ---------------

HUE = ROOT / "scenarios" / "hue.yaml"
SERIAL = ["--executor", "serial"]


def compare_into(out: Path, *extra: str) -> int:
    return main(
        ["compare", str(DAKLAK), str(HUE), "--replicates", "2", *TINY, *SERIAL, "--no-plots", "--out", str(out), *extra]
    )


def test_a_compare_folder_given_to_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert compare_into(out) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(["run", str(DAKLAK), *TINY, "--no-plots", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"egovsim: error: {out}: --out: holds the results of `egovsim compare"
    )
    assert "(a compare, not a run)" in err and "--overwrite" in err
    assert snapshot(out) == before  # nothing of the compare touched
    assert main(["run", str(DAKLAK), *TINY, "--no-plots", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "comparison.csv").exists() and not (out / "runs").exists()  # the run alone
    assert json.loads((out / "command.json").read_text())["kind"] == "run"


def test_a_run_of_another_scenario_is_refused_and_of_the_same_replaces_the_run(tmp_path, capsys):
    out = tmp_path / "D"
    assert main(["run", str(DAKLAK), *TINY, "--no-plots", "--out", str(out)]) == 0
    assert main(["run", str(HUE), *TINY, "--no-plots", "--out", str(out)]) == 2
    assert "from other input files" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["scenario"].startswith("daklak")
    assert main(["run", str(DAKLAK), *TINY, "--seed", "7", "--no-plots", "--out", str(out)]) == 0  # replaced whole
    assert json.loads((out / "provenance.json").read_text())["seeds"] == [7]


def test_replicates_resume_only_with_the_same_settings(tmp_path, capsys, monkeypatch):
    out = tmp_path / "D"
    args = ["run", str(DAKLAK), *TINY, *SERIAL, "--no-plots", "--out", str(out)]
    assert main([*args, "--replicates", "2"]) == 0
    assert main([*args, "--replicates", "2", "--set", "citizens.q0=0.3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resuming would mix the two" in err
    calls = []
    real = experiment.simulate
    monkeypatch.setattr(experiment, "simulate", lambda sc, seed: (calls.append(seed), real(sc, seed))[1])
    assert main([*args, "--replicates", "3"]) == 0  # the same runs, one more: resumed
    assert len(calls) == 1 and len(list((out / "runs").glob("*.json"))) == 3
    assert main([*args, "--replicates", "2", "--set", "citizens.q0=0.3", "--overwrite"]) == 0
    assert len(list((out / "runs").glob("*.json"))) == 2  # the other settings' runs went with --overwrite


def test_an_edited_experiment_file_does_not_resume_the_old_folder(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    text = f"scenario: {DAKLAK}\nscale: 0.001\nset: [end_year=2007]\ndesign: {{points: [{{citizens.q0: 0.2}}]}}\n"
    exp.write_text(text)
    out = tmp_path / "sw"
    sweep = ["sweep", str(exp), "--out", str(out), *SERIAL, "--quiet"]
    assert main(sweep) == 0
    assert main(sweep) == 0  # the same command: resumes (nothing to run)
    exp.write_text(text.replace("0.2", "0.3"))
    assert main(sweep) == 2 and "file contents or result-changing options" in capsys.readouterr().err


def test_a_folder_of_results_without_a_record_is_refused_even_with_overwrite(tmp_path, capsys):
    (tmp_path / "runs").mkdir()  # an earlier egovsim's runs, or the user's own folder of that name
    (tmp_path / "runs" / "mine.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert compare_into(tmp_path, *extra) == 2
        assert "holds runs but no command.json" in capsys.readouterr().err
    assert (tmp_path / "runs" / "mine.txt").read_text() == "mine"


# ---- Ctrl-C: one line, and the command that resumes ------------------------------------------------------


def ctrl_c_at_the_second_run(real, calls: list):
    """simulate as `real`, but Ctrl-C arrives at the second call (each call's seed goes into `calls`)."""

    def simulate(scenario, seed):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(scenario, seed)

    return simulate


def test_ctrl_c_names_the_command_that_resumes_in_the_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real, calls = experiment.simulate, []
    monkeypatch.setattr(experiment, "simulate", ctrl_c_at_the_second_run(real, calls))
    args = ["run", str(DAKLAK), *TINY, *SERIAL, "--no-plots", "--replicates", "3"]
    assert main(args) == 130
    err = capsys.readouterr().err
    prefix = "egovsim: interrupted; the finished runs are kept; to resume: "
    assert err.count("\n") == 1 and err.startswith(prefix), err
    resume = shlex.split(err[len(prefix) :])
    folder = Path(resume[resume.index("--out") + 1])
    assert folder.parent == Path("results") and folder.name.startswith("daklak-")  # timestamped: named
    calls.clear()
    monkeypatch.setattr(experiment, "simulate", lambda scenario, seed: (calls.append(seed), real(scenario, seed))[1])
    assert main(resume[1:]) == 0  # that line resumes: only the two runs not kept are run
    assert len(calls) == 2 and len(list((folder / "runs").glob("*.json"))) == 3


def test_ctrl_c_after_the_results_were_written_says_so(tmp_path, monkeypatch, capsys):
    from egovsim.analysis import compare

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "headline", interrupted)
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(DAKLAK),
                str(HUE),
                "--replicates",
                "2",
                *TINY[:-1],
                *SERIAL,
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 130
    )
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == f"egovsim: interrupted; the results were written whole to {out} before the interruption"
    assert (out / "provenance.json").exists()


@pytest.mark.parametrize("stored", ["first", "all"])
def test_ctrl_c_in_a_terminal_gives_one_line_and_no_traceback(tmp_path, stored):
    """Ctrl-C reaches every process of the terminal's group: the workers and the forkserver too. "all": while
    the runs are written up and the idle workers wait (the issue saw two ForkServerProcess tracebacks there)."""
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "egovsim", "compare", str(DAKLAK), str(HUE), "--replicates", "2"]
    cmd += [
        "--scale",
        "0.001",
        "--set",
        "end_year=2012",
        "--workers",
        "2",
        "--out",
        str(out),
    ]  # runs and write-up long enough to be interrupted
    want = 1 if stored == "first" else 4
    # as in a terminal, Ctrl-C is not ignored: a suite started in the background (nohup, `cmd &` in a script)
    # passes SIGINT on ignored, and Python then never installs its handler
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "runs").glob("*.json"))) < want and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, "finished before the interruption"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        err = proc.communicate(timeout=60)[1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err and "ForkServerProcess" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("egovsim: interrupted; ") and last.endswith(f"--out {out}"), last


def test_overwrite_removes_only_what_the_recorded_command_wrote_and_never_an_input(tmp_path, capsys):
    """A user's own file in an output folder, even under a name egovsim uses elsewhere (compare's scenarios/),
    survives --overwrite: only the entries the earlier command recorded as written go. A command whose input lies
    inside the folder is refused: --overwrite would delete it."""
    out = tmp_path / "proj"
    assert main(["run", str(DAKLAK), *TINY, "--no-plots", "--out", str(out)]) == 0
    mine = out / "scenarios" / "my_whatif.yaml"  # 'scenarios' is a name compare writes, not this run
    mine.parent.mkdir()
    mine.write_text(f"extends: {DAKLAK}\n", encoding="utf-8")
    capsys.readouterr()
    # a single run replaces its folder whole: a folder holding the user's file is refused, not emptied
    assert main(["run", str(mine), *TINY, "--no-plots", "--out", str(out), "--overwrite"]) == 2
    assert "holds files egovsim did not write (scenarios" in capsys.readouterr().err and mine.exists()
    # a command whose input lies in the folder is refused before anything is removed
    assert main(["run", str(mine), *TINY, *SERIAL, "--replicates", "2", "--out", str(out), "--overwrite"]) == 2
    assert "holds this command's input" in capsys.readouterr().err and mine.exists()
    replicated = ["run", str(DAKLAK), *TINY, *SERIAL, "--replicates", "2", "--no-plots", "--out", str(out)]
    assert main([*replicated, "--overwrite"]) == 0  # another kind of result: the run's files go, not the user's
    assert mine.exists() and (out / "replicates.csv").exists() and not (out / "timeseries.csv").exists()
    assert json.loads((out / "command.json").read_text())["foreign"] == ["scenarios"]
    # and the next kind of result again: the replicated run's files go, interrupted or not, the user's stay
    assert compare_into(out, "--overwrite") == 0
    assert mine.exists() and not (out / "replicates.csv").exists() and (out / "comparison.csv").exists()


def test_an_interrupted_commands_runs_go_with_overwrite_and_never_mix(tmp_path, monkeypatch, capsys):
    """An interrupted run --replicates leaves runs/ and no summary; another kind of result with --overwrite
    removes them (they are the recorded command's, finished or not), so the folder holds the new runs only."""
    real = experiment.simulate
    monkeypatch.setattr(experiment, "simulate", ctrl_c_at_the_second_run(real, []))
    out = tmp_path / "x"
    assert main(["run", str(DAKLAK), *TINY, *SERIAL, "--no-plots", "--replicates", "3", "--out", str(out)]) == 130
    assert len(list((out / "runs").glob("*.json"))) == 1
    monkeypatch.setattr(experiment, "simulate", real)
    assert compare_into(out, "--overwrite") == 0
    assert len(list((out / "runs").glob("*.json"))) == 4  # the compare's 2 x 2, without the interrupted one
    assert not (out / "replicates.csv").exists()


@pytest.mark.parametrize("record", ["[]", "null", '"text"', "{not json"])
def test_an_unreadable_command_record_is_said_to_be_one(tmp_path, capsys, record):
    out = tmp_path / "x"
    assert main(["run", str(DAKLAK), *TINY, *SERIAL, "--no-plots", "--replicates", "2", "--out", str(out)]) == 0
    (out / "command.json").write_text(record, encoding="utf-8")
    capsys.readouterr()
    for extra in ([], ["--overwrite"]):
        assert (
            main(["run", str(DAKLAK), *TINY, *SERIAL, "--no-plots", "--replicates", "2", "--out", str(out), *extra])
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "holds a command.json egovsim cannot read" in err


def test_the_working_directory_is_not_an_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path), ".."):
        assert main(["run", str(DAKLAK), *TINY, "--no-plots", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out: is the working directory (or holds it)" in err


def test_a_file_added_inside_a_runs_own_folders_is_not_deleted_by_running_it_again(tmp_path, capsys):
    """A single run replaces its folder whole: a file the user put in its plots/ (an annotated copy) would go with
    it, so the run is refused, naming the file."""
    out = tmp_path / "run"
    args = ["run", str(DAKLAK), *TINY, "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 0  # its own files only: replaced
    mine = out / "plots" / "my_annotated.png"
    mine.write_bytes(b"mine")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds files egovsim did not write (plots/my_annotated.png" in err
    assert mine.read_bytes() == b"mine"


def sweep_of_two(exp: Path, scenario: str, out: Path, extra: str = "") -> None:
    """Write a two-point sweep of `scenario` (as the file names it) at `exp` and run it into `out`."""
    exp.write_text(
        f"scenario: {scenario}\nscale: 0.001\nset: [end_year=2007]\ndesign: {{grid: {{citizens.q0: [0.2, 0.3]}}}}\n"
        f"outcomes: [adopted_share@end]\nseed: 3\n{extra}",
        encoding="utf-8",
    )
    assert main(["sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]) == 0


def test_a_results_folder_moved_with_its_inputs_is_still_the_same_command_s(tmp_path, capsys):
    """command.json records the inputs from the output folder, and the files' contents in order: a project copied
    elsewhere (a clone of the repository with its shipped calibration, say) resumes where it was, not "other
    input files". Its runs are taken from the store."""
    import shutil

    a = tmp_path / "a"
    a.mkdir()
    shutil.copy(DAKLAK.parent / "daklak.yaml", a / "daklak.yaml")
    (a / "common").symlink_to(DAKLAK.parent / "common")
    sweep_of_two(a / "exp.yaml", "daklak.yaml", a / "out")
    record = json.loads((a / "out" / "command.json").read_text())
    assert record["inputs"] == ["../exp.yaml"]
    b = tmp_path / "b"
    a.rename(b)
    capsys.readouterr()
    assert main(["sweep", str(b / "exp.yaml"), "--out", str(b / "out"), "--executor", "serial"]) == 0
    assert "(0 run now, 2 resumed from the store)" in capsys.readouterr().err


def test_a_folder_recorded_with_absolute_inputs_where_it_is_still_resumes(tmp_path):
    """Records written before inputs were recorded from the folder hold absolute paths and a hash of the contents
    keyed by them (written out here by hand): the same command, where it was, still resumes."""
    from egovsim.folders import Command, settings_hash

    source = str(tmp_path / "exp.yaml")
    by_path = {"files": {source: "design: ..."}, "scale": 0.001}  # as cli._declare hashed them then
    command = Command("sweep", (source,), {"files": ["design: ..."], "scale": 0.001}, earlier_settings=by_path)
    old = {"kind": "sweep", "inputs": [source], "settings": settings_hash(by_path)}
    assert command.refusal(old, tmp_path / "out") is None
    changed = {**old, "command": "egovsim sweep exp.yaml", "settings": settings_hash({"files": {source: "x"}})}
    assert command.refusal(changed, tmp_path / "out").startswith("holds the runs of `egovsim sweep exp.yaml`, whose")
    assert "other input files" in command.refusal({**old, "inputs": ["/elsewhere/exp.yaml"]}, tmp_path / "out")


def test_an_output_folder_moved_alone_is_still_the_same_command_s(tmp_path, capsys):
    """Its inputs stayed where they were: the same files, though no longer at the same path from the folder."""
    exp = tmp_path / "exp.yaml"
    sweep_of_two(exp, str(DAKLAK), tmp_path / "out")
    (tmp_path / "sub").mkdir()
    (tmp_path / "out").rename(tmp_path / "sub" / "out")
    capsys.readouterr()
    assert main(["sweep", str(exp), "--out", str(tmp_path / "sub" / "out"), "--executor", "serial"]) == 0
    assert "(0 run now, 2 resumed from the store)" in capsys.readouterr().err


def test_a_project_on_a_calibrated_scenario_moved_whole_resumes(tmp_path, capsys):
    """A calibrated scenario's posterior folder is read as an absolute path: the settings name it by its
    posterior.csv's sha256, so the project moved whole is the same command's."""
    import shutil

    p1 = tmp_path / "p1"
    shutil.copytree(DAKLAK.parent, p1 / "scenarios")
    (p1 / "calibration" / "posterior").mkdir(parents=True)
    shutil.copy(ROOT / "calibration" / "posterior" / "posterior.csv", p1 / "calibration" / "posterior")
    sweep_of_two(p1 / "exp.yaml", "scenarios/calibrated/bentre.yaml", p1 / "out", extra="replicates: 2\n")
    p2 = p1.rename(tmp_path / "p2")
    capsys.readouterr()
    assert main(["sweep", str(p2 / "exp.yaml"), "--out", str(p2 / "out"), "--executor", "serial"]) == 0
    assert "(0 run now, 4 resumed from the store)" in capsys.readouterr().err
