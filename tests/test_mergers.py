"""Mergers of provinces (model/jurisdictions.py): the invariants of the event, hand-computed effects, both
geographies in timeseries.csv, and bad merge events as one-line errors."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from egovsim.cli import main
from egovsim.config.scenario import load_scenario, scenario_from_dict, with_values
from egovsim.model.jurisdictions import unit_records
from egovsim.model.model import EGovModel, simulate
from egovsim.model.outcomes import COL
from egovsim.report.tables import timeseries_csv
from tests.conftest import SCENARIOS

# small and short: two provinces of the calibrated model, 2006-2013
BASE = load_scenario(SCENARIOS / "calibrated" / "three_provinces.yaml", scale=0.002)


def two_provinces(end_year: int = 2013, **changes) -> dict:
    data = BASE.to_dict()
    data["end_year"] = end_year
    data["provinces"] = {k: data["provinces"][k] for k in ("daklak", "bentre")}
    data.update(changes)
    return data


def merger(date: float, **fields) -> dict:
    return {
        "date": date,
        "name": "test merger",
        "into": "joined",
        "label": "Joined",
        "members": ["daklak", "bentre"],
        "leader": "daklak",
        "policy": "daklak",
        **fields,
    }


def test_a_merger_that_changes_no_leader_policy_or_system_changes_nobody():
    """Exact: with leader, policy and systems kept, every rule reads the same numbers as without the merger
    (a province governed alone reads its own values, not a weighted mean of one), so the former provinces'
    records are identical bit for bit; only the unit rows are added."""
    plain = scenario_from_dict(two_provinces())
    merged = scenario_from_dict(two_provinces(mergers=[merger(2009.5, leader="keep", policy="keep")]))
    a, b = simulate(plain, 5), simulate(merged, 5)
    assert np.array_equal(a, b, equal_nan=True)


def test_a_merger_under_one_leader_changes_behaviour():
    """The counterpart of the test above: the same merger with one leader does change the records (so the
    exact comparison above can fail)."""
    plain = scenario_from_dict(two_provinces())
    merged = scenario_from_dict(two_provinces(mergers=[merger(2009.5)]))
    a, b = simulate(plain, 5), simulate(merged, 5)
    assert not np.array_equal(a, b, equal_nan=True)


def identical_halves(end_year: int, merged_at: float | None) -> tuple:
    """Two identical provinces merged (one leader, one policy, one system) vs one province of their combined
    size and staff."""
    half = dict(BASE.to_dict()["provinces"]["daklak"], population=200_000, scale=0.01, civil_servants=100)
    whole = dict(half, population=400_000, civil_servants=200)
    single = scenario_from_dict(two_provinces(end_year, provinces={"whole": whole}))
    data = two_provinces(end_year, provinces={"a": half, "b": dict(half)})
    data["mergers"] = [merger(merged_at, members=["a", "b"], leader="a", policy="a", systems="consolidate")]
    return single, scenario_from_dict(data)


OUTCOMES = ("adopted_share", "access_share", "supply_index", "civil_servant_genuine_share", "province_online_share")


@pytest.mark.parametrize("merged_at", [2006.0, 2010.0], ids=["from the start", "mid-run"])
def test_merging_two_identical_provinces_is_one_province_of_their_combined_size(merged_at):
    """Statistical (the two arms lay out and draw their citizens differently, so no path is shared): over 10
    seeds, the mean of each outcome at the end differs by less than 4 standard errors of the difference of means
    (from the replicate spread of both arms; a false alarm has odds of about 1 in 16,000 per outcome under
    normality). Before a mid-run merger the halves are separate provinces, each emulating the other: identical
    halves have no gap to close, so that changes nothing in expectation either."""
    single, merged = identical_halves(2016, merged_at)
    seeds = range(10)
    one = np.stack([simulate(single, s)[-1, 0] for s in seeds])
    two = np.stack([unit_records(merged, simulate(merged, s))[-1, 0] for s in seeds])
    for name in OUTCOMES:
        a, b = one[:, COL[name]], two[:, COL[name]]
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        assert abs(a.mean() - b.mean()) < 4 * se, (name, a.mean(), b.mean(), se)


def test_the_combined_size_test_sees_a_real_difference():
    """The tolerance above is tight enough to notice a lever that matters: a unit whose merged halves spend a
    fifth of the reference on software (slower digitisation) differs from the plain one beyond it."""
    single, merged = identical_halves(2016, 2006.0)
    data = merged.to_dict()
    for key in ("a", "b"):
        data["provinces"][key]["policy"]["software"] = 0.2
    slow = scenario_from_dict(data)
    seeds = range(10)
    one = np.stack([simulate(single, s)[-1, 0] for s in seeds])
    two = np.stack([unit_records(slow, simulate(slow, s))[-1, 0] for s in seeds])
    a, b = one[:, COL["province_online_share"]], two[:, COL["province_online_share"]]
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) > 4 * se


def test_one_leader_one_policy_and_a_consolidated_system_from_the_merger_on():
    """After the merger every member has the leader's will (and moves with it), the policy province's levers and
    the platform's procedures online; the migrating province's usability is the platform's less the migration
    dip, loss x (1 - elapsed / years), computed by hand."""
    data = two_provinces(2011, mergers=[merger(2009.5, systems="consolidate", platform="daklak")])
    data["provinces"]["bentre"]["policy"]["training"] = 3.0  # bentre's own lever, replaced by daklak's
    sc = scenario_from_dict(data)
    model = EGovModel(sc, seed=3, collect=False)
    daklak, bentre = model.leaders
    k_merge = round((2009.5 - sc.start_year) * sc.steps_per_year)
    while model.step_index < k_merge + 6:
        model.step()
    assert bentre.will == daklak.will and bentre.policy == daklak.policy
    assert np.array_equal(bentre.digitised, daklak.digitised)
    assert bentre.policy.training == 1.0 and bentre.strategy == daklak.strategy == "fragmented"
    m = sc.merger
    elapsed = model.year - 2009.5
    expected = daklak.usability * (1 - m.migration_usability_loss * (1 - elapsed / m.migration_years))
    assert bentre.usability == pytest.approx(expected, rel=1e-12)
    # the migration's one-off cost is spread over its years, in bentre's spending only
    spend = model.spending_rate()
    assert bentre.migration_spending(model.year) == m.migration_cost / m.migration_years
    assert spend[1] - spend[0] == pytest.approx(m.migration_cost / m.migration_years + _own_spend_gap(model), abs=1e-9)


def _own_spend_gap(model) -> float:
    """bentre minus daklak spending on the same levers (population-scaled levers differ by size)."""
    from egovsim.model import costs

    d, b = model.config.provinces.values()
    return costs.total_spending(model.leaders[1].policy, b, model.config.costs) - costs.total_spending(
        model.leaders[0].policy, d, model.config.costs
    )


def test_the_end_of_the_district_tier_shortens_the_cascade():
    """Two tiers losing alike: retained share sqrt(1 - cascade_loss); with cascade_loss 0.75 that is 0.5 for
    commune staff (1 for office staff), from the step of the date on."""
    data = two_provinces(2011, district_tier_removed=2009.5)
    data["civil_servants"]["cascade_loss"] = 0.75
    model = EGovModel(scenario_from_dict(data), seed=1, collect=False)
    cs = model.civil_service
    assert set(cs.cascade[cs.commune]) == {0.25}
    while model.year < 2009.5:
        model.step()
    model.step()
    assert set(cs.cascade[cs.commune]) == {0.5} and set(cs.cascade[~cs.commune]) == {1.0}
    assert np.all(model.cascade_retained == 0.5)


def test_timeseries_gives_both_geographies_continuously():
    sc = scenario_from_dict(two_provinces(2011, mergers=[merger(2009.5)]))
    records = simulate(sc, 2)
    rows = list(csv.DictReader(io.StringIO(timeseries_csv(records, sc))))
    by = {}
    for row in rows:
        by.setdefault(row["province"], []).append(row)
    assert set(by) == {"daklak", "bentre", "joined"}
    assert all(len(v) == records.shape[0] for v in by.values())  # every unit at every step
    for row in by["bentre"]:
        before = float(row["year"]) < 2009.5
        assert (row["level"], row["part_of"]) == (("province", "bentre") if before else ("former_province", "joined"))
    for row in by["joined"]:
        assert row["level"] == ("future_province" if float(row["year"]) < 2009.5 else "province")
        members = [by[k][by["joined"].index(row)] for k in ("daklak", "bentre")]
        assert int(row["citizens"]) == sum(int(m["citizens"]) for m in members)
        adopted = sum(float(m["adopted_share"]) * int(m["citizens"]) for m in members) / int(row["citizens"])
        assert float(row["adopted_share"]) == pytest.approx(adopted, abs=1e-9)
    assert "nan" not in {by["joined"][k]["supply_index"] for k in range(len(by["joined"]))}


def test_a_scenario_without_mergers_writes_the_same_columns_as_before():
    sc = scenario_from_dict(two_provinces(2007))
    header = timeseries_csv(simulate(sc, 1), sc).splitlines()[0]
    assert header.startswith("year,date,province,citizens,")


BAD = [
    ("unknown province", {"members": ["daklak", "bentr"]}, "mergers[0].members[1]", "did you mean 'bentre'"),
    ("date outside the run", {"date": 2040.0}, "mergers[0].date", "outside the run"),
    ("leader not a member", {"leader": "hue"}, "mergers[0].leader", "not one of"),
    ("one member", {"members": ["daklak"]}, "mergers[0].members", "at least two"),
]


def write_scenario(tmp_path, data: dict):
    import yaml

    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("what, change, field, text", BAD, ids=[b[0] for b in BAD])
def test_a_bad_merge_event_is_one_line_and_exit_2(tmp_path, capsys, what, change, field, text):
    path = write_scenario(tmp_path, two_provinces(mergers=[{**merger(2009.5), **change}]))
    status = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "merge.yaml" in err and field in err and text in err, err
    assert not (tmp_path / "out").exists()


def test_a_province_merged_twice_is_one_line_and_exit_2(tmp_path, capsys):
    data = two_provinces()
    data["provinces"]["hue"] = BASE.to_dict()["provinces"]["hue"]
    data["mergers"] = [
        merger(2009.5),
        merger(2010.5, into="again", members=["bentre", "hue"], leader="hue", policy="hue"),
    ]
    status = main(["validate", str(write_scenario(tmp_path, data))])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "mergers[1].members" in err and "bentre is already merged by mergers[0]" in err, err


def test_the_reorganised_scenario_runs_and_merges_on_1_july_2025():
    sc = load_scenario(SCENARIOS / "reorganised_2025.yaml", scale=0.001)
    assert [m.into for m in sc.mergers] == ["daklak_2025", "vinhlong_2025"]
    assert all(m.date == 2025.5 for m in sc.mergers) and sc.district_tier_removed == 2025.5
    model = EGovModel(sc, seed=1, collect=False)
    model.run()
    will = model.records[-1, :, COL["leader_will"]]
    keys = list(sc.provinces)
    assert will[keys.index("bentre")] == will[keys.index("vinhlong")] == will[keys.index("travinh")]
    assert will[keys.index("phuyen")] == will[keys.index("daklak")]


def test_fast_and_plain_engines_agree_through_a_merger():
    """The merger acts on leaders, levers and the cascade, which both engines read alike: as in
    test_kernels.test_fast_and_plain_agree_for_the_same_seed, access is identical and adoption differs by at
    most a few citizens whose threshold lies within float rounding of the hazard."""
    data = two_provinces(2012, district_tier_removed=2009.0)
    data["mergers"] = [merger(2009.0, systems="consolidate", platform="bentre")]
    sc = scenario_from_dict(data)
    fast = EGovModel(sc, 4, collect=False, engine="numba").run()
    plain = EGovModel(sc, 4, collect=False, engine="plain").run()
    assert np.array_equal(fast[..., COL["access_share"]], plain[..., COL["access_share"]])
    n = sum(max(1, round(p.population * p.scale)) for p in sc.provinces.values())
    assert np.nanmax(np.abs(fast - plain)[..., COL["adopted_share"]]) <= 5 / n * len(sc.provinces)
    assert np.array_equal(
        fast[..., COL["leader_will"]][:, 0] == fast[..., COL["leader_will"]][:, 1],
        plain[..., COL["leader_will"]][:, 0] == plain[..., COL["leader_will"]][:, 1],
    )


class _ScanEveryStep(EGovModel):
    """The model with the scan for due events made at every step (no skipping of steps where none is due)."""

    def _fire_events(self) -> None:
        self._next_event = -math.inf
        super()._fire_events()


@pytest.mark.parametrize(
    "name, changes",
    [
        ("reorganised_2025.yaml", {}),
        ("hue.yaml", {}),
        ("whatif/early_roadmap.yaml", {}),
        ("three_provinces.yaml", {"district_tier_removed": 2016.37}),  # the tier ends mid-step, with no merger
    ],
)
def test_skipping_steps_where_no_event_is_due_changes_nothing(name, changes):
    """EGovModel._fire_events returns at once while no event, merger or end of the district tier is due before the
    end of the step; with the scan made at every step, each event fires at the same step (the agents' histories
    and the policy versions agree step by step) and the records are identical."""
    sc = with_values(load_scenario(SCENARIOS / name, scale=0.001), changes)
    fast, every = EGovModel(sc, 5, collect=False), _ScanEveryStep(sc, 5, collect=False)
    at_start = fast._policy_version  # the events dated at or before the start fire as the model is built
    for _ in range(sc.n_steps):
        fast.step(), every.step()
        assert fast._policy_version == every._policy_version
        assert fast.jurisdictions.tier_removed == every.jurisdictions.tier_removed
    assert fast._policy_version > at_start  # events fired during the run
    assert [leader.history for leader in fast.leaders] == [leader.history for leader in every.leaders]
    assert fast.central.history == every.central.history
    assert np.array_equal(fast.records, every.records, equal_nan=True)
