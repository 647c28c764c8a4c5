"""Scenario discovery: PRIM on data with a known box (analysis/discovery.py), and `egovsim discover` end to end."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import yaml

from egovsim.analysis.discovery import choose, chosen_in_words, find_boxes, in_box, limits_in_words
from egovsim.cli import main
from tests.conftest import ROOT, every_column_described

NAMES = ["x1", "x2", "x3", "x4", "x5"]


@pytest.fixture(scope="module")
def known_box():
    """The case holds exactly where x1 > 0.7 and x2 < 0.3; x3-x5 are noise."""
    X = np.random.default_rng(3).random((1000, 5))
    y = (X[:, 0] > 0.7) & (X[:, 1] < 0.3)
    return X, y, find_boxes(X, y, NAMES, resamples=4, seed=1)


def test_prim_finds_the_known_box(known_box):
    X, y, found = known_box
    box = found.box
    assert set(box.limits) == {"x1", "x2"}  # the noise inputs are not restricted
    assert abs(box.limits["x1"][0] - 0.7) < 0.05 and box.limits["x1"][1] > 0.95
    assert abs(box.limits["x2"][1] - 0.3) < 0.05 and box.limits["x2"][0] < 0.05
    assert box.coverage > 0.8 and box.density > 0.8
    # the statistics are those of the points inside the limits (computed here, not by PRIM)
    inside = in_box(X, NAMES, box.limits)
    assert box.coverage == pytest.approx(y[inside].sum() / y.sum())
    assert box.density == pytest.approx(y[inside].mean())
    assert box.qp["x1"][0] < 1e-6 and box.qp["x2"][1] < 1e-6  # both limits significant
    assert found.stability["x1"] == found.stability["x2"] == 100.0
    assert max(found.stability[n] for n in ("x3", "x4", "x5")) <= 25.0


def test_the_box_s_conditions_say_whether_each_could_be_chance(known_box):
    """The lines report.md and the terminal both print (discover.conditions): each limit in words, its quasi-p
    value and the verdict; a limit PRIM would draw on noise alone is called what it may be."""
    from egovsim.analysis.discover import conditions

    _, _, found = known_box
    lines = conditions(found, resamples=4, emphasis="**")
    assert len(lines) == 2 and all("quasi-p" in line and ": quasi-p" in line for line in lines)
    assert lines[0].startswith("x1 at least ") and "significant; restricted again in" in lines[0]
    doubtful = copy.deepcopy(found)
    doubtful.box.qp["x2"] = (0.3, float("nan"))  # as if x2's limit were no surer than a coin
    line = conditions(doubtful, 4, "**")[1]
    assert line.startswith("x2 at most ") and "quasi-p 0.3, **could be chance**" in line


def test_cart_splits_near_the_true_limits(known_box):
    _, _, found = known_box
    best = max(found.leaves, key=lambda leaf: leaf["density"] * leaf["coverage"])
    assert best["density"] > 0.9 and best["coverage"] > 0.9
    assert abs(best["limits"]["x1"][0] - 0.7) < 0.05 and abs(best["limits"]["x2"][1] - 0.3) < 0.05
    assert "x1" in found.tree and "x2" in found.tree


def test_the_same_seed_gives_the_same_boxes(known_box):
    X, y, found = known_box
    again = find_boxes(X, y, NAMES, resamples=4, seed=1)
    assert repr(again.box) == repr(found.box) and again.stability == found.stability and again.tree == found.tree


def test_chosen_box_is_the_widest_dense_enough():
    traj = [
        {"id": 0, "coverage": 1.0, "density": 0.3},
        {"id": 1, "coverage": 0.9, "density": 0.8},
        {"id": 2, "coverage": 0.5, "density": 0.95},
    ]
    assert choose(traj, 0.8) == 1
    assert choose(traj, 0.9) == 2
    assert choose(traj, 0.99) == 2  # none dense enough: the densest


@pytest.mark.parametrize(
    "truth",
    [
        {"x1": (0.7, 1.0)},  # one side
        {"x1": (0.0, 0.45), "x3": (0.0, 0.6), "x5": (0.35, 1.0)},  # three inputs, each on one side
        {"x2": (0.2, 0.8)},  # both sides of one input
    ],
)
def test_a_case_without_noise_gets_its_own_box_not_a_looser_one(truth):
    """With no noise, peeling on while no case is lost only removes points that are not cases: the chosen box is
    the true box, to the spacing of the sample (2,000 points), not the loosest box above min_density."""
    X = np.random.default_rng(7).random((2000, 5))
    y = in_box(X, NAMES, truth)
    box = find_boxes(X, y, NAMES, resamples=0).box
    assert set(box.limits) == set(truth)
    for name, (lo, hi) in truth.items():
        assert box.limits[name][0] == pytest.approx(lo, abs=0.02) and box.limits[name][1] == pytest.approx(hi, abs=0.02)
    assert box.coverage == 1.0 and box.density > 0.9  # the last peel of 5% that loses no case; 0.81 before


def test_equal_coverage_goes_to_the_densest_box():
    traj = [
        {"id": 0, "coverage": 1.0, "density": 0.5},
        {"id": 1, "coverage": 1.0, "density": 0.85},
        {"id": 2, "coverage": 1.0, "density": 0.99},
        {"id": 3, "coverage": 0.9, "density": 1.0},
    ]
    assert choose(traj, 0.8) == 2


def test_one_input_gets_a_box_and_cart_leaves_that_partition_the_sample():
    """EMA Workbench's CART.boxes fails on a tree of one input; the leaves are read from the tree itself."""
    X = np.random.default_rng(0).random((500, 1))
    y = X[:, 0] > 0.6
    found = find_boxes(X, y, ["x1"], resamples=2)
    assert found.box.limits["x1"][0] == pytest.approx(0.6, abs=0.02)
    assert sum(leaf["mass"] for leaf in found.leaves) == pytest.approx(1.0)
    assert sum(leaf["coverage"] for leaf in found.leaves) == pytest.approx(1.0)
    for leaf in found.leaves:  # each leaf's figures are those of the points inside its limits
        inside = in_box(X, ["x1"], leaf["limits"])
        assert leaf["mass"] == pytest.approx(inside.mean(), abs=1 / 500)
    assert any(
        leaf["density"] == 1.0 and leaf["limits"]["x1"][0] == pytest.approx(0.6, abs=0.02) for leaf in found.leaves
    )


def test_the_words_say_when_no_condition_is_needed_and_when_no_box_is_dense_enough():
    X = np.random.default_rng(7).random((2000, 5))
    y = np.random.default_rng(8).random(2000) < 0.95  # holds at 95% of points, whatever the inputs
    common = find_boxes(X, y, NAMES, resamples=0)
    assert common.box.limits == {}
    words = chosen_in_words(common, 0.8, 0.05)
    assert words.startswith(f"No condition is needed: the case holds at {100 * y.mean():.0f}% of all points")
    assert "Raise min_density above" in words
    rare = find_boxes(X, (X[:, 0] > 0.85) & (X[:, 1] > 0.8), NAMES, resamples=0)  # 3% of points, mass_min 5%
    assert rare.box.density < 0.8
    words = chosen_in_words(rare, 0.8, 0.05)
    assert words.startswith("No box reaches the density asked for (0.8)") and "mass_min below" in words
    dense = find_boxes(X, X[:, 0] > 0.7, NAMES, resamples=0)
    assert chosen_in_words(dense, 0.8, 0.05).startswith("PRIM's chosen box (box ")
    # PRIM cannot peel at all (mass_min 0.97): the whole sample, and it is not dense enough
    unpeeled = find_boxes(X[:400], X[:400, 0] > 0.7, NAMES, resamples=0, mass_min=0.97)
    assert unpeeled.box.limits == {} and unpeeled.box.density < 0.8
    assert chosen_in_words(unpeeled, 0.8, 0.97).startswith("No box reaches the density asked for (0.8): PRIM peels")
    # a noisy case of share ~0.39: far above mass_min, so mass_min is not why no box is dense enough
    rng = np.random.default_rng(2)
    noisy = np.where(X[:, 0] > 0.5, rng.random(2000) < 0.7, rng.random(2000) < 0.1)
    words = chosen_in_words(find_boxes(X, noisy, NAMES, resamples=0), 0.8, 0.05)
    assert "no region of the inputs holds the case that densely" in words and "mass_min" not in words


def test_no_box_when_the_case_never_holds():
    X = np.random.default_rng(0).random((50, 2))
    found = find_boxes(X, np.zeros(50, bool), ["a", "b"])
    assert found.box is None and found.cases == 0


def test_limits_in_words_name_only_the_restricted_side():
    words = limits_in_words({"a": (0.7, 1.0), "b": (0.0, 0.3), "c": (0.2, 0.6)}, {k: (0.0, 1.0) for k in "abc"})
    assert words == [
        "a at least 0.7 (sampled 0 to 1)",
        "b at most 0.3 (sampled 0 to 1)",
        "c between 0.2 and 0.6 (sampled 0 to 1)",
    ]


# ---- the command ------------------------------------------------------------------------------------------

TINY = """
name: tiny_discovery
scenario: {scenario}
scale: 0.0005
set: ["end_year=2010"]
seed: 5
province: bentre
levers_from: 2008
n: 16
levers:
  training: [0.0, 3.0]
  community_digital_teams: [0.0, 3.0]
parameters:
  citizens.lapse_prob: {{bounds: [0.0, 0.6]}}
outcomes:
  literacy_2010: literacy_mean@2010
  use_2010: use_share_12m@2010
  gap_2010: {{outcome: urban_rural_use_gap, year: 2010}}
case: {case}
resamples: 2
"""


# Training and community digital teams raise rural literacy (docs/ODD.md 7.2), so over the levers' ranges the mean
# literacy of 2010 is on both sides of 0.5: the case holds at some points and not at others
def write_tiny(tmp_path, case="literacy_2010 >= 0.5", **edits) -> str:
    text = TINY.format(scenario=ROOT / "scenarios" / "calibrated" / "bentre.yaml", case=case)
    for old, new in edits.items():
        text = text.replace(old, new)
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return str(path)


def test_discover_end_to_end(tmp_path, capsys):
    path = write_tiny(tmp_path)
    out = tmp_path / "out"
    assert main(["discover", path, "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    for name in ("boxes.csv", "sample.csv", "trajectory.csv", "cart.txt", "report.md", "provenance.json"):
        assert (out / name).is_file(), name
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())  # what ran, whatever the files say later
    assert resolved["end_year"] == 2010 and resolved["provinces"]["bentre"]["scale"] == 0.0005
    rows = list(csv.DictReader((out / "sample.csv").open()))
    assert len(rows) == 16
    # the case column is the rule applied to the outcome columns, and it holds at some points and not at others
    holds = [float(r["literacy_2010"]) >= 0.5 for r in rows]
    assert [r["case"] for r in rows] == [str(int(h)) for h in holds]
    assert 0 < sum(holds) < len(rows)
    # the gap is urban minus rural use, a difference of shares
    assert all(-1 <= float(r["gap_2010"]) <= 1 for r in rows)
    assert "# Scenario discovery: tiny_discovery" in (out / "report.md").read_text()
    words = every_column_described(out)  # the levers', parameters' and outcomes' columns are the file's names
    assert words["literacy_2010"]["meaning"].startswith("literacy_2010: Ben Tre's literacy_mean in 2010 (1 July)")
    first = (out / "sample.csv").read_text()
    # run again: every run comes from the store, and the outputs are the same
    capsys.readouterr()
    assert main(["discover", path, "--out", str(out), "--executor", "serial"]) == 0
    assert (out / "sample.csv").read_text() == first
    assert f"the case holds at {sum(holds)} of 16 points" in capsys.readouterr().err
    # PRIM's boxes restrict the levers that raise literacy, each box within the levers' ranges
    boxes = list(csv.DictReader((out / "boxes.csv").open()))
    assert boxes and {b["input"] for b in boxes} <= {"training", "community_digital_teams", "citizens.lapse_prob"}
    assert all(0.0 <= float(b["low"]) <= float(b["high"]) <= 3.0 for b in boxes)
    # every box holds more cases than the sample as a whole (its density is above the base rate)
    assert all(float(b["density"]) > sum(holds) / len(rows) for b in boxes)


@pytest.mark.parametrize(
    ("edits", "case", "message"),
    [
        (
            {"  training: [0.0, 3.0]": "  trainig: [0.0, 3.0]"},
            "use_2010 >= 0.01",
            "levers.trainig: unknown lever 'trainig' (did you mean 'training'?)",
        ),
        (
            {"  training: [0.0, 3.0]": "  training: [3.0, 0.0]"},
            "use_2010 >= 0.01",
            "levers.training: expected [low, high] with low < high",
        ),
        ({}, "adoption_2010 >= 0.2", "case: 'adoption_2010' is not one of the file's outcomes"),
        ({}, "use_2010 => 0.2", "case: expected 'outcome >= number'"),
        ({"province: bentre": "province: bentr"}, "use_2010 >= 0.01", "province: unknown province 'bentr'"),
        (  # PRIM would be handed a lever that cannot vary anything and report conditions on noise
            {"  training: [0.0, 3.0]": "  training: [2.0, 2.0000000000001]"},
            "use_2010 >= 0.01",
            "levers.training: [2.0, 2.0000000000001] is too narrow to vary anything",
        ),
        (
            {"[0.0, 0.6]": "[0.3, 0.30000001]"},
            "use_2010 >= 0.01",
            "parameters.citizens.lapse_prob.bounds: [0.3, 0.30000001] is too narrow",
        ),
        (  # each range valid alone (checked against the scenario's other value), some sampled pairs break the rule
            {
                "citizens.lapse_prob: {bounds: [0.0, 0.6]}": "access.initial: {bounds: [0.05, 0.8]}\n"
                "  access.ceiling: {bounds: [0.5, 0.95]}"
            },
            "use_2010 >= 0.01",
            "of the sample: access.initial: 0.",
        ),
    ],
)
def test_bad_discovery_files_get_one_line(tmp_path, capsys, edits, case, message):
    path = write_tiny(tmp_path, case=case, **edits)
    assert main(["discover", path, "--out", str(tmp_path / "out"), "--executor", "serial"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"egovsim: error: {path}: ")
    assert message in err
    assert not (tmp_path / "out").exists()


def test_dask_gives_the_serial_results(tmp_path):
    path = write_tiny(tmp_path)
    for executor in ("serial", "dask"):
        out = tmp_path / executor
        assert main(["discover", path, "--out", str(out), "--executor", executor, "--workers", "2", "--quiet"]) == 0
    for name in ("sample.csv", "boxes.csv", "cart.txt"):
        assert (tmp_path / "dask" / name).read_text() == (tmp_path / "serial" / name).read_text()


def test_validate_knows_a_discovery_file():
    assert main(["validate", str(ROOT / "experiments" / "discover_bentre_rural.yaml")]) == 0


def test_discover_checks_and_samples_its_file_once(tmp_path, monkeypatch):
    """The sample is made and checked point by point once (about a millisecond a point), not again inside the run."""
    import egovsim.analysis.discover as discover

    calls = []
    real = discover.sample
    monkeypatch.setattr(discover, "sample", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = write_tiny(tmp_path)
    assert main(["discover", path, "--out", str(tmp_path / "out"), "--executor", "serial", "--quiet"]) == 0
    assert len(calls) == 1
