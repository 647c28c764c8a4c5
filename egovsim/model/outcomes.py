"""Outcomes per province per step: the columns of timeseries.csv, and the supply index formula."""

from __future__ import annotations

import numpy as np

from egovsim.config.outcomes import COL, COLUMNS, OUTCOMES, UNBOUNDED, outcome_range  # noqa: F401  (re-exported)


def supply_index(
    weights,
    agency_it: np.ndarray,
    genuine: np.ndarray,
    ceremonial: np.ndarray,
    usability: np.ndarray,
    published: np.ndarray,
    province_online: np.ndarray,
) -> np.ndarray:
    """Supply index S in [0, 1]: a weighted mean of four pillars built like the government pillars of the MIC
    index (agencies' IT infrastructure K; internal IT use as agencies report it, genuine + omega x ceremonial;
    the provincial portal, usability x published share; online public services, the province's fully online
    share)."""
    return (
        weights.infrastructure * agency_it
        + weights.internal_use * (genuine + weights.ceremonial_weight * ceremonial)
        + weights.portal * usability * published
        + weights.online_services * province_online
    )


def share(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """count / total, nan where total is 0."""
    out = np.full(np.broadcast(count, total).shape, np.nan)
    return np.divide(count, total, out=out, where=total > 0)


# the subgroups whose shares outcomes report: all citizens, then by area and by ethnicity
SUBGROUPS = ("all", "urban", "rural", "minority", "majority")

# where each share of the fast path's measure (kernels.py) goes: (column, count (0 adopted, 1 access, 2 used in the
# last 12 months, 3 on the national portal, 4 on the province's portal), subgroup)
_SHARE_CELLS = sorted(
    [
        (COL["adopted_share"], 0, 0),
        (COL["access_share"], 1, 0),
        (COL["use_share_12m"], 2, 0),
        *((COL[f"{name}_adopted_share"], 0, g) for g, name in enumerate(SUBGROUPS) if g),
        *((COL[f"{name}_access_share"], 1, g) for g, name in enumerate(SUBGROUPS) if g),
        (COL["urban_use_share_12m"], 2, 1),
        (COL["rural_use_share_12m"], 2, 2),
        (COL["minority_use_share_12m"], 2, 3),
        (COL["majority_use_share_12m"], 2, 4),
        (COL["portal_use_share_12m"], 3, 0),
        (COL["provincial_use_share_12m"], 4, 0),
    ]
)
SHARE_COLS = np.array([col for col, _, _ in _SHARE_CELLS])
SHARE_FROM = np.array([m * len(SUBGROUPS) + g for _, m, g in _SHARE_CELLS])  # into (measure, subgroup) flat
# the leaders' values measure() records as they are (population.measure passes them in this order)
LEADER_VALUES = (
    "roadmap_clarity",
    "usability",
    "leader_will",
    "n_systems",
    "it_waste",
    "province_online_share",
    "published_share",
    "agency_it",
)
LEADER_COLS = np.array([COL[name] for name in LEADER_VALUES])
SPEND_COLS = np.array([COL["spend"], COL["spend_cumulative"]])  # filled from the levers (EGovModel.spending_columns)
