"""The provinces' ordering on the calibrated model, whose behavioural priors are shared (docs/design-model-v2.md
11.3): the published ranks (MIC 2017: Hue 1, Daklak 48, Ben Tre 57; DTI 2022: 4, 47, 51) must come out of the
calibrated model, and Hue's lead must come out of its sourced inputs and dated events, not only from the fitted
will effects. With the priors shared, a failure here is a finding about the model, not a number to adjust."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from egovsim.analysis.calibration.config import DERIVED
from egovsim.config.analysis import national_mean
from egovsim.config.scenario import LeaderInit, ProvinceConfig, load_scenario, with_values
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL

from .conftest import SCENARIOS, at_year

CALIBRATED = SCENARIOS / "calibrated" / "three_provinces.yaml"
SEEDS = range(10)
SCALE = 0.003  # the calibration's scale (shares, not counts, are compared)


def runs(scenario) -> np.ndarray:
    return np.stack([simulate(scenario, seed) for seed in SEEDS])


@pytest.fixture(scope="module")
def calibrated():
    scenario = with_values(load_scenario(CALIBRATED, scale=SCALE), {"end_year": 2022})
    return scenario, runs(scenario)


@pytest.fixture(scope="module")
def pooled():
    """The calibrated model with every province's will effect at 0: shared parameters, sourced structure and
    dated local events only."""
    scenario = load_scenario(CALIBRATED, scale=SCALE)
    values = {f"provinces.{key}.leader.will_effect": 0.0 for key in scenario.provinces}
    scenario = with_values(scenario, {**values, "end_year": 2022})
    return scenario, runs(scenario)


def test_provinces_differ_only_by_structure_events_and_the_fitted_will():
    """Every province section of the calibrated file holds structure, levers, events and sources; its only
    fitted value is the will effect (the schema has no other province behavioural field)."""
    structural = {"name", "population", "urban_share", "minority_share", "grdp_per_capita", "scale"}
    fields = {f.name for f in dataclasses.fields(ProvinceConfig)}
    assert fields - structural == {"civil_servants", "leader", "policy", "events", "sources", "budget"}
    # besides the fitted will effect, a leader has only its outside peers: the other provinces' path in the
    # calibrated whole, which calibrate writes into a province's own file (tests/test_scenario.py checks they are
    # nowhere else), not a value of the province's own
    assert {f.name for f in dataclasses.fields(LeaderInit)} == {"will_effect", "outside_peers"}


@pytest.mark.parametrize("year", [2017, 2022])
def test_calibrated_supply_index_puts_hue_first(calibrated, year):
    scenario, records = calibrated
    p = {key: i for i, key in enumerate(scenario.provinces)}
    index = at_year(records, scenario, year)[:, :, COL["supply_index"]]  # (seeds, provinces)
    assert np.all(index[:, p["hue"]] > index[:, [p["daklak"], p["bentre"]]].max(axis=1))  # Hue first in every seed


# The posterior (each observation once, errors doubled, chain ESS 74) gives the Daklak-above-Ben-Tre ordering of
# DTI 2022 a predictive chance of only 0.23 (calibration/posterior/predictive.csv), and at the posterior medians the
# calibrated point puts Ben Tre above Daklak. Kept as strict xfails: they fail loudly once the model meets them.
DAKLAK_ABOVE_BENTRE = pytest.mark.xfail(
    strict=True, reason="the posterior-median point puts Ben Tre above Daklak (docs/calibration.md, predictive)"
)


@DAKLAK_ABOVE_BENTRE
@pytest.mark.parametrize("year", [2017, 2022])
def test_calibrated_supply_index_puts_daklak_above_bentre(calibrated, year):
    scenario, records = calibrated
    p = {key: i for i, key in enumerate(scenario.provinces)}
    mean = at_year(records, scenario, year)[:, :, COL["supply_index"]].mean(axis=0)
    assert mean[p["daklak"]] > mean[p["bentre"]], mean


@DAKLAK_ABOVE_BENTRE
def test_calibrated_dti_proxy_orders_the_provinces_in_2022(calibrated):
    scenario, records = calibrated
    p = {key: i for i, key in enumerate(scenario.provinces)}
    proxy = DERIVED["dti_proxy"](at_year(records, scenario, 2022)).mean(axis=0)
    assert proxy[p["hue"]] > proxy[p["daklak"]] > proxy[p["bentre"]], proxy


@pytest.mark.parametrize("year", [2017, 2022])
def test_hue_leads_without_its_fitted_will(pooled, year):
    """With every will effect at 0, Hue is still first: its lead comes from its 2006 plan and local software,
    HueIOC and Hue-S (sourced, dated events), not from a fitted province value. (The order of Daklak and Ben Tre
    in this setting is reported in docs/calibration.md, not asserted.)"""
    scenario, records = pooled
    p = {key: i for i, key in enumerate(scenario.provinces)}
    mean = at_year(records, scenario, year)[:, :, COL["supply_index"]].mean(axis=0)
    assert mean[p["hue"]] > max(mean[p["daklak"]], mean[p["bentre"]]), mean


@pytest.mark.xfail(
    strict=True,
    reason="a weight-0 check since issue 17 (noise at the calibration's scale); at the posterior medians Ben Tre's "
    "relative gap is not above Hue's; predictive chance 0.32 (calibration/posterior/predictive.csv)",
)
def test_calibrated_bentre_urban_rural_divide_exceeds_hue(calibrated):
    """Ben Tre's provincial centre progressed while its rural areas were almost untouched (field trip): the
    relative gap 1 - rural/urban adopted share in 2022 is larger in Ben Tre than in Hue."""
    scenario, records = calibrated
    p = {key: i for i, key in enumerate(scenario.provinces)}
    row = at_year(records.mean(axis=0), scenario, 2022)

    def relative_gap(i):
        return 1 - row[i, COL["rural_adopted_share"]] / row[i, COL["urban_adopted_share"]]

    assert relative_gap(p["bentre"]) > relative_gap(p["hue"])


def test_built_but_unused_on_the_calibrated_model():
    """Pattern 5 (a): in 2024 far fewer dealings are done online than procedures could be: dossiers handled
    online / procedures fully online < 0.5 nationally (observed 0.17 submitted online against 0.48 fully online
    capable: observations.yaml citizen_targets.online_submission_2024; the submissions are a hold-out, not fitted)."""
    scenario = with_values(load_scenario(CALIBRATED, scale=SCALE), {"end_year": 2024})
    records = np.stack([simulate(scenario, seed) for seed in range(4)])
    row = at_year(records.mean(axis=0), scenario, 2024)
    dossiers = national_mean(row[:, COL["dossiers_online_share"]], scenario, axis=0)
    capable = national_mean(row[:, COL["services_online_share"]], scenario, axis=0)
    assert capable > 0.2 and dossiers / capable < 0.5, (dossiers, capable)


def test_the_structure_only_stack_keeps_structure_and_national_events_only():
    """calibration/stacks.py's first stack: what distinguishes the provinces is their sourced structure alone."""
    from egovsim.analysis.calibration.stacks import structure_only
    from egovsim.config.scenario import Policy

    full = load_scenario(CALIBRATED)
    bare = structure_only(full)
    assert bare.central == full.central
    for key, province in bare.provinces.items():
        assert province.events == [] and province.policy == Policy()
        original = full.provinces[key]
        for field in ("population", "urban_share", "minority_share", "grdp_per_capita", "leader"):
            assert getattr(province, field) == getattr(original, field)
