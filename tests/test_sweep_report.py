"""The sweep report (analysis/sweep_report.py): main effects and their intervals against hand-computed answers,
and what `egovsim sweep` writes (report.md, plots, parameter columns in timeseries.parquet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.stats import t

from egovsim import cli
from egovsim.analysis.sweep_report import SweepRuns, interaction, main_effect
from tests.conftest import every_column_described

ROOT = Path(__file__).resolve().parents[1]
DAKLAK = ROOT / "scenarios" / "daklak.yaml"


def grid_runs(outcome, replicates: int = 3) -> SweepRuns:
    """A 3 x 2 grid (a in 0.5, 1, 2; b in 'x', 'y') x replicates, outcome(a, b, r) per run."""
    values = {"a": [], "b": []}
    reps, y = [], []
    for a in (2.0, 0.5, 1.0):  # deliberately unsorted: levels of a number are sorted
        for b in ("x", "y"):
            for r in range(replicates):
                values["a"].append(a)
                values["b"].append(b)
                reps.append(r)
                y.append(outcome(a, b, r))
    return SweepRuns(["a", "b"], values, np.array(reps), {"out": np.array(y, dtype=float)}, set())


def test_a_paired_main_effect_cancels_the_replicate_noise_and_has_the_t_interval():
    """y = 0.3 a + 0.1 [b = y] + noise of replicate r: the effect of a (2 - 0.5) is exactly 0.45 with a zero-width
    interval (the noise is common to both levels within a replicate); the level means are the hand values."""
    noise = [0.07, -0.02, 0.11]
    runs = grid_runs(lambda a, b, r: 0.3 * a + 0.1 * (b == "y") + noise[r])
    e = main_effect(runs, "a", "out")
    assert e.labels == ["0.5", "1", "2"]
    assert e.change == pytest.approx(0.45)
    assert e.change_lo == pytest.approx(0.45) and e.change_hi == pytest.approx(0.45)
    expected_means = [0.3 * a + 0.05 + np.mean(noise) for a in (0.5, 1.0, 2.0)]
    np.testing.assert_allclose(e.mean, expected_means)
    # the level band is the t-interval of the replicate means: here the noise alone
    half = t.ppf(0.975, 2) * np.std(noise, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(e.hi - e.mean, half)
    categorical = main_effect(runs, "b", "out")
    assert categorical.labels == ["x", "y"] and categorical.x is None
    assert categorical.change == pytest.approx(0.1)


def test_an_effect_that_differs_between_replicates_has_the_hand_computed_interval():
    """y = slope_r x a: the effect per replicate is 1.5 slope_r; its mean and 95% t-interval over replicates."""
    slopes = [0.1, 0.4, 0.25, 0.3]
    runs = grid_runs(lambda a, b, r: slopes[r] * a, replicates=4)
    e = main_effect(runs, "a", "out")
    per_replicate = 1.5 * np.array(slopes)
    half = t.ppf(0.975, 3) * per_replicate.std(ddof=1) / 2
    assert e.change == pytest.approx(per_replicate.mean())
    assert (e.change_lo, e.change_hi) == pytest.approx((per_replicate.mean() - half, per_replicate.mean() + half))


def test_one_replicate_gives_no_interval_rather_than_a_zero_width_one():
    e = main_effect(grid_runs(lambda a, b, r: a, replicates=1), "a", "out")
    assert e.change == pytest.approx(1.5)
    assert np.isnan(e.change_lo) and np.isnan(e.lo).all()


def test_a_missing_value_drops_its_setting_at_every_level_so_levels_stay_comparable():
    """y = a + 10 [b = y] + noise_r with the runs at (a = 2, b = x) missing (failed, or a time_to never reached):
    averaging each level over whatever runs it has would compare a = 2 (only b = y) with a = 0.5 (both b) and
    report 6.5; leaving the setting b = x out at every level gives the effect of a, 1.5, still paired."""
    noise = [0.07, -0.02, 0.11]
    runs = grid_runs(lambda a, b, r: np.nan if (a == 2.0 and b == "x") else a + 10 * (b == "y") + noise[r])
    e = main_effect(runs, "a", "out")
    assert e.change == pytest.approx(1.5) and e.change_hi - e.change_lo == pytest.approx(0.0, abs=1e-12)
    assert e.replicates == 3
    # b's effect is measured where both its levels have values: a = 0.5 and a = 1
    assert main_effect(runs, "b", "out").change == pytest.approx(10.0)


def test_a_replicate_without_a_value_at_some_level_is_counted_and_said():
    """One replicate lost every run at a = 2: the effect rests on the other two, and the report says so."""
    runs = grid_runs(lambda a, b, r: np.nan if (a == 2.0 and r == 0) else a)
    e = main_effect(runs, "a", "out")
    assert e.replicates == 2 and e.change == pytest.approx(1.5)


def test_interaction_lines_show_an_interaction_and_none_without_one():
    """y = a x [b = y]: the effect of a is 0 at b = x and 1.5 at b = y; y = a + [b = y]: parallel lines."""
    _, lines = interaction(grid_runs(lambda a, b, r: a * (b == "y")), "a", "b", "out")
    assert [(label, round(e.change, 12)) for label, e in lines] == [("x", 0.0), ("y", 1.5)]
    _, lines = interaction(grid_runs(lambda a, b, r: a + (b == "y")), "a", "b", "out")
    assert [round(e.change, 12) for _, e in lines] == [1.5, 1.5]


def test_a_sweep_writes_its_report_plots_and_parameter_columns(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"name: tiny\ndescription: does training raise use?\nscenario: {DAKLAK}\nscale: 0.001\n"
        "set: [end_year=2009]\ndesign:\n  grid:\n    provinces.*.policy.training: [0.5, 2.0]\n"
        "    provinces.*.policy.software_strategy: [local, platform]\nreplicates: 2\nseed: 5\n"
        "outcomes: [supply_index@2008, adopted_share@end]\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert cli.main(["sweep", str(exp), "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "does training raise use?" in report
    assert "Parameters of the base scenario: prior parameters (sourced priors, not calibrated)" in report
    assert "| `provinces.*.policy.training` | 0.5 -> 2 |" in report
    assert "| `provinces.*.policy.software_strategy` | local -> platform |" in report
    assert "## daklak: supply_index in 2008 (1 July)" in report
    assert "## daklak: adopted_share in 2009 (1 July)" in report  # outcome@end: the end year's mid-year state
    for name in ("main_effects.png", "interaction.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    words = every_column_described(out)
    assert words["daklak.supply_index@2008"]["meaning"].startswith("daklak: supply_index in 2008 (1 July)")
    assert words["provinces.*.policy.training"]["files"] == "runs.csv timeseries.parquet"
    table = pq.read_table(out / "timeseries.parquet").to_pandas()
    assert set(table["provinces.*.policy.training"]) == {0.5, 2.0}
    assert set(table["provinces.*.policy.software_strategy"]) == {"local", "platform"}
    # every row's parameters are those of its run in runs.csv
    import csv

    rows = {r["run"]: r for r in csv.DictReader((out / "runs.csv").open())}
    for run, group in table.groupby("run"):
        assert float(rows[run]["provinces.*.policy.training"]) == group["provinces.*.policy.training"].iloc[0]
        assert (
            rows[run]["provinces.*.policy.software_strategy"] == group["provinces.*.policy.software_strategy"].iloc[0]
        )


def test_a_sweep_without_any_finished_run_says_so():
    from types import SimpleNamespace

    from egovsim.analysis.sweep_report import report_markdown

    exp = SimpleNamespace(
        name="empty", description="q", seeds="common", replicates=2, design=SimpleNamespace(kind="grid", size=2)
    )
    base = SimpleNamespace(name="daklak", parameters=SimpleNamespace(label=lambda: "prior parameters", drawn=False))
    runs = SweepRuns(["a"], {"a": []}, np.array([], dtype=int), {"out": np.array([])}, set())
    report = report_markdown(exp, base, runs, {}, {"out": 4}, [])
    assert "No run finished" in report
    # the design as given, not as counted from the runs that finished (it said "0 points x 0 replicates")
    assert "design: grid, 2 points x 2 replicates (0 of 4 runs with results)" in report


def _report(runs: SweepRuns, stat, missing=None) -> str:
    from types import SimpleNamespace

    from egovsim.analysis.sweep_report import report_markdown
    from egovsim.config.scenario import load_scenario

    exp = SimpleNamespace(
        name="s", description="q", seeds="common", replicates=3, design=SimpleNamespace(kind="grid", size=6)
    )
    base = load_scenario(DAKLAK, ["end_year=2020"], scale=0.001)
    return report_markdown(exp, base, runs, {"out": stat}, missing or {}, [])


def test_a_time_to_effect_says_its_means_are_over_the_replicates_complete_at_every_level():
    """Replicate 0 never reaches the level at a = 0.5 (censored): the means at every level are over replicates 1
    and 2 only, though replicate 0 reached it at a = 1 and 2, and the report says so where the means are."""
    from egovsim.config.analysis import OutcomeStat

    runs = grid_runs(lambda a, b, r: np.nan if (a == 0.5 and r == 0) else 10 - a + r)
    stat = OutcomeStat("use_share_12m", stat="time_to", level=0.05)
    report = _report(runs, stat, {"out": 2})
    row = next(line for line in report.splitlines() if line.startswith("| `a` |"))
    assert "11 / 10.5 / 9.5" in row  # 10 - a + mean(1, 2): replicate 0 (9 at a = 1, 8 at a = 2) is left out
    assert "means and effect over the 2 of 3 replicates with a value at every level" in row
    assert "over the replicates in which the run at every level reached it" in report


def test_equal_effects_in_every_replicate_give_no_interval_not_a_zero_width_one():
    from egovsim.config.analysis import OutcomeStat

    runs = grid_runs(lambda a, b, r: 0.1 * a + 0.01 * r)  # the same effect in every replicate
    report = _report(runs, OutcomeStat("adopted_share"))
    row = next(line for line in report.splitlines() if line.startswith("| `a` |"))
    assert "+0.15 (no interval: the replicates' effects are all equal)" in row and "[+0.15, +0.15]" not in row


def test_an_interval_past_what_a_difference_of_shares_can_be_is_flagged():
    """Effects of a share of 0.3 and 0.9 in two replicates: the t interval on 1 degree of freedom reaches past
    +1, which no difference of two shares can; the report says to run more replicates."""
    from egovsim.config.analysis import OutcomeStat

    runs = grid_runs(lambda a, b, r: 0.2 if a == 0.5 else 0.2 + (0.3 if r == 0 else 0.9) * (a - 0.5) / 1.5, 2)
    report = _report(runs, OutcomeStat("adopted_share"))
    assert "**Too few replicates:** the interval of `a` reaches past what a difference of this outcome" in report
    calm = _report(grid_runs(lambda a, b, r: 0.1 * a + 0.01 * r * a), OutcomeStat("adopted_share"))
    assert "Too few replicates" not in calm


def test_a_hypercube_of_fewer_points_than_quintiles_bins_each_point():
    """Four points of a Latin hypercube (two replicates, common seeds): five quintile bins left one empty and every
    effect n/a; each point is now its own bin, and the effect is y's change from the lowest to the highest."""
    a = [0.1, 0.4, 0.6, 0.9] * 2
    y = np.array(a) * 2 + np.array([0.0] * 4 + [0.1] * 4)
    runs = SweepRuns(["a"], {"a": a}, np.array([0] * 4 + [1] * 4), {"out": y}, {"a"})
    e = main_effect(runs, "a", "out")
    assert len(e.levels) == 4 and e.replicates == 2
    assert e.change == pytest.approx(2 * (0.9 - 0.1))
