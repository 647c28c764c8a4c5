"""No lever is inert: every policy lever of a province and every central lever changes some outcome beyond its own
counter (design-model-v2 11.2; issue 15 found mandates, the portal and software spending moving nothing else).

With common random numbers the two arms make the same draws, so a lever that does nothing beyond its counter gives
bit-identical values for every other outcome; any difference there is the lever acting. The table must name every
numeric lever of `Policy` and `CentralState`, so a lever added without a mechanism fails here. The size and sign
of each lever's effect are tested in tests/test_levers*.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from egovsim.config.scenario import CentralState, Policy, load_scenario, with_values
from egovsim.config.schema import has_neutral
from egovsim.model.outcomes import COLUMNS

from .conftest import SCENARIOS, THREE, simulate_once

CALIBRATED = SCENARIOS / "calibrated" / "three_provinces.yaml"

# lever: (low, high, its own counters: the outcomes it sets directly)
PROVINCE_LEVERS = {
    "own_plan": (0.0, 1.0, ()),
    "agency_it": (1.0, 2.0, ("agency_it",)),
    "infrastructure": (1.0, 2.0, ("access_share", "urban_access_share", "rural_access_share")),
    "rural_targeting": (1.0, 2.0, ("access_share", "urban_access_share", "rural_access_share")),
    "training": (1.0, 2.0, ("civil_servant_skill", "literacy_mean")),
    "community_digital_teams": (0.0, 1.0, ("literacy_mean",)),
    "software": (0.5, 1.0, ("n_systems", "it_waste")),
    "detection_prob": (0.05, 0.2, ("informal_payment_index",)),
    "penalty": (2.0, 8.0, ("informal_payment_index",)),
    "feedback": (0.0, 0.9, ("trust_mean", "reports_per_capita_12m")),
    "mandate": (0.0, 1.0, ("civil_servant_ceremonial_share",)),
    "monitoring": (0.5, 0.9, ()),
}
CENTRAL_LEVERS = {
    "roadmap_clarity": (0.1, 0.5, ("roadmap_clarity",)),
    "portal_services": (0.0, 0.3, ("services_online_share", "portal_use_share_12m")),
    "mandate": (0.0, 0.5, ("civil_servant_ceremonial_share",)),
    "vneid": (0.0, 1.0, ("portal_use_share_12m",)),
}
BOOKKEEPING = ("spend", "spend_cumulative")  # a lever's cost moves these whatever it does
# outcomes computed from others: they move with a lever's own counter by arithmetic, not by behaviour
COMPUTED = ("supply_index", "reliability", "usability")
ACCESS_GROUPS = ("minority_access_share", "majority_access_share", "ethnic_gap")


def numeric_levers(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.type in ("float", float)}


def test_every_numeric_lever_is_in_the_table():
    assert numeric_levers(Policy) == set(PROVINCE_LEVERS)
    assert numeric_levers(CentralState) == set(CENTRAL_LEVERS)


@pytest.fixture(scope="module")
def base():
    return with_values(load_scenario(THREE, scale=0.003), {"end_year": 2024})


def moved_beyond(low, high, province: int, own: tuple[str, ...], seeds=(0, 1)) -> list[str]:
    """Outcomes other than the lever's own counters (and costs) that differ between the arms, over `seeds`."""
    skip = set(own) | set(BOOKKEEPING) | set(COMPUTED)
    if any("access" in name for name in own):
        skip |= set(ACCESS_GROUPS)  # access by group is the same counter
    moved = set()
    for seed in seeds:
        a, b = simulate_once(low, seed)[:, province], simulate_once(high, seed)[:, province]
        differ = ~np.isclose(a, b, rtol=0, atol=1e-12, equal_nan=True).all(axis=0)
        moved |= {COLUMNS[c] for c in np.flatnonzero(differ)}
    return sorted(moved - skip)


LEVER_KEYS = {
    **{f"provinces.daklak.policy.{lever}": arms for lever, arms in PROVINCE_LEVERS.items()},
    **{f"central.initial.{lever}": arms for lever, arms in CENTRAL_LEVERS.items()},
}


@pytest.mark.parametrize("key", sorted(LEVER_KEYS))
def test_lever_moves_an_outcome_beyond_its_counter(base, key):
    """Measured in Daklak (province 1): its own levers, and the central ones that reach every province."""
    low, high, own = LEVER_KEYS[key]
    moved = moved_beyond(with_values(base, {key: low}), with_values(base, {key: high}), 1, own)
    assert moved, f"{key} moves nothing beyond {own}"


SECTIONS = ("network", "citizens", "access", "civil_servants", "leaders", "services", "portal")


def switchable_rules(scenario) -> list[tuple[str, object, object]]:
    """(key, neutral, default) of every behavioural parameter whose default switches its rule on."""
    rules = []
    for section in SECTIONS:
        for f in dataclasses.fields(getattr(scenario, section)):
            if has_neutral(f) and f.metadata["neutral"] != f.default:
                rules.append((f"{section}.{f.name}", f.metadata["neutral"], f.default))
    return rules


def test_every_switchable_rule_acts(base):
    """A rule switched from its neutral value to its default changes some outcome (beyond costs) in the default
    scenario by 2024: no behavioural number in the model is inert."""
    inert = []
    for key, neutral, default in switchable_rules(base):
        off, on = with_values(base, {key: neutral}), with_values(base, {key: default})
        if not any(moved_beyond(off, on, p, (), seeds=(0,)) for p in range(len(base.provinces))):
            inert.append(key)
    assert len(switchable_rules(base)) > 30 and not inert, inert


def nudged(f: dataclasses.Field, value):
    """A nearby valid value: a fifth of the way toward the lower bound (or down 20%), one less for counts."""
    lo = f.metadata.get("lo")
    if isinstance(value, int):
        return value - 1 if lo is None or value - 1 >= lo else value + 1
    return value - 0.2 * (value - lo) if lo is not None and value != lo else value * 0.8 + (0.1 if value == 0 else 0)


def test_every_behavioural_number_acts():
    """Every other numeric behavioural parameter (no neutral value, or already at it) changes some outcome by
    2025 when nudged, on the calibrated model: a number an analyst could vary in a sensitivity study is never
    inert. (Supply-index weights must sum to 1 and are tested with the measure; costs move only spending.)"""
    scenario = with_values(load_scenario(CALIBRATED, scale=0.003), {"end_year": 2025})
    inert, checked = [], 0
    for section in (*SECTIONS, "event_effects"):
        for f in dataclasses.fields(getattr(scenario, section)):
            value = getattr(getattr(scenario, section), f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if has_neutral(f) and f.metadata["neutral"] != value:
                continue  # test_every_switchable_rule_acts
            key = f"{section}.{f.name}"
            other = with_values(scenario, {key: nudged(f, value)})
            checked += 1
            if not any(moved_beyond(scenario, other, p, (), seeds=(0,)) for p in range(len(scenario.provinces))):
                inert.append(key)
    assert checked > 30 and not inert, inert
