"""The "last 12 months" outcomes count exactly the last year's steps.

records[k] is the state after k steps; its year-window outcomes (use_share_12m and its subgroups and channels,
informal_payment_index, dossiers_online_share, reports_per_capita_12m) cover steps k - steps_per_year .. k - 1:
twelve monthly steps, four quarterly ones, one yearly one. The truth here is observed from outside the model, step
by step: who used online services in a step (their last use is that step, right after it) and how many dealings,
payments, online dossiers and reports a step added to the run's totals, whatever rows the model keeps them in.
"""

from __future__ import annotations

import numpy as np
import pytest

from egovsim.config.scenario import load_scenario, with_values
from egovsim.model.model import EGovModel
from egovsim.model.outcomes import COL

from .conftest import THREE

BUSY = {  # much use, failures, payments and reports, so every window's count moves from step to step
    "citizens.need_rate": 12.0,
    "citizens.lapse_prob": 0.5,
    "citizens.report_prob": 0.3,
    "provinces.*.policy.feedback": 1.0,
    "central.initial.portal_services": 0.5,
    "central.initial.vneid": 1.0,
}


def observed_windows(sc, engine: str):
    """Run `sc` and return (model, expected): expected[k] holds, per province, the year-window outcomes of the
    state after k steps, counted from what was observed in each step."""
    model = EGovModel(sc, 3, collect=False, engine=engine)
    cit = model.citizens
    province = np.repeat(np.arange(cit.n_provinces), cit.province_sizes)
    size = cit.province_sizes.astype(float)
    P, year = cit.n_provinces, sc.steps_per_year
    users, portal, provincial, counts = [], [], [], []
    totals = lambda: np.stack(  # noqa: E731
        [
            cit.needs_per_step.sum(axis=0),
            cit.payments_per_step.sum(axis=0),
            cit.online_per_step.sum(axis=0),
            cit.reports_per_step.sum(axis=0),
        ]
    )
    expected = {}
    for _ in range(model.n_steps):
        step, before = model.step_index, totals()
        model.step()
        users.append(cit.last_online == step)
        portal.append(cit.last_portal == step)
        provincial.append(cit.last_provincial == step)
        counts.append(totals() - before)
        k = model.step_index
        window = slice(max(0, k - year), k)

        def share(used, window=window):
            anyone = np.logical_or.reduce(used[window])
            return np.bincount(province[anyone], minlength=P) / size

        dealt, paid, online, reports = np.sum(counts[window], axis=0)
        expected[k] = {
            "use_share_12m": share(users),
            "portal_use_share_12m": share(portal),
            "provincial_use_share_12m": share(provincial),
            "informal_payment_index": np.where(dealt > 0, paid / np.maximum(dealt, 1), np.nan),
            "dossiers_online_share": np.where(dealt > 0, online / np.maximum(dealt, 1), np.nan),
            "reports_per_capita_12m": reports / size,
        }
    return model, expected


@pytest.mark.parametrize("engine", ["numba", "plain"])
@pytest.mark.parametrize("steps_per_year", [12, 4, 1])
def test_year_window_outcomes_count_exactly_the_last_years_steps(engine, steps_per_year):
    sc = with_values(load_scenario(THREE, scale=0.001), {**BUSY, "steps_per_year": steps_per_year, "end_year": 2016})
    model, expected = observed_windows(sc, engine)
    moved = 0
    for k, columns in expected.items():
        for name, value in columns.items():
            got = model.records[k, :, COL[name]]
            assert np.allclose(got, value, rtol=1e-12, atol=0, equal_nan=True), (name, k, got, value)
        moved += np.any(columns["use_share_12m"] > 0)
    # the windows were not empty: use was seen in many states, dealings with payments and reports too
    assert moved >= max(3, len(expected) // 4)
    assert np.nansum([c["informal_payment_index"] for c in expected.values()]) > 0
    assert np.sum([c["reports_per_capita_12m"] for c in expected.values()]) > 0


@pytest.mark.parametrize(("steps_per_year", "offset"), [(12, 6), (52, 26), (4, 2), (1, 1), (3, 2)])
def test_a_calendar_years_row_is_its_mid_year_state_or_the_next_one_each_year_alike(steps_per_year, offset):
    """The value reported for a year is the state at 1 July (row 12 (y - start) + 6 at monthly steps); where no row
    falls at mid-year it is the next row, the same in every year: at yearly steps the state after the year, so each
    calendar year has its own row (rounding halves to even gave 2006 the start and 2007 and 2008 one row)."""
    from egovsim.config.scenario import row_of_year

    sc = with_values(load_scenario(THREE, scale=0.001), {"steps_per_year": steps_per_year, "end_year": 2012})
    n = sc.n_steps + 1
    rows = [row_of_year(sc, n, year) for year in range(2006, 2013)]
    assert rows == [steps_per_year * (year - 2006) + offset for year in range(2006, 2013)]
    assert row_of_year(sc, n, 2040) == n - 1 and row_of_year(sc, n, 1990) == 0  # clipped to the run
