"""`egovsim run`: the run folder, reproducibility and atomic writes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from egovsim import files
from egovsim.cli import main
from egovsim.config.scenario import load_scenario
from egovsim.model.outcomes import COLUMNS

from .conftest import ROOT, THREE

REQUIRED_COLUMNS = [
    "year",
    "province",
    "adopted_share",
    "use_share_12m",
    "access_share",
    "urban_adopted_share",
    "rural_adopted_share",
    "minority_adopted_share",
    "civil_servant_genuine_share",
    "civil_servant_ceremonial_share",
    "services_online_share",
    "informal_payment_index",
    "supply_index",
]
FAST = ["--scale", "0.002", "--set", "end_year=2023", "--quiet"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["run", str(THREE), "--out", str(out), *FAST]) == 0
    return out


def test_run_folder_holds_every_output(run_folder):
    for name in ("scenario.yaml", "timeseries.csv", "summary.json", "provenance.json"):
        assert (run_folder / name).is_file(), name
    plots = sorted(p.name for p in (run_folder / "plots").glob("*.png"))
    assert {"supply_index.png", "use_by_group.png", "gaps.png"} <= set(plots)
    assert not list(run_folder.rglob(".*.tmp"))


def test_timeseries_has_one_row_per_province_per_month(run_folder):
    with open(run_folder / "timeseries.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    assert set(REQUIRED_COLUMNS) <= set(header)
    assert header == ["year", "date", "province", *COLUMNS]
    scenario = load_scenario(run_folder / "scenario.yaml")
    assert len(rows) == (scenario.n_steps + 1) * 3
    years = sorted({float(r["year"]) for r in rows})
    assert years[0] == 2006 and years[-1] == pytest.approx(2024.0)
    assert years[1] - years[0] == pytest.approx(1 / 12, abs=1e-6)


def test_resolved_scenario_has_every_default_and_the_overrides(run_folder):
    data = yaml.safe_load((run_folder / "scenario.yaml").read_text())
    assert data["end_year"] == 2023
    assert data["citizens"]["p0"] == load_scenario(THREE).citizens.p0  # a default written out
    assert all(p["scale"] == 0.002 for p in data["provinces"].values())
    assert "extends" not in data


def test_summary_and_provenance(run_folder):
    summ = json.loads((run_folder / "summary.json").read_text())
    assert set(summ["provinces"]) == {"hue", "daklak", "bentre"}
    assert {"2017", "2022", "end"} <= set(summ["provinces"]["hue"])
    prov = json.loads((run_folder / "provenance.json").read_text())
    assert prov["seeds"] == [load_scenario(THREE).seed]
    for pkg in ("python", "egovsim", "mesa", "numpy", "scipy"):
        assert prov["versions"][pkg]
    assert "commit" in prov["git"] and prov["wall_time_s"] > 0
    assert "--scale" in prov["egovsim_command"]


def test_same_seed_byte_identical_different_seed_differs(tmp_path):
    paths = []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        out = tmp_path / name
        assert main(["run", str(THREE), "--out", str(out), "--seed", seed, "--no-plots", *FAST]) == 0
        paths.append((out / "timeseries.csv").read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_resolved_scenario_reruns_identically(run_folder, tmp_path):
    out = tmp_path / "again"
    assert main(["run", str(run_folder / "scenario.yaml"), "--out", str(out), "--no-plots", "--quiet"]) == 0
    assert (out / "timeseries.csv").read_bytes() == (run_folder / "timeseries.csv").read_bytes()


def test_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "timeseries.csv"
    files.atomic_write(target, "old,complete\n")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(target, "new," * 100_000)
    assert target.read_text() == "old,complete\n"
    assert list(tmp_path.iterdir()) == [target]


def test_command_line_entry_points():
    """Both `python -m egovsim` and the `egovsim` script that installing the package puts beside the interpreter
    (make's .venv, or any environment the tests run in) answer --help."""
    script = Path(sys.executable).parent / ("egovsim.exe" if os.name == "nt" else "egovsim")
    assert script.is_file(), f"{script}: the package's script is not installed in the tests' environment"
    for cmd in ([sys.executable, "-m", "egovsim", "--help"], [str(script), "--help"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "run" in res.stdout and "validate" in res.stdout


def test_validate_reports_each_file(capsys):
    assert main(["validate", str(THREE), str(ROOT / "scenarios" / "validation" / "bass.yaml")]) == 0
    out = capsys.readouterr().out
    assert "three_provinces.yaml: ok" in out and "bass.yaml: ok" in out


TINY = ["--scale", "0.001", "--set", "end_year=2009", "--set", "citizens.q0=0.3", "--quiet", "--no-plots"]


def test_written_scenario_reproduces_a_run_with_seed_scale_and_overrides(tmp_path):
    """README: rerunning scenario.yaml gives the same results, also after --seed, --scale and --set."""
    daklak = ROOT / "scenarios" / "daklak.yaml"
    assert main(["run", str(daklak), "--seed", "7", *TINY, "--out", str(tmp_path / "a")]) == 0
    assert load_scenario(daklak).seed != 7
    assert main(["run", str(tmp_path / "a" / "scenario.yaml"), "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "timeseries.csv").read_bytes() == (tmp_path / "a" / "timeseries.csv").read_bytes()


def test_written_scenario_of_replicates_reproduces_them(tmp_path):
    daklak = ROOT / "scenarios" / "daklak.yaml"
    common = ["--replicates", "2", "--executor", "serial"]
    assert main(["run", str(daklak), "--seed", "5", *TINY, *common, "--out", str(tmp_path / "a")]) == 0
    again = ["run", str(tmp_path / "a" / "scenario.yaml"), "--quiet", "--no-plots", *common]
    assert main([*again, "--out", str(tmp_path / "b")]) == 0
    for name in ("replicate_000.csv", "replicate_001.csv"):
        a, b = (tmp_path / x / "timeseries" / name for x in "ab")
        assert a.read_bytes() == b.read_bytes()


def test_compare_and_sweep_record_their_master_seed_in_scenario_yaml(tmp_path):
    daklak = ROOT / "scenarios" / "daklak.yaml"
    out = tmp_path / "cmp"
    args = ["compare", str(daklak), str(daklak), "--replicates", "2", "--seed", "9", *TINY, "--executor", "serial"]
    assert main([*args, "--out", str(out)]) == 0
    for label in ("daklak", "daklak_2"):
        assert yaml.safe_load((out / "scenarios" / label / "scenario.yaml").read_text())["seed"] == 9
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"scenario: {daklak}\nscale: 0.001\nset: [end_year=2008]\nseed: 13\ndesign: {{points: [{{citizens.q0: 0.2}}]}}\n"
    )
    assert main(["sweep", str(exp), "--out", str(tmp_path / "sw"), "--executor", "serial", "--quiet"]) == 0
    assert yaml.safe_load((tmp_path / "sw" / "scenario.yaml").read_text())["seed"] == 13


def test_a_seed_out_of_range_is_one_line(tmp_path, capsys):
    daklak = ROOT / "scenarios" / "daklak.yaml"
    assert main(["run", str(daklak), "--seed", str(2**64), *TINY, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err and str(daklak) in err


def killed_write(path) -> Path:
    """The temporary file a write into `path` leaves when its process is killed (SIGKILL) mid-write."""
    code = (
        "import os, signal, sys; from egovsim.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half a file')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    before = set(path.parent.iterdir()) if path.parent.exists() else set()
    res = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, timeout=60)
    assert res.returncode == -9
    (left,) = set(path.parent.iterdir()) - before
    return left


def test_a_run_removes_what_killed_writes_left_in_its_folders(tmp_path):
    """Temporary files of killed writes are removed when a run next writes into their folder; a recent one
    in the store (another process may be writing it right now) and files not named like ours are kept. (In the
    output folder itself every temporary of ours goes: the command holds the folder's lock, folders.claimed.)"""
    out = tmp_path / "out"
    args = ["run", str(THREE), "--out", str(out), "--replicates", "2", "--executor", "serial", "--no-plots", *FAST]
    assert main(args) == 0  # the folder is the command's (a folder of the user's own files is refused)
    shutil.rmtree(out / "runs")
    stale = [killed_write(out / "summary.json"), killed_write(out / "runs" / "abc.npz")]
    hour_ago = time.time() - 2 * 3600
    for path in stale:
        os.utime(path, (hour_ago, hour_ago))
    recent = killed_write(out / "runs" / "def.npz")
    others = [out / ".notes.tmp", out / "data.tmp", out / ".x.abcdefgh.tmp.keep"]
    for path in others:
        path.write_text("not ours")
        os.utime(path, (hour_ago, hour_ago))
    assert main(args) == 0
    assert not any(p.exists() for p in stale)
    assert recent.exists() and all(p.exists() for p in others)
    assert (out / "summary.json").is_file() and len(list((out / "runs").glob("*.npz"))) == 2


@pytest.mark.parametrize("name", ["bentre.yaml", "calibrated/bentre.yaml", "whatif/bentre_rural_reach.yaml"])
def test_a_province_without_a_published_value_runs_and_writes_its_report(tmp_path, name):
    """Ben Tre has only a MIC rank (57th, below Daklak's 48th at 0.525): its own run has no observed value to
    show, and its report says what it is compared with instead, a bound at Daklak's published value, rather than
    failing (the run used to stop at report time)."""
    out = tmp_path / "r"
    through_2017 = ["--scale", "0.001", "--set", "end_year=2018", "--quiet", "--no-plots"]  # MIC 2017 in range
    assert main(["run", str(ROOT / "scenarios" / name), *through_2017, "--out", str(out)]) == 0
    assert (out / "timeseries.csv").is_file()
    page = (out / "report.html").read_text()
    row = page[page.index("<td>mic_2017_bentre_below_daklaks_value</td>") :].split("</tr>")[0]
    assert "&lt;= 0.525" in row and "Ben Tre ranked 57th of 63" in row


def test_provenance_says_dirty_for_edits_found_at_the_start_not_for_the_commands_own_results(tmp_path):
    """`git.dirty` is the work tree as the command found it (note_start): an edited tracked file anywhere (code,
    data) or a new module of the package makes it dirty; results the command itself writes into a tracked folder
    (the shipped posterior is rewritten in place) do not, nor does a user's own untracked file."""
    from egovsim import provenance

    repo = tmp_path / "repo"
    for name in ("egovsim", "calibration"):
        (repo / name).mkdir(parents=True)
    (repo / "egovsim" / "model.py").write_text("x = 1\n")
    (repo / "calibration" / "posterior.csv").write_text("a\n")
    (repo / "calibration" / "observations.yaml").write_text("hue: 0.727\n")
    (repo / "uv.lock").write_text("lock\n")
    (repo / "pyproject.toml").write_text("[project]\n")

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True
        )

    def reported() -> bool:
        return provenance.provenance(seeds=[1], wall_time_s=0.0, scenario_file=None, command=[])["git"]["dirty"]

    if shutil.which("git") is None:
        pytest.skip("no git")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "c")
    old = provenance.REPO_ROOT
    try:
        provenance.REPO_ROOT = repo
        provenance.note_start()
        (repo / "calibration" / "posterior.csv").write_text("b\n")  # the command's own result, rewritten in place
        assert reported() is False
        provenance.forget_start()
        assert reported() is True  # found edited by the next command
        git("checkout", "-q", "--", ".")
        (repo / "notes.txt").write_text("mine\n")  # a user's own untracked file
        assert provenance.git_commit()["dirty"] is False
        (repo / "calibration" / "observations.yaml").write_text("hue: 0.300\n")  # edited data
        assert provenance.git_commit()["dirty"] is True
        git("checkout", "-q", "--", ".")
        (repo / "egovsim" / "new_rule.py").write_text("y = 2\n")  # code that is not committed
        assert provenance.git_commit()["dirty"] is True
        (repo / "egovsim" / "new_rule.py").unlink()
        (repo / "uv.lock").write_text("other\n")
        assert provenance.git_commit()["dirty"] is True
    finally:
        provenance.REPO_ROOT = old
        provenance.forget_start()
