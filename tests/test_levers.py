"""Each lever of the dealings moves an outcome beyond its own counter (design-model-v2 section 11.2; the supply-side
levers are in tests/test_levers_supply.py), and enforcement is smooth (4.4).

"Paired": the same seeds for both arms (common random numbers: a lever changes what is done with the draws, never
which draws are made). "Moves": the mean paired difference has the stated sign and exceeds 2 standard errors of
the paired differences. Scale 0.003, six seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, with_values
from egovsim.model.model import EGovModel
from egovsim.model.outcomes import COL

from .conftest import THREE, simulate_once, without_portal

SEEDS = range(6)
VNEID_DATE = 2024.497  # 1 July 2024: VNeID the national portal's single login (calibration/observations.yaml timeline)


def base():
    """The default scenario at scale 0.003; its national events include VNeID's single login (1 July 2024)."""
    scenario = load_scenario(THREE, scale=0.003)
    assert any(e.set.get("vneid") == 1.0 and e.date == VNEID_DATE for e in scenario.central.events)
    return scenario


BASE = base()


def years(scenario, first, last):
    k = [round((y + 0.5 - scenario.start_year) * scenario.steps_per_year) for y in (first, last)]
    return slice(k[0], k[1] + 1)


def paired_differences(low, high, outcome, province, first, last=None):
    """Per seed, outcome(high) - outcome(low), the outcome's mean over the years first..last in `province`."""
    p = list(BASE.provinces).index(province)
    rows = years(BASE, first, first if last is None else last)
    return np.array(
        [
            simulate_once(high, seed)[rows, p, COL[outcome]].mean()
            - simulate_once(low, seed)[rows, p, COL[outcome]].mean()
            for seed in SEEDS
        ]
    )


def assert_moves(differences, direction):
    mean = differences.mean()
    se = differences.std(ddof=1) / np.sqrt(differences.size)
    assert np.sign(mean) == direction and abs(mean) > 2 * se, (mean, se)


def arms(key, low, high, scenario=BASE):
    return with_values(scenario, {key: low}), with_values(scenario, {key: high})


# ---- mandates: ceremonial users' dossiers stall; sustained ceremonial use builds skill (4.1) ------------------------


def test_mandate_costs_trust_through_failed_dossiers():
    """Small: in 2021-2024 few citizens deal online (about 1e-4 of mean trust), so this runs at scale 0.01, where
    the paired difference is about 5 standard errors."""
    larger = with_values(load_scenario(THREE, scale=0.01), {"end_year": 2024})
    low, high = arms("provinces.bentre.policy.mandate", 0.0, 1.0, larger)
    assert_moves(paired_differences(low, high, "trust_mean", "bentre", 2021, 2024), -1)


def test_mandate_raises_genuine_use_by_learning_by_doing():
    low, high = arms("provinces.bentre.policy.mandate", 0.0, 1.0)
    assert_moves(paired_differences(low, high, "civil_servant_genuine_share", "bentre", 2030), +1)


# ---- feedback: reports raise detection and press the leader (4.2) ------------------------------------------------


# feedback also raises trust (7.4), which moves adoption and the will's satisfaction term; these tests switch
# that path off in both arms so that what moves is the reports' path alone
NO_TRUST_PATH = {"citizens.trust_feedback_rate": 0.0, "leaders.satisfaction_effect": 0.0}


def test_feedback_lowers_informal_payments_through_reported_payments():
    low, high = arms("provinces.daklak.policy.feedback", 0.0, 0.9, with_values(BASE, NO_TRUST_PATH))
    assert_moves(paired_differences(low, high, "informal_payment_index", "daklak", 2020, 2030), -1)
    # and it is the reports that do it: without them feedback changes nothing here
    silent = with_values(BASE, {**NO_TRUST_PATH, "citizens.report_prob": 0.0})
    low, high = arms("provinces.daklak.policy.feedback", 0.0, 0.9, silent)
    assert np.all(paired_differences(low, high, "informal_payment_index", "daklak", 2020, 2030) == 0)


def test_feedback_raises_leader_will_through_press():
    """Feedback raises the will, and more with the press of reports than without it (feedback also lowers the
    informal income at risk through detection, which raises the will too)."""
    low, high = arms("provinces.daklak.policy.feedback", 0.0, 0.9, with_values(BASE, NO_TRUST_PATH))
    pressed = paired_differences(low, high, "leader_will", "daklak", 2025)
    assert_moves(pressed, +1)
    unpressed = with_values(BASE, {**NO_TRUST_PATH, "leaders.press_effect": 0.0})
    low, high = arms("provinces.daklak.policy.feedback", 0.0, 0.9, unpressed)
    assert_moves(pressed - paired_differences(low, high, "leader_will", "daklak", 2025), +1)


# ---- enforcement (4.4) ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["services_online_share", "civil_servant_genuine_share"])
def test_detection_relaxes_the_rent_slowdown(outcome):
    low, high = arms("provinces.daklak.policy.detection_prob", 0.05, 0.2)
    assert_moves(paired_differences(low, high, outcome, "daklak", 2024), +1)


def test_enforcement_is_smooth():
    """Informal payments (mean 2020-2030, Daklak) fall strictly as pi F rises through 1, with no cliff at pi F = 1:
    across [0.99, 1.0] they fall no faster than about the mean rate across [0.9, 1.1] (a drop at 1 would be many
    times it); and some officials still ask at pi F = 2 (those watched least)."""
    sc = with_values(BASE, {"provinces.daklak.policy.detection_prob": 0.1})
    p = list(sc.provinces).index("daklak")
    rows = years(sc, 2020, 2030)
    pi_f = (0.5, 0.9, 0.99, 1.0, 1.1, 2.0)
    index = {}
    for x in pi_f:
        arm = with_values(sc, {"provinces.daklak.policy.penalty": x / 0.1})
        index[x] = np.mean([simulate_once(arm, seed)[rows, p, COL["informal_payment_index"]].mean() for seed in SEEDS])
    assert all(index[a] > index[b] for a, b in zip((0.5, 0.9, 1.0, 1.1), (0.9, 1.0, 1.1, 2.0))), index
    across_one = (index[0.99] - index[1.0]) / 0.01
    around_one = (index[0.9] - index[1.1]) / 0.2
    assert around_one > 0 and across_one < 3 * around_one, (across_one, around_one)
    assert index[2.0] > 0


def test_deterrence_without_spread_is_max_of_zero_and_one_minus_pi_f():
    """sigma_e -> 0: every official faces D = max(0, 1 - pi F) (today's rule); with a spread the mean of D over
    officials is above it where pi F >= 1 (the lognormal's upper tail is watched hard, the lower tail hardly)."""
    pi_f = np.array([0.2, 0.5, 0.9, 1.0, 1.1, 2.0, 5.0])
    flat = EGovModel(with_values(BASE, {"civil_servants.enforcement_spread": 0.0}), 1, collect=False).civil_service
    for x in pi_f:
        d = flat.deterrence(np.full(flat.n_provinces, x))
        assert np.array_equal(d, np.full(flat.n, max(0.0, 1.0 - x)))
    spread = EGovModel(BASE, 1, collect=False).civil_service
    means = [spread.deterrence(np.full(spread.n_provinces, x)).mean() for x in pi_f]
    assert np.all(np.diff(means) < 0) and means[-1] > 0
    assert np.all(np.array(means)[pi_f >= 1] > 0)


# ---- the national portal and VNeID (4.5) ---------------------------------------------------------------------------


@pytest.mark.parametrize("province", ["daklak", "bentre"])
def test_national_portal_raises_use(province):
    assert_moves(paired_differences(without_portal(BASE), BASE, "use_share_12m", province, 2022), +1)


@pytest.mark.parametrize("province", ["daklak", "bentre"])
def test_national_portal_is_a_channel_of_its_own(province):
    """Where the province has digitised nothing, the portal alone carries online use."""
    flat = with_values(BASE, {"services.digitisation_rate": 0.0})
    differences = paired_differences(without_portal(flat), flat, "use_share_12m", province, 2022)
    assert_moves(differences, +1)
    assert_moves(paired_differences(without_portal(flat), flat, "portal_use_share_12m", province, 2022), +1)


def test_vneid_raises_national_portal_use():
    low, high = arms("portal.vneid_effect", 0.0, 0.5)
    assert_moves(paired_differences(low, high, "portal_use_share_12m", "daklak", 2026), +1)
