"""The citizen adoption rule with every behavioural rule neutral is the Bass model (docs/references/validation.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, with_values
from egovsim.config.schema import has_neutral
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL

from .conftest import BASS, bass_closed_form


def adopted_by_year(scenario, seeds) -> np.ndarray:
    """Adopted share at whole years since the start, one row per seed."""
    spy = scenario.steps_per_year
    runs = np.array([simulate(scenario, s)[::spy, 0, COL["adopted_share"]] for s in seeds])
    return runs


def test_closed_form_matches_published_table():
    # Sultan, Farley & Lehmann (1990) means, tabulated in docs/references/validation.md
    p, q = 0.03, 0.38
    table = {1: 0.0358, 2: 0.0851, 5: 0.3312, 10: 0.8128, 20: 0.9963}
    for t, value in table.items():
        assert bass_closed_form(t, p, q) == pytest.approx(value, abs=5e-5)
    t_star = np.log(q / p) / (p + q)
    assert t_star == pytest.approx(6.1926, abs=1e-4)
    assert bass_closed_form(t_star, p, q) == pytest.approx(0.4605, abs=1e-4)


def test_validation_scenario_sets_every_rule_neutral():
    """Each behavioural parameter with a neutral value is set to it in bass.yaml, so a rule added later
    cannot silently break the Bass reduction."""
    sc = load_scenario(BASS)
    assert sc.network.kind == "well_mixed"
    assert not sc.central.enabled
    sections = [sc.citizens, sc.access, sc.civil_servants, sc.leaders, sc.services, *sc.provinces.values()]
    for section in sections:
        for f in dataclasses.fields(section):
            if has_neutral(f):
                assert getattr(section, f.name) == f.metadata["neutral"], f"{type(section).__name__}.{f.name}"


def test_bass_mean_of_20_seeds_within_001_of_closed_form():
    sc = load_scenario(BASS)
    p, q = sc.citizens.p0, sc.citizens.q0
    assert (p, q) == (0.03, 0.38) and sc.provinces["synthetic"].population == 10_000
    mean = adopted_by_year(sc, range(20)).mean(axis=0)
    years = np.arange(mean.size)
    deviation = np.abs(mean - bass_closed_form(years, p, q))
    assert years[-1] == 20
    assert deviation.max() < 0.01, f"largest deviation {deviation.max():.4f} at t={years[deviation.argmax()]}"


@pytest.mark.parametrize("p, q", [(0.01, 0.5), (0.05, 0.2)])
def test_bass_other_rates(p, q):
    sc = with_values(load_scenario(BASS), {"citizens.p0": p, "citizens.q0": q})
    mean = adopted_by_year(sc, range(10)).mean(axis=0)
    years = np.arange(mean.size)
    assert np.abs(mean - bass_closed_form(years, p, q)).max() < 0.01


def test_monthly_steps_follow_the_synchronous_map():
    """With monthly steps the agents follow F' = F + (1 - F)(1 - exp(-(p + qF) dt)), not the closed form
    (the time-step trap of docs/references/validation.md); the mean over seeds tracks that map."""
    sc = with_values(load_scenario(BASS), {"steps_per_year": 12})
    p, q, dt = sc.citizens.p0, sc.citizens.q0, sc.dt
    f, expected = 0.0, [0.0]
    for _ in range(sc.n_steps):
        f = f + (1 - f) * (1 - np.exp(-(p + q * f) * dt))
        expected.append(f)
    runs = np.array([simulate(sc, s)[:, 0, COL["adopted_share"]] for s in range(20)])
    # Bass amplifies early chance into timing, so runs spread by ~0.02 mid-curve: allow 4 standard errors
    standard_error = runs.std(axis=0, ddof=1) / np.sqrt(runs.shape[0])
    assert np.all(np.abs(runs.mean(axis=0) - np.array(expected)) <= 4 * standard_error + 0.002)
    gap_to_closed = np.abs(np.array(expected)[::12] - bass_closed_form(np.arange(21), p, q)).max()
    assert gap_to_closed > 0.008  # the trap is real at these rates: the map lags the ODE


def test_no_imitation_gives_exponential_adoption():
    """q0 = 0: each citizen adopts at constant hazard p0, so E[F(t)] = 1 - exp(-p0 t) exactly, for any dt."""
    p = 0.1
    sc = with_values(load_scenario(BASS), {"citizens.q0": 0.0, "citizens.p0": p, "steps_per_year": 12})
    runs = adopted_by_year(sc, range(8))
    n = sc.provinces["synthetic"].population
    expected = 1 - np.exp(-p * np.arange(runs.shape[1]))
    se = np.sqrt(expected * (1 - expected) / (n * runs.shape[0]))
    assert np.all(np.abs(runs.mean(axis=0) - expected) <= 4 * se + 1e-12)


def test_sparse_network_stays_at_or_below_bass():
    """On a sparser network expected adoption stays at or below the Bass curve (Fibich & Gibori 2010)."""
    sc = with_values(
        load_scenario(BASS), {"network.kind": "blocks", "network.mean_degree": 6, "network.homophily": 1.0}
    )
    p, q = sc.citizens.p0, sc.citizens.q0
    mean = adopted_by_year(sc, range(5)).mean(axis=0)
    bass = bass_closed_form(np.arange(mean.size), p, q)
    assert np.all(mean <= bass + 0.01)
    assert mean[10] < bass[10] - 0.02  # clustering slows the take-off visibly
