"""Round 12's hostile pass: output folders a whole run cannot replace are refused before the run, and a
replaced folder keeps its permissions."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from egovsim import folders
from egovsim.cli import main

from .conftest import ROOT

HUE = ROOT / "scenarios" / "hue.yaml"
TINY = ["--scale", "0.0005", "--set", "end_year=2007", "--quiet", "--no-plots"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def no_run(monkeypatch):
    """Fails the test if a model is built: the refusal must come before any work."""
    import egovsim.model.model as model

    def built(*args, **kwargs):
        raise AssertionError("a model was built before the folder was refused")

    monkeypatch.setattr(model.EGovModel, "__init__", built)


def test_a_single_run_into_a_mount_point_is_refused_before_running(tmp_path, capsys, monkeypatch):
    """A mount point (a Docker volume, say) cannot be renamed, and a single run's folder is swapped in whole at
    the end: found then, the run's results were lost. (The mount is simulated: tests do not mount.)"""
    out = tmp_path / "volume"
    out.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(folders.os.path, "ismount", lambda p: Path(p) == out or real(p))
    no_run(monkeypatch)
    assert main(["run", str(HUE), *TINY, "--out", str(out)]) == 2
    line = one_line(capsys)
    assert f"{out}: --out: is a mount point" in line and "give a folder inside it" in line
    assert list(out.iterdir()) == []


def test_a_single_run_whose_folder_cannot_be_written_beside_is_refused_before_running(tmp_path, capsys, monkeypatch):
    """The new run is written beside --out and swapped in: a parent folder that refuses new entries (read-only,
    immutable, another user's) is found before the run. Simulated by refusing the probe: tests run as root here,
    which file modes do not stop."""
    parent = tmp_path / "shared"
    out = parent / "mine"
    out.mkdir(parents=True)
    real = tempfile.mkdtemp

    def refused(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == parent:
            raise PermissionError(1, "Operation not permitted")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(folders.tempfile, "mkdtemp", refused)
    no_run(monkeypatch)
    assert main(["run", str(HUE), *TINY, "--out", str(out)]) == 2
    line = one_line(capsys)
    assert f"{out}: --out: cannot be replaced" in line and str(parent) in line and "Operation not permitted" in line


def test_calibrate_refuses_an_install_folder_it_could_not_write_before_fitting(tmp_path, capsys, monkeypatch):
    """--install is replaced whole at the end of a fit (hours): a place that refuses it is said first."""
    target = tmp_path / "ro" / "calibrated"
    real = tempfile.mkdtemp

    def refused(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == tmp_path:  # nearest existing folder of the install's
            raise PermissionError(1, "Operation not permitted")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(folders.tempfile, "mkdtemp", refused)
    no_run(monkeypatch)
    config = ROOT / "calibration" / "config.yaml"
    args = ["calibrate", str(config), "--quiet", "--install", str(target), "--out", str(tmp_path / "fit")]
    assert main(args) == 2
    line = one_line(capsys)
    assert "--install: cannot be replaced" in line and str(tmp_path) in line
    assert not (tmp_path / "fit").exists()


def test_a_replaced_run_folder_keeps_its_mode_and_group(tmp_path):
    """A folder the user made private (or shared with a group, setgid) stays so when a new run replaces it: the
    swap used to leave a new folder with the default mode and the user's own group."""
    out = tmp_path / "private"
    out.mkdir()
    os.chmod(out, 0o2750)
    group = 1 if os.geteuid() == 0 else os.getegid()  # root may give any group; others their own
    os.chown(out, -1, group)
    for _ in range(2):  # into the empty folder, then over the run it holds
        assert main(["run", str(HUE), *TINY, "--out", str(out)]) == 0
        st = os.stat(out)
        assert stat.S_IMODE(st.st_mode) == 0o2750 and st.st_gid == group
        assert (out / "timeseries.csv").is_file()


def test_a_new_run_folder_is_readable_like_any_other(tmp_path):
    """Where no folder was there before, the run's folder has the mode any new folder gets (umask), not
    mkdtemp's private 0700."""
    out = tmp_path / "new"
    assert main(["run", str(HUE), *TINY, "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask


def test_an_out_folder_the_system_refuses_is_refused_in_one_line_before_running(tmp_path, capsys, monkeypatch):
    """Permissions alone do not say where one may write: root may 'write' /proc, which refuses every new file.
    And a path too long for the file system is one readable line, not the whole path."""
    no_run(monkeypatch)
    cases = [str(tmp_path / "/".join(["a" * 200] * 25))]
    if Path("/proc/self").is_dir():
        cases.append("/proc")
    for out in cases:
        assert main(["run", str(HUE), *TINY, "--out", out]) == 2
        line = one_line(capsys)
        assert ": --out: cannot be written" in line and len(line) < 600, line


def test_a_write_that_fails_without_a_file_name_names_the_output_folder(tmp_path, capsys, monkeypatch):
    """A full disk raises an error that names no file: the line names the folder being written."""
    import egovsim.report.runfolder as runfolder

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runfolder, "write_run_folder", full, raising=False)
    monkeypatch.setattr(runfolder, "atomic_write", full, raising=False)
    out = tmp_path / "r"
    code = main(["run", str(HUE), *TINY, "--out", str(out)])
    line = one_line(capsys)
    assert code == 1 and line == f"egovsim: error: {out}: No space left on device"


def test_validate_warns_of_a_calibrated_file_whose_posterior_is_missing(tmp_path, capsys):
    """A calibrated file copied away from its posterior validates (a single run uses its medians), with a warning
    naming parameters.posterior: run --replicates would stop on it, and validate used to say nothing."""
    import shutil

    copy = tmp_path / "in" / "calcopy.yaml"
    copy.parent.mkdir()
    shutil.copy(ROOT / "scenarios" / "calibrated" / "hue.yaml", copy)
    assert main(["validate", str(copy)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {copy}: parameters.posterior: no posterior.csv in" in err and "--replicates" in err
    assert main(["run", str(copy), "--replicates", "2", *TINY, "--out", str(tmp_path / "r")]) == 2
    assert "parameters.posterior: no posterior.csv in" in one_line(capsys)
    assert main(["validate", str(ROOT / "scenarios" / "calibrated" / "hue.yaml")]) == 0
    assert "warning" not in capsys.readouterr().err  # the shipped file finds its posterior


def test_report_md_quotes_text_from_files_without_opening_html(tmp_path):
    """An experiment's description (and any name or source a report quotes) reaches report.md; a Markdown viewer
    that renders raw HTML would run what it opens. Every '<' that could open an element is written &lt;; a '<'
    of a comparison is left as it is."""
    from egovsim.report.markdown import inert

    assert inert("p < 0.05, S <= 0.525, a<b") == "p < 0.05, S <= 0.525, a&lt;b"
    assert inert("<script>x</script><!-- c --><?p?>") == "&lt;script>x&lt;/script>&lt;!-- c -->&lt;?p?>"
    # code shows every character as it is: no HTML opens there, and an entity would be shown as '&lt;'
    assert inert("in `scenarios/<name>/`, <b>") == "in `scenarios/<name>/`, &lt;b>"
    assert inert("```\n<tag>\n```\n<i>") == "```\n<tag>\n```\n&lt;i>"
    # an image or link to another site (a file's text) reads as text; the report's own relative links stay links
    assert inert("![t](https://x.example/t.png) [j](javascript:alert(1)) ![p](plots/p.png)") == (
        "![t]\\(https://x.example/t.png) [j]\\(javascript:alert(1)) ![p](plots/p.png)"
    )
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"name: hostile\ndescription: '{hostile}'\nscenario: {HUE}\nscale: 0.0005\nset: ['end_year=2007']\n"
        "design: {grid: {provinces.*.policy.training: [1.0, 2.0]}}\nreplicates: 1\nseed: 1\n"
        "outcomes: [adopted_share@2007]\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "&lt;img src=x onerror=alert(1)>&lt;script>alert(2)&lt;/script>" in report
    assert "<img" not in report and "<script" not in report


def test_validate_lists_every_outcome_outside_the_horizon(tmp_path, capsys):
    """Each outcome of an experiment, study or discovery is checked against the scenario, and validate lists every
    one that fails (it stopped at the first); a command still says one line."""
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"name: x\nscenario: {HUE}\nscale: 0.0005\ndesign: {{grid: {{provinces.*.policy.training: [1.0, 2.0]}}}}\n"
        "replicates: 1\nseed: 1\noutcomes: [supply_index@1800, adopted_share@2012, adopted_share@2100]\n"
    )
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[3] for line in lines] == ["outcomes[0]", "outcomes[2]"], lines
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert one_line(capsys).endswith("outcomes[0]: year 1800 is outside the scenario's 2006-2030")


def test_a_bind_mount_is_a_mount_point_though_it_shares_its_parents_device(tmp_path):
    """os.path.ismount misses a bind mount of a folder of the same file system (docker -v); the mount table does
    not. A mountinfo line names the mount point in its fifth field, a space as the octal escape \\040."""
    folder = tmp_path / "my results"
    folder.mkdir()
    escaped = str(folder.resolve()).replace(" ", "\\040")
    table = tmp_path / "mountinfo"
    table.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"97 22 8:1 /srv/data {escaped} rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    )
    assert not os.path.ismount(folder)
    assert folders.is_mount_point(folder, table)
    assert not folders.is_mount_point(tmp_path, table)
    assert not folders.is_mount_point(folder, tmp_path / "no-such-table")  # elsewhere: ismount alone


def test_an_error_that_names_no_file_and_is_no_write_does_not_blame_the_output_folder(tmp_path, capsys, monkeypatch):
    """Only a write the system refused (a full disk, a read-only file system) is said of the output folder; another
    error without a file name is said as it is."""
    import egovsim.report.runfolder as runfolder

    def broken(*args, **kwargs):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(runfolder, "atomic_write", broken, raising=False)
    assert main(["run", str(HUE), *TINY, "--out", str(tmp_path / "r")]) == 1
    assert one_line(capsys) == "egovsim: error: Invalid argument"


@pytest.mark.parametrize("where", ["compressing", "writing"])
def test_an_interruption_while_a_run_is_saved_takes_effect_once_it_is_saved(tmp_path, monkeypatch, where):
    """SIGTERM or Ctrl-C arriving while numpy compresses a finished run used to be raised inside numpy's savez,
    whose clean-up then failed with a ValueError (a traceback, exit 1; seen in the kill test under load). The run
    is now saved whole, npz and json, and the interruption raised after: whether the store compresses the records
    (a worker's own save) or writes a worker's packed file (the command's process)."""
    import signal

    import numpy as np

    from egovsim.runner import runner as rn

    arrived = []

    def interrupted_midway(real):
        def call(*args, **kwargs):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the save
            arrived.append(True)
            return real(*args, **kwargs)

        return call

    records = np.zeros((2, 1, 3))
    store = rn.Store(tmp_path, code={"fingerprint": "test"})
    spec = rn.RunSpec("s", 0, 1)
    if where == "compressing":
        monkeypatch.setattr(np.lib.format, "write_array", interrupted_midway(np.lib.format.write_array))
        result = rn.RunResult(spec, "k" * 24, rn.STATUS_OK, records=records)
    else:
        npz = rn.Store.pack(records)
        monkeypatch.setattr(rn, "atomic_write", interrupted_midway(rn.atomic_write))
        result = rn.RunResult(spec, "k" * 24, rn.STATUS_OK, npz=npz)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.save(result)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert arrived and store.meta("k" * 24)["status"] == rn.STATUS_OK
    assert store.records("k" * 24).shape == (2, 1, 3)


@pytest.mark.parametrize("kind", ["sweep", "study", "discovery"])
def test_validate_lists_every_outcome_it_cannot_read(tmp_path, capsys, kind):
    """Outcomes that cannot be read at all (an unknown name, a short form without a year, a mean without a period)
    stopped validate at the first, where those outside the horizon were all listed; a command says one line."""
    bad = ["adopted_shar@end", "supply_index@when", {"outcome": "trust_mean", "stat": "mean"}]
    head = f"name: x\nscenario: {HUE}\nscale: 0.0005\nseed: 1\n"
    if kind == "sweep":
        body = "design: {grid: {provinces.*.policy.training: [1.0, 2.0]}}\nreplicates: 1\n"
        outcomes, fields = bad, ["outcomes[0]", "outcomes[1]", "outcomes[2].period"]
    elif kind == "study":
        body = "method: morris\nn: 4\nparameters:\n  citizens.q0: {bounds: [0.2, 0.4]}\n  citizens.p0: {bounds: [0.01, 0.02]}\n"
        outcomes = [
            {"name": "o0", "outcome": "adopted_shar"},
            {"name": "o1", "outcome": "supply_indx", "year": 2010},
            {"name": "o2", "outcome": "trust_mean", "stat": "mean"},
        ]
        fields = ["outcomes[0].outcome", "outcomes[1].outcome", "outcomes[2].period"]
    else:
        body = "province: hue\nn: 16\nlevers: {training: [0.0, 3.0]}\ncase: a >= 0.5\n"
        outcomes = {"a": bad[0], "b": bad[1], "c": bad[2]}
        fields = ["outcomes.a", "outcomes.b", "outcomes.c.period"]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(head + body + "outcomes: " + json.dumps(outcomes) + "\n")
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[3] for line in lines] == fields, lines


@pytest.mark.parametrize(
    "command, path, kind",
    [
        ("run", "experiments/example_sweep.yaml", "experiment"),
        ("compare", "experiments/sobol.yaml", "study"),
        ("sweep", "scenarios/hue.yaml", "scenario"),
        ("sensitivity", "experiments/example_sweep.yaml", "experiment"),
        ("discover", "experiments/optimize_bentre.yaml", "optimisation"),
        ("optimize", "experiments/discover_bentre_rural.yaml", "discovery"),
        ("calibrate", "scenarios/hue.yaml", "scenario"),
        ("calibrate", "calibration/observations.yaml", "observations"),
        ("coverage", "experiments/morris.yaml", "study"),
    ],
)
def test_a_file_of_another_kind_is_named_as_what_it_is(tmp_path, capsys, command, path, kind):
    """Its own keys read as unknown ones ("design: unknown key", "extends: ... did you mean 'seeds'?") and said
    nothing of the mistake; nothing is written."""
    full = Path(__file__).resolve().parents[1] / path
    args = [command, str(full)] + (["scenarios/hue.yaml"] if command == "compare" else [])
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    line = one_line(capsys)
    assert line.startswith(f"egovsim: error: {full}: (top level): is {'an' if kind[0] in 'aeiou' else 'a'} {kind} file")
    assert f"`egovsim {command}` reads a" in line
    assert not (tmp_path / "out").exists()


def test_egovsim_s_own_python_warnings_read_as_its_other_warnings(capsys, monkeypatch, recwarn):
    """A warning egovsim raises through Python's warnings module (a sensitivity study's constant output) printed
    as "/path/gsa.py:456: RuntimeWarning: ..." and the source line; a library's warning keeps Python's form."""
    import warnings

    import egovsim.analysis.gsa as gsa
    from egovsim import cli

    def warns(args):
        warnings.warn_explicit("output 't=2010' is constant", gsa.ConstantOutputWarning, gsa.__file__, 456)
        # numpy's, raised from egovsim's code (an optimize candidate whose every draw failed): numpy's form
        warnings.warn_explicit("Mean of empty slice", RuntimeWarning, gsa.__file__, 7)
        return 0

    monkeypatch.setattr(cli, "cmd_validate", warns)
    assert main(["validate", str(HUE)]) == 0
    err = capsys.readouterr().err
    assert "egovsim: warning: output 't=2010' is constant\n" in err and "gsa.py" not in err
    assert "Mean of empty slice" not in err  # handed on to how Python showed it before (here: recorded)
    assert [str(w.message) for w in recwarn] == ["Mean of empty slice"]


def test_a_date_that_does_not_exist_is_one_line_with_its_place(tmp_path, capsys):
    """YAML reads 2024-13-01 as a date, and datetime refused it with a ValueError traceback in every command."""
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {HUE}\ndescription: 2024-13-01\n")
    assert main(["validate", str(path)]) == 2
    assert one_line(capsys) == (
        f"egovsim: error: {path}: line 2, column 14: malformed YAML: not a date: '2024-13-01' (month must be in 1..12)"
    )
    assert main(["validate", str(HUE), "--set", "description=2023-02-30"]) == 2
    assert "cannot parse value '2023-02-30' (not a date" in one_line(capsys)
