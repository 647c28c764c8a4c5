"""Round 7's hostile pass: a folder claimed inside a running single run, the user's files in a rerun's summary
folders or in a folder no command recorded, results of another engine resumed as this one's, and input that
validated but failed every run or ended in a traceback. Bad input gets one line and exit status 2; nothing a user
had is lost."""

from __future__ import annotations

import json

import pytest

from egovsim.cli import main
from egovsim.errors import InputError
from egovsim.folders import Command, claimed, declare, replaced

from .conftest import ROOT

HUE = ROOT / "scenarios" / "hue.yaml"
TINY = ["--scale", "0.001", "--set", "end_year=2008", "--quiet", "--no-plots"]
REPLICATED = ["--scale", "0.001", "--set", "end_year=2008", "--quiet", "--replicates", "2", "--workers", "1"]


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---- output folders -------------------------------------------------------------------------------------------


def test_a_folder_inside_a_running_single_run_is_refused(tmp_path, capsys):
    """A single run's record used to appear only with the swap at its end: a second command could claim a folder
    inside it meanwhile, and the swap deleted that command's results."""
    outer = tmp_path / "outer"
    declare(Command("run", (str(HUE),), resumes=False, argv=("egovsim", "run", str(HUE))))
    with claimed(outer, whole=True):
        assert exit_code(["run", str(HUE), *TINY, "--out", str(outer / "inner")]) == 2
        assert "is inside" in one_line(capsys)
        assert not (outer / "inner").exists()
    declare(None)


def test_the_swap_never_deletes_what_appeared_in_the_folder_while_the_run_ran(tmp_path):
    """Whatever the way it got there (made by hand, another tool), the swap of a whole run keeps it."""
    folder = tmp_path / "run"
    declare(Command("run", (str(HUE),), resumes=False, argv=("egovsim", "run", str(HUE))))
    with pytest.raises(InputError, match=r"gained notes\.txt"), claimed(folder, whole=True), replaced(folder) as stage:
        (stage / "summary.json").write_text("{}")
        (folder / "notes.txt").write_text("mine")
    declare(None)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("sub", ["plots", "timeseries"])
def test_a_rerun_refuses_to_replace_a_summary_folder_holding_the_user_s_file(tmp_path, capsys, sub):
    out = tmp_path / "o"
    assert main(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 0
    assert json.loads((out / "command.json").read_text())["files"], "the record lists the files it wrote"
    capsys.readouterr()
    (out / sub).mkdir(exist_ok=True)
    (out / sub / "my_chart.png").write_text("mine")
    assert exit_code(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 2
    assert f"{sub}/my_chart.png" in one_line(capsys)
    assert (out / sub / "my_chart.png").read_text() == "mine"
    (out / sub / "my_chart.png").unlink()  # moved out: the rerun goes ahead
    assert main(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 0


def test_a_resumable_command_refuses_a_folder_of_the_user_s_own_files(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    assert exit_code(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 2
    assert "egovsim did not write" in one_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["data", "notes.txt"]


def test_an_existing_empty_folder_is_still_fine(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 0


# ---- the engine ---------------------------------------------------------------------------------------------


def test_runs_of_the_other_engine_are_neither_resumed_nor_unrecorded(tmp_path, capsys, monkeypatch):
    """EGOVSIM_ENGINE=plain changes results in the last bits: its runs are keyed apart, recorded, and a folder of
    numba's runs refuses to be resumed by it."""
    from egovsim.runner.runner import run_key

    numba_key = run_key("s", {}, 1)
    out = tmp_path / "o"
    assert main(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 0
    assert json.loads((out / "provenance.json").read_text())["engine"] == "numba"
    monkeypatch.setenv("EGOVSIM_ENGINE", "plain")
    assert run_key("s", {}, 1) != numba_key
    capsys.readouterr()
    assert exit_code(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 2
    assert "differ" in one_line(capsys)
    plain = tmp_path / "p"
    assert main(["run", str(HUE), *TINY, "--out", str(plain)]) == 0
    assert json.loads((plain / "provenance.json").read_text())["engine"] == "plain"


def test_a_worker_on_another_engine_fails_its_run_instead_of_storing_it_under_this_one(monkeypatch):
    from concurrent.futures import Future

    from egovsim.runner import runner

    future = Future()
    future.set_result({"records": [1.0], "error": None, "wall_time_s": 0.1, "host": "w1", "engine": "plain"})
    result = runner._collect(future, "k", runner.RunSpec("s", 0, 1))
    assert not result.ok and "plain engine" in result.error and result.records is None
    future = Future()
    future.set_result({"records": [1.0], "error": None, "wall_time_s": 0.1, "host": "w1", "engine": "numba"})
    assert runner._collect(future, "k", runner.RunSpec("s", 0, 1)).ok
