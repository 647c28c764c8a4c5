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


# ---- input that validated, then failed or was misread -----------------------------------------------------------


def validate(tmp_path, capsys, data: dict, name: str = "f.yaml") -> str:
    """`egovsim validate` of `data` written to a file: its exit status must be 2, one line; the line."""
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    capsys.readouterr()
    assert exit_code(["validate", str(path)]) == 2
    return one_line(capsys)


def sweep(design: dict, **more) -> dict:
    return {"name": "s", "scenario": str(HUE), "scale": 0.001, "replicates": 1, "design": design, **more}


def study(parameters: dict, method: str = "sobol") -> dict:
    return {
        "name": "st",
        "scenario": str(HUE),
        "method": method,
        "n": 4,
        "parameters": parameters,
        "outcomes": [{"name": "use", "outcome": "use_share_12m", "stat": "at", "year": 2008}],
    }


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (sweep({"grid": {"citizens.q0": [0.2, 0.4]}}, outcomes=[]), "outcomes", "at least one outcome"),
        (sweep({"grid": {"seed": [1, 999]}}), "design.grid.seed", "cannot vary seed"),
        (
            sweep({"lhs": {"n": 3, "parameters": {"network.mean_degree": {"bounds": [2, 10]}}}}),
            "design.lhs.parameters.network.mean_degree",
            "cannot be varied continuously",
        ),
        (
            sweep({"grid": {"provinces.hue.budget": [{"hold": "baseline", "funded_by": ["software"]}]}}),
            "design.grid.provinces.hue.budget[0]",
            "budget hold",
        ),
        (
            sweep({"grid": {"provinces.*.policy.training": [0.5, 3], "provinces.hue.policy.training": [1]}}),
            "design.grid.provinces.hue.policy.training",
            "sets provinces.hue.policy.training, which provinces.*.policy.training sets too",
        ),
        (
            study({"citizens.q0": {"bounds": [0.3, 1.0], "dist": "norm"}, "citizens.p0": {"bounds": [0.001, 0.02]}}),
            "parameters.citizens.q0",
            "must be",
        ),
        (
            study(
                {"citizens.q0": {"bounds": [0.4, 0.05], "dist": "norm"}, "citizens.p0": {"bounds": [0.001, 0.02]}},
                "morris",
            ),
            "parameters.citizens.q0.dist",
            "bounded range",
        ),
        (
            study(
                {"provinces.*.policy.training": {"bounds": [0, 2]}, "provinces.hue.policy.training": {"bounds": [0, 1]}}
            ),
            "parameters.provinces.hue.policy.training",
            "sets provinces.hue.policy.training",
        ),
    ],
)
def test_a_design_that_would_fail_or_mislabel_its_runs_is_refused_at_validation(tmp_path, capsys, data, field, words):
    line = validate(tmp_path, capsys, data)
    assert f": {field}: " in line and words in line, line


def test_a_normal_range_inside_a_parameter_s_limits_is_still_fine(tmp_path, capsys):
    import yaml

    path = tmp_path / "ok.yaml"
    ok = study({"citizens.q0": {"bounds": [0.4, 0.02], "dist": "norm"}, "citizens.p0": {"bounds": [0.001, 0.02]}})
    path.write_text(yaml.safe_dump(ok))
    assert exit_code(["validate", str(path)]) == 0


@pytest.mark.parametrize(
    ("provinces", "field"),
    [
        ({"hue": {"name": "Hue\x1b[2J\x07"}}, "provinces.hue.name"),
        # a right-to-left override (or any bidirectional control) would show the page's own text reversed after it
        ({"hue": {"name": "Hue \u202eevil"}}, "provinces.hue.name"),
        (
            {"hue": {"events": [{"date": 2006.5, "name": "launch \u2067x\u2069", "kind": "feedback_app"}]}},
            "provinces.hue.events[0].name",
        ),
        ({"hue": {"name": "x" * 5000}}, "provinces.hue.name"),
        ({"hue": {"name": ""}}, "provinces.hue.name"),
        ({"hue": {"budget": 10**35}}, "provinces.hue.budget"),
    ],
)
def test_names_with_control_characters_or_of_any_length_and_numbers_past_any_budget_are_refused(
    tmp_path, capsys, provinces, field
):
    line = validate(tmp_path, capsys, {"extends": str(HUE), "provinces": provinces})
    assert f": {field}: " in line, line


def test_a_file_s_record_of_changes_must_be_a_list(tmp_path, capsys):
    line = validate(tmp_path, capsys, {"extends": str(HUE), "parameters": {"set": 5}})
    assert ": parameters.set: expected a list" in line
    capsys.readouterr()
    assert exit_code(["run", str(HUE), *TINY, "--set", "parameters.set=5", "--out", str(tmp_path / "o")]) == 2
    assert "parameters.set" in one_line(capsys)


def calibration(tmp_path, observations: dict, targets: list[dict]) -> dict:
    import yaml

    (tmp_path / "obs.yaml").write_text(yaml.safe_dump(observations))
    return {
        "name": "c",
        "scenario": str(HUE),
        "scale": 0.001,
        "end_year": 2010,
        "observations": "obs.yaml",
        "parameters": {"citizens.q0": {"bounds": [0.1, 0.9]}},
        "targets": targets,
    }


TARGET = {
    "name": "a",
    "type": "value",
    "observation": "x",
    "outcome": "supply_index",
    "year": 2008,
    "provinces": ["hue"],
}


@pytest.mark.parametrize(
    ("observations", "targets", "file", "field"),
    [
        ({"targets": [{"id": "x", "values": {"hue": float("nan")}}]}, [TARGET], "obs.yaml", "targets[0].values.hue"),
        (
            {"targets": [{"id": "x", "values": {"hue": 0.3}}, {"id": "x", "values": {"hue": 0.5}}]},
            [TARGET],
            "obs.yaml",
            "targets[1].id",
        ),
        (
            {"targets": [{"id": "x", "values": {"hue": 0.3}}]},
            [TARGET, {**TARGET, "year": 2009}],
            "c.yaml",
            "targets[1].name",
        ),
        (
            {"targets": [{"id": "x", "values": {"hue": 0.3}}]},
            [{**TARGET, "path": [[1]]}],
            "c.yaml",
            "targets[0].path[0]",
        ),
    ],
)
def test_a_calibration_s_observations_and_targets_are_each_one_finite_figure_under_one_name(
    tmp_path, capsys, observations, targets, file, field
):
    line = validate(tmp_path, capsys, calibration(tmp_path, observations, targets), "c.yaml")
    assert f"{file}: {field}: " in line, line


def test_an_optimisation_outcome_may_not_be_called_cost(tmp_path, capsys):
    import yaml

    spec = yaml.safe_load((ROOT / "experiments" / "optimize_bentre.yaml").read_text())
    spec["scenario"] = str(ROOT / "scenarios" / "calibrated" / "bentre.yaml")
    spec.pop("posterior", None)
    first = next(iter(spec["outcomes"]))
    spec["outcomes"] = {"cost": spec["outcomes"][first], **spec["outcomes"]}
    line = validate(tmp_path, capsys, spec)
    assert ": outcomes.cost: " in line


# ---- the last read of the change (a reviewer's findings) --------------------------------------------------------


def test_a_budget_hold_funded_by_every_lever_validates():
    """egovsim names the rebalancing event it makes after the levers it scales: a long name, not the user's."""
    import tempfile
    from pathlib import Path

    import yaml

    from egovsim.config.scenario import FUNDABLE
    from egovsim.model.costs import load_with_budgets

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hold.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "extends": str(ROOT / "scenarios" / "calibrated" / "daklak.yaml"),
                    "name": "hold_all",
                    "provinces": {"daklak": {"budget": {"hold": "baseline", "funded_by": list(FUNDABLE)}}},
                }
            )
        )
        assert exit_code(["validate", str(path)]) == 0
        load_with_budgets(path)


def test_a_folder_installed_into_before_takes_a_second_install(tmp_path):
    """calibrate --install swaps in its folder with `replaced` too; only a claimed output folder is checked for
    what it gained (the earlier install's files are not egovsim's outputs)."""
    folder = tmp_path / "inst"
    folder.mkdir()
    (folder / "hue.yaml").write_text("earlier install")
    with replaced(folder) as stage:
        (stage / "hue.yaml").write_text("this install")
    assert (folder / "hue.yaml").read_text() == "this install"


def test_overwrite_never_deletes_the_user_s_file_in_a_summary_folder(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["run", str(HUE), *REPLICATED, "--out", str(out)]) == 0
    (out / "plots").mkdir(exist_ok=True)
    (out / "plots" / "my.png").write_text("mine")
    capsys.readouterr()
    for other in (["--seed", "9", *REPLICATED], TINY):  # the same kind with other settings; a single run
        assert exit_code(["run", str(HUE), *other, "--overwrite", "--out", str(out)]) == 2
        assert "plots/my.png" in one_line(capsys)
        assert (out / "plots" / "my.png").read_text() == "mine"


def test_a_killed_single_run_s_fence_does_not_keep_other_commands_out(tmp_path):
    """SIGKILL leaves the provisional record behind (no finally runs): it holds no results."""
    out = tmp_path / "k"
    out.mkdir()
    fence = {"kind": "run", "inputs": ["/elsewhere/x.yaml"], "settings": "", "command": "egovsim run x.yaml"}
    (out / "command.json").write_text(json.dumps({**fence, "entries": [], "provisional": True}))
    assert main(["run", str(HUE), *TINY, "--out", str(out)]) == 0
    assert "provisional" not in json.loads((out / "command.json").read_text())


def test_an_interruption_just_after_the_swap_keeps_the_run_s_record(tmp_path):
    folder = tmp_path / "run"
    declare(Command("run", (str(HUE),), resumes=False, argv=("egovsim", "run", str(HUE))))
    with pytest.raises(KeyboardInterrupt), claimed(folder, whole=True):
        with replaced(folder) as stage:
            (stage / "summary.json").write_text("{}")
        raise KeyboardInterrupt  # after the swap, before the claim ends
    declare(None)
    record = json.loads((folder / "command.json").read_text())
    assert record["entries"] == ["summary.json"] and "provisional" not in record
