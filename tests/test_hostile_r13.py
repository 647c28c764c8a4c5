"""Round 13's hostile pass: a province may not be called `national` (the mean's name), a calibration target that
leads nowhere or counts twice is refused, and so is a value a calibration varies twice; an --out through `..`
is the folder it names; YAML 1.1's base-60 and octal numbers are errors; --scheduler with a local executor is a
contradiction said at once."""

from __future__ import annotations

import json
import re

import pytest

from egovsim.cli import main

from .conftest import ROOT

HUE = ROOT / "scenarios" / "hue.yaml"
THREE = ROOT / "scenarios" / "three_provinces.yaml"
TINY = ["--scale", "0.0005", "--set", "end_year=2007", "--quiet", "--no-plots"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "provinces:\n  national: {name: Nat, population: 100000, urban_share: 0.3, minority_share: 0.1}\n",
            "provinces.national",
        ),
        (
            "mergers:\n  - {date: 2025.5, name: m, into: national, label: N, members: [hue, daklak], leader: hue, "
            "policy: hue, systems: keep}\n",
            "mergers[0].into",
        ),
        ("report_years: [2017, 2022, 2017]\n", "report_years"),
    ],
)
def test_names_an_outcome_statistic_reads_otherwise_are_refused(tmp_path, capsys, text, field):
    """`national` in an outcome statistic is the population-weighted mean: a province of that key would read the
    mean in every sweep, study and target (a reviewer's sweep reported the mean as the province)."""
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {THREE}\nname: s\n{text}")
    assert main(["validate", str(path)]) == 2
    err = one_line(capsys)
    assert f"{path}: {field}:" in err, err


CALIBRATION = """\
scenario: {scenario}
observations: {observations}
scale: 0.0005
end_year: 2022
seed: 1
parameters:
  citizens.q0: {{bounds: [0.1, 0.9]}}
{extra_parameters}targets:
  - {{name: dti, type: value, observation: {observation}, path: {path}, outcome: supply_index, year: 2022,
     provinces: {provinces}, sd: 0.05}}
"""


def calibration(
    tmp_path, *, path="[values, 2022, hue_digital_government_activity]", provinces="[hue]", extra_parameters=""
):
    """A one-target calibration on the shipped observations: Hue's DTI digital-government value in 2022."""
    config = tmp_path / "cal.yaml"
    config.write_text(
        CALIBRATION.format(
            scenario=THREE,
            observations=ROOT / "calibration" / "observations.yaml",
            observation="dti_values",
            path=path,
            provinces=provinces,
            extra_parameters=extra_parameters,
        )
    )
    return str(config)


@pytest.mark.parametrize(
    ("path", "index", "named"),
    [
        ("[values, 2022, hue_digital_govt_activity]", 2, "'hue_digital_government_activity'"),
        ("[valuse, 2022, hue_digital_government_activity]", 0, "'values'"),
        ('[values, "2022", hue_digital_government_activity]', 1, "2022"),
    ],
)
def test_a_calibration_target_path_that_leads_nowhere_is_refused(tmp_path, capsys, path, index, named):
    """A typo in a target's path dropped the target from the fit without a word ('0/1 fitted targets met'); a
    year given as text ("2022") where the data are keyed by the number did the same. The error names the key
    and the keys there are."""
    assert main(["validate", calibration(tmp_path)]) == 0, capsys.readouterr().err  # the path as the data have it
    capsys.readouterr()
    assert main(["validate", calibration(tmp_path, path=path)]) == 2
    err = one_line(capsys)
    assert f"targets[0].path[{index}]: no key" in err and named in err, err


def test_a_calibration_target_listing_a_province_twice_is_refused(tmp_path, capsys):
    assert main(["validate", calibration(tmp_path, provinces="[hue, hue]")]) == 2
    assert "targets[0].provinces: 'hue' is listed twice" in one_line(capsys)


def test_a_value_a_calibration_varies_twice_is_refused(tmp_path, capsys):
    """provinces.*.x beside provinces.hue.x: two parameters of one value, the later silently winning every run
    (sweeps and studies refused it already)."""
    extra = (
        "  provinces.*.leader.will_effect: {bounds: [-1, 1]}\n  provinces.hue.leader.will_effect: {bounds: [-1, 1]}\n"
    )
    assert main(["validate", calibration(tmp_path, extra_parameters=extra)]) == 2
    err = one_line(capsys)
    assert "parameters.provinces.hue.leader.will_effect: sets provinces.hue.leader.will_effect" in err, err


def test_an_out_through_dotdot_is_the_folder_it_names(tmp_path, capsys, monkeypatch):
    """r1/plots/.. is r1 (rerun there, its staging folder beside it, not inside plots/), ../x from a subfolder is
    x, and a refused nonexist/.. creates nothing."""
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert main(["run", str(HUE), *TINY, "--out", "../r1"]) == 0
    assert (tmp_path / "r1" / "provenance.json").is_file()
    first = json.loads((tmp_path / "r1" / "command.json").read_text())
    assert main(["run", str(HUE), *TINY, "--out", "../r1/plots/.."]) == 0  # the same folder, the same command
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1", "sub"]
    assert json.loads((tmp_path / "r1" / "command.json").read_text())["settings"] == first["settings"]
    capsys.readouterr()
    assert main(["run", str(HUE), *TINY, "--out", "../nonexist/.."]) == 2  # tmp_path holds r1: refused
    assert f"{tmp_path}: --out: holds r1" in one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1", "sub"]


@pytest.mark.parametrize(("value", "words"), [("33:30", "base-60"), ("1:30:00", "base-60"), ("017", "octal")])
def test_yaml_1_1_numbers_no_one_means_are_errors(tmp_path, capsys, value, words):
    """YAML 1.1 reads 33:30 as 2010 and 017 as 15: an event dated 33:30 became an event of 2010."""
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {HUE}\nname: s\nseed: {value}\n")
    assert main(["validate", str(path)]) == 2
    err = one_line(capsys)
    assert str(path) in err and words in err and re.search(r"line \d+", err), err


def test_a_scheduler_beside_a_local_executor_is_refused_at_once(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                str(HUE),
                *TINY,
                "--replicates",
                "2",
                "--executor",
                "serial",
                "--scheduler",
                "tcp://127.0.0.1:1",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "--executor: serial runs locally, --scheduler on a Dask cluster" in one_line(capsys)
    assert not (tmp_path / "x").exists()


def test_a_scenario_compared_with_itself_is_said_to_be(tmp_path, capsys):
    """A file given twice gives a difference of zero by construction: a runner check, not a what-if finding."""
    args = ["compare", str(HUE), str(HUE), "--replicates", "2", *TINY, "--out", str(tmp_path / "same")]
    assert main(args) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "the same scenario" in line]
    assert len(warned) == 1 and warned[0].startswith("egovsim: warning: hue and hue_2"), err
    other = tmp_path / "other.yaml"
    other.write_text(f"extends: {HUE}\nname: other\nprovinces: {{hue: {{policy: {{training: 2.0}}}}}}\n")
    assert main(["compare", str(HUE), str(other), "--replicates", "2", *TINY, "--out", str(tmp_path / "o")]) == 0
    assert "the same scenario" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "never"),
    [
        ("u >= 0.3 and u <= 0.2", "'u >= 0.3' and 'u <= 0.2'"),
        ("u > 0.3 and u <= 0.3", "'u > 0.3' and 'u <= 0.3'"),
        ("u >= 0.1 and u >= 0.4 and u < 0.4", "'u >= 0.4' and 'u < 0.4'"),
        ("u >= 0.3 and u <= 0.3", None),  # exactly 0.3 meets both
        ("u >= 0.3 and v <= 0.2", None),  # two outcomes: each may hold
    ],
)
def test_a_case_or_target_whose_clauses_never_hold_together_is_refused(text, never):
    """One impossible clause was refused (a share above 1), two clauses that exclude each other were not: every
    point of a discovery would be no case, every mix of a search would miss."""
    from egovsim.config.analysis import parse_rule
    from egovsim.errors import InputError

    names = {"u": None, "v": None}
    if never is None:
        assert len(parse_rule(text, names, "f.yaml", "case")) == text.count(" and ") + 1
    else:
        with pytest.raises(InputError, match=re.escape(f"{never} never hold together")):
            parse_rule(text, names, "f.yaml", "case")
