"""What scenario discovery (discover.py) and policy search (optimize.py) share: a mix of one province's levers
set from a date, what it costs a year, and the calibrated parameters of each draw.

- A mix is a dated event on the province (`lever_values`): the levers keep the base scenario's values, and
  its history, until `levers_from`, then take the mix's values. It reaches a run as parameter values
  (`provinces.<p>.events`), so the runner stores, resumes and runs it like any design point.
- Its cost is the province's yearly spending on its levers once the mix is in force (model/costs.py, at the
  scenario's `costs.*`): computed from the levers, without a run.
- Draw i of every candidate uses posterior draw i (if the file names a posterior) and replicate seed i:
  common random numbers, so differences between candidates are paired.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from egovsim.analysis.calibration.posterior import posterior_draws, restricted
from egovsim.config.analysis import DERIVED, LeverHead, evaluate
from egovsim.config.scenario import Event, Scenario, apply_values
from egovsim.errors import InputError
from egovsim.model.costs import policy_path, total_spending
from egovsim.runner.runner import replicate_seeds

MIX_EVENT = "Lever mix"  # the name of the event a mix adds


def lever_date(head: LeverHead, base: Scenario) -> float:
    return float(head.levers_from if head.levers_from is not None else base.start_year)


def lever_values(head: LeverHead, base: Scenario, mix: Mapping[str, float]) -> dict:
    """Parameter values that set the mix's levers in the file's province from `levers_from` (the start if
    not given), after the province's own events; no values for an empty mix (the status quo)."""
    if not mix:
        return {}
    province = base.provinces[head.province]
    event = Event(
        date=lever_date(head, base),
        name=MIX_EVENT,
        set={k: float(v) for k, v in mix.items()},
        source="egovsim discover/optimize: the candidate's levers",
    )
    events = [dataclasses.asdict(e) for e in province.events] + [dataclasses.asdict(event)]
    return {f"provinces.{head.province}.events": events}


def mix_cost(head: LeverHead, base: Scenario, mix: Mapping[str, float]) -> float:
    """bn VND/yr: the province's spending on its levers at `levers_from`, with the mix in force (the base
    scenario's levers for an empty mix)."""
    scenario = apply_values(base, lever_values(head, base, mix))
    province = scenario.provinces[head.province]
    policy = policy_path(province, [lever_date(head, base)], scenario.event_effects)[0]
    return total_spending(policy, province, scenario.costs)


def draws(head: LeverHead, path: str | Path, base: Scenario, n: int) -> tuple[list[dict], list[int]]:
    """n (parameter values, seed) pairs: posterior draw i (restricted to the scenario's provinces; none
    without a posterior) and replicate seed i, both from the master seed. Every draw must fit the scenario."""
    seeds = replicate_seeds(head.seed, n)
    folder = head.posterior_folder(path)
    if folder is None:
        return [{} for _ in range(n)], seeds
    # the provinces the scenario has, and none of the values the file's `set:` gives (as sweep and compare keep them)
    values = [restricted(d, base) for d in posterior_draws(folder, n, head.seed)]
    checked = set()
    for d in values:  # every particle drawn, once: one out of its parameter's range would fail its runs
        particle = tuple(d.values())
        if particle in checked:
            continue
        checked.add(particle)
        try:
            apply_values(base, d, f"{folder}/posterior.csv")
        except InputError as exc:
            raise InputError(
                str(path), "posterior", f"{folder}/posterior.csv does not fit the scenario: {exc.field}: {exc.message}"
            ) from None
    return values, seeds


def outcome_values(head: LeverHead, base: Scenario, records: np.ndarray) -> dict[str, float]:
    """The file's named outcomes from one run's records. A level never reached (time_to, nan in the shared
    statistic) is inf here: later than any year, so `years <= 8` fails and `years > 8` holds, where nan would
    read as a failed run and drop the draw from every count."""
    values = {name: float(evaluate(stat, records, base, DERIVED)) for name, stat in head.stats.items()}
    return {name: math.inf if head.stats[name].stat == "time_to" and math.isnan(v) else v for name, v in values.items()}


def cell(x) -> str:
    """A number as discover's and optimize's CSV cells and tables show it: 6 significant digits; nan for no
    result (a failed run), inf for a level never reached."""
    return "nan" if x is None or math.isnan(float(x)) else format(float(x), ".6g")
