"""The citizen adoption rule with every behavioural rule neutral is the Bass model (docs/references/validation.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, with_values
from egovsim.config.schema import has_neutral
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL

from .conftest import BASS, ROOT, bass_closed_form


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
    sections = [sc.citizens, sc.access, sc.civil_servants, sc.leaders, sc.services, sc.portal, *sc.provinces.values()]
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


def access_closed_form(t, a0: float, a_max: float, base: float, broadband: float, takeoff: float):
    """E[A(t)] = A0 + (A_max - A0)(1 - exp(-H(t))), H(t) = a_0 t + a_mb (t - T_mb)_+ (t, T_mb in years from
    the start; a take-off before the start acts from the start): reachable citizens without access get it at a
    rate that steps up at the take-off."""
    t = np.asarray(t, dtype=float)
    hazard = base * t + broadband * np.maximum(t - max(takeoff, 0.0), 0.0)
    return a0 + (a_max - a0) * (1 - np.exp(-hazard))


@pytest.mark.parametrize("takeoff", [2007.3, 2031.0, 1995.0], ids=["inside", "after", "before"])
def test_access_closed_form(takeoff):
    """Access with no imitation, no group, income or infrastructure factor and adoption off (docs/design-model-v2.md
    11.5): the mean access share over 20 seeds lies within 4 standard errors of the closed form at every year,
    for a take-off inside the run (mid-month, so the step in the hazard falls inside a step) and outside it."""
    a0, a_max, base, broadband = 0.1, 0.8, 0.05, 0.5
    sc = with_values(
        load_scenario(BASS),
        {
            "steps_per_year": 12,
            "citizens.p0": 0.0,
            "citizens.q0": 0.0,
            "access.initial": a0,
            "access.ceiling": a_max,
            "access.base_rate": base,
            "access.broadband_rate": broadband,
            "access.takeoff_year": takeoff,
        },
    )
    assert sc.provinces["synthetic"].grdp_per_capita is None  # income at the reference: factor 1
    spy, n, seeds = sc.steps_per_year, sc.provinces["synthetic"].population, range(20)
    mean = np.mean([simulate(sc, s)[::spy, 0, COL["access_share"]] for s in seeds], axis=0)
    t = np.arange(mean.size)
    expected = access_closed_form(t, a0, a_max, base, broadband, takeoff - sc.start_year)
    se = np.sqrt(expected * (1 - expected) / (n * len(seeds)))  # citizens are independent: binomial
    assert np.all(np.abs(mean - expected) < 4 * se), np.max(np.abs(mean - expected) / se)
    assert mean[-1] < a_max  # nobody beyond the ceiling


def test_the_takeoff_moves_the_hazard_continuously():
    """The access rate over a step is the exact integral of a_0 + a_mb 1{t >= T_mb} over the step / dt, so summed
    over the run it is H(t) whatever the take-off date, and it moves continuously with T_mb within a step."""
    from egovsim.config.scenario import AccessParams
    from egovsim.model.population import mean_access_rate

    dt, start, steps = 1 / 12, 2010.0, 120
    for takeoff in (2009.0, 2013.0, 2013.04, 2014.987, 2025.0):
        a = AccessParams(base_rate=0.03, broadband_rate=0.7, takeoff_year=takeoff)
        integral = sum(mean_access_rate(a, start + k * dt, dt) * dt for k in range(steps))
        t = steps * dt
        assert integral == pytest.approx(0.03 * t + 0.7 * max(0.0, start + t - max(takeoff, start)), abs=1e-9)
    shifted = [mean_access_rate(AccessParams(takeoff_year=2013.0 + x), 2013.0, dt) for x in np.linspace(0, dt, 11)]
    assert np.all(np.diff(shifted) < 0) and shifted[-1] == AccessParams().base_rate


def test_the_use_plot_of_the_bass_scenario_draws_the_closed_form():
    """plots.bass_curve solves dF/dt = (p + q F)(1 - F), F(0) = 0 (checked by finite differences, independent of
    its formula), and plots recognise the validation scenario, and only it, as the Bass reduction."""
    from egovsim.report.plots import bass_curve, bass_reduction

    p, q = 0.03, 0.38
    t = np.linspace(0.0, 20.0, 20001)
    f = bass_curve(p, q, t)
    assert f[0] == 0.0
    np.testing.assert_allclose(np.gradient(f, t)[1:-1], ((p + q * f) * (1 - f))[1:-1], atol=1e-6)
    assert bass_reduction(load_scenario(BASS))
    assert not bass_reduction(load_scenario(ROOT / "scenarios" / "three_provinces.yaml"))
