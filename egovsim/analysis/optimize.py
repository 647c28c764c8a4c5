"""Robust, costed policy search on the simulator (`egovsim optimize`): the model-agnostic NSGA-II of
`optimisation.py` applied to egovsim through the runner.

    search file -> Problem (levers, bounds; objectives; cost <= budget)
      -> search: each generation's candidates x draws (posterior draw i and seed i for every candidate: common
         random numbers) -> run_many(executor, store) -> robust statistics (mean, pNN, share meeting the target)
      -> recheck: the Pareto set and the status quo (the base scenario's levers) with more draws, paired
      -> pareto.csv, candidates.csv, plots/pareto.png, report.md: the cheapest mix meeting the target in at
         least `success_share` of the draws, and its paired difference from the status quo

Every run goes through `run_many` with a store in the output folder, so the search is parallel, resumable
(the same seed proposes the same candidates, whose runs are then found in the store) and reproducible.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egovsim.analysis import optimisation as opt
from egovsim.analysis.compare import replicate_summary
from egovsim.analysis.levers import cell, draws, lever_values, mix_cost, outcome_values
from egovsim.config.analysis import COST, OptimisationFile, holds
from egovsim.config.outcomes import PRIOR_DRIVEN
from egovsim.config.scenario import UNDONE_WARNING, Scenario
from egovsim.config.schema import build
from egovsim.config.yamlfile import read_yaml
from egovsim.errors import InputError
from egovsim.files import atomic_write, write_json
from egovsim.folders import claimed, fresh_outputs
from egovsim.provenance import provenance
from egovsim.report.dictionary import dictionary_csv, lever_file_words, ordinal
from egovsim.report.markdown import inert
from egovsim.report.runfolder import write_scenario
from egovsim.report.tables import FEW_FOR_A_BAND, plots_section
from egovsim.runner.runner import MAX_RUNS, RunResult, RunSpec, Store, run_many


def load_search(path: str | Path) -> tuple[OptimisationFile, Scenario]:
    path = Path(path)
    source = str(path)
    spec = build(OptimisationFile, read_yaml(path), source)
    spec.named(path, "optimize")
    base = spec.base_scenario(path)
    spec.check_scenario(base, source)
    runs = spec.population * (spec.generations + 1) * spec.replicates
    if runs > MAX_RUNS:
        raise InputError(source, "generations", f"{runs:,} runs, more than {MAX_RUNS:,}")
    draws(spec, path, base, 1)  # the posterior fits the scenario
    if spec.budget is not None and mix_cost(spec, base, {k: b[0] for k, b in spec.levers.items()}) > spec.budget:
        raise InputError(
            source, "budget", f"{spec.budget:g} bn VND/yr is below the cost of every lever at its low bound"
        )
    return spec, base


@dataclass
class Evaluated:
    """Candidates (mixes) and their outcomes over draws: values[name] (candidates, draws), nan where a run
    failed; cost (candidates,), bn VND/yr."""

    X: np.ndarray
    values: dict[str, np.ndarray]
    cost: np.ndarray
    failed: int

    def meets(self, spec: OptimisationFile) -> np.ndarray:
        return holds(spec.rule, self.values)

    def objectives(self, spec: OptimisationFile) -> np.ndarray:
        meets = self.meets(spec)
        cols = [
            self.cost if o.outcome == COST else opt.robust(self.values[o.outcome], o.statistic, meets)
            for o in spec.objectives
        ]
        return np.column_stack(cols)

    def failed_draws(self) -> np.ndarray:
        """Per candidate, its draws whose run failed (nan in every outcome; inf, a level never reached, is a
        result)."""
        return np.all(np.isnan(np.stack(list(self.values.values()))), axis=0).sum(axis=1)

    def share(self, spec: OptimisationFile) -> np.ndarray:
        return opt.robust(self.values[spec.rule[0].name], "share", self.meets(spec))

    def share_interval(self, spec: OptimisationFile, i: int, level: float = 0.95) -> tuple[int, float, float]:
        """Candidate i's draws with a result (failed runs left out, as in its share) and the exact (Clopper-
        Pearson) interval of its share: 24 of 30 draws is 61-92% at 95%."""
        from scipy.stats import binomtest

        ok = ~np.isnan(self.values[spec.rule[0].name][i])  # failed draws out; inf (never reached) counts
        k, n = int(self.meets(spec)[i][ok].sum()), int(ok.sum())
        if n == 0:
            return 0, math.nan, math.nan
        ci = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
        return n, float(ci.low), float(ci.high)


class Runner:
    """Evaluates mixes on `n` draws through run_many, all into one store."""

    def __init__(self, spec, path, base, executor, store: Store, quiet: bool):
        self.spec, self.base, self.executor, self.store, self.quiet = spec, base, executor, store, quiet
        self.path = path
        self.results: list[RunResult] = []
        self.points = 0

    def mixes(self, X: np.ndarray) -> list[dict]:
        return [dict(zip(self.spec.levers, map(float, x))) for x in X]

    def evaluate(
        self, X: np.ndarray, n: int, what: str, status_quo: bool = False, fresh: bool = False, skip: int | None = None
    ) -> Evaluated:
        """`fresh`: on draws the search never saw (those after its `replicates`), so a mix is not rechecked on
        the draws it was chosen for (a winner's curse: the share that made it look best would count again).
        `skip`: on the draws after the first `skip` (the confirmation's, after the search's and the recheck's)."""
        spec, base = self.spec, self.base
        skip = (spec.replicates if fresh else 0) if skip is None else skip
        drawn, seeds = draws(spec, self.path, base, skip + n)
        drawn, seeds = drawn[skip:], seeds[skip:]
        mixes = [{}] * len(X) if status_quo else self.mixes(X)
        specs = [
            RunSpec("base", r, seeds[r], {**drawn[r], **lever_values(spec, base, mix)}, point=self.points + i)
            for i, mix in enumerate(mixes)
            for r in range(n)
        ]
        self.points += len(mixes)
        results = run_many(
            specs,
            {"base": base},
            self.executor,
            store=self.store,
            keep_records=False,
            progress=None if self.quiet else f"{spec.name}: {what}",
        )
        self.results += results
        values = {name: np.full((len(mixes), n), np.nan) for name in spec.stats}
        for res in results:
            if res.ok:
                i = res.spec.point - (self.points - len(mixes))
                for name, v in outcome_values(spec, base, self.store.records(res.key)).items():
                    values[name][i, res.spec.replicate] = v
        cost = np.array([mix_cost(spec, base, mix) for mix in mixes])
        return Evaluated(np.asarray(X, dtype=float), values, cost, sum(not r.ok for r in results))


def problem_of(spec: OptimisationFile) -> opt.Problem:
    return opt.Problem(
        tuple(spec.levers),
        tuple(b[0] for b in spec.levers.values()),
        tuple(b[1] for b in spec.levers.values()),
        tuple(o.sense for o in spec.objectives),
        constraints=1 if spec.budget is not None else 0,
    )


def run_search(path: str | Path, executor, folder: Path, *, quiet: bool = False, command=None) -> dict:
    with claimed(folder):
        return _run_search(Path(path), executor, Path(folder), quiet, command)


def _run_search(path: Path, executor, folder: Path, quiet: bool, command) -> dict:
    start = time.perf_counter()
    spec, base = load_search(path)
    runner = Runner(spec, path, base, executor, Store(folder / "runs"), quiet)
    searched: list[Evaluated] = []
    generation = [0]

    def evaluate(X: np.ndarray):
        generation[0] += 1
        ev = runner.evaluate(X, spec.replicates, f"generation {generation[0]}/{spec.generations}")
        searched.append(ev)
        G = (ev.cost - spec.budget)[:, None] if spec.budget is not None else np.zeros((len(X), 0))
        return ev.objectives(spec), G

    front = opt.search(
        problem_of(spec), evaluate, population=spec.population, generations=spec.generations, seed=spec.seed
    )
    # the Pareto set and the status quo again, on more draws: draw i is the same for every candidate (paired)
    checked = runner.evaluate(front.X, spec.recheck, "recheck of the Pareto set", fresh=True)
    status_quo = runner.evaluate(
        np.zeros((1, len(spec.levers))), spec.recheck, "status quo", status_quo=True, fresh=True
    )
    choice = cheapest_robust(spec, checked)
    enough = status_quo_suffices(spec, status_quo, checked, choice)
    confirmed = confirm(spec, runner, checked, choice)
    fresh_outputs(folder)
    write_scenario(folder, base)
    atomic_write(folder / "candidates.csv", candidates_csv(spec, searched))
    atomic_write(folder / "pareto.csv", pareto_csv(spec, checked, status_quo))
    tables = ["candidates.csv", "pareto.csv"]
    if confirmed is not None:
        atomic_write(folder / "confirmation.csv", confirmation_csv(spec, *confirmed))
        tables.append("confirmation.csv")
    atomic_write(folder / "columns.csv", dictionary_csv(folder, tables, dictionary(spec, base)))
    plots = pareto_plots(folder, spec, base, checked, status_quo, choice, enough, confirmation_held(spec, confirmed))
    wall = time.perf_counter() - start
    failed = sum(not r.ok for r in runner.results)
    report = report_md(
        spec, base, checked, status_quo, choice, plots, folder, wall, len(runner.results), failed, enough, confirmed
    )
    atomic_write(folder / "report.md", inert(report))
    write_json(
        folder / "provenance.json",
        provenance(
            seeds=draws(spec, path, base, spec.recheck)[1],
            wall_time_s=wall,
            scenario_file=str(path),
            command=command,
            extra={
                "search": read_yaml(path),
                "runs": len(runner.results),
                "failed_runs": failed,
                "resumed_runs": sum(r.resumed for r in runner.results),
                "code_commits_of_runs": runner.store.commits(r.key for r in runner.results),
            },
        ),
    )
    return {
        "checked": checked,
        "status_quo": status_quo,
        "choice": choice,
        "status_quo_suffices": enough,
        "confirmed": confirmed,
        "runs": len(runner.results),
        "failed": failed,
    }


def confirm(spec: OptimisationFile, runner: Runner, checked: Evaluated, choice: int | None):
    """The chosen mix and the status quo on `recheck` more draws, after the search's and the recheck's: the mix
    was chosen as the cheapest of the rechecked ones meeting the target on the recheck's draws, so its share there
    leans high (chosen among many for clearing a bar on those very draws); on draws that chose nothing it does
    not. (chosen, status quo), or None when no mix was chosen."""
    if choice is None:
        return None
    after = spec.replicates + spec.recheck
    chosen = runner.evaluate(checked.X[[choice]], spec.recheck, "confirmation of the chosen mix", skip=after)
    status_quo = runner.evaluate(
        np.zeros((1, len(spec.levers))), spec.recheck, "status quo, confirmation", status_quo=True, skip=after
    )
    return chosen, status_quo


def confirmation_held(spec: OptimisationFile, confirmed) -> bool | None:
    """Whether the chosen mix met the target in success_share of the confirmation's draws; None without one."""
    return None if confirmed is None else bool(confirmed[0].share(spec)[0] >= spec.success_share)


def cheapest_robust(spec: OptimisationFile, checked: Evaluated) -> int | None:
    """The rechecked candidate of least cost (within the budget) meeting the target in at least
    success_share of the draws; None if none does."""
    share = checked.share(spec)
    ok = share >= spec.success_share
    if spec.budget is not None:
        ok &= checked.cost <= spec.budget
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    return int(idx[np.lexsort((-share[idx], checked.cost[idx]))[0]])


def status_quo_suffices(spec: OptimisationFile, status_quo: Evaluated, checked: Evaluated, choice: int | None) -> bool:
    """The status quo meets the target in enough draws (within the budget) at no more cost than the cheapest
    robust mix: then no added spending is needed, whatever the search found."""
    ok = status_quo.share(spec)[0] >= spec.success_share
    if spec.budget is not None:
        ok &= status_quo.cost[0] <= spec.budget
    return bool(ok and (choice is None or status_quo.cost[0] <= checked.cost[choice]))


# ---- outputs ------------------------------------------------------------------------------------------------


def _stat_names(spec) -> list[str]:
    return [f"{o.outcome}_{o.statistic}" if o.outcome != COST else "cost_bn_vnd_per_yr" for o in spec.objectives]


def dictionary(spec: OptimisationFile, base: Scenario) -> dict[str, tuple[str, str, str]]:
    """columns.csv's words for candidates.csv's, pareto.csv's and confirmation.csv's own columns: the levers, each
    objective's robust statistic, the means and paired differences from the status quo."""
    described = lever_file_words(spec, base, "one draw's value")
    outcomes = {name: described.pop(name) for name in spec.stats}  # columns hold statistics of them, not them
    over = "over the mix's draws (candidates.csv: the search's; pareto.csv: the recheck's, fresh common random numbers)"
    for o, column in zip(spec.objectives, _stat_names(spec)):
        if o.outcome == COST:
            continue
        meaning, unit, bounds = outcomes[o.outcome]
        what = {"mean": "mean", "share": "share of draws meeting the target"}.get(
            o.statistic, f"{ordinal(int(o.statistic[1:]))} percentile"
        )
        if o.statistic == "share":
            unit, bounds = "share", "[0, 1]"
        described[column] = (f"{what} {over} of {meaning}", unit, bounds)
    for name, (meaning, unit, bounds) in outcomes.items():
        described[f"{name}_mean_of_draws"] = (
            f"mean over the file's draws (pareto.csv: the recheck's; confirmation.csv: the confirmation's) of {meaning}",
            unit,
            bounds,
        )
        difference = f"mean paired difference, the mix minus the status quo, draw by draw, of {meaning}"
        described[f"{name}_minus_status_quo"] = (difference, unit, "")
        for end, side in (("_ci_low", "lower"), ("_ci_high", "upper")):
            described[f"{name}_minus_status_quo{end}"] = (
                f"{side} end of the 95% t interval of that difference",
                unit,
                "",
            )
        for end, words in (("_p5", "5th"), ("_p95", "95th")):
            described[f"{name}_minus_status_quo{end}"] = (
                f"{words} percentile of the per-draw differences (the range of the effect, not of its mean)",
                unit,
                "",
            )
    described["mix"] = (
        "chosen: the cheapest robust mix; status_quo: the province's levers as the scenario sets them",
        "text",
        "",
    )
    for end, side in (("_low", "lower"), ("_high", "upper")):
        described[f"target_share{end}"] = (
            f"{side} end of the exact (Clopper-Pearson) 95% interval of target_share",
            "share",
            "[0, 1]",
        )
    described["candidate"] = (
        "mix on the Pareto set of the search, rechecked on fresh draws; status_quo: the province's levers as the "
        "scenario sets them",
        "count, or status_quo",
        "",
    )
    return described


def candidates_csv(spec: OptimisationFile, searched: list[Evaluated]) -> str:
    """Every candidate the search evaluated, by generation, with its objectives over the search's draws."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["generation", *spec.levers, *_stat_names(spec), "target_share", "failed_runs"])
    for g, ev in enumerate(searched, start=1):
        F, share, failed = ev.objectives(spec), ev.share(spec), ev.failed_draws()
        for i in range(len(ev.X)):
            w.writerow([g, *map(cell, ev.X[i]), *map(cell, F[i]), cell(share[i]), int(failed[i])])
    return buf.getvalue()


def differences(spec, checked: Evaluated, status_quo: Evaluated, name: str) -> list[dict]:
    """Each candidate minus the status quo in outcome `name`, paired draw by draw: mean, 95% t interval and the
    5-95% spread of the per-draw differences (compare.replicate_summary). Undefined (nan) where a draw of either
    never reaches its level (inf): the summary would leave those draws out and compare only the draws where both
    reach it."""
    rows = []
    for i in range(len(checked.X)):
        with np.errstate(invalid="ignore"):  # inf - inf: both never reached; undefined below anyway
            pair = checked.values[name][i] - status_quo.values[name][0]
        never = np.isinf(checked.values[name][i]) | np.isinf(status_quo.values[name][0])
        found = {k: float(v) for k, v in replicate_summary(pair).items()}
        rows.append({k: (math.nan if never.any() and k != "n" else v) for k, v in found.items()})
    return rows


def pareto_csv(spec: OptimisationFile, checked: Evaluated, status_quo: Evaluated) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(spec.stats)
    w.writerow(
        [
            "candidate",
            *spec.levers,
            *_stat_names(spec),
            "target_share",
            "draws",
            *(f"{n}_mean_of_draws" for n in names),  # not "{n}_mean": an objective's column may be named so
            *(f"{n}_minus_status_quo{s}" for n in names for s in ("", "_ci_low", "_ci_high")),
        ]
    )
    diffs = {n: differences(spec, checked, status_quo, n) for n in names}
    F, share = checked.objectives(spec), checked.share(spec)
    for i in range(len(checked.X)):
        means = [np.nanmean(checked.values[n][i]) for n in names]
        d = [diffs[n][i][k] for n in names for k in ("mean", "ci_low", "ci_high")]
        w.writerow(
            [
                i,
                *map(cell, checked.X[i]),
                *map(cell, F[i]),
                cell(share[i]),
                spec.recheck,
                *map(cell, means),
                *map(cell, d),
            ]
        )
    sq_F, sq_share = status_quo.objectives(spec)[0], status_quo.share(spec)[0]
    sq_means = [np.nanmean(status_quo.values[n][0]) for n in names]
    w.writerow(
        [
            "status_quo",
            *([""] * len(spec.levers)),
            *map(cell, sq_F),
            cell(sq_share),
            spec.recheck,
            *map(cell, sq_means),
            *(["0", "0", "0"] * len(names)),
        ]
    )
    return buf.getvalue()


CONFIRMATION_ENDS = ("", "_ci_low", "_ci_high", "_p5", "_p95")


def confirmation_csv(spec: OptimisationFile, chosen: Evaluated, status_quo: Evaluated) -> str:
    """The chosen mix and the status quo on the confirmation's draws: cost, the share meeting the target with its
    exact 95% interval, each outcome's mean, and the mix minus the status quo, draw by draw."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(spec.stats)
    w.writerow(
        [
            "mix",
            *spec.levers,
            "cost_bn_vnd_per_yr",
            "target_share",
            "target_share_low",
            "target_share_high",
            "draws",
            *(f"{n}_mean_of_draws" for n in names),
            *(f"{n}_minus_status_quo{end}" for n in names for end in CONFIRMATION_ENDS),
        ]
    )
    keys = ("mean", "ci_low", "ci_high", "p5", "p95")
    diffs = [differences(spec, chosen, status_quo, n)[0][k] for n in names for k in keys]
    for label, ev, levers, d in (
        ("chosen", chosen, list(map(cell, chosen.X[0])), diffs),
        ("status_quo", status_quo, [""] * len(spec.levers), [0.0] * len(diffs)),
    ):
        n, low, high = ev.share_interval(spec, 0)
        means = [np.nanmean(ev.values[name][0]) for name in names]
        w.writerow(
            [label, *levers, cell(ev.cost[0]), cell(ev.share(spec)[0]), cell(low), cell(high), n]
            + [*map(cell, means), *map(cell, d)]
        )
    return buf.getvalue()


def pareto_plots(
    folder: Path,
    spec,
    base: Scenario,
    checked: Evaluated,
    status_quo: Evaluated,
    choice: int | None,
    enough: bool,
    held: bool | None = None,
) -> list[Path]:
    from egovsim.report.plots import pareto_plot

    if not len(checked.X):
        return []
    target = spec.rule[0].name
    first = next((o for o in spec.objectives if o.outcome != COST), None)
    name = first.outcome if first else target
    value = np.nanmean(checked.values[name], axis=1)
    shares = checked.share(spec)
    marks = {
        "status quo" + (" (meets the target)" if enough else ""): (
            status_quo.cost[0],
            np.nanmean(status_quo.values[name][0]),
            status_quo.share(spec)[0],
        )
    }
    if choice is not None:
        label = "cheapest robust mix" if held is not False else "cheapest mix on the recheck (not confirmed)"
        marks[label] = (checked.cost[choice], value[choice], shares[choice])
    path = folder / "plots" / "pareto.png"
    rule = " and ".join(map(str, spec.rule))
    pareto_plot(
        path,
        checked.cost,
        value,
        shares,
        {
            "x": "cost: spending on the province's levers, bn VND/yr",
            "y": f"{name}, mean of {spec.recheck} draws",
            "share": f"share of draws with {rule}",
            "title": f"{spec.name}: the Pareto set, rechecked",
            "target": next((c.value for c in spec.rule if c.name == name), None),
            "caption": f"Each point is a mix on the Pareto set of the search, rechecked on {spec.recheck} draws "
            "(common random numbers). "
            + (
                f"Parameters: posterior draws from {spec.posterior} (draw i with seed i for every mix)."
                if spec.posterior
                else f"Parameters: {base.parameters.label()}."
            )
            + " Costs are priors (costs.*).",
        },
        marks,
    )
    return [path]


def report_md(
    spec,
    base,
    checked: Evaluated,
    status_quo: Evaluated,
    choice,
    plots,
    folder,
    wall,
    runs,
    failed,
    enough=False,
    confirmed=None,
) -> str:
    rule = " and ".join(map(str, spec.rule))
    province = base.provinces[spec.province].name
    when = spec.levers_from if spec.levers_from is not None else base.start_year
    draws_text = (
        f"posterior draws from `{spec.posterior}/posterior.csv` (draw i with seed i for every candidate)"
        if spec.posterior
        else f"replicates with spawned seeds (parameters of the base scenario: {base.parameters.label()})"
    )
    objectives = ", ".join(
        f"{o.sense}imise {o.outcome}" + (f" ({o.statistic} over draws)" if o.outcome != COST else "")
        for o in spec.objectives
    )
    lines = [
        f"# Policy search: {spec.name}",
        "",
        spec.description,
        "",
        f"Levers of {province} ({', '.join(f'{k} {v[0]:g}-{v[1]:g}' for k, v in spec.levers.items())}) set from "
        f"{when:g} in `{spec.scenario}`; objectives: {objectives}"
        + (f"; budget: at most {spec.budget:g} bn VND/yr on the province's levers" if spec.budget is not None else "")
        + f". NSGA-II, {spec.population} candidates x {spec.generations} generations, each on {spec.replicates} "
        f"{draws_text}; the Pareto set and the status quo (the base scenario's levers) rechecked on {spec.recheck} "
        "fresh draws (not those the search chose on); the shares below come with their exact 95% interval. "
        f"Master seed {spec.seed}; {runs} runs ({failed} failed); wall time {wall:.0f} s.",
        "",
        f"Target: **{rule}** in at least {100 * spec.success_share:.0f}% of draws.",
        "",
        f"Costs: {PRIOR_DRIVEN['spend']}. The mix found is the cheapest at these costs; other costs can rank "
        "the mixes otherwise.",
        "",
    ]
    if in_play := spec.levers_in_play(base, spec.varied_fields(base), spec.name):
        lines += [UNDONE_WARNING, *(f"- {line}" for line in in_play), ""]
    lines += ["## The cheapest robust mix", ""]

    def share_text(ev: Evaluated, i: int) -> str:
        n, low, high = ev.share_interval(spec, i)
        return f"{100 * ev.share(spec)[i]:.0f}% of {n} draws ({100 * low:.0f}-{100 * high:.0f}%)"

    sq_share = status_quo.share(spec)[0]
    sq = f"status quo ({status_quo.cost[0]:.1f} bn VND/yr) meets the target in {share_text(status_quo, 0)}"
    if enough:
        lines.append(
            f"**The status quo already meets the target**: {status_quo.cost[0]:.1f} bn VND/yr, in "
            f"{share_text(status_quo, 0)}; no added spending is needed."
            + (
                f" The cheapest mix on the Pareto set that meets it costs {checked.cost[choice]:.1f} bn VND/yr "
                f"({checked.cost[choice] - status_quo.cost[0]:+.1f})."
                if choice is not None
                else ""
            )
        )
    elif choice is None:
        best = int(np.nanargmax(checked.share(spec))) if len(checked.X) else None
        lines.append(
            f"**No mix on the Pareto set meets the target in {100 * spec.success_share:.0f}% of draws** "
            + (f"(the best meets it in {share_text(checked, best)})" if best is not None else "")
            + f"; the {sq}. Widen the levers' bounds or the budget, or lower the target."
        )
    else:
        mix = ", ".join(f"{k} {v:.2f}" for k, v in zip(spec.levers, checked.X[choice]))
        lines.append(
            f"**{mix}**: {checked.cost[choice]:.1f} bn VND/yr ({checked.cost[choice] - status_quo.cost[0]:+.1f} "
            f"against the status quo), meeting the target in {share_text(checked, choice)}; the {sq}."
            + (" **Not confirmed on fresh draws** (below)." if confirmation_held(spec, confirmed) is False else "")
        )
    if confirmed is not None:
        chosen, sq_confirmed = confirmed
        held = confirmation_held(spec, confirmed)
        lines += [
            "",
            f"**{'Confirmed' if held else 'Not confirmed'} on {spec.recheck} further draws**, used neither by the "
            f"search nor to choose among the {len(checked.X)} rechecked mix{'es' if len(checked.X) != 1 else ''}: "
            f"the mix meets the target in {share_text(chosen, 0)}"
            + ("" if held else f", below the {100 * spec.success_share:.0f}% asked")
            + f"; the status quo in {share_text(sq_confirmed, 0)}. Quote these: the recheck's share above is the "
            "one the mix was chosen for, as the cheapest to clear the bar on those very draws, so it leans high"
            + (
                ""
                if held
                else "; on draws that chose nothing this mix does not meet the target as often as asked, so it is "
                "not shown to be robust (more `recheck` draws, or a mix further above the bar)"
            )
            + " (`confirmation.csv`).",
            "",
            "Paired difference from the status quo on the confirmation's draws (same draws and seeds): mean "
            "[95% CI of the mean], then 5-95% of the per-draw differences, the range of the effect itself"
            + (
                f" (with {spec.recheck} draws, interpolated between a few: read it as their range)"
                if spec.recheck < FEW_FOR_A_BAND
                else ""
            )
            + ":",
            "",
        ]
        for name in spec.stats:
            d = differences(spec, chosen, sq_confirmed, name)[0]
            lines.append(
                f"- {name}: {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]; "
                f"5-95% of draws [{d['p5']:+.3f}, {d['p95']:+.3f}]"
            )
    lines += [
        "",
        "## The Pareto set, rechecked",
        "",
        "| " + " | ".join([*spec.levers, "cost", "target share", *(f"{n} (mean of draws)" for n in spec.stats)]) + " |",
        "|" + "---|" * (len(spec.levers) + 2 + len(spec.stats)),
    ]
    order = np.argsort(checked.cost)
    share = checked.share(spec)
    for i in order:
        cells = [f"{v:.2f}" for v in checked.X[i]] + [f"{checked.cost[i]:.1f}", f"{100 * share[i]:.0f}%"]
        cells += [f"{np.nanmean(checked.values[n][i]):.3f}" for n in spec.stats]
        lines.append("| " + " | ".join(cells) + " |")
    sq_cells = (
        ["(status quo)"] + [""] * (len(spec.levers) - 1) + [f"{status_quo.cost[0]:.1f}", f"{100 * sq_share:.0f}%"]
    )
    sq_cells += [f"{np.nanmean(status_quo.values[n][0]):.3f}" for n in spec.stats]
    lines.append("| " + " | ".join(sq_cells) + " |")
    lines += [
        "",
        "Costs are the province's yearly spending on all its levers once the mix is in force, at the "
        "scenario's `costs.*` (model/costs.py; their sources are in docs/parameters.md).",
    ]
    lines += plots_section(plots, folder)
    return "\n".join(lines) + "\n"
