"""The fast path agrees with the plain one (issue 8).

Three implementations of the citizen rules (model.py ENGINES): `numba` (compiled loops, the default), `numpy`
(the loops' pure numpy twins) and `plain` (plain.PlainCitizens: every citizen's every quantity updated every
step, every aggregate a full count, float64 arithmetic).

- numba and numpy do the same arithmetic in the same order: same seed, bit-identical results, kernel by kernel
  on random inputs and for whole runs.
- fast and plain make the same random draws in the same order; they differ only in floating-point rounding
  (float32 hazard, closed-form learning): same seed, the same access path exactly, and the same run up to a
  citizen or two whose threshold lands within rounding of the hazard; the same distribution over seeds.
- the fast path's counters, kept up to date at events, equal full counts at every step, and `measure` equals
  the outcomes computed directly from the citizens' arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from egovsim import kernels as K
from egovsim.model import EGovModel, simulate
from egovsim.outcomes import COL, COLUMNS
from egovsim.population import CEREMONIAL, GENUINE, NON_USER
from egovsim.scenario import load_scenario, with_values

from .conftest import BASS, THREE

numba = pytest.importorskip("numba")

EVENT_COLUMNS = [
    c for c in COLUMNS if c not in ("literacy_mean", "trust_mean", "leader_will", "egov_index", "services_online_share")
]


def small(**values):
    return with_values(load_scenario(THREE, scale=0.002), {"end_year": 2024, **values})


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
}


def run(scenario, seed, engine):
    return EGovModel(scenario, seed, collect=False, engine=engine).run()


# ---- numba and numpy: bit for bit ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_numba_and_numpy_runs_are_identical(name):
    sc = small(**SCENARIOS[name])
    for seed in (1, 2):
        assert np.array_equal(run(sc, seed, "numba"), run(sc, seed, "numpy"), equal_nan=True), (name, seed)


def test_numba_and_numpy_identical_well_mixed_bass():
    sc = with_values(load_scenario(BASS), {"end_year": 2004})
    assert np.array_equal(run(sc, 3, "numba"), run(sc, 3, "numpy"), equal_nan=True)


def random_state(rng, n=3000, P=2):
    sizes = rng.multinomial(n, [0.4, 0.1, 0.4, 0.1] * P / np.sum([0.4, 0.1, 0.4, 0.1] * P))
    sizes[1] = 0  # an empty block
    group_start = np.concatenate(([0], np.cumsum(sizes)))
    n = int(sizes.sum())
    group = np.repeat(np.arange(4 * P, dtype=np.uint8), sizes)
    return n, P, group_start, group


def test_adopt_kernel_identical_on_random_inputs():
    rng = np.random.default_rng(0)
    n, P, group_start, _group = random_state(rng)
    degree = rng.integers(1, 20, n)
    base = dict(
        eligible=rng.random(n) < 0.7,
        rate=np.full(P, 0.0004, dtype=np.float32),
        q_dt=(0.02 / degree).astype(np.float32),
        user_neighbours=rng.integers(0, 20, n).astype(np.uint16),
        lit_gap=rng.random(n).astype(np.float32),
        distrust=(rng.random(n) * 3).astype(np.float32),
        served_genuine=rng.random(n) < 0.5,
        group_start=group_start,
        usability=rng.random(P),
        online_share=rng.random(P),
        lit_G=rng.random(4 * P),
        trust_H=rng.random(P) + 0.1,
    )
    for betas, cap, q in ((True, np.inf, True), (True, 80.0, True), (False, np.inf, True), (True, np.inf, False)):
        hz = K.HazardConstants(
            betas=betas,
            cap=cap,
            lang=np.array([1, 0.7, 1, 0.7]),
            failure=0.4,
            beta_usefulness=1.0 if cap == np.inf else 60.0,
            beta_ease=1.5,
            beta_trust=-2.0,
            reference_usefulness=0.5,
            const0=0.3,
        )
        to_adopt = (rng.exponential(size=n) * 0.01).astype(np.float32)
        to_adopt[::7] = np.inf
        args = dict(base, q_dt=base["q_dt"] if q else None, user_neighbours=base["user_neighbours"] if q else None)
        results = []
        for kern in (K.NumbaKernels(n, 10), K.NumpyKernels(n)):
            t = to_adopt.copy()
            new = kern.adopt(t, hz=hz, **{k: v for k, v in args.items()})
            results.append((new, t))
        (new_a, t_a), (new_b, t_b) = results
        assert np.array_equal(new_a, new_b) and np.array_equal(t_a, t_b), (betas, cap, q)
        assert new_a.size > 0


def test_deal_kernel_identical_on_random_inputs():
    rng = np.random.default_rng(1)
    n, P, _group_start, group = random_state(rng)
    J, T = 7, 30
    who = np.sort(rng.choice(n, 900, replace=False))
    m = who.size
    common = dict(
        procedure=rng.integers(0, J, m),
        u=rng.random((4, m)),
        new_threshold=rng.exponential(size=m),
        online=rng.random(P * J),
        ask=rng.random(P * J),
        served_genuine=rng.random(n) < 0.3,
        reliable=0.6,
        group=group,
        k=12,
        trust_H=rng.random(P) + 0.2,
        lapse_prob=0.5,
    )
    state = dict(
        active=rng.random(n) < 0.6,
        last_online=np.where(rng.random(n) < 0.5, rng.integers(0, 12, n), -(2**30)).astype(np.int32),
        used_per_step=rng.integers(0, 50, (T, 4 * P)),
        distrust=rng.random(n).astype(np.float32),
        distrust_sum=rng.random(4 * P) * 100,
        to_adopt=rng.random(n).astype(np.float32),
        needs=np.zeros(P, dtype=np.int64),
        payments=np.zeros(P, dtype=np.int64),
    )
    for loss in (0.2, 0.0):
        outs = []
        for kern in (K.NumbaKernels(n, 10), K.NumpyKernels(n)):
            s = {k: v.copy() for k, v in state.items()}
            lapsed = kern.deal(who, loss=loss, **common, **s)
            outs.append((lapsed, s))
        (la, sa), (lb, sb) = outs
        assert np.array_equal(la, lb) and la.size > 0
        for key in state:
            assert np.array_equal(sa[key], sb[key]), (key, loss)


def test_set_users_and_civil_service_kernels_identical():
    rng = np.random.default_rng(2)
    n, P, group_start, group = random_state(rng)
    adj = __import__("egovsim.network", fromlist=["x"]).block_ring_network(np.diff(group_start), 8, 0.9, 0.1, rng)
    for using in (True, False):
        who = np.sort(rng.choice(n, 200, replace=False))
        state = dict(
            active=rng.random(n) < 0.5,
            eligible=rng.random(n) < 0.5,
            adopted=rng.random(n) < 0.5,
            to_adopt=rng.random(n).astype(np.float32),
            adopted_count=rng.integers(0, 9, 4 * P),
            user_neighbours=rng.integers(20, 40, n).astype(np.uint16),
            users=np.zeros(0, dtype=np.int64),
        )
        outs = []
        for kern in (K.NumbaKernels(n, 10), K.NumpyKernels(n)):
            s = {k: v.copy() for k, v in state.items()}
            kern.set_users(who, using, group=group, indptr=adj.indptr, indices=adj.indices, **s)
            outs.append(s)
        for key in state:
            assert np.array_equal(outs[0][key], outs[1][key]), (key, using)

    m = 500
    cs_adj = __import__("egovsim.network", fromlist=["x"]).block_ring_network(np.array([300, 200]), 6, 1.0, 0.1, rng)
    province = np.repeat(np.arange(2, dtype=np.uint8), [300, 200])
    for ceremonial_dt in (None, np.array([0.3, 2.0])):
        state = dict(
            state=rng.choice([NON_USER, CEREMONIAL, GENUINE], m, p=[0.6, 0.2, 0.2]).astype(np.int8),
            skill=rng.random(m).astype(np.float32),
            to_genuine=rng.exponential(size=m) * 0.05,
            to_ceremonial=rng.exponential(size=m) * 0.2,
            genuine_colleagues=rng.integers(0, 6, m) * 1.0,
            genuine_count=np.zeros(2, dtype=np.int64),
            ceremonial_count=np.zeros(2, dtype=np.int64),
            served_genuine=np.zeros(2),
            skill_sum=np.zeros(2),
        )
        common = dict(
            province=province,
            q_dt=rng.random(m) * 0.1,
            p_dt=0.001,
            usability=rng.random(2),
            leader_pull=rng.random(2),
            weights=(1.0, 1.5, 2.0),
            rent_step=rng.random(m),
            ceremonial_dt=ceremonial_dt,
            skill_step=rng.random(m),
            citizens_per_servant=rng.integers(0, 50, m),
            indptr=cs_adj.indptr,
            indices=cs_adj.indices,
        )
        outs = []
        for kern in (K.NumbaKernels(10, m), K.NumpyKernels(10)):
            s = {k: v.copy() for k, v in state.items()}
            converts, left = kern.cs_step(**common, **s)
            outs.append((converts, left, s))
        assert np.array_equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1] and outs[0][0].size > 0
        for key in state:
            if key == "to_genuine":  # numpy's SIMD exp and libm's (numba's math.exp) may differ by an ulp
                np.testing.assert_allclose(outs[0][2][key], outs[1][2][key], rtol=1e-13, atol=0, err_msg=key)
            else:
                assert np.array_equal(outs[0][2][key], outs[1][2][key]), key


def test_exp_poly_is_float32_accurate():
    y = np.linspace(-87, 80, 200_001).astype(np.float32)
    scale = np.empty_like(y)
    e = K.exp_poly(y.copy(), scale) * scale
    exact = np.exp(y.astype(np.float64))
    assert np.max(np.abs(e / exact - 1)) < 2 * 2.0**-23


# ---- fast and plain --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "feedback, mandate, strong betas", "needs every month, lapses"])
def test_fast_and_plain_agree_for_the_same_seed(name):
    """Same draws in the same order: the access path is identical; the rest differs by at most a citizen or two
    whose adoption threshold lies within float rounding of the hazard (none at all for most seeds)."""
    sc = small(**SCENARIOS[name])
    n = sum(max(1, round(p.population * p.scale)) for p in sc.provinces.values())
    identical = 0
    for seed in (1, 2, 3):
        fast, plain = run(sc, seed, "numba"), run(sc, seed, "plain")
        for col in ("access_share", "urban_access_share", "rural_access_share"):
            assert np.array_equal(fast[..., COL[col]], plain[..., COL[col]], equal_nan=True), (seed, col)
        diff = np.abs(fast - plain)
        assert np.nanmax(diff[..., COL["adopted_share"]]) <= 5 / n * len(sc.provinces), seed
        assert np.nanmax(diff[..., [COL[c] for c in ("literacy_mean", "trust_mean")]]) < 1e-5
        identical += np.array_equal(
            fast[..., [COL[c] for c in EVENT_COLUMNS]], plain[..., [COL[c] for c in EVENT_COLUMNS]], equal_nan=True
        )
    assert identical >= 1


def test_fast_and_plain_have_the_same_distribution():
    """Over 12 seeds, mean trajectories agree within 3 standard errors (they are paired by seed)."""
    sc = small()
    fast = np.stack([run(sc, s, "numba") for s in range(12)])
    plain = np.stack([run(sc, s, "plain") for s in range(12)])
    for col in (
        "adopted_share",
        "use_share_12m",
        "civil_servant_genuine_share",
        "informal_payment_index",
        "egov_index",
    ):
        a, b = fast[..., COL[col]], plain[..., COL[col]]
        se = np.sqrt(a.var(axis=0, ddof=1) / 12 + b.var(axis=0, ddof=1) / 12)
        gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
        defined = ~np.isnan(gap)  # the informal-payment index is undefined before the first dealing
        assert np.array_equal(defined, ~np.isnan(se)) and defined.mean() > 0.99, col
        assert np.all(gap[defined] <= 3 * se[defined] + 1e-9), col


# ---- the fast path's bookkeeping -------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_counters_kept_at_events_equal_full_counts(engine):
    sc = small(**{"provinces.hue.policy.feedback": 1.0})
    model = EGovModel(sc, 4, collect=False, engine=engine)
    cit, cs = model.citizens, model.civil_service
    G = cit.group_sizes.size
    for _ in range(model.n_steps):
        model.step()
        k = model.step_index
        assert np.array_equal(cit.eligible, cit.access & ~cit.active)
        assert np.array_equal(cit.adopted_count, cit.group_counts(cit.adopted))
        assert np.array_equal(cit.access_count, cit.group_counts(cit.access))
        assert np.array_equal(cit.tallies(k).used.sum(axis=0), cit.group_counts(cit.used_in_last_year(k)))
        assert np.array_equal(cit.user_neighbours, cit.adjacency @ cit.active.astype(np.int64))
        assert np.array_equal(cit.served_genuine, cs.state[cit.civil_servant] == GENUINE)
        assert np.array_equal(cs.genuine_colleagues, cs.adjacency @ (cs.state == GENUINE).astype(float))
        assert np.array_equal(cs.genuine_count, np.bincount(cs.province[cs.state == GENUINE], minlength=3))
        assert np.array_equal(cs.ceremonial_count, np.bincount(cs.province[cs.state == CEREMONIAL], minlength=3))
        assert np.allclose(cit.lit_gap_sum * cit.lit_G, np.bincount(cit.group, 1.0 - cit.literacy, G), rtol=1e-5)
        assert np.allclose(
            cit.distrust_sum * np.repeat(cit.trust_H, 4), np.bincount(cit.group, 1.0 - cit.trust, G), rtol=1e-5
        )
        assert not np.any(cit.adopted & ~cit.access)


def test_measure_equals_outcomes_counted_from_the_arrays():
    """Every column, recomputed the direct way from the citizens', civil servants' and leaders' state, including
    a province without minority citizens (its minority shares are nan, its other gaps are not)."""
    sc = small(**{"provinces.bentre.minority_share": 0.0})
    model = EGovModel(sc, 6, collect=False)
    for _ in range(150):
        model.step()
    cit, cs, k = model.citizens, model.civil_service, model.step_index
    row = model.records[k]
    used = cit.used_in_last_year(k)
    for p, leader in enumerate(model.leaders):
        rows = cit.province == p
        urban, minority = cit.urban & rows, cit.minority & rows

        def share(mask, of):
            return mask[of].mean() if of.any() else np.nan

        expect = {
            "citizens": rows.sum(),
            "adopted_share": share(cit.adopted, rows),
            "access_share": share(cit.access, rows),
            "use_share_12m": share(used, rows),
            "urban_adopted_share": share(cit.adopted, urban),
            "rural_adopted_share": share(cit.adopted, rows & ~cit.urban),
            "minority_adopted_share": share(cit.adopted, minority),
            "majority_adopted_share": share(cit.adopted, rows & ~cit.minority),
            "urban_use_share_12m": share(used, urban),
            "rural_use_share_12m": share(used, rows & ~cit.urban),
            "urban_access_share": share(cit.access, urban),
            "rural_access_share": share(cit.access, rows & ~cit.urban),
            "minority_access_share": share(cit.access, minority),
            "majority_access_share": share(cit.access, rows & ~cit.minority),
            "civil_servant_genuine_share": (cs.state[cs.province == p] == GENUINE).mean(),
            "civil_servant_ceremonial_share": (cs.state[cs.province == p] == CEREMONIAL).mean(),
            "civil_servant_skill": cs.skill[cs.province == p].mean(),
            "reliability": cs.reliability()[cit.civil_servant[rows]].mean(),
            "literacy_mean": cit.literacy[rows].mean(),
            "trust_mean": cit.trust[rows].mean(),
            "services_online_share": leader.online(model.rent_rel, model.central.levers.portal_services).mean(),
            "usability": leader.usability,
            "leader_will": leader.will,
            "n_systems": leader.n_systems,
            "it_cost": leader.it_cost,
            "it_waste": leader.it_waste,
            "roadmap_clarity": model.central.levers.roadmap_clarity,
        }
        expect["urban_rural_gap"] = expect["urban_adopted_share"] - expect["rural_adopted_share"]
        expect["ethnic_gap"] = expect["majority_adopted_share"] - expect["minority_adopted_share"]
        w = sc.egov_index
        expect["egov_index"] = (
            w.infrastructure * expect["access_share"]
            + w.internal_use * expect["civil_servant_genuine_share"]
            + w.online_services * expect["services_online_share"]
            + w.citizen_uptake * expect["adopted_share"]
        )
        window = slice(max(0, k + 2 - cit.steps_per_year), k + 2)
        dealt = cit.needs_per_step[window, p].sum()
        expect["informal_payment_index"] = cit.payments_per_step[window, p].sum() / dealt if dealt else np.nan
        assert set(expect) == set(COLUMNS)
        for col, value in expect.items():
            assert row[p, COL[col]] == pytest.approx(value, rel=1e-5, abs=1e-7, nan_ok=True), (p, col)
    bentre = list(sc.provinces).index("bentre")
    assert np.isnan(row[bentre, COL["minority_adopted_share"]])
    assert np.isfinite(row[bentre, COL["urban_rural_gap"]])


def test_same_seed_same_results_on_every_engine():
    sc = small()
    for engine in ("numba", "numpy", "plain"):
        assert np.array_equal(run(sc, 9, engine), run(sc, 9, engine), equal_nan=True), engine


def test_simulate_uses_the_default_engine():
    sc = small()
    assert np.array_equal(simulate(sc, 5), run(sc, 5, None), equal_nan=True)
