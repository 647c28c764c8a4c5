"""What the sourced structure alone produces, and what the provinces' dated local events and the fitted will
effects add (docs/calibration.md, "Structure alone and what the data add").

Three stacks of the same fitted shared parameters, run with the calibration's replicate seeds:
- `structure`: sourced structure only (population, urban, minority and income shares); every province at the
  reference levers with the default software strategy, no province event, will effect 0;
- `events`: + each province's dated local events and software strategy (Hue's 2006 plan and local software,
  Hue-S, HueIOC, Daklak's 2019 plan, Ben Tre's VNPT platform and 2020 plan), will effect 0;
- `fitted`: + the fitted will effects: the calibrated model.
A lead that appears only in `fitted` is fitted, not explained by the sourced inputs.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Executor

import numpy as np

from egovsim.analysis.calibration.config import DERIVED
from egovsim.analysis.calibration.terms import FitProblem
from egovsim.config.scenario import Policy, Scenario, row_of_year, scenario_from_dict
from egovsim.model.outcomes import COL
from egovsim.runner.runner import RunSpec, Store, run_many

STACKS = ("structure", "events", "fitted")
STACK_LABELS = {
    "structure": "sourced structure only",
    "events": "+ dated local events",
    "fitted": "+ fitted will effects",
}
WILL_EFFECT = ".leader.will_effect"


def structure_only(scenario: Scenario) -> Scenario:
    """The scenario without what distinguishes a province beyond its sourced structure: no province event,
    every lever (and the software strategy) at its reference value; national events are kept."""
    data = scenario.to_dict()
    reference = dataclasses.asdict(Policy())
    for province in data["provinces"].values():
        province["events"] = []
        province["policy"] = dict(reference)
    return scenario_from_dict(data, f"{scenario.name} (structure only)")


def stack_values(problem: FitProblem, x) -> dict[str, dict[str, float]]:
    """The parameter values of each stack: the fit's, with the will effects at 0 below `fitted`."""
    fitted = problem.values(x)
    pooled = {k: (0.0 if k.endswith(WILL_EFFECT) else v) for k, v in fitted.items()}
    return {"structure": pooled, "events": pooled, "fitted": fitted}


def stack_records(problem: FitProblem, x, executor: Executor, store: Store | None = None) -> dict[str, np.ndarray]:
    """Records (replicates, rows, provinces, columns) of each stack at the fitted point, through the runner."""
    base = scenario_from_dict(problem.scenario)
    bases = {"structure": structure_only(base), "events": base, "fitted": base}
    values = stack_values(problem, x)
    specs = [
        RunSpec(stack, r, seed, values[stack], point=i)
        for i, stack in enumerate(STACKS)
        for r, seed in enumerate(problem.seeds)
    ]
    results = run_many(specs, bases, executor, store=store)
    out = {}
    for stack in STACKS:
        runs = [r.records for r, s in zip(results, specs) if s.scenario == stack and r.ok]
        if runs:
            out[stack] = np.stack(runs)
    return out


def stack_table(scenario: Scenario, stacks: dict[str, np.ndarray], years: tuple[int, ...] = (2017, 2022)) -> list[dict]:
    """Rows (stack, year, province, supply index, demand index, rank by supply index), replicate means."""

    rows = []
    keys = list(scenario.provinces)
    for stack, records in stacks.items():
        mean = records.mean(axis=0)
        for year in years:
            row = mean[row_of_year(scenario, mean.shape[0], year)]
            supply = row[:, COL["supply_index"]]
            demand = DERIVED["demand_index"](row)
            order = np.argsort(-supply)
            for p, key in enumerate(keys):
                rows.append(
                    {
                        "stack": stack,
                        "year": year,
                        "province": key,
                        "supply_index": float(supply[p]),
                        "demand_index": float(demand[p]),
                        "supply_rank": int(np.flatnonzero(order == p)[0]) + 1,
                    }
                )
    return rows
