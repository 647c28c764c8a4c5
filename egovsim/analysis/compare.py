"""What-if comparisons with honest uncertainty (`egovsim compare A.yaml B.yaml ... --replicates R`).

Replicate i of every scenario runs with the same seed (common random numbers), so each replicate gives a
*paired* difference B - A in which most of the model's chance variation cancels. A scenario's value is the mean
over replicates with a 95% Student t interval of the mean; a difference is the mean of the per-replicate
differences with a 95% t interval. Two identical scenarios give differences of exactly 0 with interval [0, 0].
The intervals describe the model's stochastic variation only, not uncertainty in its parameters or structure.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
import warnings
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import stats

from egovsim.analysis.calibration.posterior import posterior_draws, restricted
from egovsim.analysis.replicates import stack, write_replicates
from egovsim.config.outcomes import PRIOR_DRIVEN, difference_range, outcome_range, unit
from egovsim.config.outcomes import label as outcome_label
from egovsim.config.scenario import Scenario, apply_values
from egovsim.errors import EgovsimWarning, InputError, clipped
from egovsim.files import atomic_write, child, safe_name, write_json
from egovsim.folders import RESULTS, claimed, fresh_outputs
from egovsim.model.costs import REBALANCING, load_with_budgets
from egovsim.model.outcomes import COL, OUTCOMES
from egovsim.provenance import provenance
from egovsim.report.markdown import inert
from egovsim.report.tables import FEW_FOR_A_BAND, SUMMARY_COLUMNS, columns_csv, row_of_year, year_day, years
from egovsim.runner.runner import RunSpec, Store, Tally, replicate_seeds, run_many

LEVEL = 0.95
# the outcomes report.md tabulates and plots (comparison.csv holds every summary outcome)
HEADLINE = (
    "supply_index",
    "adopted_share",
    "use_share_12m",
    "access_share",
    "civil_servant_genuine_share",
    "services_online_share",
    "informal_payment_index",
)
MEANING = dict(OUTCOMES)
PER = 100.0  # bn VND: differences in outcomes are also reported per 100 bn VND of extra spending
EQUAL_SPENDING = 1e-6  # bn VND: cumulative spending this close counts as equal (a budget-neutral what-if)


# ---- statistics -------------------------------------------------------------------------------------------


def t_interval(x: np.ndarray, level: float = LEVEL) -> dict[str, np.ndarray]:
    """Mean of x over axis 0 and its Student t interval, ignoring nan: n, mean, sd, ci_low, ci_high.

    With fewer than two values the interval is undefined (nan). Values that are all equal give sd 0 and an
    interval of zero width, so identical scenarios give a difference of exactly [0, 0]."""
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, x, 0.0).sum(axis=0) / n
        dev = np.where(finite, x - mean, 0.0)
        sd = np.sqrt((dev**2).sum(axis=0) / (n - 1))
        half = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    sd = np.where(n >= 2, sd, np.nan)
    mean = np.where(n >= 1, mean, np.nan)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def replicate_spread(x: np.ndarray) -> dict[str, np.ndarray]:
    """The 5th and 95th percentiles of x over axis 0, ignoring nan (nan with fewer than two values): the spread
    of single replicates, where t_interval gives how precisely their mean is known."""
    x = np.asarray(x, dtype=float)
    n = np.isfinite(x).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices: nan, as below two values
        p5, p95 = np.nanpercentile(x, [5, 95], axis=0) if x.size else (np.nan, np.nan)
    return {"p5": np.where(n >= 2, p5, np.nan), "p95": np.where(n >= 2, p95, np.nan)}


def replicate_summary(x: np.ndarray) -> dict[str, np.ndarray]:
    """t_interval and replicate_spread of x: the mean with its interval, and the spread of single replicates."""
    return t_interval(x) | replicate_spread(x)


# ---- the scenarios being compared -------------------------------------------------------------------------


@dataclass
class Arm:
    """One scenario of a comparison with its replicates: records (replicates, steps + 1, provinces, columns)
    and the replicate index of each (failed replicates are missing)."""

    label: str
    scenario: Scenario
    source: str
    records: np.ndarray
    replicates: list[int]

    def values(self, province: str, outcome: str, year: int) -> np.ndarray:
        """The outcome in `province` at mid-`year`, one value per replicate."""
        p = list(self.scenario.provinces).index(province)
        k = row_of_year(self.scenario, self.records.shape[1], year)
        return self.records[:, k, p, COL[outcome]]


def warn_of_the_same_scenario(scenarios: list[Scenario], labels: list[str]) -> None:
    """Two scenarios that differ in nothing but their name (a file given twice): their paired difference is zero
    by construction, a check of the runner rather than a what-if; said, so that no one reads it as a finding."""
    plain = [{k: v for k, v in sc.to_dict().items() if k != "name"} for sc in scenarios]
    for (i, a), (j, b) in combinations(enumerate(plain), 2):
        if a == b:
            warnings.warn(
                f"{labels[i]} and {labels[j]} are the same scenario (they differ in name at most): their difference "
                "is zero by construction",
                EgovsimWarning,
                stacklevel=3,
            )


def labels_for(scenarios: list[Scenario], paths: list[str]) -> list[str]:
    """Scenario names, or file names where names clash, made unique with a suffix as a last resort. Each
    names a folder of the comparison (scenarios/<label>/), so file names are made plain file names."""
    names = [sc.name for sc in scenarios]
    if len(set(names)) < len(names):
        names = [safe_name(Path(p).stem, "scenario") for p in paths]
    out: list[str] = []
    for name in names:
        label, n = name, 1
        while label in out:
            n += 1
            label = f"{name}_{n}"
        out.append(label)
    return out


def pairs(labels: list[str], baseline: str) -> list[tuple[str, str]]:
    """Every pair (a, b), read "b minus a": the baseline is always the a; otherwise command-line order."""
    out = []
    for a, b in combinations(labels, 2):
        out.append((b, a) if b == baseline else (a, b))
    return sorted(out, key=lambda ab: (ab[0] != baseline, labels.index(ab[0]), labels.index(ab[1])))


def comparison_years(arms: list[Arm], baseline: Arm) -> list[int]:
    """The baseline's report years and the last year, where every scenario has them."""
    first = max(a.scenario.start_year for a in arms)
    last = min(a.scenario.end_year for a in arms)
    return sorted({y for y in baseline.scenario.report_years if first <= y <= last} | {last})


def comparison_rows(arms: list[Arm], baseline: str, outcomes=SUMMARY_COLUMNS) -> list[dict]:
    """Per scenario, province, outcome and year: mean and 95% interval; per pair of scenarios: the mean paired
    difference and its 95% interval (over the replicates both scenarios completed)."""
    by_label = {a.label: a for a in arms}
    yrs = comparison_years(arms, by_label[baseline])
    rows = []
    for arm in arms:
        for province in arm.scenario.provinces:
            for outcome in outcomes:
                for year in yrs:
                    rows.append(
                        _row(
                            "scenario",
                            arm.label,
                            "",
                            province,
                            outcome,
                            year,
                            replicate_summary(arm.values(province, outcome, year)),
                        )
                    )
    for a, b in pairs([arm.label for arm in arms], baseline):
        A, B = by_label[a], by_label[b]
        common = sorted(set(A.replicates) & set(B.replicates))
        ia = [A.replicates.index(i) for i in common]
        ib = [B.replicates.index(i) for i in common]
        for province in (p for p in B.scenario.provinces if p in A.scenario.provinces):
            for outcome in outcomes:
                for year in yrs:
                    diff = B.values(province, outcome, year)[ib] - A.values(province, outcome, year)[ia]
                    rows.append(_row("difference", b, a, province, outcome, year, replicate_summary(diff)))
                    if outcome not in SPENDING:
                        per = per_spending(diff, A, B, ia, ib, province, year)
                        rows.append(_row(f"per_{PER:g}bn_vnd", b, a, province, outcome, year, replicate_summary(per)))
    return rows


SPENDING = ("spend", "spend_cumulative")


def per_spending(diff: np.ndarray, A: Arm, B: Arm, ia: list[int], ib: list[int], province: str, year: int):
    """The paired difference per PER bn VND of extra cumulative spending up to mid-`year` (nan where the two
    scenarios spent the same: a budget-neutral comparison has no cost to divide by)."""
    spent = B.values(province, "spend_cumulative", year)[ib] - A.values(province, "spend_cumulative", year)[ia]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(spent) > EQUAL_SPENDING, PER * diff / spent, np.nan)


def _row(kind: str, scenario: str, minus: str, province: str, outcome: str, year: int, ci: dict) -> dict:
    return {
        "kind": kind,
        "scenario": scenario,
        "minus": minus,
        "province": province,
        "outcome": outcome,
        "year": year,
        **{k: (int(v) if k == "n" else float(v)) for k, v in ci.items()},
    }


def year_meaning(scenario: Scenario) -> str:
    """columns.csv's `year`: the state each year stands for, on the baseline's steps."""
    return f"the year compared: its state on {year_day(scenario)}"


CSV_FIELDS = (
    "kind",
    "scenario",
    "minus",
    "province",
    "outcome",
    "year",
    "n",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "p5",
    "p95",
)


def comparison_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow([_text(row[f]) for f in CSV_FIELDS])
    return buf.getvalue()


def _text(v) -> str:
    if isinstance(v, float):
        return "nan" if np.isnan(v) else format(v, ".10g")
    return str(v)


# ---- report.md and plots ----------------------------------------------------------------------------------


def _ci(row: dict, signed: bool = False) -> str:
    if np.isnan(row["mean"]):
        return "-"
    fmt = "+.3g" if signed else ".3g"  # 3 significant digits: small shares and differences stay readable
    if np.isnan(row["ci_low"]):
        return format(row["mean"], fmt)
    text = f"{row['mean']:{fmt}} [{row['ci_low']:{fmt}}, {row['ci_high']:{fmt}}]"
    if signed and (row["ci_low"] > 0 or row["ci_high"] < 0):
        text += " *"
    return text


def _spread(row: dict) -> str:
    """The 5-95% spread of a row's replicates, or "-" with fewer than two."""
    if np.isnan(row["p5"]):
        return "-"
    return f"[{row['p5']:+.3g}, {row['p95']:+.3g}]"


def impossible_interval_lines(rows: list[dict]) -> list[str]:
    """A warning when t intervals reach past what an outcome can be (a share below 0 or above 1, a difference of
    shares beyond +-1): the t approximation fails there, which takes more replicates to mend, not clipping."""
    outside = []
    for r in rows:
        if r["kind"] not in ("scenario", "difference"):  # not the per-cost rows: no bound
            continue
        if r["outcome"] not in COL:
            continue
        bounds = (outcome_range if r["kind"] == "scenario" else difference_range)(r["outcome"])
        if bounds is None or not np.isfinite(r["ci_low"]):
            continue
        if r["ci_low"] < bounds[0] or r["ci_high"] > bounds[1]:
            outside.append(r)
    if not outside:
        return []
    r = outside[0]
    return [
        f"- **Too few replicates:** {len(outside)} interval{'s' * (len(outside) > 1)} reach past what the outcome can be (e.g. "
        f"{r['outcome']}, {r['province']} {r['year']}: [{r['ci_low']:.3g}, {r['ci_high']:.3g}]): with these few "
        "replicates the t interval is not to be trusted there; run more replicates.",
    ]


def report_md(
    arms: list[Arm],
    baseline: str,
    rows: list[dict],
    master_seed: int,
    replicates: int,
    plot_files: list[Path],
    posterior: str | None = None,
) -> str:
    by = {(r["kind"], r["scenario"], r["minus"], r["province"], r["outcome"], r["year"]): r for r in rows}
    base = next(a for a in arms if a.label == baseline)
    where = dict(parameters_lines(arms, posterior))
    lines = [
        f"# What-if comparison: {', '.join(a.label for a in arms)}",
        "",
        "| scenario | file | parameters | replicates completed |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {a.label}{' (baseline)' if a.label == baseline else ''} | `{a.source}` | {where[a.label]} | "
        f"{len(a.replicates)} of {replicates} |"
        for a in arms
    ]
    if mixed := mixed_parameters([a.label for a in arms], [a.scenario for a in arms], posterior):
        lines += ["", f"**Warning:** {mixed}"]
    lines += [
        "",
        "## How to read this",
        "",
        f"- Each scenario was run **{replicates} times** (replicates). Replicate *i* of every scenario used "
        f"the same seed, spawned from master seed {master_seed} with numpy's SeedSequence (common random "
        "numbers), so the differences are *paired*: most of the model's chance variation cancels.",
        f"- A value is the **mean over replicates** and, in brackets, its **{LEVEL:.0%} confidence interval of "
        "the mean** (Student t with replicates - 1 degrees of freedom): where the mean would lie with more "
        "replicates. It narrows as replicates are added, so it is **not** the range of outcomes.",
        "- A difference is the **mean of the per-replicate differences** (scenario minus baseline) with the "
        f"{LEVEL:.0%} confidence interval of that mean. `*` marks an interval that excludes 0: the replicates "
        "resolve the sign of the mean difference (not that the difference is large: read its size). The last "
        "column, **5-95% of replicates**, is the spread of the per-replicate differences: the range of the "
        "effect itself, which more replicates do not narrow.",
        (
            "- Replicates differ by chance only: the spread is the model's stochastic variation, **not** "
            "uncertainty in its parameters or structure. It says how sure we are about what the model does, not "
            "about the world."
            if posterior is None
            else f"- Replicate *i* of every scenario also used the same parameter values, drawn from the calibration "
            f"posterior in `{posterior}`: the 5-95% spread of the differences is the effect's uncertainty from "
            "the **parameters and chance** together (not structural uncertainty); the bracketed interval is only "
            "how precisely their mean is known, and narrows as replicates are added (to about a third of the "
            "spread's width at 20). Quote the spread for what the effect may be."
        ),
        *(
            [
                f"- With {replicates} replicates the 5-95% spread is interpolated between a few draws: read it as "
                f"their range (about {FEW_FOR_A_BAND} give the percentiles their meaning)."
            ]
            if replicates < FEW_FOR_A_BAND
            else []
        ),
        *(f"- {PRIOR_DRIVEN[o][0].upper()}{PRIOR_DRIVEN[o][1:]}." for o in HEADLINE if o in PRIOR_DRIVEN),
        f"- Values are the states on {year_day(base.scenario)}. Shaded bands on the plots are the 5-95% range of "
        "replicates (the spread of single runs), a different thing from the interval of the mean.",
        "- Every number, for every summary outcome, is in `comparison.csv`; each scenario's time series "
        "are under `scenarios/<name>/`.",
        *impossible_interval_lines(rows),
        "",
    ]
    yrs = comparison_years(arms, base)
    for arm in arms:
        if arm.label == baseline:
            continue
        lines += [f"## {arm.label} minus {baseline}", ""]
        shared = [p for p in arm.scenario.provinces if p in base.scenario.provinces]
        if not shared:  # a difference is taken province by province
            lines += [
                f"No province is in both {arm.label} and {baseline}: there is no paired difference; "
                "each scenario's values are in `comparison.csv` and the plots.",
                "",
            ]
        for province in shared:
            lines += [
                f"### {arm.scenario.provinces[province].name}",
                "",
                f"| outcome | year | {baseline} | {arm.label} | difference: mean [{LEVEL:.0%} CI of the mean] | "
                "difference: 5-95% of replicates |",
                "|---|---|---|---|---|---|",
            ]
            for outcome in HEADLINE:
                for year in yrs:
                    a = by[("scenario", baseline, "", province, outcome, year)]
                    b = by[("scenario", arm.label, "", province, outcome, year)]
                    d = by[("difference", arm.label, baseline, province, outcome, year)]
                    lines.append(f"| {outcome} | {year} | {_ci(a)} | {_ci(b)} | {_ci(d, signed=True)} | {_spread(d)} |")
            lines.append("")
            lines += spending_lines(by, arm, base, province, yrs)
    if plot_files:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plot_files]
        lines.append("")
    lines += ["## Outcomes", ""] + [f"- `{o}`: {MEANING[o]}" for o in (*HEADLINE, *SPENDING)] + [""]
    return "\n".join(lines)


def rebalancing_lines(arm: Arm, province: str) -> list[str]:
    """What holding spending equal cut or raised: the funding levers' values set at each date (costs.py)."""
    held = [e for e in arm.scenario.provinces[province].events if e.name.startswith(REBALANCING)]
    if not held:
        return []
    lines = [f"To hold spending equal, {arm.label} sets its funding levers to (reference 1):", ""]
    lines += ["| from | " + " | ".join(held[0].set) + " |", "|---|" + "---|" * len(held[0].set)]
    lines += [f"| {e.date:.3f} | " + " | ".join(f"{v:.3g}" for v in e.set.values()) + " |" for e in held]
    return [*lines, ""]


def strategies(arm: Arm, province: str) -> list[tuple[float, str]]:
    """The province's software strategy at the start and each dated change of it."""
    p = arm.scenario.provinces[province]
    return [(-math.inf, p.policy.software_strategy)] + [
        (e.date, e.set["software_strategy"]) for e in p.events if "software_strategy" in e.set
    ]


def spending_lines(by: dict, arm: Arm, base: Arm, province: str, yrs: list[int]) -> list[str]:
    """What the what-if spends beside the baseline, and each headline difference per PER bn VND spent."""
    key = (arm.label, base.label, province)
    spent = [by[("difference", *key, "spend_cumulative", y)] for y in yrs]
    lines = [
        "Spending (bn VND since the start; lever costs `costs.*` are priors, so costs and any budget-neutral "
        "ranking of levers are prior-sensitive):",
        "",
        f"| year | {base.label} | {arm.label} | difference |",
        "|---|---|---|---|",
    ]
    for y, d in zip(yrs, spent):
        a = by[("scenario", base.label, "", province, "spend_cumulative", y)]
        b = by[("scenario", arm.label, "", province, "spend_cumulative", y)]
        lines.append(f"| {y} | {_ci(a)} | {_ci(b)} | {_ci(d, signed=True)} |")
    budgets = [(s.label, s.scenario.provinces[province].budget) for s in (base, arm)]
    lines += [
        f"\nBudget of {label}: {b:g} bn VND/yr (reported, not simulated)."
        for label, b in budgets
        if isinstance(b, float)
    ]
    lines.append("")
    if all(abs(d["mean"]) <= EQUAL_SPENDING for d in spent if not np.isnan(d["mean"])):
        lines += ["Spending is equal to the baseline's (budget-neutral): the differences above are at equal cost.", ""]
        if strategies(arm, province) != strategies(base, province):
            lines += [
                "**The two differ in software strategy, which the cost model prices only through the software "
                "lever** (the platform at `costs.platform_cost_ratio` of it; local and fragmented alike): "
                '"equal cost" leaves out what a change of strategy itself costs.',
                "",
            ]
        return lines + rebalancing_lines(arm, province)
    lines += [f"| outcome | year | difference per {PER:g} bn VND spent |", "|---|---|---|"]
    for outcome in HEADLINE:
        for y in yrs:
            lines.append(f"| {outcome} | {y} | {_ci(by[(f'per_{PER:g}bn_vnd', *key, outcome, y)], signed=True)} |")
    return [*lines, ""]


def parameters_lines(arms: list[Arm], posterior: str | None = None) -> list[tuple[str, str]]:
    """(scenario, where its parameter values come from) for every scenario of a comparison."""
    if posterior is not None:
        return [(a.label, f"posterior draws from {posterior}/posterior.csv (replicate i: draw i)") for a in arms]
    return [(a.label, a.scenario.parameters.label()) for a in arms]


def mixed_parameters(labels: list[str], scenarios: list[Scenario], posterior: str | None = None) -> str | None:
    """The warning when the scenarios' parameters come from different sources (priors and a calibration, or two
    fits): their differences then mix the what-if with the change of parameters. None when they agree, and when
    every scenario runs on the same posterior's draws (--posterior)."""
    # a source is its kind and, for fitted values, which fit: two calibrations differ as a prior and a fit do
    sources = {(p.kind, p.calibration, p.fit, p.date, tuple(p.set)) for p in (sc.parameters for sc in scenarios)}
    if posterior is not None or len(sources) < 2:
        return None
    where = " | ".join(f"{label}: {sc.parameters.label()}" for label, sc in zip(labels, scenarios))
    return (
        f"the scenarios' parameters come from different sources ({where}): their differences mix the what-if "
        "with the change of parameters. To see the what-if alone, compare scenarios on the same parameters "
        "(e.g. a scenarios/calibrated/ file and a what-if that extends it)."
    )


def parameters_caption(arms: list[Arm], posterior: str | None = None) -> str:
    """A plot's caption: one provenance if every scenario shares it, else one per scenario."""
    lines = parameters_lines(arms, posterior)
    if len({text for _, text in lines}) == 1:
        return f"Parameters: {lines[0][1]}"
    return "Parameters: " + "; ".join(f"{label}: {text}" for label, text in lines)


def _provinces(arms: list[Arm]) -> dict[str, str]:
    provinces: dict[str, str] = {}
    for arm in arms:
        for key, cfg in arm.scenario.provinces.items():
            provinces.setdefault(key, cfg.name)
    return provinces


def comparison_plots(folder: Path, arms: list[Arm], outcomes=HEADLINE, caption: str = "") -> list[Path]:
    """One figure per outcome: a panel per province, every scenario's mean with its 5-95% band."""
    from egovsim.report.plots import BAND, band_line, panel_row, save_png, year_axis

    provinces = _provinces(arms)
    made = []
    for outcome in outcomes:
        fig, axes = panel_row(
            len(provinces), f"{outcome_label(outcome)}: mean of replicates, band {BAND[0]}-{BAND[1]}% of replicates"
        )
        for ax, (key, name) in zip(axes, provinces.items()):
            for arm in arms:
                if key in arm.scenario.provinces and arm.records.size:
                    p = list(arm.scenario.provinces).index(key)
                    band_line(
                        ax, years(arm.scenario, arm.records.shape[1]), arm.records[:, :, p, COL[outcome]], arm.label
                    )
            ax.set_title(name)
            year_axis(ax)
            ax.grid(alpha=0.3)
        fig.set_layout_engine("constrained")
        axes[0].set_ylabel(unit(outcome))
        axes[0].legend(fontsize=8, loc="best")
        path = Path(folder) / f"{outcome}.png"
        save_png(fig, path, caption)
        made.append(path)
    return made


def paired_difference(A: Arm, B: Arm, province: str, outcome: str) -> dict[str, np.ndarray]:
    """B minus A at every step in `province`, over the replicates both completed (same seeds): the mean paired
    difference and its 95% t interval, and the 5-95% spread of the differences, per step (replicate_summary)."""
    common = sorted(set(A.replicates) & set(B.replicates))
    a = A.records[[A.replicates.index(i) for i in common], :, list(A.scenario.provinces).index(province), COL[outcome]]
    b = B.records[[B.replicates.index(i) for i in common], :, list(B.scenario.provinces).index(province), COL[outcome]]
    steps = min(a.shape[1], b.shape[1])  # the same start is required; the shorter horizon bounds the plot
    return replicate_summary(b[:, :steps] - a[:, :steps])


def difference_plots(
    folder: Path, arms: list[Arm], baseline: str, outcomes=HEADLINE, caption: str = "", posterior: str | None = None
) -> list[Path]:
    """Per what-if and outcome: its paired difference from the baseline over time (mean of the per-replicate
    differences, same seeds) with the 95% interval of that mean and the 5-95% spread of the differences, a panel
    per province."""

    from egovsim.report.plots import panel_row, save_png, year_axis

    base = next(a for a in arms if a.label == baseline)
    others = [a for a in arms if a.label != baseline]
    made = []
    for arm in others:
        provinces = {k: n for k, n in _provinces([arm]).items() if k in base.scenario.provinces}
        if not provinces:  # no province in both: there is no paired difference to draw
            continue
        n = len(sorted(set(base.replicates) & set(arm.replicates)))
        for outcome in outcomes:
            title = f"{outcome_label(outcome)}\n{arm.label} minus {baseline} (same seeds, {n} replicates)"
            fig, axes = panel_row(len(provinces), title)
            fig.set_figwidth(max(7.0, fig.get_figwidth()))  # a one-province title fits on its lines
            fig.set_layout_engine("constrained")  # keeps the two-line title clear of the panels' titles
            for ax, (key, name) in zip(axes, provinces.items()):
                ci = paired_difference(base, arm, key, outcome)
                t = years(arm.scenario, len(ci["mean"]))
                (line,) = ax.plot(t, ci["mean"], color="tab:blue", label="mean difference")
                ax.fill_between(
                    t, ci["p5"], ci["p95"], color=line.get_color(), alpha=0.12, linewidth=0, label="5-95% of replicates"
                )
                ax.fill_between(
                    t,
                    ci["ci_low"],
                    ci["ci_high"],
                    color=line.get_color(),
                    alpha=0.35,
                    linewidth=0,
                    label=f"{LEVEL:.0%} CI of the mean",
                )
                ax.axhline(0, color="0.4", linewidth=0.8)
                ax.set_title(name)
                year_axis(ax)
                ax.grid(alpha=0.3)
            axes[0].set_ylabel(f"difference in {unit(outcome)}")
            axes[0].legend(fontsize=8, loc="best")
            name = f"difference_{outcome}.png" if len(others) == 1 else f"difference_{arm.label}_{outcome}.png"
            path = Path(folder) / name
            what = "chance and parameter uncertainty: posterior draws" if posterior else "chance variation only"
            note = (
                f"Light band: 5-95% of the per-replicate differences, the range of the effect ({what}). Dark band: "
                f"{LEVEL:.0%} Student t interval of the mean difference, which narrows with more replicates. "
            )
            save_png(fig, path, note + caption)
            made.append(path)
    return made


# ---- the command ------------------------------------------------------------------------------------------


def default_folder(labels: list[str]) -> Path:
    """results/compare-A-vs-B: the same command writes (and resumes) in the same place."""
    name = "-vs-".join(labels)
    return RESULTS / safe_name(f"compare-{name}", "compare")


@dataclass
class Plan:
    """A comparison ready to run: the loaded scenarios with their labels, the baseline and the seeds."""

    paths: list[str]
    scenarios: list[Scenario]
    labels: list[str]
    baseline: str
    master_seed: int
    replicates: int
    overrides: list[str]
    scale: float | None
    posterior: str | None = None  # calibration folder whose posterior the replicates draw from
    draws: list[dict] | None = None  # replicate i's parameter values, the same in every scenario

    @property
    def seeds(self) -> list[int]:
        return replicate_seeds(self.master_seed, self.replicates)

    def values(self, i: int, scenario: Scenario) -> dict:
        """Replicate i's posterior draw, restricted to the provinces this scenario has."""
        return {} if self.draws is None else restricted(self.draws[i], scenario)


def shared_posterior(scenarios: list[Scenario]) -> str | None:
    """The posterior every scenario draws from (calibrated scenarios and the what-ifs that extend them): their
    replicates then draw from it, paired, so the intervals include parameter uncertainty. None when they do
    not all name the same one: each is then run at its own values, and the report warns that their parameters
    come from different sources (`--posterior DIR` draws every scenario from DIR)."""
    named = {sc.parameters.draws_from for sc in scenarios}
    return named.pop() if len(named) == 1 and "" not in named else None


def plan_comparison(
    paths: list[str],
    replicates: int,
    *,
    baseline: str | None = None,
    seed: int | None = None,
    overrides: list[str] | None = None,
    scale: float | None = None,
    posterior: str | None = None,
) -> Plan:
    """Load and check everything a comparison needs, before any worker starts.

    baseline: a file given in `paths` or a scenario label (default: the first). seed: the master seed
    (default: the baseline scenario's seed)."""
    if len(paths) < 2:
        raise InputError("compare", "", "give at least two scenario files")
    if replicates < 2:  # the command line refuses it first (cli.py: count(2, ...)); this holds for library calls
        raise InputError("--replicates", "", f"must be >= 2 (a t interval needs two), got {replicates}")
    scenarios = [load_with_budgets(p, overrides, scale) for p in paths]
    labels = labels_for(scenarios, paths)
    base = _baseline_label(baseline, paths, labels)
    _check_same_clock(scenarios, paths, labels.index(base))
    master = scenarios[labels.index(base)].seed if seed is None else seed
    if not 0 <= master < 2**63:
        raise InputError("--seed", "", f"must be in 0 to 2**63 - 1, got {clipped(master)}")
    # every scenario.yaml written records the master seed its replicates were spawned from
    scenarios = [dataclasses.replace(sc, seed=master) for sc in scenarios]
    plan = Plan(list(map(str, paths)), scenarios, labels, base, master, replicates, list(overrides or []), scale)
    named = posterior is None
    posterior = posterior if posterior is not None else shared_posterior(scenarios)
    if posterior is not None:
        plan.posterior = str(posterior)
        where = ("parameters.posterior", str(paths[0])) if named else ("--posterior", None)
        for sc, path in zip(scenarios, paths) if named else ():  # each drew from the fit its values come from
            sc.parameters.check_posterior_file(str(path))
        plan.draws = posterior_draws(posterior, replicates, master, *where)
        _check_held_budgets(plan)
        for sc, path in zip(scenarios, paths):  # every draw must fit every scenario before workers start
            for i in range(replicates):
                apply_values(sc, plan.values(i, sc), f"{path} with {posterior}/posterior.csv")
    return plan


def _check_same_clock(scenarios: list[Scenario], paths: list[str], base: int) -> None:
    """The scenarios' steps must be the same dates: the paired differences over time subtract step k of one
    from step k of the other. Their last years may differ (the tables then stop at the earlier one)."""
    for sc, path in zip(scenarios, paths):
        for key in ("start_year", "steps_per_year"):
            mine, theirs = getattr(sc, key), getattr(scenarios[base], key)
            if mine != theirs:
                raise InputError(
                    str(path),
                    key,
                    f"{mine}, but the baseline {paths[base]} has {theirs}: compared scenarios step through the "
                    f"same dates (set it alike, e.g. --set {key}={theirs})",
                )


def _check_held_budgets(plan: Plan) -> None:
    """A budget-neutral what-if is resolved at the file's lever costs: posterior draws of costs.* would
    break the equality of spending, so they are refused (fix costs.* with --set instead)."""
    drawn = sorted({k for d in plan.draws or [] for k in d if k.startswith("costs.")})
    for sc, path in zip(plan.scenarios, plan.paths):
        held = any(e.name.startswith(REBALANCING) for p in sc.provinces.values() for e in p.events)
        if held and drawn:
            raise InputError(
                path,
                "budget",
                f"spending is held equal at the file's lever costs, but the posterior draws {drawn[0]}",
            )


def run_comparison(
    plan: Plan,
    executor,
    *,
    folder: Path | None = None,
    progress: bool = True,
    plots: bool = True,
    provenance_extra: dict | None = None,
) -> tuple[Path, Tally, list[dict]]:
    """Run the plan's paired replicates (resuming from folder/runs/) and write comparison.csv, report.md,
    plots/ and, per scenario, scenarios/<label>/ (time series of every replicate and their band)."""
    folder = Path(folder) if folder is not None else default_folder(plan.labels)
    with claimed(folder):
        return _run_comparison(plan, executor, folder, progress, plots, provenance_extra)


def _run_comparison(
    plan: Plan, executor, folder: Path, progress: bool, plots: bool, provenance_extra: dict | None
) -> tuple[Path, Tally, list[dict]]:
    warn_of_the_same_scenario(plan.scenarios, plan.labels)  # once every check passed: bad input stays one line
    seeds = plan.seeds
    specs = [
        RunSpec(label, i, s, plan.values(i, sc))
        for label, sc in zip(plan.labels, plan.scenarios)
        for i, s in enumerate(seeds)
    ]
    store = Store(folder / "runs")
    start = time.perf_counter()
    results = run_many(
        specs, dict(zip(plan.labels, plan.scenarios)), executor, store=store, progress="compare" if progress else None
    )
    wall = time.perf_counter() - start
    tally = Tally.of(results)

    fresh_outputs(folder)  # the earlier summary goes first: the folder never mixes two runs' files
    arms = []
    for label, sc, path in zip(plan.labels, plan.scenarios, plan.paths):
        mine = [r for r in results if r.spec.scenario == label]
        prov = provenance(
            seeds=seeds,
            wall_time_s=sum(r.wall_time_s for r in mine if not r.resumed),
            scenario_file=path,
            extra={"master_seed": plan.master_seed, "replicates": plan.replicates},
        )
        if plan.posterior is not None:  # the replicates ran on posterior draws: each scenario's files say so
            sc = dataclasses.replace(sc, parameters=sc.parameters.drawn_from(plan.posterior))
        write_replicates(child(folder / "scenarios", label), sc, mine, prov, plots=False, page=False)
        records, reps = stack(mine)
        arms.append(Arm(label, sc, path, records, reps))
    complete = all(a.replicates for a in arms)  # a scenario with no successful replicate cannot be compared
    rows = comparison_rows(arms, plan.baseline) if complete else []
    atomic_write(folder / "comparison.csv", comparison_csv(rows))
    spread = (
        "percentile over replicates of the row's value (a difference row: of the per-replicate differences, the "
        "range of the effect itself)"
    )
    base = next(a.scenario for a in arms if a.label == plan.baseline)
    meanings = {"year": year_meaning(base), "p5": f"5th {spread}", "p95": f"95th {spread}"}
    atomic_write(folder / "columns.csv", columns_csv(CSV_FIELDS, meanings))
    caption = parameters_caption(arms, plan.posterior)
    plot_files = []
    if plots and complete:
        plot_files = difference_plots(folder / "plots", arms, plan.baseline, caption=caption, posterior=plan.posterior)
        plot_files += comparison_plots(folder / "plots", arms, caption=caption)
    if complete:
        atomic_write(
            folder / "report.md",
            inert(report_md(arms, plan.baseline, rows, plan.master_seed, plan.replicates, plot_files, plan.posterior)),
        )
    write_json(
        folder / "provenance.json",
        provenance(
            seeds=seeds,
            wall_time_s=wall,
            scenario_file=None,
            extra={
                "experiment": "compare",
                "scenarios": dict(zip(plan.labels, plan.paths)),
                "baseline": plan.baseline,
                "parameters": dict(parameters_lines(arms, plan.posterior)),
                "master_seed": plan.master_seed,
                "replicates": plan.replicates,
                "seed_rule": "numpy SeedSequence(master_seed).spawn(replicates); replicate i of every scenario "
                "uses seed i (common random numbers)",
                "overrides": plan.overrides,
                "scale_override": plan.scale,
                "interval": f"{LEVEL:.0%} Student t",
                "posterior": plan.posterior,
                "posterior_draws": plan.draws,
                "runs": tally.as_dict(),
                "commits_of_runs": store.commits(r.key for r in results),
                **(provenance_extra or {}),
            },
        ),
    )
    return folder, tally, rows


def _baseline_label(baseline: str | None, paths: list[str], labels: list[str]) -> str:
    if baseline is None:
        return labels[0]
    if baseline in labels:
        return baseline
    for path, label in zip(paths, labels):
        if Path(path).resolve() == Path(baseline).resolve():
            return label
    raise InputError(
        "--baseline",
        "",
        f"{clipped(baseline)} is not one of the compared scenarios ({', '.join(labels)}) or their files",
    )


def headline(
    rows: list[dict], baseline: str, outcomes=("supply_index", "adopted_share", "access_share", "spend_cumulative")
) -> str:
    """Differences from the baseline at the last compared year, for the end of the command."""
    diffs = [r for r in rows if r["kind"] == "difference" and r["minus"] == baseline and r["outcome"] in outcomes]
    if not diffs:
        return ""
    last = max(r["year"] for r in diffs)
    lines = [f"difference from {baseline} in {last} (state on {last}-07-01; mean [{LEVEL:.0%} interval]):"]
    for r in (r for r in diffs if r["year"] == last):
        lines.append(f"  {r['scenario']:<24} {r['province']:<10} {r['outcome']:<16} {_ci(r, signed=True)}")
    return "\n".join(lines)
