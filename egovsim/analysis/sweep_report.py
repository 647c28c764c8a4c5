"""What a sweep says: the main effect of each varied parameter on each outcome, with the spread between
replicates, and the interaction of the first two grid parameters (`report.md` and `plots/` of a sweep folder).

The unit of evidence is the replicate: under common seeds (the default) replicate r of every design point runs
with the same seed, so a difference between two levels is paired within a replicate. For each replicate the
outcome is averaged over the design points at a level, over the same settings of the other grid parameters at
every level (a setting that lost a run at one level, failed or censored, is left out at all levels), and the
band is the 95% t-interval of those replicate means; an effect (highest minus lowest level) is computed
within each replicate, then averaged, with its 95% t-interval. With one replicate there is no band: the report
says so rather than showing a band of zero width. Levels of a Latin hypercube's continuous parameters are its
quintiles (each bin labelled by its mean value). A run whose statistic is missing (failed, or a time_to level
never reached) is left out and counted in the report.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egovsim.config.outcomes import OUTCOMES, difference_range, outcome_range, unit_of
from egovsim.config.scenario import UNDONE_WARNING
from egovsim.report.dictionary import statistic, statistic_words
from egovsim.report.markdown import inert

MEANINGS = dict(OUTCOMES)
LHS_BINS = 5
COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


@dataclass
class SweepRuns:
    """The sweep's runs as columns: each varied parameter's value, the replicate, and each outcome column."""

    params: list[str]
    values: dict[str, list[Any]]  # parameter -> value of each run
    replicate: np.ndarray  # replicate of each run
    outcomes: dict[str, np.ndarray]  # runs.csv outcome column -> value of each run (nan if missing)
    continuous: set[str]  # parameters binned into quantiles (Latin hypercube)
    notes: list[str] = field(default_factory=list)  # what each level means, where its label does not say
    lever_warnings: list[str] = field(default_factory=list)  # varied levers the scenario's events set again


@dataclass
class Effect:
    """One parameter's levels and, per level, the mean over replicates of the replicate means and its band."""

    levels: list[Any]
    labels: list[str]
    x: np.ndarray | None  # numeric positions of the levels, None if categorical
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    change: float  # highest level minus lowest level, mean over replicates
    change_lo: float
    change_hi: float
    replicates: int  # replicates with a value at every level


def t_quantile(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def level_of_runs(runs: SweepRuns, param: str) -> tuple[list[Any], list[str], np.ndarray | None, np.ndarray]:
    """(levels, labels, numeric x or None, level index of each run) of one parameter."""
    raw = runs.values[param]
    if param in runs.continuous:
        v = np.asarray(raw, dtype=float)
        bins = min(LHS_BINS, np.unique(v).size)  # a hypercube of fewer points than bins left bins empty
        edges = np.quantile(v, np.linspace(0, 1, bins + 1))
        index = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
        centres = np.array([v[index == b].mean() if (index == b).any() else np.nan for b in range(bins)])
        return list(centres), [f"{c:.3g}" for c in centres], centres, index
    levels = list(dict.fromkeys(raw))
    index = np.array([levels.index(v) for v in raw])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels)
    if numeric:
        order = np.argsort(levels)
        levels = [levels[i] for i in order]
        index = np.argsort(order)[index]
    x = np.array(levels, dtype=float) if numeric else None
    return levels, [format(v, "g") if numeric else str(v) for v in levels], x, index


def _complete_settings(runs: SweepRuns, param: str, index: np.ndarray, n_levels: int, valid: np.ndarray) -> np.ndarray:
    """Which runs to use for `param`'s effect in one replicate: those whose setting of the other grid parameters
    has a value at every level of `param`, so every level is averaged over the same settings (a level that lost
    a run would otherwise be averaged over other settings than the rest). A hypercube's parameters vary
    continuously, so there every run with a value counts (its levels are bins, never the same settings)."""
    others = [p for p in runs.params if p != param and p not in runs.continuous]
    if param in runs.continuous or not others:
        return valid
    setting = [tuple(runs.values[p][i] for p in others) for i in range(index.size)]
    levels_with_value: dict[tuple, set[int]] = {}
    for i in np.flatnonzero(valid):
        levels_with_value.setdefault(setting[i], set()).add(int(index[i]))
    complete = {k for k, got in levels_with_value.items() if len(got) == n_levels}
    return valid & np.array([k in complete for k in setting], dtype=bool)


def main_effect(runs: SweepRuns, param: str, column: str) -> Effect:
    """The main effect of `param` on one outcome column (see the module docstring). `replicates` says how many
    replicates have a value at every level (those without are left out, and the report says so)."""
    levels, labels, x, index = level_of_runs(runs, param)
    y = runs.outcomes[column]
    reps = np.unique(runs.replicate)
    # per replicate (rows) and level (columns): the mean of the outcome over the same settings of the other
    # parameters at every level
    means = np.full((reps.size, len(levels)), np.nan)
    for i, r in enumerate(reps):
        mine = runs.replicate == r
        use = _complete_settings(runs, param, index, len(levels), mine & np.isfinite(y))
        for j in range(len(levels)):
            cell = y[use & (index == j)]
            if cell.size:
                means[i, j] = cell.mean()
    complete = means[np.isfinite(means).all(axis=1)]
    n = complete.shape[0]
    mean = complete.mean(axis=0) if n else np.full(len(levels), np.nan)
    change = complete[:, -1] - complete[:, 0] if n else np.empty(0)
    if n >= 2:
        half = t_quantile(n - 1) * complete.std(axis=0, ddof=1) / np.sqrt(n)
        change_half = t_quantile(n - 1) * change.std(ddof=1) / np.sqrt(n)
    else:
        half, change_half = np.full(len(levels), np.nan), np.nan
    c = float(change.mean()) if n else np.nan
    return Effect(levels, labels, x, mean, mean - half, mean + half, c, c - change_half, c + change_half, n)


def interaction(runs: SweepRuns, first: str, second: str, column: str) -> tuple[Effect, list[tuple[str, Effect]]]:
    """The main effect of `first` within each level of `second` (one line per level in the plot)."""
    _, labels, _, index = level_of_runs(runs, second)
    lines = []
    for j, label in enumerate(labels):
        keep = index == j
        subset = SweepRuns(
            runs.params,
            {k: [v for v, kept in zip(vals, keep) if kept] for k, vals in runs.values.items()},
            runs.replicate[keep],
            {k: v[keep] for k, v in runs.outcomes.items()},
            runs.continuous,
        )
        lines.append((label, main_effect(subset, first, column)))
    return main_effect(runs, first, column), lines


# ---- words ----------------------------------------------------------------------------------------------


def outcome_words(column: str, stats: dict[str, Any], base) -> tuple[str, str]:
    """A runs.csv outcome column as (title, meaning): ('hue: adopted_share in 2022', 'citizens who have ...').
    Every title names its state: outcome@end is the end year's mid-year state, stat: final the run's last one."""
    stat = stats[column]
    province = stat.province
    meaning = MEANINGS.get(stat.outcome, stat.outcome)
    title = statistic_words(stat, base)
    return f"{province}: {title}" if province else title, meaning


def dictionary(params: list[str], columns: dict[str, Any], base, seeds: str) -> dict[str, tuple[str, str, str]]:
    """What columns.csv says of runs.csv's design parameters and outcome statistics, and of its replicates under
    the experiment's `seeds`."""
    described = {
        p: (f"the run's value of the scenario field {p}, which the design varies (experiment.yaml)", "as the field", "")
        for p in params
    }
    for column, stat in columns.items():
        title, meaning = outcome_words(column, columns, base)
        described[column] = statistic(title, meaning, stat.outcome, stat.stat == "time_to")
    if seeds == "independent":
        described["replicate"] = (
            "replicate number; every run has a seed of its own (seeds: independent)",
            "count",
            "[0, inf)",
        )
    return described


def _interval(mean: float, lo: float, hi: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(lo):
        return f"{mean:+.3g}"
    if hi - lo <= 1e-9 * max(1.0, abs(mean)):  # every replicate's effect the same: a t interval says nothing
        return f"{mean:+.3g} (no interval: the replicates' effects are all equal)"
    return f"{mean:+.3g} [{lo:+.3g}, {hi:+.3g}]"


def beyond_range(e: Effect, stat) -> bool:
    """The effect's interval reaches past what a difference of the outcome can be (two shares differ by at most
    1): the t interval over these few replicates is not to be trusted there."""
    bounds = None if stat.stat == "time_to" else difference_range(stat.outcome)
    if bounds is None or not np.isfinite(e.change_lo):
        return False
    return e.change_lo < bounds[0] or e.change_hi > bounds[1]


def report_markdown(exp, base, runs: SweepRuns, stats: dict[str, Any], missing: dict[str, int], plots: list[str]):
    """report.md: the question, the design, then per outcome the effect of each parameter with its interval."""
    n_reps = int(np.unique(runs.replicate).size)
    planned = exp.design.size  # the design as given, whatever finished
    lines = [
        f"# Sweep {exp.name}",
        "",
        f"Question: {exp.description or '(the experiment file gives no description)'}",
        "",
        f"Parameters of the base scenario: {base.parameters.label()}.",
        "",
        f"Base scenario: {base.name}; design: {exp.design.kind}, {planned} point{'s' * (planned != 1)} x "
        f"{exp.replicates} replicate{'s' if exp.replicates != 1 else ''} ({runs.replicate.size} of "
        f"{planned * exp.replicates} runs with results); seeds: {exp.seeds} "
        + (
            "(replicate r of every point has the same seed, so differences are paired)."
            if exp.seeds == "common"
            else "(every run its own seed: differences are not paired, so intervals are wider)."
        )
        + (
            " Replicate r of every point also has the same parameter values, posterior draw r: the intervals "
            "include parameter uncertainty, and the effects are averaged over it."
            if base.parameters.drawn
            else ""
        ),
        "",
        "Each effect is the outcome at the parameter's last level minus its first (highest minus lowest for "
        "numbers, in the order listed for names), averaged over the settings of the other parameters that have a value at every level, then over "
        "replicates; the interval is the 95% t-interval over replicates"
        + (" (one replicate: no interval; run more replicates for one)." if n_reps < 2 else "."),
        "An interval that contains 0 means this sweep cannot tell the effect's sign from replicate noise.",
        "",
    ]
    for p in runs.params if runs.replicate.size else ():
        labels = level_of_runs(runs, p)[1]
        kind = (
            f"{'quintiles' if len(labels) == LHS_BINS else f'{len(labels)} bins'} of a Latin hypercube, by their mean value"
            if p in runs.continuous
            else "levels"
        )
        lines.append(f"- `{p}`: {kind} {', '.join(labels)}")
    lines += [f"  - {note}" for note in runs.notes]
    lines.append("")
    if runs.lever_warnings:
        lines += [UNDONE_WARNING, *(f"- {line}" for line in runs.lever_warnings), ""]
    if not runs.replicate.size:
        return "\n".join([*lines, "**No run finished**: nothing to report (runs.csv has each run's error).", ""])
    for column in runs.outcomes:
        title, meaning = outcome_words(column, stats, base)
        lines += [f"## {title}", "", f"{meaning}.", ""]
        if missing.get(column) and stats[column].stat == "time_to":  # censored: what is left is the quicker runs
            lines += [
                f"**{missing[column]} run(s) never reached the level (or failed)** and are left out: a "
                "parameter's means and effect below are over the replicates in which the run at every level "
                "reached it (how many is said where not all), so they understate the time to it, and an effect "
                "on it is biased, in either direction (censored data).",
                "",
            ]
        elif missing.get(column):
            lines += [f"**{missing[column]} run(s) have no value** (failed).", ""]
        lines += ["| parameter | first -> last level | mean at each level | effect (last - first level) |"]
        lines += ["|---|---|---|---|"]
        too_wide = []
        for p in runs.params:
            e = main_effect(runs, p, column)
            levels = " / ".join(f"{m:.3g}" if np.isfinite(m) else "n/a" for m in e.mean)
            used = (
                ""
                if e.replicates == n_reps
                else f" (means and effect over the {e.replicates} of {n_reps} replicates with a value at every level)"
            )
            if beyond_range(e, stats[column]):
                too_wide.append(p)
            lines.append(
                f"| `{p}` | {e.labels[0]} -> {e.labels[-1]} | {levels} | "
                f"{_interval(e.change, e.change_lo, e.change_hi)}{used} |"
            )
        lines.append("")
        if too_wide:
            lines += [
                f"**Too few replicates:** the interval of {', '.join(f'`{p}`' for p in too_wide)} reaches past what "
                "a difference of this outcome can be: with these few replicates the t interval is not to be "
                "trusted; run more replicates.",
                "",
            ]
    if plots:
        lines += ["## Plots", ""] + [f"- [{name}](plots/{name})" for name in plots] + [""]
    return "\n".join(lines)


def _points(runs: SweepRuns):
    return zip(*(runs.values[p] for p in runs.params))


# ---- plots ---------------------------------------------------------------------------------------------


def _draw(ax, e: Effect, colour, label, bounds: tuple[float, float] | None) -> None:
    """The level means as a line, the band clipped to the values the outcome can take (with few replicates the
    t-interval is wide and would otherwise claim impossible values)."""
    x = e.x if e.x is not None else np.arange(len(e.levels))
    ax.plot(x, e.mean, marker="o", color=colour, label=label)
    if np.isfinite(e.lo).any():
        lo, hi = (e.lo, e.hi) if bounds is None else (np.clip(e.lo, *bounds), np.clip(e.hi, *bounds))
        ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
    ax.set_xticks(x, e.labels, fontsize=7.5)


def plot_main_effects(path: Path, runs: SweepRuns, stats: dict[str, Any], n_reps: int, base) -> None:
    """One panel per outcome (rows) and parameter (columns); the outcomes of one statistic for every province
    share a panel, a line each, with its 95% band over replicates."""
    from egovsim.report.plots import figure, parameters_caption, save_png

    groups: dict[str, list[str]] = {}  # one statistic of every province: one panel, a line per province
    for column in runs.outcomes:
        groups.setdefault(_statistic(column, stats), []).append(column)
    rows, cols = len(groups), len(runs.params)
    fig, axes = figure(rows, cols, figsize=(4.4 * cols, 2.6 * rows + 0.8))
    fig.set_layout_engine("constrained")
    for i, columns in enumerate(groups.values()):
        for j, p in enumerate(runs.params):
            ax = axes[i, j]
            effects = [main_effect(runs, p, column) for column in columns]
            for k, (column, effect) in enumerate(zip(columns, effects)):
                _draw(ax, effect, COLOURS[k % len(COLOURS)], _province(column, stats), _bounds(stats[column]))
            used = {effect.replicates for effect in effects}
            fewer = f"\n(over {'/'.join(map(str, sorted(used)))} of {n_reps} replicates)" if used != {n_reps} else ""
            ax.set_title(textwrap.fill(statistic_words(stats[columns[0]], base), 52) + fewer, fontsize=8.5)
            if j == 0:
                ax.set_ylabel(_unit(stats[columns[0]]), fontsize=7.5)
            if i == rows - 1:
                ax.set_xlabel(p, fontsize=8)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0 and len(columns) > 1:
                ax.legend(fontsize=7.5)
    band = (
        f"bands: 95% t-interval over {n_reps} replicates, cut at the values each outcome can take"
        if n_reps >= 2
        else "one replicate: no band"
    )
    title = f"Main effects: the mean over the other parameters' design values ({band})"
    fig.suptitle(textwrap.fill(title, 60 * cols), fontsize=10)
    caption = (
        "Each band is the interval of one level's mean on its own: overlapping bands do not mean no effect. Under "
        "common seeds an effect is paired within replicates, and its interval (report.md) is often much narrower. "
        if n_reps >= 2
        else ""
    )
    save_png(fig, path, caption + parameters_caption(base))


def _unit(stat) -> str:
    """The unit of a statistic: years for a time_to, else its outcome's."""
    return "years" if stat.stat == "time_to" else unit_of(stat.outcome)


def _bounds(stat) -> tuple[float, float] | None:
    """The values a statistic can take: its outcome's range, except a time_to (years, unbounded above)."""
    return None if stat.stat == "time_to" else outcome_range(stat.outcome)


def _province(column: str, stats: dict[str, Any]) -> str:
    """The province of a runs.csv outcome column ('hue.adopted_share@2022' -> 'hue')."""
    return stats[column].province or ""


def _statistic(column: str, stats: dict[str, Any]) -> str:
    """The column without its province: 'hue.adopted_share@2022' -> 'adopted_share@2022'."""
    province = _province(column, stats)
    return column[len(province) + 1 :] if province and column.startswith(province + ".") else column


def plot_interaction(path: Path, runs: SweepRuns, stats: dict[str, Any], base, first: str, second: str) -> None:
    """One panel per outcome column: the effect of `first`, one line per level of `second`."""
    from egovsim.report.plots import figure, parameters_caption, save_png

    columns = list(runs.outcomes)
    cols = min(3, len(columns))
    rows = -(-len(columns) // cols)
    fig, axes = figure(rows, cols, figsize=(4.4 * cols, 2.8 * rows + 0.8))
    fig.set_layout_engine("constrained")
    axes = axes.ravel()
    for ax, column in zip(axes, columns):
        _, lines = interaction(runs, first, second, column)
        for k, (label, e) in enumerate(lines):
            _draw(ax, e, COLOURS[k % len(COLOURS)], f"{second} = {label}", _bounds(stats[column]))
        ax.set_title(outcome_words(column, stats, base)[0].replace("_", " "), fontsize=8.5)
        ax.set_xlabel(first, fontsize=8)
        ax.set_ylabel(_unit(stats[column]), fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    for ax in axes[len(columns) :]:
        ax.axis("off")
    band = (
        "bands: 95% t-interval of each mean over replicates"
        if np.unique(runs.replicate).size >= 2
        else "one replicate: no band"
    )
    title = f"Interaction: {first} within each level of {second} (parallel lines: no interaction; {band})"
    fig.suptitle(textwrap.fill(title, 60 * cols), fontsize=10)
    save_png(fig, path, parameters_caption(base))


def write_report(folder: Path, exp, base, runs: SweepRuns, stats: dict[str, Any], missing: dict[str, int]) -> None:
    """report.md and plots/ (main_effects.png; interaction.png for two or more grid parameters)."""
    from egovsim.files import atomic_write

    plots_dir = folder / "plots"
    plots_dir.mkdir(exist_ok=True)
    n_reps = int(np.unique(runs.replicate).size)
    names = []
    if runs.replicate.size and runs.params:
        plot_main_effects(plots_dir / "main_effects.png", runs, stats, n_reps, base)
        names.append("main_effects.png")
        grid = [p for p in runs.params if p not in runs.continuous]
        if exp.design.kind == "grid" and len(grid) >= 2:
            plot_interaction(plots_dir / "interaction.png", runs, stats, base, grid[0], grid[1])
            names.append("interaction.png")
    atomic_write(folder / "report.md", inert(report_markdown(exp, base, runs, stats, missing, names)))
