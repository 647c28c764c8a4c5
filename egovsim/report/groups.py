"""How many simulated people an outcome of a subgroup rests on, and a warning where they are too few to quote.

A share of a group of m simulated people moves in steps of 1/m and has a binomial standard error up to
0.5 / sqrt(m): with Ben Tre's ethnic minority at scale 0.003 (about 19 simulated people) one person is five
percentage points. The warning names the group, its size and the scale that would give it MIN_GROUP people.
"""

from __future__ import annotations

import math

from egovsim.config.scenario import Scenario

MIN_GROUP = 200  # simulated people below which a group's share is flagged: its standard error can exceed 3.5 points

# the subgroup (or the smaller of two, for a gap) each subgroup outcome is a share of
SUBGROUP_OF = {
    "urban": ("urban",),
    "rural": ("rural",),
    "minority": ("minority",),
    "majority": ("majority",),
    "urban_rural_gap": ("urban", "rural"),
    "ethnic_gap": ("minority", "majority"),
}


def subgroups_of(outcome: str) -> tuple[str, ...]:
    """The subgroups an outcome column rests on: ('minority',) for minority_adopted_share, both for a gap."""
    if outcome in SUBGROUP_OF:
        return SUBGROUP_OF[outcome]
    prefix = outcome.split("_", 1)[0]
    return SUBGROUP_OF[prefix] if prefix in SUBGROUP_OF and prefix != outcome else ()


def simulated_group_sizes(scenario: Scenario) -> dict[str, dict[str, int]]:
    """Simulated people per province in each subgroup, as the model lays them out (population.block_sizes)."""
    from egovsim.model.population import block_sizes

    sizes = {}
    for key, prov in scenario.provinces.items():
        n = max(1, round(prov.population * prov.scale))
        rural_majority, rural_minority, urban_majority, urban_minority = (
            int(x) for x in block_sizes(n, prov.urban_share, prov.minority_share)
        )
        sizes[key] = {
            "urban": urban_majority + urban_minority,
            "rural": rural_majority + rural_minority,
            "minority": rural_minority + urban_minority,
            "majority": rural_majority + urban_majority,
        }
    return sizes


def small_group_warnings(scenario: Scenario, outcomes: list[str], minimum: int = MIN_GROUP) -> list[str]:
    """One line per (province, subgroup) that an outcome in `outcomes` rests on with fewer than `minimum`
    simulated people (none at all: the outcome is nan, also said)."""
    sizes = simulated_group_sizes(scenario)
    lines = []
    for key, prov in scenario.provinces.items():
        for group in dict.fromkeys(g for o in outcomes for g in subgroups_of(o)):
            m = sizes[key][group]
            if m >= minimum:
                continue
            uses = ", ".join(o for o in dict.fromkeys(outcomes) if group in subgroups_of(o))
            if m == 0:
                lines.append(f"{key}: no simulated {group} people at scale {prov.scale:g}: {uses} are nan there")
                continue
            share = m / max(1, round(prov.population * prov.scale))
            needed = minimum / (prov.population * share) if share > 0 else math.inf
            lines.append(
                f"{key}: {uses} rest on {m} simulated {group} people (fewer than {minimum}; one person is "
                f"{100 / m:.1f} points); a scale of at least {round_up(needed)} gives {minimum}"
            )
    return lines


def round_up(x: float, digits: int = 2) -> str:
    """x to `digits` significant digits, rounded up: a scale said to suffice must (0.03125 -> 0.032, not 0.031)."""
    if not math.isfinite(x) or x <= 0:
        return format(x, "g")
    step = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    up = math.ceil(x / step - 1e-9) * step
    return format(up, f".{digits}g")
