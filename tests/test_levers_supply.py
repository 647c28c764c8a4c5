"""The leaders' side of model v2 (docs/design-model-v2.md 4.3, 4.6, 4.7, 6, 7): each lever moves an outcome
beyond its own counter (design 11.2), with paired seeds; and the leaders' rules against their analytic form.

"Moves": over the same seeds for both arms (common random numbers), the mean paired difference has the stated
sign and exceeds 2 standard errors of the paired differences (design 11).
"""

from __future__ import annotations

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, with_values
from egovsim.model.model import EGovModel
from egovsim.model.outcomes import COL

from .conftest import THREE, at_year, simulate_once

SEEDS = range(6)


def scenario(end_year: int, **values):
    return with_values(load_scenario(THREE, scale=0.003), {"end_year": end_year, **values})


def outcome(sc, province: str, name: str, year: int) -> np.ndarray:
    """`name` of `province` at mid-`year`, one value per seed of SEEDS."""
    p = list(sc.provinces).index(province)
    return np.array([at_year(simulate_once(sc, seed), sc, year)[p, COL[name]] for seed in SEEDS])


def assert_moves(low: np.ndarray, high: np.ndarray, direction: int) -> None:
    """high - low, paired by seed, has the sign of `direction` beyond 2 standard errors."""
    diff = direction * (high - low)
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.mean() > 0 and diff.mean() > 2 * se, (diff.mean(), se, low, high)


# ---- each lever moves an outcome beyond its own counter (design 11.2) -------------------------------------


@pytest.mark.parametrize(("name", "year", "direction"), [("it_waste", 2024, -1), ("services_online_share", 2017, 1)])
def test_roadmap_clarity_cuts_waste_and_brings_procedures_online(name, year, direction):
    """A clearer central roadmap (R 0.1 -> 0.5 from the start) enables digitisation and coordinated procurement:
    Daklak, fragmented, buys fewer redundant systems and brings more procedures online by 2017."""
    low = scenario(2024, **{"central.initial.roadmap_clarity": 0.1})
    high = scenario(2024, **{"central.initial.roadmap_clarity": 0.5})
    assert_moves(outcome(low, "daklak", name, year), outcome(high, "daklak", name, year), direction)


@pytest.mark.parametrize(("name", "direction"), [("it_waste", -1), ("use_share_12m", 1)])
def test_platform_instead_of_fragmented_software(name, direction):
    """One vendor's integrated platform: no redundant systems (no waste) and a usable front end, so more citizens
    use online services in 2024 (Daklak)."""
    low = scenario(2024, **{"provinces.daklak.policy.software_strategy": "fragmented"})
    high = scenario(2024, **{"provinces.daklak.policy.software_strategy": "platform"})
    assert_moves(outcome(low, "daklak", name, 2024), outcome(high, "daklak", name, 2024), direction)


@pytest.mark.parametrize(
    ("province", "name", "direction"),
    [
        ("daklak", "province_online_share", 1),  # fragmented: vendors deliver what is paid for...
        ("daklak", "it_waste", 1),  # ...and, without a roadmap, the money also buys redundant systems
        ("bentre", "province_online_share", 1),  # platform: the licence pays for the vendor's capacity
    ],
)
def test_software_spending_buys_capacity_and_without_a_roadmap_waste(province, name, direction):
    """The software lever (0.5 -> 1) pays for implementation capacity under the procured strategies too
    (docs/ODD.md 7.6): more procedures fully online in 2017; in fragmented Daklak also more waste by 2017."""
    low = scenario(2017, **{f"provinces.{province}.policy.software": 0.5})
    high = scenario(2017, **{f"provinces.{province}.policy.software": 1.0})
    assert_moves(outcome(low, province, name, 2017), outcome(high, province, name, 2017), direction)


@pytest.mark.parametrize("name", ["civil_servant_genuine_share", "reliability"])
def test_agency_it_spending_raises_genuine_use_and_reliability(name):
    """Equipping agencies (agency_it 1 -> 2) lets more civil servants genuinely use the system, so more online
    dossiers go through: Ben Tre, 2022 (design 11.2; the supply index contains K itself, so it is not asserted)."""
    low = scenario(2022, **{"provinces.bentre.policy.agency_it": 1.0})
    high = scenario(2022, **{"provinces.bentre.policy.agency_it": 2.0})
    assert_moves(outcome(low, "bentre", name, 2022), outcome(high, "bentre", name, 2022), 1)


@pytest.mark.parametrize(("name", "direction"), [("services_online_share", 1), ("it_waste", -1)])
def test_an_own_plan_enables_digitisation_without_a_roadmap(name, direction):
    """Daklak with its own e-government action plan from 2010 (what-if): more procedures online and less waste
    by 2017, before the national roadmap is clear."""
    low = scenario(2017)
    plan = {"date": 2010.0, "name": "own e-government action plan (what-if)", "set": {"own_plan": 1.0}}
    high = scenario(2017, **{"provinces.daklak.events": [*low.to_dict()["provinces"]["daklak"]["events"], plan]})
    assert_moves(outcome(low, "daklak", name, 2017), outcome(high, "daklak", name, 2017), direction)


# ---- the leaders' rules against their analytic form ---------------------------------------------------------


def one_leader(end_year: int = 2006, **values):
    """A model of the default scenario and its Daklak leader (fragmented software, no own plan)."""
    sc = scenario(end_year, **values)
    model = EGovModel(sc, 1, collect=False)
    return model, model.leaders[list(sc.provinces).index("daklak")]


def test_enabling_is_the_roadmap_or_the_own_plan_above_a_floor():
    _, leader = one_leader(**{"services.enabling_floor": 0.2, "leaders.own_plan_clarity": 0.6})
    assert leader.enabling(0.0) == pytest.approx(0.2)
    assert leader.enabling(0.5) == pytest.approx(0.2 + 0.8 * 0.5)
    leader.policy.own_plan = 1.0
    assert leader.enabling(0.5) == pytest.approx(0.2 + 0.8 * 0.6)  # the plan is clearer than the roadmap
    assert leader.enabling(0.9) == pytest.approx(0.2 + 0.8 * 0.9)  # the roadmap is clearer than the plan
    _, neutral = one_leader(**{"services.enabling_floor": 1.0})
    assert neutral.enabling(0.0) == 1.0  # neutral: no enabling condition


def test_fully_online_never_exceeds_published_and_rents_slow_only_full_digitisation():
    model, leader = one_leader(2024)
    model.run()
    a, d = leader.published, leader.digitised
    assert np.all(d <= a + 1e-12) and np.all(np.diff(a) == 0)  # level 3 does not depend on rents
    assert np.all(np.diff(d) < 0)  # level 4 is slower the higher the procedure's rent
    model0, leader0 = one_leader(2024, **{"services.rent_slowdown": 0.0})
    model0.run()
    assert np.ptp(leader0.digitised) < 1e-12


def test_redundant_systems_accumulate_at_one_minus_enabling_over_tau_and_waste_their_share():
    """With E fixed (no events, central roadmap R constant), n grows linearly at (1 - E) / tau_proc until
    max_systems, and waste (bn VND) accrues at the software spending x (n - 1) / n: c_scale x c_software x the
    software lever (a per-province cost, design 4.8)."""
    values = {"central.enabled": False, "services.enabling_floor": 0.25, "services.procurement_interval": 2.0}
    model, leader = one_leader(2030, **values)
    dt, n, waste = model.dt, [], []
    for _ in range(model.n_steps):
        model.step()
        n.append(leader.n_systems)
        waste.append(leader.it_waste)
    n, waste = np.array(n), np.array(waste)
    expected = np.minimum(5.0, 1.0 + 0.75 / 2.0 * dt * np.arange(1, n.size + 1))
    np.testing.assert_allclose(n, expected, rtol=1e-12)
    c = model.config.costs
    software = c.c_scale * c.software * leader.policy.software  # bn VND/yr
    np.testing.assert_allclose(np.diff(waste), dt * software * (n[1:] - 1) / n[1:], rtol=1e-9)


def test_platform_runs_one_system_at_vendor_capacity_with_its_own_usability():
    model, leader = one_leader(2024, **{"provinces.daklak.policy.software_strategy": "platform"})
    model.run()
    s = model.config.services
    assert leader.n_systems == 1 and leader.it_waste == 0
    assert leader.capacity == s.vendor_capacity and leader.usability == s.platform_usability


def test_agency_it_approaches_one_slower_at_commune_level():
    values = {"services.agency_it0": 0.2, "services.agency_it_rate": 0.4, "services.commune_it_lag": 0.5}
    model, leader = one_leader(2010, **{**values, "provinces.daklak.policy.agency_it": 1.5})
    model.run()
    t = model.n_steps * model.dt
    assert leader.agency_it_office == pytest.approx(1 - 0.8 * np.exp(-0.4 * 1.5 * t))
    assert leader.agency_it_commune == pytest.approx(1 - 0.8 * np.exp(-0.4 * 1.5 * 0.5 * t))
    rural = leader.commune_share
    assert leader.agency_it == pytest.approx((1 - rural) * leader.agency_it_office + rural * leader.agency_it_commune)


def test_no_equipment_no_genuine_use():
    """K = 0 everywhere (agency_it0 0, no spending): no civil servant ever becomes a genuine user."""
    values = {
        "services.agency_it0": 0.0,
        **{f"provinces.{p}.policy.agency_it": 0.0 for p in ("hue", "daklak", "bentre")},
    }
    sc = scenario(2015, **values)
    records = simulate_once(sc, 3)
    assert np.all(records[..., COL["civil_servant_genuine_share"]] == 0)
    assert np.all(simulate_once(scenario(2015), 3)[-1, :, COL["civil_servant_genuine_share"]] > 0)  # with equipment


def _leader_step_in_python(published, digitised, rent_rel, r, levers, state, inputs, dt):
    """A leader's step stated in Python floats and numpy arrays, operation for operation (docs/ODD.md 7.6)."""
    from egovsim.model import portable

    strategy, own_plan, software, agency_it, cost = levers
    will0, will, local_capacity, n_systems, it_waste, office, commune, deterrence = state
    roadmap, own_index, best_peer, trust_mean, rent_at_risk, press = inputs
    gap = max(0.0, best_peer - own_index)
    target = (
        will0
        + r.roadmap_effect * roadmap
        + r.emulation_effect * gap
        + r.satisfaction_effect * (trust_mean - r.reference_trust)
        - r.rent_loss_effect * rent_at_risk
        + r.press_effect * press
    )
    target = min(1.0, max(0.0, target))
    enabling = r.enabling_floor + (1.0 - r.enabling_floor) * max(roadmap, r.own_plan_clarity * own_plan)
    capacity = local_capacity if strategy == 0 else r.vendor_capacity * min(1.0, software)
    rate = r.digitisation_rate * will * capacity * enabling
    published = 1.0 - (1.0 - published) * portable.exp(-(r.publish_speedup * rate) * dt)
    rate_full = rate * portable.exp(-r.rent_slowdown * (rent_rel * r.rent_mean) * deterrence)
    digitised = published - (published - digitised) * portable.exp(-rate_full * dt)
    if strategy == 0:
        local_capacity = 1.0 - (1.0 - local_capacity) * portable.exp(-(r.local_capacity_rate * software) * dt)
    elif strategy == 2:
        n_systems = min(r.max_systems, n_systems + dt * (software * (1.0 - enabling) / r.procurement_interval))
        it_waste += dt * cost * (n_systems - 1) / n_systems
    it_rate = r.agency_it_rate * agency_it
    office = 1.0 - (1.0 - office) * portable.exp(-it_rate * dt)
    commune = 1.0 - (1.0 - commune) * portable.exp(-(it_rate * (1.0 - r.commune_it_lag)) * dt)
    will = target + (will - target) * portable.exp(-r.adjustment_rate * dt)
    return published, digitised, will, local_capacity, n_systems, it_waste, office, commune


@pytest.mark.parametrize("strategy", [0, 1, 2])
def test_the_compiled_leader_step_is_pythons_arithmetic_bit_for_bit(strategy):
    """province_step (compiled) gives the very floats of the rule stated in Python, for random inputs: numba
    fuses no multiply-add and keeps Python's order of operations, so moving the rule changed no result."""
    from egovsim.model.agents import LeaderRates, province_step

    rng = np.random.default_rng(strategy)
    for _ in range(200):
        r = LeaderRates(*rng.uniform(0.0, 3.0, len(LeaderRates._fields)))
        r = r._replace(
            max_systems=float(rng.integers(1, 8)), commune_it_lag=rng.uniform(), enabling_floor=rng.uniform()
        )
        published = rng.uniform(0, 1, 9)
        digitised = published * rng.uniform(0, 1, 9)
        rent_rel = (np.arange(9) + 0.5) / 9 * 2.0
        levers = (strategy, *rng.uniform(0.0, 2.0, 4))
        state = (*rng.uniform(0, 1, 3), 1.0 + rng.uniform(0, 4), *rng.uniform(0, 1, 4))
        inputs = tuple(rng.uniform(-0.5, 1.5, 6))
        dt = float(rng.choice([1 / 12, 1 / 52, 1.0]))
        ours = province_step(published, digitised, rent_rel, tuple(r), levers, state, inputs, dt)
        expected = _leader_step_in_python(published, digitised, rent_rel, r, levers, state, inputs, dt)
        np.testing.assert_array_equal(ours[0], expected[0])
        np.testing.assert_array_equal(ours[1], expected[1])
        assert ours[2:] == tuple(float(v) for v in expected[2:])
