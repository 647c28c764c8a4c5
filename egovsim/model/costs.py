"""What the provincial levers cost, and budget-neutral what-ifs (docs/design-model-v2.md 4.8).

    cost_p(t) = c_scale x sum_l c_l x x_l,p(t) x size_l,p     (bn VND/yr)

size is the population in millions (per-capita levers), the rural population in millions (community digital
teams) or 1 (per-province levers); the detection probability is priced per 0.01. Costs depend only on lever
values and sourced structure, never on simulated state: they draw nothing, are the same in every replicate and
can be computed for a scenario without running it. The penalty (a legal change) and the central levers are in
no provincial budget.

A what-if whose province says `budget: {hold: baseline, funded_by: [software, training]}` is resolved against
its baseline (the file it extends) by `hold_spending_equal`: at the start and at every date where either
scenario's levers change, the funded_by levers are scaled by a common factor lambda_p(t) >= 0 so that the
what-if spends what the baseline spends, and the result is written as ordinary dated events.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from egovsim.config.scenario import (
    FUNDABLE,
    REBALANCING,
    BudgetHold,
    CostParams,
    Event,
    EventEffects,
    Policy,
    ProvinceConfig,
    Scenario,
    apply_event,
    apply_override,
    resolve_kinds,
    scenario_from_dict,
)
from egovsim.config.schema import build
from egovsim.config.yamlfile import read_bases
from egovsim.errors import InputError, clipped

# how each lever's value is measured for its cost: per million people, per million rural people, per province
PER_PERSON = ("infrastructure", "agency_it", "training", "detection_prob")
PER_RURAL_PERSON = ("community_digital_teams",)
LEVERS = (*FUNDABLE, "penalty")  # the provincial levers a budget pays for (the penalty costs nothing)
DETECTION_UNIT = 0.01  # the detection probability is priced per 0.01
MATCH = 1e-9  # bn VND/yr: spending paths this close are equal


def lever_size(lever: str, province: ProvinceConfig) -> float:
    """What one unit of the lever's cost c_l is multiplied by besides the lever's value."""
    if lever in PER_PERSON:
        return province.population / 1e6
    if lever in PER_RURAL_PERSON:
        return province.population * (1.0 - province.urban_share) / 1e6
    return 1.0


def unit_costs(policy: Policy, costs: CostParams) -> dict[str, float]:
    """bn VND/yr per unit of each lever and of size (c_scale x c_l, the platform ratio on software)."""
    out = {lever: costs.c_scale * getattr(costs, lever) for lever in FUNDABLE}
    out["detection_prob"] /= DETECTION_UNIT
    if policy.software_strategy == "platform":
        out["software"] *= costs.platform_cost_ratio
    out["penalty"] = 0.0
    return out


def spending(policy: Policy, province: ProvinceConfig, costs: CostParams) -> dict[str, float]:
    """bn VND/yr each provincial lever costs at its current value."""
    unit = unit_costs(policy, costs)
    return {lever: unit[lever] * getattr(policy, lever) * lever_size(lever, province) for lever in LEVERS}


def total_spending(policy: Policy, province: ProvinceConfig, costs: CostParams) -> float:
    """bn VND/yr, every lever (the `spend` outcome)."""
    return float(sum(spending(policy, province, costs).values()))


def software_spending(policy: Policy, province: ProvinceConfig, costs: CostParams) -> float:
    """bn VND/yr spent on software (it_waste prices redundant systems with it)."""
    return spending(policy, province, costs)["software"]


# ---- lever paths --------------------------------------------------------------------------------------------


def policy_path(province: ProvinceConfig, dates: Sequence[float], effects: EventEffects) -> list[Policy]:
    """The province's levers after every event dated at or before each date (events fire in date order, as
    the leaders' timelines fire them, each kind with its shared size; an event before the start has fired
    at the start)."""
    events = sorted(resolve_kinds(province.events, effects), key=lambda e: e.date)
    out, policy, i = [], province.policy, 0
    for date in dates:
        while i < len(events) and events[i].date <= date:
            policy = apply_event(policy, events[i])
            i += 1
        out.append(policy)
    return out


def change_dates(scenario: Scenario, *provinces: ProvinceConfig) -> list[float]:
    """The start and every event date of the provinces within the run, in order."""
    start, end = float(scenario.start_year), float(scenario.end_year + 1)
    dates = {e.date for p in provinces for e in p.events if start < e.date < end}
    return [start, *sorted(dates)]


# ---- budget-neutral what-ifs --------------------------------------------------------------------------------


def hold_spending_equal(
    baseline: Scenario,
    whatif: Scenario,
    funded_by: Sequence[str] | Mapping[str, Sequence[str]],
    source: str = "<what-if>",
) -> Scenario:
    """The what-if with its provinces' spending held equal to the baseline's at every step: the funded_by
    levers (one list for every province, or a list per province) are scaled by a common lambda_p(t) >= 0 at
    the start and at each date where either scenario's levers change, written as dated events that fire after
    the what-if's own events of the same date. InputError (naming `source` and the field) when a lever listed
    in funded_by differs between the two scenarios, or holding spending needs lambda < 0, a lever above its
    range, or levers that cost nothing."""
    if not isinstance(funded_by, Mapping):
        funded_by = {key: list(funded_by) for key in whatif.provinces}
    data = whatif.to_dict()
    for key, levers in funded_by.items():
        field = f"provinces.{key}.budget"
        if key not in whatif.provinces:
            raise InputError(source, field, f"{clipped(key)} is not a province of {whatif.name}")
        if key not in baseline.provinces:
            raise InputError(source, field, f"{clipped(key)} is not a province of the baseline {baseline.name}")
        events = _rebalancing(baseline, whatif, key, list(levers), source, field)
        data["provinces"][key]["events"] += [dataclasses.asdict(e) for e in events]
        data["provinces"][key]["budget"] = "baseline"  # resolved: its spending path is the baseline's
    return scenario_from_dict(data, source)


def _rebalancing(
    baseline: Scenario, whatif: Scenario, key: str, levers: list[str], source: str, field: str
) -> list[Event]:
    base, mine = baseline.provinces[key], whatif.provinces[key]
    dates = change_dates(whatif, base, mine)
    base_path = policy_path(base, dates, baseline.event_effects)
    my_path = policy_path(mine, dates, whatif.event_effects)
    hi = {f.name: f.metadata.get("hi") for f in dataclasses.fields(Policy)}
    events = []
    for date, b, w in zip(dates, base_path, my_path):
        for lever in levers:
            if getattr(b, lever) != getattr(w, lever):
                raise InputError(
                    source,
                    f"{field}.funded_by",
                    f"{lever} is changed by the what-if ({getattr(b, lever):g} in the baseline, "
                    f"{getattr(w, lever):g} here at {date:g}): a lever that funds the change must be unchanged",
                )
        target = total_spending(b, base, baseline.costs)
        parts = spending(w, mine, whatif.costs)
        funded = sum(parts[lever] for lever in levers)
        rest = sum(parts.values()) - funded
        lam = _factor(target, rest, funded, date, source, f"{field}.funded_by")
        for lever in levers:
            value = lam * getattr(w, lever)
            if hi[lever] is not None and value > hi[lever]:
                raise InputError(
                    source,
                    f"{field}.funded_by",
                    f"holding spending at {date:g} needs {lever} = {value:g}, above its range (<= {hi[lever]:g})",
                )
        changes = {lever: lam * getattr(w, lever) for lever in levers}
        events.append(
            Event(
                date=date,
                name=f"{REBALANCING}: {', '.join(levers)} x {lam:.6g}",
                set=changes,
                source=f"spending held equal to {baseline.name} (budget: hold baseline)",
            )
        )
    return events


def _factor(target: float, rest: float, funded: float, date: float, source: str, field: str) -> float:
    """lambda with rest + lambda x funded = target, which must be >= 0."""
    if funded <= 0:
        if abs(target - rest) <= MATCH:
            return 1.0
        raise InputError(
            source, field, f"at {date:g} the levers funding the change cost nothing, so spending cannot be held"
        )
    lam = (target - rest) / funded
    if lam < 0:
        raise InputError(
            source,
            field,
            f"at {date:g} the what-if's other levers cost {rest:.4g} bn VND/yr, more than the baseline's "
            f"{target:.4g}: holding spending would need a factor {lam:.3g} < 0",
        )
    return float(lam)


def resolve_budgets(scenario: Scenario, path: str | Path, overrides: Sequence[str] = (), scale=None) -> Scenario:
    """`scenario` (loaded from `path`) with every `budget: {hold: baseline, ...}` resolved against the
    baseline: the files `path` extends, with the same --set overrides and scale."""
    holds = {k: p.budget.funded_by for k, p in scenario.provinces.items() if isinstance(p.budget, BudgetHold)}
    if not holds:
        return scenario
    path = Path(path)
    data = read_bases(path)
    if not data:
        key = next(iter(holds))
        raise InputError(str(path), f"provinces.{key}.budget.hold", "a file holding its baseline must extend it")
    for item in overrides or []:
        apply_override(data, item, source=str(path))
    if scale is not None:
        for prov in (data.get("provinces") or {}).values():
            if isinstance(prov, dict):
                prov["scale"] = scale
    baseline = build(Scenario, copy.deepcopy(data), f"{path} (its baseline)")
    for key, prov in baseline.provinces.items():
        if isinstance(prov.budget, BudgetHold):
            raise InputError(
                str(path), f"provinces.{key}.budget.hold", "the baseline this file extends holds a budget itself"
            )
    return hold_spending_equal(baseline, scenario, holds, str(path))


def load_with_budgets(path: str | Path, overrides: Sequence[str] | None = None, scale: float | None = None):
    """load_scenario, then budget holds resolved (what `egovsim run` and `egovsim compare` run)."""
    from egovsim.config.scenario import load_scenario

    return resolve_budgets(load_scenario(path, overrides, scale), path, overrides or (), scale)


def unresolved_holds(scenario: Scenario) -> list[str]:
    """Provinces whose budget hold has not been resolved against a baseline (the model refuses to run them)."""
    return [k for k, p in scenario.provinces.items() if isinstance(p.budget, BudgetHold)]


__all__ = [
    "LEVERS",
    "hold_spending_equal",
    "load_with_budgets",
    "resolve_budgets",
    "software_spending",
    "spending",
    "total_spending",
]
