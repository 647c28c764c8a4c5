"""Jurisdictions: which governing unit each province belongs to, and what a dated merger changes.

The provinces of a scenario are the territories the model simulates (their citizens, civil servants, leader
and systems). A merger (config `mergers`, docs/ODD.md 7.10) joins some of them into a new unit from its date on:

- citizens and civil servants stay where they are, with their whole state and history;
- one leader governs the unit (`leader`): the former provinces take its political will, which from then on
  moves with the unit's aggregates (its supply index, trust, press and informal income at risk, weighted by
  citizens or staff) and emulates the best *other* unit;
- one policy set applies (`policy`): the former provinces take that province's levers, and its later dated
  events apply to the whole unit; the others' own later events lapse;
- the systems are kept (officials of the unit then work across them: services.fragmentation_penalty per extra
  system) or consolidated on one province's system (`platform`): the others take its digitised procedures, its
  capacity and its software strategy, with a migration (merger.*: a usability dip fading over migration_years
  and a one-off cost) where their software strategy differed.

`district_tier_removed` (a national date) shortens the training cascade: training reaches commune staff and rural
citizens through one tier instead of two. With the tiers losing alike, (1 - l)^2 = 1 - cascade_loss, so the share
retained becomes sqrt(1 - cascade_loss): no new number.

Outcomes (`unit_records`): the former provinces keep their rows throughout; each new unit gets rows for the
whole run, its members' aggregate (before its date: the same territory, not yet governing).
"""

from __future__ import annotations

import math

import numpy as np

from egovsim.config.outcomes import COL, COLUMNS
from egovsim.config.scenario import KEEP, Merger, Scenario
from egovsim.model.population import block_sizes


class Jurisdictions:
    """Who governs each province now: the province whose leader sets its will (`head`), whose levers apply
    (`policy_from`) and whose system it uses (`platform_of`); all themselves until a merger."""

    def __init__(self, scenario: Scenario):
        self.keys = list(scenario.provinces)
        n = len(self.keys)
        self.head = list(range(n))
        self.policy_from = list(range(n))
        self.platform_of = list(range(n))
        self.pending = sorted(scenario.mergers, key=lambda m: m.date)
        self.merged = False  # any merger has taken effect
        self.tier_date = scenario.district_tier_removed
        self.tier_removed = False

    def due(self, until: float) -> list[Merger]:
        """Mergers not yet applied dated before `until` (the end of the coming step)."""
        due = [m for m in self.pending if m.date < until]
        self.pending = self.pending[len(due) :]
        return due

    @property
    def next_date(self) -> float:
        """The date of the next merger or of the district tier's end still to come (infinity if none)."""
        dates = [m.date for m in self.pending]
        if self.tier_date is not None and not self.tier_removed:
            dates.append(self.tier_date)
        return min(dates, default=float("inf"))

    def tier_due(self, until: float) -> bool:
        """True once, in the step where the district tier ends."""
        if self.tier_removed or self.tier_date is None or self.tier_date >= until:
            return False
        self.tier_removed = True
        return True

    def apply(self, merger: Merger) -> tuple[list[int], int | None]:
        """Record who governs the merged provinces; returns the members and the platform (None: systems kept)."""
        index = {key: i for i, key in enumerate(self.keys)}
        members = [index[key] for key in merger.members]
        for p in members:
            if merger.leader != KEEP:
                self.head[p] = index[merger.leader]
            if merger.policy != KEEP:
                self.policy_from[p] = index[merger.policy]
        platform = None
        if merger.systems == "consolidate":
            platform = index[merger.platform_province]
            for p in members:
                self.platform_of[p] = platform
        self.merged = True
        return members, platform

    def unit_inputs(self, values: list[float], weights: np.ndarray) -> list[float]:
        """Each province's value replaced by its governing unit's weighted mean (a province governed alone keeps
        its own value exactly)."""
        out = list(values)
        for h in set(self.head):
            group = [p for p, q in enumerate(self.head) if q == h]
            if len(group) > 1:
                w = weights[group]
                # summed in order, not by np.dot: BLAS picks its kernel, and so its order of summation, by CPU
                total = 0.0
                for weight, p in zip(w.tolist(), group):
                    total += weight * values[p]
                mean = total / float(w.sum())
                for p in group:
                    out[p] = mean
        return out

    def best_peer(self, p: int, index: list[float]) -> float:
        """The highest supply index among the units governed by another leader (own index if none)."""
        return max((v for q, v in enumerate(index) if self.head[q] != self.head[p]), default=index[p])


def retained_after_tier_removal(cascade_loss: float) -> float:
    """Share of training reaching communes through one tier, when two lose 1 - cascade_loss together."""
    return math.sqrt(1.0 - cascade_loss)


# ---- outcomes of the units (the former provinces are the model's provinces) -------------------------------

# how a unit's value is made from its former provinces' values: a mean weighted by the people each share is of
# (all citizens unless named here, a subgroup, or the civil servants), or a sum (counts and money)
_SUMS = ("citizens", "it_waste", "spend", "spend_cumulative")
_SUBGROUP_OF = {
    **{c: "urban" for c in ("urban_adopted_share", "urban_use_share_12m", "urban_access_share")},
    **{c: "rural" for c in ("rural_adopted_share", "rural_use_share_12m", "rural_access_share")},
    **{c: "minority" for c in ("minority_adopted_share", "minority_access_share", "minority_use_share_12m")},
    **{c: "majority" for c in ("majority_adopted_share", "majority_access_share", "majority_use_share_12m")},
    **{c: "servants" for c in COLUMNS if c.startswith("civil_servant_")},
}
_GAPS = {
    "urban_rural_gap": ("urban_adopted_share", "rural_adopted_share"),
    "ethnic_gap": ("majority_adopted_share", "minority_adopted_share"),
}


def _weights(scenario: Scenario) -> dict[str, np.ndarray]:
    """Simulated people of each province in each group the outcome shares are of."""
    sizes = np.array(
        [
            block_sizes(max(1, round(p.population * p.scale)), p.urban_share, p.minority_share)
            for p in scenario.provinces.values()
        ],
        dtype=float,
    )  # (P, 4): rural majority, rural minority, urban majority, urban minority
    return {
        "all": sizes.sum(axis=1),
        "rural": sizes[:, 0] + sizes[:, 1],
        "urban": sizes[:, 2] + sizes[:, 3],
        "minority": sizes[:, 1] + sizes[:, 3],
        "majority": sizes[:, 0] + sizes[:, 2],
        "servants": np.array([p.civil_servants for p in scenario.provinces.values()], dtype=float),
    }


def unit_records(scenario: Scenario, records: np.ndarray) -> np.ndarray:
    """Records (steps, units, columns) of the units the mergers form, in the order of `scenario.mergers`: each
    its members' aggregate at every step (docs/reorganisation.md says how each column is combined)."""
    keys = list(scenario.provinces)
    weights = _weights(scenario)
    out = np.full((records.shape[0], len(scenario.mergers), records.shape[2]), np.nan)
    for u, merger in enumerate(scenario.mergers):
        rows = [keys.index(k) for k in merger.members]
        part = records[:, rows, :]
        for name in COLUMNS:
            c = COL[name]
            if name in _SUMS:
                out[:, u, c] = part[:, :, c].sum(axis=1)
            elif name not in _GAPS:
                w = weights[_SUBGROUP_OF.get(name, "all")][rows]
                values = part[:, :, c]
                w = np.where(np.isnan(values), 0.0, w)  # a subgroup nobody belongs to has no share
                total = w.sum(axis=1)
                out[:, u, c] = np.divide(
                    np.nansum(values * w, axis=1), total, out=np.full(total.shape, np.nan), where=total > 0
                )
        for name, (a, b) in _GAPS.items():
            out[:, u, COL[name]] = out[:, u, COL[a]] - out[:, u, COL[b]]
    return out


def unit_levels(scenario: Scenario, year: float) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """(level, part_of) of each province and of each unit at decimal `year`: a province is `province` until
    merged, then `former_province`, part of its unit; a unit is `future_province` before its date (its territory,
    not yet governing), then `province`."""
    provinces = {key: ("province", key) for key in scenario.provinces}
    units = {}
    for m in scenario.mergers:
        if year >= m.date:
            units[m.into] = ("province", m.into)
            for key in m.members:
                provinces[key] = ("former_province", m.into)
        else:
            units[m.into] = ("future_province", m.into)
    return provinces, units
