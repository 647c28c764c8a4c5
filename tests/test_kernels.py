"""The fast path agrees with the plain one (issues 8 and 14).

Two implementations of the rules (egovsim/engine.py ENGINES): `numba` (population.Citizens, CivilService and measure, whose
loops are compiled in kernels.py; the default) and `plain` (plain.PlainCitizens, PlainCivilService and measure:
every agent's every quantity updated every step, every aggregate a full count, float64 arithmetic).

- They make the same random draws in the same order and differ only in floating-point rounding (float32 hazard,
  closed-form learning): same seed, the same access path exactly, and the same run up to a citizen or two whose
  threshold lands within rounding of the hazard; the same distribution over seeds.
- From the same random state, a step of each gives the same dealings, adoption hazards, access, learning and
  trust (citizens) and the same conversions, thresholds and skill (civil servants), up to rounding.
- The fast path's counters, kept up to date at events, equal full counts at every step, and its `measure`
  equals plain.measure (every outcome counted over every agent) on the same state.
- The compiled exp of the adoption hazard is float32-accurate.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, with_values
from egovsim.model import kernels as K
from egovsim.model import reference as plain
from egovsim.model.model import EGovModel, simulate
from egovsim.model.outcomes import COL, COLUMNS
from egovsim.model.population import CEREMONIAL, GENUINE, NON_USER

from .conftest import BASS, THREE

# columns that are counts of events; the others follow means of floats (literacy, trust, and through the leader's
# will the levels of digitisation), which the two paths compute to rounding
CONTINUOUS = (
    "literacy_mean",
    "trust_mean",
    "leader_will",
    "supply_index",
    "services_online_share",
    "province_online_share",
    "published_share",
)
EVENT_COLUMNS = [c for c in COLUMNS if c not in CONTINUOUS]


def small(**values):
    return with_values(load_scenario(THREE, scale=0.002), {"end_year": 2024, **values})


def bass(**values):
    return with_values(load_scenario(BASS), {"end_year": 2004, **values})


SCENARIOS = {
    "default": {},
    "feedback, mandate, strong betas": {
        "provinces.hue.policy.feedback": 1.0,
        "provinces.bentre.policy.mandate": 1.0,
        "citizens.beta_trust": 3.0,
        "citizens.beta_ease": 4.0,
    },
    "betas capped (sum > 80)": {
        "citizens.beta_usefulness": 40.0,
        "citizens.beta_ease": -30.0,
        "citizens.beta_trust": 20.0,
    },
    "needs every month, lapses": {"citizens.need_rate": 12.0, "citizens.lapse_prob": 1.0},
    "sparse, mixed network": {"network.mean_degree": 1, "network.homophily": 0.0, "services.n_procedures": 1},
    "fast learning (rebases)": {
        "citizens.literacy_training_effect": 50.0,
        "provinces.daklak.policy.training": 100.0,
        "citizens.trust_feedback_rate": 50.0,
        "provinces.hue.policy.feedback": 1.0,
    },
    "well mixed": {"network.kind": "well_mixed", "citizens.lapse_prob": 0.5},
    "reports, mandates, portal with VNeID": {
        "provinces.daklak.policy.feedback": 0.9,
        "provinces.hue.policy.feedback": 1.0,
        "provinces.bentre.policy.mandate": 1.0,
        "provinces.hue.policy.detection_prob": 0.3,
        "citizens.report_prob": 0.3,
        "citizens.online_ask_share": 0.6,
        "civil_servants.learning_by_doing": 0.5,
        "civil_servants.enforcement_spread": 1.5,
        "portal.vneid_effect": 0.9,
        "central.initial.vneid": 1.0,
        "central.initial.portal_services": 0.5,
    },
}


def run(scenario, seed, engine):
    return EGovModel(scenario, seed, collect=False, engine=engine).run()


def pair(scenario, seed):
    """A fast and a plain model of the same scenario and seed (the same agents and draws)."""
    return (
        EGovModel(scenario, seed, collect=False, engine="numba"),
        EGovModel(scenario, seed, collect=False, engine="plain"),
    )


# ---- whole runs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fast_and_plain_agree_for_the_same_seed(name):
    """Same draws in the same order: the access path is identical; the rest differs by at most a citizen or two
    whose adoption threshold lies within float rounding of the hazard (none at all for most seeds)."""
    sc = small(**SCENARIOS[name])
    n = sum(max(1, round(p.population * p.scale)) for p in sc.provinces.values())
    identical = 0
    for seed in (1, 2, 3):
        fast, plain_ = run(sc, seed, "numba"), run(sc, seed, "plain")
        for col in ("access_share", "urban_access_share", "rural_access_share"):
            assert np.array_equal(fast[..., COL[col]], plain_[..., COL[col]], equal_nan=True), (seed, col)
        diff = np.abs(fast - plain_)
        assert np.nanmax(diff[..., COL["adopted_share"]]) <= 5 / n * len(sc.provinces), seed
        assert np.nanmax(diff[..., [COL[c] for c in ("literacy_mean", "trust_mean")]]) < 1e-5
        identical += np.array_equal(
            fast[..., [COL[c] for c in EVENT_COLUMNS]], plain_[..., [COL[c] for c in EVENT_COLUMNS]], equal_nan=True
        )
    assert identical >= 1


def test_fast_and_plain_agree_on_the_bass_model():
    """Well mixed, every rule neutral, 10,000 citizens: the same adopters at every step for these seeds."""
    for seed in (3, 4):
        fast, plain_ = run(bass(), seed, "numba"), run(bass(), seed, "plain")
        assert np.array_equal(
            fast[..., [COL[c] for c in EVENT_COLUMNS]], plain_[..., [COL[c] for c in EVENT_COLUMNS]], equal_nan=True
        )


def test_fast_and_plain_have_the_same_distribution():
    """Over 12 seeds, mean trajectories agree within 3 standard errors (they are paired by seed)."""
    sc = small()
    fast = np.stack([run(sc, s, "numba") for s in range(12)])
    plain_ = np.stack([run(sc, s, "plain") for s in range(12)])
    for col in (
        "adopted_share",
        "use_share_12m",
        "civil_servant_genuine_share",
        "informal_payment_index",
        "supply_index",
    ):
        a, b = fast[..., COL[col]], plain_[..., COL[col]]
        se = np.sqrt(a.var(axis=0, ddof=1) / 12 + b.var(axis=0, ddof=1) / 12)
        gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
        defined = ~np.isnan(gap)  # the informal-payment index is undefined before the first dealing
        assert np.array_equal(defined, ~np.isnan(se)) and defined.mean() > 0.99, col
        assert np.all(gap[defined] <= 3 * se[defined] + 1e-9), col


# ---- one step from the same random state -----------------------------------------------------------------------


def same_random_citizens(fast, plain_, rng):
    """Give the citizens of both models the same random state (users, literacy, trust, thresholds, the civil
    servants' states), each in its own form; returns the citizens who could adopt."""
    f, p, n = fast.citizens, plain_.citizens, fast.citizens.n
    active = f.access & (rng.random(n) < 0.4)
    f.arrays.active[:] = p.active[:] = active
    f.arrays.adopted[:] = p.adopted[:] = active | (f.access & (rng.random(n) < 0.2))
    f.arrays.eligible[:] = f.access & ~active
    to_adopt = np.where(active, np.inf, rng.exponential(size=n) * 0.02).astype(np.float32)
    f.arrays.to_adopt[:] = p.to_adopt[:] = to_adopt
    literacy, trust = rng.random(n).astype(np.float32), rng.random(n).astype(np.float32)
    p.literacy[:], p.trust[:] = literacy, trust
    f.arrays.lit_gap[:], f.arrays.distrust[:] = 1 - literacy, 1 - trust
    f.arrays.lit_G[:], f.arrays.trust_H[:] = 1.0, 1.0
    G = f.group_sizes.size
    f.arrays.lit_gap_sum[:] = np.bincount(f.group, weights=f.lit_gap, minlength=G)
    f.arrays.distrust_sum[:] = np.bincount(f.group, weights=f.distrust, minlength=G)
    if f.well_mixed:
        f.users[:] = np.bincount(f.province[active], minlength=f.n_provinces)
    else:
        f.user_neighbours[:] = f.adjacency @ active.astype(np.int64)
        p.user_neighbours[:] = p.adjacency @ active.astype(np.int64)
    state = rng.choice([NON_USER, CEREMONIAL, GENUINE], fast.civil_service.n, p=[0.5, 0.2, 0.3])
    fast.civil_service.state[:] = plain_.civil_service.state[:] = state
    f.arrays.served_rel[:] = fast.civil_service.reliability()[f.civil_servant]
    return f.access & ~active


@pytest.mark.parametrize(
    "name",
    [
        "default",
        "betas capped (sum > 80)",
        "needs every month, lapses",
        "sparse, mixed network",
        "well mixed",
        "reports, mandates, portal with VNeID",
    ],
)
def test_a_citizen_step_from_the_same_state_agrees(name):
    """Dealings (channel, login, the civil servant's handling, payments, reports), the adoption hazard, access,
    learning and trust: after one step from the same random state the two paths hold the same thresholds (to
    float32 rounding of the hazard), the same new users and lapses, the same access, the same counts of dealings,
    payments, dealings online and reports, the same last use on each channel, and literacy and trust to float32
    rounding."""
    sc = small(**{"provinces.hue.policy.feedback": 1.0, "provinces.daklak.policy.training": 2.0, **SCENARIOS[name]})
    rng = np.random.default_rng(7)
    for seed in (1, 2):
        fast, plain_ = pair(sc, seed)
        eligible = same_random_citizens(fast, plain_, rng)
        f, p = fast.citizens, plain_.citizens
        f.next_need[:] = p.next_need[:] = 0  # everybody deals with government in this step
        before, trust_before = f.to_adopt.copy(), p.trust.copy()
        # what the step reads: the model's, with both channels, usability, deterrence and reports drawn at random
        ctx = fast.context()
        P, J = ctx.online.shape
        digitised, portal = rng.random((P, J)), rng.random(J)
        ctx = dataclasses.replace(
            ctx,
            digitised=digitised,
            portal=portal,
            online=np.maximum(digitised, portal),
            national_share=rng.random(P),
            login_failure=0.3,
            useful_share=np.maximum(digitised, portal).mean(axis=1),
            ease_usability=rng.random(P),
            servant_deterrence=rng.random(fast.civil_service.n),
            report_prob=rng.random(P),
        )
        f.step(ctx, fast.rng)
        p.step(ctx, plain_.rng)
        for name in ("needs", "payments", "online", "reported_payments", "reports"):
            counts = getattr(f, f"{name}_per_step")[ctx.k + 1]
            assert np.array_equal(counts, getattr(p, f"{name}_per_step")[ctx.k + 1]), name
        assert f.online_per_step[ctx.k + 1].sum() > 0 and f.reports_per_step[ctx.k + 1].sum() > 0
        assert np.array_equal(f.last_portal, p.last_portal) and np.array_equal(f.last_provincial, p.last_provincial)
        assert np.any(f.last_portal == ctx.k) and np.any(f.last_provincial == ctx.k)
        assert np.array_equal(f.access, p.access)
        assert np.array_equal(f.active, p.active) and np.array_equal(f.adopted, p.adopted)
        assert np.array_equal(f.last_online, p.last_online)
        assert (f.active & ~eligible).sum() < (f.access & ~eligible).sum()  # some users lapsed ...
        assert (f.active & eligible).sum() > 0  # ... and some adopted
        still = eligible & ~f.active
        fell = before[still] - p.to_adopt[still]
        assert np.mean(fell > 1e-3 * before[still]) > 0.2  # many thresholds moved visibly
        # one float32 subtraction of a hazard x dt that the two compute to float32 rounding
        allowed = 2 * np.spacing(before[still]) + 1e-5 * fell
        assert np.all(np.abs(f.to_adopt[still] - p.to_adopt[still]) <= allowed)
        assert np.array_equal(np.isinf(f.to_adopt), np.isinf(p.to_adopt))
        np.testing.assert_allclose(f.literacy, p.literacy, rtol=0, atol=1e-6)
        np.testing.assert_allclose(f.trust, p.trust, rtol=0, atol=1e-6)
        assert np.any(p.trust < trust_before)  # failures cost trust


def same_random_servants(fast, plain_, rng):
    """Give the civil servants of both models the same random state, with the fast path's counters to match."""
    a, cs = fast.civil_service.arrays, fast.civil_service
    n = cs.n
    state = rng.choice([NON_USER, CEREMONIAL, GENUINE], n, p=[0.6, 0.2, 0.2]).astype(np.int8)
    values = {
        "state": state,
        "skill": rng.random(n).astype(np.float32),
        "to_genuine": rng.exponential(size=n) * 0.05,
        "to_ceremonial": rng.exponential(size=n) * 0.2,
    }
    for name, value in values.items():
        getattr(a, name)[:] = getattr(plain_.civil_service, name)[:] = value
    genuine = state == GENUINE
    a.genuine_colleagues[:] = cs.adjacency @ genuine.astype(np.float64)
    a.genuine_count[:] = np.bincount(cs.province[genuine], minlength=cs.n_provinces)
    a.ceremonial_count[:] = np.bincount(cs.province[state == CEREMONIAL], minlength=cs.n_provinces)
    a.served_genuine[:] = np.bincount(cs.province, weights=cs.citizens_per_servant * genuine, minlength=cs.n_provinces)
    a.served_ceremonial[:] = np.bincount(
        cs.province, weights=cs.citizens_per_servant * (state == CEREMONIAL), minlength=cs.n_provinces
    )
    a.skill_sum[:] = np.bincount(cs.province, weights=a.skill, minlength=cs.n_provinces)


@pytest.mark.parametrize("mandate", [0.0, 1.0])
@pytest.mark.parametrize("learning_by_doing", [0.0, 0.5])
def test_civil_servant_steps_from_the_same_state_agree(mandate, learning_by_doing):
    """Conversions to genuine and ceremonial use and skill (with learning by doing for ceremonial users, and
    agencies' IT equipment K drawn at random per province and level) are the same; the thresholds of genuine use
    agree to rounding (the compiled loop takes the skill term of the utility in float32, the plain one in another
    order); the fast path's counters equal full counts."""
    sc = small(
        **{f"provinces.{p}.policy.mandate": mandate for p in ("hue", "daklak", "bentre")},
        **{"civil_servants.weight_rent": 3.0, "provinces.daklak.policy.training": 2.0},
        **{"civil_servants.learning_by_doing": learning_by_doing},
    )
    fast, plain_ = pair(sc, 3)
    cs, ps = fast.civil_service, plain_.civil_service
    rng = np.random.default_rng(4)
    same_random_servants(fast, plain_, rng)
    converted = ceremonial = 0
    for _ in range(12):
        # agencies' IT equipment differing by province and level: each servant's hazard takes their level's K
        ctx = dataclasses.replace(fast.context(), agency_it=rng.uniform(0.2, 1.0, (3, 2)))
        was_non_user, state_before = cs.state == NON_USER, cs.state.copy()
        converts = cs.step(ctx)
        assert np.array_equal(converts, ps.step(ctx))
        # what the citizens are told of (servants_changed): every servant whose state moved, on both paths
        moved = np.flatnonzero(cs.state != state_before)
        assert np.array_equal(np.sort(cs.changed), moved) and cs.changed.size == moved.size
        assert np.array_equal(ps.changed, moved)
        converted += converts.size
        ceremonial += np.sum(was_non_user & (cs.state == CEREMONIAL))
        assert np.array_equal(cs.state, ps.state)
        assert np.array_equal(cs.skill, ps.skill)
        np.testing.assert_allclose(cs.to_genuine, ps.to_genuine, rtol=0, atol=1e-7)
        assert np.array_equal(cs.to_ceremonial, ps.to_ceremonial)
        genuine = cs.state == GENUINE
        assert np.array_equal(cs.genuine_colleagues, cs.adjacency @ genuine.astype(np.float64))
        assert np.array_equal(cs.genuine_count, np.bincount(cs.province[genuine], minlength=3))
        assert np.array_equal(cs.ceremonial_count, np.bincount(cs.province[cs.state == CEREMONIAL], minlength=3))
        served = np.bincount(cs.province, weights=cs.citizens_per_servant * genuine, minlength=3)
        assert np.array_equal(cs.served_genuine, served)
        ceremonial_served = cs.citizens_per_servant * (cs.state == CEREMONIAL)
        assert np.array_equal(cs.served_ceremonial, np.bincount(cs.province, weights=ceremonial_served, minlength=3))
        assert np.array_equal(cs.skill_sum, np.bincount(cs.province, weights=cs.skill, minlength=3))
    assert converted > 0
    assert (ceremonial > 0) == (mandate > 0)


def test_compiled_exp_is_float32_accurate():
    """With every coefficient of the log multiplier but literacy's switched off, one adoption step subtracts
    exp(lit_gap) from a threshold of 0: the compiled polynomial is within 2 ulp of exp over [-87, 80]."""
    y = np.linspace(-87, 80, 200_001).astype(np.float32)
    n = y.size
    zeros_g = np.zeros(4)
    cit = K.CitizenArrays(
        group=np.zeros(n, dtype=np.uint8),
        group_start=np.array([0, n, n, n, n]),
        access=np.ones(n, dtype=bool),
        active=np.zeros(n, dtype=bool),
        adopted=np.zeros(n, dtype=bool),
        eligible=np.ones(n, dtype=bool),
        served_rel=np.zeros(n, dtype=np.float32),
        civil_servant=np.zeros(n, dtype=np.int32),
        to_adopt=np.zeros(n, dtype=np.float32),
        lit_gap=y.copy(),
        distrust=np.zeros(n, dtype=np.float32),
        last_online=np.zeros(n, dtype=np.int32),
        last_portal=np.zeros(n, dtype=np.int32),
        last_provincial=np.zeros(n, dtype=np.int32),
        q_dt=np.empty(0, dtype=np.float32),
        user_neighbours=np.empty(0, dtype=np.uint16),
        indptr=np.zeros(n + 1, dtype=np.int32),
        indices=np.empty(0, dtype=np.int32),
        lit_G=np.ones(4),
        trust_H=np.ones(1),
        lit_gap_sum=zeros_g,
        distrust_sum=zeros_g,
        access_H=zeros_g,
        access_count=np.zeros(4, dtype=np.int64),
        adopted_count=np.zeros(4, dtype=np.int64),
        users=np.zeros(1, dtype=np.int64),
        access_threshold=np.full(4, np.inf, dtype=np.float32),
        access_order=np.zeros(4, dtype=np.int32),
        access_next=np.arange(4),
        used_per_step=np.zeros((2, 4), dtype=np.int64),
        portal_per_step=np.zeros((2, 4), dtype=np.int64),
        provincial_per_step=np.zeros((2, 4), dtype=np.int64),
        needs_per_step=np.zeros((2, 1), dtype=np.int64),
        payments_per_step=np.zeros((2, 1), dtype=np.int64),
        online_per_step=np.zeros((2, 1), dtype=np.int64),
        reported_payments_per_step=np.zeros((2, 1), dtype=np.int64),
        reports_per_step=np.zeros((2, 1), dtype=np.int64),
        rows=np.empty(n + 1, dtype=np.int32),
    )
    # log multiplier = const + lit_coef x lit_gap with const = -beta_usefulness reference + const0 + beta_ease
    # x ease = 0 and lit_coef = -beta_ease x ease x lit_G = 1 (ease = usability x language = 1)
    constants = K.record(
        K.CITIZEN_CONSTANTS,
        dt=1.0,
        networked=False,
        failure_ceremonial=0.0,
        redirect_non_user=0.0,
        ask0=0.0,
        online_ask_share=0.0,
        trust_loss=0.0,
        lapse_prob=0.0,
        betas=True,
        cap=np.inf,
        lang=np.ones(4),
        beta_usefulness=0.0,
        beta_ease=-1.0,
        beta_trust=0.0,
        reference_usefulness=0.0,
        const0=1.0,
    )
    step = K.CitizenStep(
        k=0,
        digitised=np.zeros((1, 1)),
        portal=np.zeros(1),
        national_share=np.zeros(1),
        login_failure=0.0,
        servant_state=np.zeros(1, dtype=np.int8),
        servant_deterrence=np.zeros(1),
        rent_rel=np.ones(1),
        report_prob=np.zeros(1),
        ease_usability=np.ones(1),
        useful_share=np.zeros(1),
        rate=np.ones(1, dtype=np.float32),
        access_hazard=zeros_g,
        literacy_step=np.ones(4),
        trust_step=np.ones(1),
        trust_moves=False,
    )
    assert K._adopt(cit, constants, step) == n  # every threshold of 0 is reached
    assert np.array_equal(cit.rows[:n], np.arange(n))
    e = -cit.to_adopt.astype(np.float64)
    assert np.max(np.abs(e / np.exp(y.astype(np.float64)) - 1)) < 2 * 2.0**-23


# ---- the fast path's bookkeeping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sc",
    [
        small(**{"provinces.hue.policy.feedback": 1.0}),
        small(**SCENARIOS["needs every month, lapses"], **{"provinces.hue.policy.feedback": 1.0}),
        small(**SCENARIOS["well mixed"]),
        small(**SCENARIOS["reports, mandates, portal with VNeID"]),
    ],
    ids=["feedback", "lapses", "well mixed", "reports, mandates, portal"],
)
def test_counters_kept_at_events_equal_full_counts(sc):
    model = EGovModel(sc, 4, collect=False, engine="numba")
    cit, cs = model.citizens, model.civil_service
    G, P = cit.group_sizes.size, cit.n_provinces
    for _ in range(model.n_steps):
        model.step()
        k = model.step_index
        for name, array in cit.arrays._asdict().items():  # the kernels' arrays are the citizens' own
            if hasattr(cit, name) and getattr(cit, name) is not None:
                assert getattr(cit, name) is array, name
        assert np.array_equal(cit.eligible, cit.access & ~cit.active)
        assert np.array_equal(cit.adopted_count, cit.group_counts(cit.adopted))
        assert np.array_equal(cit.access_count, cit.group_counts(cit.access))
        window = slice(max(0, k - cit.steps_per_year), k)  # the year's steps: k - steps_per_year .. k - 1
        last_year = cit.used_per_step[window].sum(axis=0)
        assert np.array_equal(last_year, cit.group_counts(cit.used_in_last_year(k)))
        for last, per_step in ((cit.last_portal, cit.portal_per_step), (cit.last_provincial, cit.provincial_per_step)):
            assert np.array_equal(per_step[window].sum(axis=0), cit.group_counts(last >= k - cit.steps_per_year))
        if cit.well_mixed:
            assert np.array_equal(cit.users, np.bincount(cit.province[cit.active], minlength=P))
        else:
            assert np.array_equal(cit.user_neighbours, cit.adjacency @ cit.active.astype(np.int64))
        assert np.array_equal(cit.served_rel, cs.reliability()[cit.civil_servant])
        assert np.array_equal(cs.genuine_colleagues, cs.adjacency @ (cs.state == GENUINE).astype(float))
        assert np.array_equal(cs.genuine_count, np.bincount(cs.province[cs.state == GENUINE], minlength=P))
        assert np.array_equal(cs.ceremonial_count, np.bincount(cs.province[cs.state == CEREMONIAL], minlength=P))
        assert np.allclose(cit.lit_gap_sum * cit.lit_G, np.bincount(cit.group, 1.0 - cit.literacy, G), rtol=1e-5)
        assert np.allclose(
            cit.distrust_sum * np.repeat(cit.trust_H, 4), np.bincount(cit.group, 1.0 - cit.trust, G), rtol=1e-5
        )
        assert not np.any(cit.adopted & ~cit.access)


def test_measure_equals_the_outcomes_counted_over_every_agent():
    """The fast path's measure, from its counters, and plain.measure, counting over every citizen and civil
    servant, give the same outcomes on the same state (literacy and trust to rounding), including a province
    without minority citizens (its minority shares are nan, its other gaps are not)."""
    sc = small(
        **{
            **SCENARIOS["reports, mandates, portal with VNeID"],
            "provinces.bentre.minority_share": 0.0,
            "provinces.hue.policy.mandate": 1.0,
            "supply_index.ceremonial_weight": 0.5,
        }
    )
    model = EGovModel(sc, 6, collect=False)
    for _ in range(150):
        model.step()
        row, direct = model.records[model.step_index], plain.measure(model)
        means = [COL["literacy_mean"], COL["trust_mean"]]
        np.testing.assert_allclose(row[:, means], direct[:, means], rtol=1e-6)
        row[:, means] = direct[:, means]
        assert np.array_equal(row, direct, equal_nan=True)
    cit, cs, row = model.citizens, model.civil_service, model.records[model.step_index]
    w = sc.supply_index
    for p, leader in enumerate(model.leaders):  # a few columns from their definition
        assert row[p, COL["adopted_share"]] == cit.adopted[cit.province == p].mean()
        assert row[p, COL["province_online_share"]] == pytest.approx(leader.digitised.mean())
        assert row[p, COL["published_share"]] == pytest.approx(leader.published.mean())
        staff = cs.state[cs.province == p]
        reported_use = (staff == GENUINE).mean() + w.ceremonial_weight * (staff == CEREMONIAL).mean()
        supply = (
            w.infrastructure * leader.agency_it
            + w.internal_use * reported_use
            + w.portal * leader.usability * leader.published.mean()
            + w.online_services * leader.digitised.mean()
        )
        assert row[p, COL["supply_index"]] == pytest.approx(supply)
        assert row[p, COL["civil_servant_genuine_share"]] == (cs.state[cs.province == p] == GENUINE).mean()
        assert row[p, COL["reliability"]] == pytest.approx(
            cs.reliability()[cit.civil_servant[cit.province == p]].mean()
        )
    bentre = list(sc.provinces).index("bentre")
    assert np.isnan(row[bentre, COL["minority_adopted_share"]])
    assert np.isfinite(row[bentre, COL["urban_rural_gap"]])
    assert row[bentre, COL["civil_servant_ceremonial_share"]] > 0


def test_same_seed_same_results_on_every_engine():
    sc = small()
    for engine in ("numba", "plain"):
        assert np.array_equal(run(sc, 9, engine), run(sc, 9, engine), equal_nan=True), engine


def test_simulate_uses_the_default_engine():
    sc = small()
    assert np.array_equal(simulate(sc, 5), run(sc, 5, None), equal_nan=True)


@pytest.mark.parametrize("p_need", [1e-9, 0.02, 0.198, 0.3333, np.nextafter(1 / 3, 0)])
def test_compiled_waiting_times_are_numpys_geometric_draws(p_need):
    """kernels.geometric_waits, from numpy's standard exponentials, makes the draws of k + rng.geometric(p, n)
    bit for bit and leaves the stream where numpy leaves it, below numpy's switch from inversion to search at
    p = 1/3 (independent truth: numpy's own Generator); population.INVERSION_BELOW is that switch."""
    from egovsim.model import kernels, population

    assert population.INVERSION_BELOW == 1 / 3
    who = np.array([0, 3, 4, 9, 10, 11, 500, 999], dtype=np.int32)
    for seed in range(5):
        expected = np.full(1000, -1, dtype=np.int32)
        numpy_rng = np.random.default_rng(seed)
        expected[who] = numpy_rng.geometric(p_need, who.size) + 7
        got = np.full(1000, -1, dtype=np.int32)
        compiled_rng = np.random.default_rng(seed)
        kernels.geometric_waits(compiled_rng.standard_exponential(who.size), who, p_need, 7, got)
        assert np.array_equal(got, expected)
        assert compiled_rng.random() == numpy_rng.random()  # the same number of draws taken
    # numpy's search method from 1/3 on draws otherwise: the inversion there would give other waits
    numpy_rng, ours = np.random.default_rng(1), np.full(1000, -1, dtype=np.int32)
    kernels.geometric_waits(np.random.default_rng(1).standard_exponential(who.size), who, 0.5, 0, ours)
    assert not np.array_equal(ours[who], numpy_rng.geometric(0.5, who.size))


@pytest.mark.parametrize("need_rate", [1.0, 4.8, 5.0, 12.0], ids=["p 0.08", "p 0.33 (inversion)", "p 0.34", "p 0.63"])
def test_a_steps_dealings_draw_what_the_plain_layout_draws(need_rate):
    """Citizens._needs (reused buffers; waiting times from numpy's exponentials by a compiled loop below a chance
    of 1/3 a step, numpy's geometric from there) gives the draws, next needs and stream position of
    CitizenLayout._needs, the numpy statement of the same draws, step after step."""
    from egovsim.model.population import INVERSION_BELOW, CitizenLayout

    path = Path(__file__).resolve().parents[1] / "scenarios" / "three_provinces.yaml"
    scenario = with_values(load_scenario(path, scale=0.002), {"citizens.need_rate": need_rate})
    model = EGovModel(scenario, 3, collect=False)
    assert (model.citizens.p_need < INVERSION_BELOW) == (need_rate < 4.9)  # both of numpy's methods are met
    citizens, ctx = model.citizens, model.context()
    plain_next = citizens.next_need.copy()
    for k in range(1, 30):
        ctx.k = k
        who = np.flatnonzero(citizens.next_need == k).astype(citizens.arrays.rows.dtype)
        assert np.array_equal(np.flatnonzero(plain_next == k), who)
        fast_rng, plain_rng = np.random.default_rng(k), np.random.default_rng(k)
        fast = citizens._needs(ctx, fast_rng, who)
        fast = None if fast is None else [a.copy() for a in fast]  # the buffers are reused next step
        fast_next = citizens.next_need.copy()
        citizens.next_need[:] = plain_next
        plain = CitizenLayout._needs(citizens, ctx, plain_rng, who)
        assert (fast is None) == (plain is None)
        if plain is not None:
            for a, b in zip(fast, plain):
                assert np.array_equal(a, b)
        assert np.array_equal(citizens.next_need, fast_next)
        assert fast_rng.random() == plain_rng.random()
        plain_next = citizens.next_need.copy()


@pytest.mark.parametrize("name", ["three_provinces.yaml", "reorganised_2025.yaml"])
def test_dealings_drawn_a_step_ahead_are_the_ones_the_step_would_draw(name, monkeypatch):
    """A large model draws each step's dealings in a second thread while the step before runs
    (population.DrawAhead, from DRAW_AHEAD_FROM citizens). That must change nothing: the same records, mergers
    included, and the generator left in the same state, as when every step draws its own."""
    from egovsim.model import population

    sc = load_scenario(THREE.parent / name, scale=0.002)
    monkeypatch.setattr(population, "DRAW_AHEAD_FROM", None)
    alone = EGovModel(sc, 5, collect=False)
    alone.run()

    made = []

    class Counted(population.DrawAhead):
        def __init__(self, *args):
            made.append(args[1])
            super().__init__(*args)

    monkeypatch.setattr(population, "DrawAhead", Counted)
    monkeypatch.setattr(population, "DRAW_AHEAD_FROM", 0)
    ahead = EGovModel(sc, 5, collect=False)
    ahead.run()
    assert made == list(range(1, ahead.n_steps))  # every step after the first was drawn ahead, none past the end
    np.testing.assert_array_equal(ahead.records, alone.records)
    assert ahead.rng.bit_generator.state == alone.rng.bit_generator.state


def test_a_failure_while_drawing_ahead_stops_the_run_where_the_draws_are_used(monkeypatch):
    from egovsim.model import population

    monkeypatch.setattr(population, "DRAW_AHEAD_FROM", 0)
    draw = population.Citizens._draw_needs

    def failing(self, k, *args):
        if k == 4:
            raise MemoryError("no room for step 4's draws")
        return draw(self, k, *args)

    monkeypatch.setattr(population.Citizens, "_draw_needs", failing)
    model = EGovModel(small(), 1, collect=False)
    with pytest.raises(MemoryError, match="step 4"):
        model.run()
    assert model.step_index == 3  # drawn while step 3's citizens acted: step 3 stops there, unfinished


def test_between_steps_no_thread_draws_and_the_model_is_whole(monkeypatch):
    """The draw-ahead thread is joined before a step ends. Between steps nothing moves: drawing from the model's
    generator there (as a progress callback might) gives the same run every time, and a model copied mid-run goes
    on as the original does. (Such draws take numbers the next step's dealings would take without drawing ahead:
    egovsim makes none, and the model's rules say nothing else draws within a run.)"""
    import copy
    import threading

    from egovsim.model import population

    monkeypatch.setattr(population, "DRAW_AHEAD_FROM", 0)

    def stepped():
        model = EGovModel(small(), 2, collect=False)
        peeks = []
        for _ in range(30):
            model.step()
            assert not any(t.name.startswith("egovsim draws") for t in threading.enumerate())
            peeks.append(model.rng.random())
        twin = copy.deepcopy(model)
        for m in (model, twin):
            for _ in range(10):
                m.step()
        np.testing.assert_array_equal(twin.records, model.records)
        return model.records, peeks

    (records, peeks), (again, peeks_again) = stepped(), stepped()
    np.testing.assert_array_equal(again, records)
    assert peeks_again == peeks


def test_pairwise_sum_is_numpys_sum_bit_for_bit():
    """kernels.pairwise_sum (compiled) against ndarray.sum on every length to 1,100 and a few longer, values of
    mixed sign and magnitude (where the order of additions shows), and rows of a 2-D array summed by axis."""
    from egovsim.model.kernels import pairwise_sum

    rng = np.random.default_rng(11)
    for n in [*range(1100), 2000, 4097, 100_003]:
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n)
        assert pairwise_sum(a) == a.sum(), n
    rows = rng.standard_normal((3, 37)) * 10.0 ** rng.uniform(-8, 8, (3, 37))
    assert [pairwise_sum(r) for r in rows] == rows.sum(axis=1).tolist()
    assert math.copysign(1.0, pairwise_sum(np.array([-0.0, -0.0]))) == 1.0  # as numpy: 0.0 + the sum


def test_the_compiled_channels_are_numpys_arithmetic_bit_for_bit():
    """kernels.channels against the channels stated with numpy (docs/ODD.md 7.3) on random provinces and portals."""
    from egovsim.model.kernels import channels

    rng = np.random.default_rng(12)
    for _ in range(300):
        P, J = int(rng.integers(1, 5)), int(rng.integers(1, 200))
        digitised = rng.uniform(0, 1, (P, J)) * (rng.uniform(size=(P, 1)) < 0.8)  # some provinces with nothing
        portal = np.clip(rng.uniform(-0.5, 1) * J - np.arange(J), 0.0, 1.0)
        usability, national, failure = rng.uniform(0.1, 1, P), rng.uniform(0.1, 1), rng.uniform(0, 1)
        online, online_share, national_share, useful_share, ease, provincial_share = channels(
            digitised, portal, usability, national, failure
        )
        provincial, national_weight = digitised.sum(axis=1), portal.sum()
        weight = provincial + national_weight
        expected_ease = np.where(
            weight > 0,
            (provincial * usability + national_weight * national) / np.where(weight > 0, weight, 1),
            usability,
        )
        np.testing.assert_array_equal(online, np.maximum(digitised, portal))
        np.testing.assert_array_equal(provincial_share, np.array([row.mean() for row in digitised]))
        np.testing.assert_array_equal(online_share, np.maximum(digitised, portal).sum(axis=1) / J)
        np.testing.assert_array_equal(national_share, national / (national + usability))
        useful = (digitised + (1.0 - digitised) * portal * (1.0 - failure)).sum(axis=1) / J
        np.testing.assert_array_equal(useful_share, useful)
        np.testing.assert_array_equal(ease, expected_ease)


def test_the_compiled_province_means_and_deterrence_are_numpys_bit_for_bit():
    """kernels.province_mean against np.bincount(...) / counts, kernels.servant_deterrence against
    np.maximum(0, 1 - pi F[province] m), on random civil services."""
    from egovsim.model.kernels import province_mean, servant_deterrence

    rng = np.random.default_rng(13)
    for _ in range(200):
        P = int(rng.integers(1, 6))
        counts = rng.integers(1, 400, P)
        province = np.repeat(np.arange(P), counts).astype(np.uint8)
        values = rng.standard_normal(province.size) * 10.0 ** rng.uniform(-6, 6, province.size)
        expected = np.bincount(province, weights=values, minlength=P) / counts
        np.testing.assert_array_equal(province_mean(province, values, counts), expected)
        pi_f, m = rng.uniform(0, 2, P), np.exp(rng.standard_normal(province.size))
        np.testing.assert_array_equal(servant_deterrence(pi_f, province, m), np.maximum(0.0, 1.0 - pi_f[province] * m))


def test_the_compiled_enforcement_is_the_rule_stated_with_numpy():
    """kernels.enforcement (one call a step) against its rule with numpy: pi_eff = min(1, detection + feedback x
    reported), D_i = max(0, 1 - pi_eff F m_i), and the province means of D_i and of rent_i x D_i by bincount,
    bit for bit, reported shares and levers past 1 included."""
    from egovsim.model.kernels import enforcement

    rng = np.random.default_rng(15)
    for _ in range(200):
        P = int(rng.integers(1, 6))
        counts = rng.integers(1, 300, P)
        province = np.repeat(np.arange(P), counts).astype(np.uint8)
        detection, feedback, penalty = rng.uniform(0, 0.6, P), rng.uniform(0, 1.5, P), rng.uniform(0, 3, P)
        reported = rng.uniform(0, 1, P) * (rng.uniform(size=P) < 0.8)
        m = np.exp(rng.standard_normal(province.size))
        rent = (rng.beta(2, 2, province.size) * 2 * rng.uniform(0.1, 3)).astype(np.float32)
        pi_eff = np.minimum(1.0, detection + feedback * reported)
        servant = np.maximum(0.0, 1.0 - (pi_eff * penalty)[province] * m)
        ours = enforcement(detection, feedback, penalty, reported, province, m, rent, counts)
        np.testing.assert_array_equal(ours[0], servant)
        np.testing.assert_array_equal(ours[1], np.bincount(province, weights=servant, minlength=P) / counts)
        np.testing.assert_array_equal(ours[2], np.bincount(province, weights=rent * servant, minlength=P) / counts)


def test_the_compiled_access_hazard_is_numpys():
    """kernels.access_hazard against (mean_rate + imitation x access share)[:, None] x factor, flattened."""
    from egovsim.model.kernels import access_hazard

    rng = np.random.default_rng(16)
    for _ in range(200):
        P = int(rng.integers(1, 6))
        mean_rate, imitation = rng.uniform(0, 0.5), rng.uniform(0, 2)
        share, factor = rng.uniform(0, 1, P), rng.uniform(0, 3, (P, 4)) * 10.0 ** rng.uniform(-3, 3, (P, 4))
        expected = ((mean_rate + imitation * share)[:, None] * factor).reshape(-1)
        np.testing.assert_array_equal(access_hazard(mean_rate, imitation, share, factor), expected)


def test_the_compiled_reported_share_and_reliability_update_are_numpys():
    """kernels.reported_share against the 12-month sums and true division with numpy; kernels.set_reliability
    against setting each served citizen's reliability to their servant's state's, one servant at a time."""
    from egovsim.model.kernels import reported_share, set_reliability

    rng = np.random.default_rng(14)
    for _ in range(100):
        steps, P = int(rng.integers(1, 40)), int(rng.integers(1, 5))
        asked = rng.integers(0, 5, (steps, P)) * (rng.uniform(size=(steps, P)) < 0.5)
        reported = np.minimum(asked, rng.integers(0, 3, (steps, P)))
        last = int(rng.integers(0, steps))
        first = max(0, last + 1 - 12)
        rows = slice(first, last + 1)
        expected = reported[rows].sum(axis=0) / np.maximum(asked[rows].sum(axis=0), 1)
        np.testing.assert_array_equal(reported_share(asked, reported, first, last), expected)
    servant = rng.integers(0, 50, 2000)
    order = np.argsort(servant, kind="stable").astype(np.int32)
    ptr = np.concatenate(([0], np.cumsum(np.bincount(servant, minlength=50))))
    state, of_state = rng.integers(0, 3, 50).astype(np.int8), np.array([0.3, 0.8, 1.0], dtype=np.float32)
    changed = np.flatnonzero(rng.uniform(size=50) < 0.3)
    ours, expected = np.zeros(2000, np.float32), np.zeros(2000, np.float32)
    set_reliability(ours, order, ptr, changed, state, of_state)
    for s in changed:
        expected[servant == s] = of_state[state[s]]
    np.testing.assert_array_equal(ours, expected)
