"""The plots a reader wants first. Every function takes records of shape (replicates, steps, provinces,
columns): with one replicate it draws the run, with several the mean and a 90% band."""

from __future__ import annotations

import functools
import io
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from egovsim.config.analysis import NATIONAL, national_mean
from egovsim.config.observations import supply_index_points
from egovsim.config.outcomes import DERIVED, unit, unit_of
from egovsim.config.scenario import Scenario
from egovsim.files import atomic_write, child
from egovsim.model.outcomes import COL
from egovsim.report.tables import BAND, years

# Plot text holds names and labels from scenario files: a "$" in them is a dollar sign, not TeX (mathtext would
# render "$5 to $10" as maths, and fail outright on "$\\undefined$"). No plot of egovsim writes maths.
matplotlib.rcParams["text.parse_math"] = False


def band_line(ax, t, series: np.ndarray, label: str, **style) -> None:
    """series: (replicates, steps). Mean line, plus a 5-95% band when there are several replicates."""
    if series.shape[0] == 1:
        ax.plot(t, series[0], label=label, **style)
        return
    with warnings.catch_warnings():  # steps where every replicate is nan (e.g. no dealings yet) stay gaps
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(series, axis=0)
        lo, hi = np.nanpercentile(series, BAND, axis=0)
    (line,) = ax.plot(t, mean, label=label, **style)
    ax.fill_between(t, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def figure(rows: int = 1, cols: int = 1, **kw):
    """A figure and its axes (always a 2-d array), made without pyplot: no global figure registry to leak
    into, and none of pyplot's import and backend cost."""
    fig = Figure(figsize=kw.pop("figsize", (8, 4.8)))
    return fig, fig.subplots(rows, cols, squeeze=False, **kw)


def year_axis(ax) -> None:
    """A calendar-year x axis: whole years as ticks (a weekly run's decimal years would read 2002.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("year")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, steps=[1, 2, 5, 10]))


def bass_reduction(scenario: Scenario) -> bool:
    """The scenario is the Bass (1969) model (scenarios/validation/bass.yaml): well mixed, every citizen online
    from the start, no covariate in the adoption hazard, so the adopted share has a closed form."""
    c = scenario.citizens
    return (
        scenario.network.kind == "well_mixed"
        and scenario.access.initial >= 1.0
        and not (c.beta_usefulness or c.beta_ease or c.beta_trust)
        and c.lapse_prob == 0.0
    )


def bass_curve(p: float, q: float, t: np.ndarray) -> np.ndarray:
    """F(t) = (1 - exp(-(p+q)t)) / (1 + (q/p) exp(-(p+q)t)), the Bass model's adopted share (F(0) = 0)."""
    e = np.exp(-(p + q) * t)
    return (1.0 - e) / (1.0 + (q / p) * e)


def save_png(fig, path: Path, caption: str = "") -> None:
    """The figure as PNG, with `caption` (e.g. where its parameters come from) under it."""
    if caption:  # wrapped to the figure's width (matplotlib's wrap=True ignores bbox_inches="tight")
        width = int(fig.get_figwidth() * 17)
        fig.text(0.02, 0.0, textwrap.fill(caption, width), fontsize=7.5, ha="left", va="top", color="0.25")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    atomic_write(path, buf.getvalue())


def mark_mergers(ax, scenario: Scenario, province: str | None = None) -> None:
    """A dashed vertical line at each merger of `province` (named by the unit it forms), or at each date of a
    merger on a plot of all provinces."""
    dates = {}
    for m in scenario.mergers:
        if province is None:
            dates.setdefault(m.date, f"mergers ({m.date:g})")
        elif province in m.members:
            dates[m.date] = f"merged into {m.label}"
    for date, label in dates.items():
        ax.axvline(date, color="0.35", linestyle="--", linewidth=0.9, zorder=1)
        # from the bottom, where the legends are not (upper left), on a pale box: a curve it crosses stays legible
        ax.annotate(
            label,
            (date, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(-3, 0),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            zorder=3,
        )


def units_plot(scenario: Scenario, records: np.ndarray, path: Path) -> None:
    """Both geographies across the mergers: each merged unit's supply index and adopted share (its former
    provinces' aggregate; before the merger, the same territory) with its former provinces beside it."""
    from egovsim.model.jurisdictions import unit_records

    t = years(scenario, records.shape[1])
    units = np.stack([unit_records(scenario, r) for r in records])  # (replicates, steps, units, columns)
    keys = list(scenario.provinces)
    fig, axes = figure(2, len(scenario.mergers), figsize=(5.6 * len(scenario.mergers), 7.6), sharex=True)
    fig.suptitle("Merged units and their former provinces" + band_note(records))
    for u, m in enumerate(scenario.mergers):
        for row, col, what in ((0, "supply_index", "supply index"), (1, "adopted_share", "adopted share")):
            ax = axes[row][u]
            band_line(ax, t, units[:, :, u, COL[col]], f"{m.label} (whole territory)", color="black", linewidth=2)
            for key in m.members:
                band_line(ax, t, records[:, :, keys.index(key), COL[col]], scenario.provinces[key].name, linewidth=1)
            mark_mergers(ax, scenario, m.members[0])
            ax.set_title(f"{m.label}: {what}", fontsize=10)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            year_axis(ax)
        axes[0][u].legend(fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("index (0-1)")
    axes[1][0].set_ylabel("share of citizens")
    save_png(fig, path, parameters_caption(scenario))


def panel_row(n: int, title: str):
    fig, axes = figure(1, n, figsize=(5.2 * n, 4.0), sharey=True)
    fig.suptitle(title)
    return fig, axes[0]


def parameters_caption(scenario: Scenario) -> str:
    """The caption of every plot of a run: where its parameter values come from."""
    return f"Parameters: {scenario.parameters.label()}"


def band_note(records: np.ndarray) -> str:
    r = records.shape[0]
    return f" (mean of {r} replicates, band {BAND[0]}-{BAND[1]}%)" if r > 1 else ""


def use_by_group(scenario: Scenario, records: np.ndarray, path: Path) -> None:
    t = years(scenario, records.shape[1])
    fig, axes = panel_row(records.shape[2], "Access and use of online public services by group" + band_note(records))
    series = (
        ("access_share", "internet at home", {"color": "0.55", "linestyle": "--"}),
        ("adopted_share", "adopted (all)", {"color": "black"}),
        ("use_share_12m", "used in last 12 months", {"color": "black", "linestyle": ":"}),
        ("urban_adopted_share", "adopted, urban", {"color": "tab:blue"}),
        ("rural_adopted_share", "adopted, rural", {"color": "tab:green"}),
        ("minority_adopted_share", "adopted, ethnic minority", {"color": "tab:red"}),
    )
    for p, (_key, prov) in enumerate(scenario.provinces.items()):
        ax = axes[p]
        for col, label, style in series:
            band_line(ax, t, records[:, :, p, COL[col]], label, **style)
        if bass_reduction(scenario):  # the validation scenario: its closed form beside the simulated mean
            c = scenario.citizens
            ax.plot(
                t,
                bass_curve(c.p0, c.q0, t - t[0]),
                color="tab:orange",
                linestyle="--",
                linewidth=1.5,
                label=f"Bass closed form (p = {c.p0:g}, q = {c.q0:g})",
            )
        ax.set_title(prov.name)
        mark_mergers(ax, scenario, _key)
        year_axis(ax)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of citizens")
    axes[0].legend(fontsize=8, loc="upper left")
    save_png(fig, path, parameters_caption(scenario))


def supply_index(scenario: Scenario, records: np.ndarray, path: Path, observed: list[dict] | None = None) -> None:
    """The supply index of each province against the published index values it is compared with (MIC, DTI
    digital government: config/observations.supply_index_points), each point in its province's colour with the
    calibration's tolerance (+- 2 sd) where it is a calibration target, and a red ring where the run misses it
    (`observed`: rows of analysis.calibration.observed_vs_simulated)."""
    t = years(scenario, records.shape[1])
    fig, ((ax,),) = figure(figsize=(8, 4.8))
    points = supply_index_points()
    markers = {"MIC": "o", "DTI": "s"}
    targets = {(row["where"], float(row["observed"])): row for row in observed or [] if row.get("kind") == "value"}
    placed: list[tuple[float, float]] = []  # label positions so far (data units), to keep labels apart
    without, tops = [], []
    for p, (key, prov) in enumerate(scenario.provinces.items()):
        band_line(ax, t, records[:, :, p, COL["supply_index"]], f"{prov.name} (simulated)")
        color = ax.get_lines()[-1].get_color()
        mine = [pt for pt in points if pt.province == key]
        if not mine:
            without.append(prov.name)
        for pt in mine:
            x, row = pt.year + 0.5, targets.get((f"{key} {int(pt.year)}", pt.value))
            if row is not None:
                ax.errorbar(x, pt.value, yerr=2 * row["sd"], color=color, capsize=3, linewidth=1, zorder=4)
                tops.append(pt.value + 2 * row["sd"])
            ax.scatter(x, pt.value, color=color, marker=markers.get(pt.label[:3], "D"), edgecolor="black", zorder=5)
            missed = row is not None and not row["met"]
            if missed:
                ax.scatter(x, pt.value, s=170, facecolor="none", edgecolor="red", linewidth=1.5, zorder=6)
            dy = 4
            while any(abs(x - px) < 3.5 and abs(pt.value + dy / 200 - py) < 0.045 for px, py in placed):
                dy -= 11  # roughly a line of 7-point text, in points
            placed.append((x, pt.value + dy / 200))
            text = pt.label + (" (missed)" if missed else "")
            ax.annotate(text, (x, pt.value), textcoords="offset points", xytext=(7, dy), fontsize=7)
    ax.scatter([], [], s=170, facecolor="none", edgecolor="red", linewidth=1.5, label="observed value the run misses")
    ax.errorbar([], [], yerr=[], color="0.3", capsize=3, linewidth=1, label="observed, +- 2 sd calibration tolerance")
    note = f"; no published value for {', '.join(without)} (ranks only)" if without else ""
    ax.set_title("Supply index against observed index values" + band_note(records) + note, fontsize=10)
    mark_mergers(ax, scenario)
    year_axis(ax)
    ax.set_ylabel("index (0-1)")
    ax.set_ylim(0, max([1.0, *(top + 0.02 for top in tops)]))  # a value's + 2 sd may pass 1: not cut off
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    save_png(fig, path, parameters_caption(scenario))


def gaps(scenario: Scenario, records: np.ndarray, path: Path) -> None:
    t = years(scenario, records.shape[1])
    fig, axes = panel_row(2, "Digital divides (adopted share)" + band_note(records))
    for p, (_key, prov) in enumerate(scenario.provinces.items()):
        band_line(axes[0], t, records[:, :, p, COL["urban_rural_gap"]], prov.name)
        band_line(axes[1], t, records[:, :, p, COL["ethnic_gap"]], prov.name)
    axes[0].set_title("urban minus rural")
    axes[1].set_title("majority minus ethnic minority")
    for ax in axes:
        ax.axhline(0, color="0.4", linewidth=0.8)
        mark_mergers(ax, scenario)
        year_axis(ax)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(unit("urban_rural_gap"))
    axes[0].legend(fontsize=8)
    save_png(fig, path, parameters_caption(scenario))


def government_side(scenario: Scenario, records: np.ndarray, path: Path) -> None:
    t = years(scenario, records.shape[1])
    fig, axes = panel_row(
        records.shape[2], "Government side: civil servants, services, informal payments" + band_note(records)
    )
    series = (
        ("civil_servant_genuine_share", "civil servants: genuine use", {"color": "tab:blue"}),
        ("civil_servant_ceremonial_share", "civil servants: ceremonial use", {"color": "tab:orange"}),
        ("services_online_share", "procedures fully online", {"color": "tab:green"}),
        ("published_share", "procedures published (online forms)", {"color": "tab:green", "linestyle": ":"}),
        ("agency_it", "agencies' IT equipment", {"color": "tab:purple", "linestyle": "-."}),
        ("informal_payment_index", "informal payment index", {"color": "tab:red"}),
        ("leader_will", "leader's will", {"color": "0.3", "linestyle": "--"}),
    )
    for p, (_key, prov) in enumerate(scenario.provinces.items()):
        for col, label, style in series:
            band_line(axes[p], t, records[:, :, p, COL[col]], label, **style)
        axes[p].set_title(prov.name)
        mark_mergers(axes[p], scenario, _key)
        year_axis(axes[p])
        axes[p].set_ylim(0, 1)
        axes[p].grid(alpha=0.3)
    axes[0].set_ylabel("share, or level on a 0-1 scale")
    # outside the last panel: inside one it would hide that province's curves
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    save_png(fig, path, parameters_caption(scenario))


def run_plots(folder: Path, scenario: Scenario, records: np.ndarray, observed: list[dict] | None = None) -> list[Path]:
    """Write the standard plots of one scenario's runs into `folder` (`observed`: the observed-vs-simulated rows
    the supply index plot marks)."""
    folder = Path(folder)
    made = []
    plots = [
        ("supply_index.png", functools.partial(supply_index, observed=observed)),
        ("use_by_group.png", use_by_group),
        ("gaps.png", gaps),
        ("government.png", government_side),
    ]
    if any(r.get("kind") == "value" and r.get("outcome") for r in observed or []):
        plots.append(("observations.png", functools.partial(observations, rows=observed)))
    for name, fn in plots:
        fn(scenario, records, folder / name)
        made.append(folder / name)
    if scenario.mergers:
        units_plot(scenario, records, folder / "units.png")
        made.append(folder / "units.png")
    return made


def observations(scenario: Scenario, records: np.ndarray, path: Path, rows: list[dict]) -> None:
    """One panel per observed quantity: the simulated median and 90% band (over replicates, or over posterior
    draws: the posterior predictive of the model, without the observation error) against every observed value,
    with its +- 2 sd (the source's and the model discrepancy's); an open marker is a value the calibration did
    not fit (held out, or a check of weight 0)."""
    values = [r for r in rows if r.get("kind") == "value" and r.get("outcome")]
    targets = list(dict.fromkeys(r["target"] for r in values))
    if not targets:
        return
    t = years(scenario, records.shape[1])
    keys = list(scenario.provinces)
    cols = min(4, len(targets))
    n_rows = -(-len(targets) // cols)
    fig, axes = figure(n_rows, cols, figsize=(4.2 * cols, 3.1 * n_rows))
    colours = {key: f"C{i}" for i, key in enumerate([*keys, NATIONAL])}
    for k, target in enumerate(targets):
        ax = axes[k // cols][k % cols]
        mine = [r for r in values if r["target"] == target]
        for where in dict.fromkeys(r["province"] for r in mine):
            outcome, scale = mine[0]["outcome"], mine[0]["scale"]
            data = DERIVED[outcome](records) if outcome in DERIVED else records[..., COL[outcome]]
            series = national_mean(data, scenario, axis=2) if where == NATIONAL else data[:, :, keys.index(where)]
            _median_band(
                ax,
                t,
                series * scale,
                colours[where],
                scenario.provinces[where].name if where in keys else "3-province mean",
            )
            for r in (r for r in mine if r["province"] == where):
                face = colours[where] if r["in_fit"] else "white"
                ax.errorbar(
                    r["year"] + 0.5, r["observed"], yerr=2 * r["sd"], color=colours[where], capsize=2, linewidth=1
                )
                ax.scatter(r["year"] + 0.5, r["observed"], color=face, edgecolor="black", zorder=5, s=22)
        ax.set_title(target, fontsize=8)
        scale = mine[0]["scale"]
        ax.set_ylabel(
            unit_of(mine[0]["outcome"]) if scale == 1 else f"{scale:g} x {unit_of(mine[0]['outcome'])}", fontsize=7
        )
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    for k in range(len(targets), n_rows * cols):
        axes[k // cols][k % cols].axis("off")
    if records.shape[0] > 1:
        simulated = f"Simulated median and {BAND[0]}-{BAND[1]}% band over {records.shape[0]} replicates"
    else:  # one run has no median and no band
        simulated = "One simulated run"
    fig.suptitle(
        f"{simulated} against every observed value (+- 2 sd of its error); "
        "open markers: not fitted (held out, or a check of weight 0)",
        fontsize=10,
    )
    save_png(fig, path, parameters_caption(scenario))


def _median_band(ax, t, series: np.ndarray, colour: str, label: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, mid, hi = np.nanpercentile(series, [BAND[0], 50, BAND[1]], axis=0)
    ax.plot(t, mid, color=colour, label=label, linewidth=1.2)
    if series.shape[0] > 1:
        ax.fill_between(t, lo, hi, color=colour, alpha=0.2, linewidth=0)


def fit_trajectories(scenario: Scenario, records: np.ndarray, rows: list[dict], path: Path) -> None:
    """Simulated trajectories (with the fitted parameters) against every observed value target, per province
    and for the population-weighted mean of the provinces ('national' targets)."""
    t = years(scenario, records.shape[1])
    keys = list(scenario.provinces)
    panels = [*keys, NATIONAL]
    fig, axes = figure(1, len(panels), figsize=(4.6 * len(panels), 4.2), sharey=True)
    axes = axes[0]
    series = (
        ("supply_index", "supply index", "tab:blue"),
        ("access_share", "internet at home", "0.5"),
        ("use_share_12m", "used online services (12 m)", "tab:red"),
        ("services_online_share", "procedures online", "tab:green"),
    )
    for ax, panel in zip(axes, panels):
        for col, label, color in series:
            if panel == NATIONAL:
                data = national_mean(records[:, :, :, COL[col]], scenario, axis=2)
            else:
                data = records[:, :, keys.index(panel), COL[col]]
            band_line(ax, t, data, label, color=color)
        for row in rows:
            if row["kind"] == "value" and row["where"].split()[0] == panel:
                ax.errorbar(
                    row["year"] + 0.5,
                    row["observed"],
                    yerr=2 * row["sd"],
                    fmt="o",
                    color="black",
                    markersize=4,
                    capsize=2,
                )
                ax.annotate(
                    row["target"],
                    (row["year"] + 0.5, row["observed"]),
                    fontsize=6,
                    textcoords="offset points",
                    xytext=(4, 3),
                )
        ax.set_title(
            scenario.provinces[panel].name
            if panel in scenario.provinces
            else "three provinces, population-weighted (vs national data)",
            fontsize=9,
        )
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        year_axis(ax)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Fitted model against observations (points: observed, bars: +-2 sd)" + band_note(records))
    save_png(fig, path)


def posterior_marginals(
    names: list[str],
    samples: np.ndarray,
    weights: np.ndarray,
    bounds: np.ndarray,
    path: Path,
    marginals: list[dict] | None = None,
    prior_draws: np.ndarray | None = None,
) -> None:
    """Per parameter: the posterior histogram over the prior's (grey), the title saying when the data leave
    the parameter nearly at its prior (posterior.marginals' `informed`)."""
    n = len(names)
    cols = min(n, 4)
    rows_ = -(-n // cols)
    fig, axes = figure(rows_, cols, figsize=(3.6 * cols, 3.1 * rows_))
    fig.subplots_adjust(hspace=0.75)  # two-line titles clear the tick labels of the row above
    for j, name in enumerate(names):
        ax = axes[j // cols][j % cols]
        span = tuple(bounds[j])
        if prior_draws is not None:
            ax.hist(prior_draws[:, j], bins=20, range=span, density=True, color="0.75", label="prior")
        ax.hist(
            samples[:, j],
            bins=20,
            weights=weights,
            range=span,
            density=True,
            color="tab:blue",
            alpha=0.7,
            label="posterior",
        )
        title = name
        if marginals is not None:
            m = marginals[j]
            title += f"\ncontraction {m['contraction']:.2f} [{m['contraction_p5']:.2f}, {m['contraction_p95']:.2f}]"
            title += {"yes": "", "no": " not informed", "undetermined": " ?"}[m["informed"]]
        ax.set_title(
            title, fontsize=8, color="black" if marginals is None or marginals[j]["informed"] == "yes" else "0.45"
        )
        ax.set_xlim(*span)
        ax.set_yticks([])
    for j in range(n, rows_ * cols):
        axes[j // cols][j % cols].axis("off")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle(
        "Posterior (blue) against the prior (grey); contraction = 1 - posterior var / prior var "
        "[90% bootstrap]; grey title: not informed, or '?' undetermined"
    )
    save_png(fig, path)


def posterior_correlations(names: list[str], corr: np.ndarray, path: Path) -> None:
    """Heat map of the posterior's pairwise correlations: pairs the data tie together (a ridge) rather than
    pin down one by one."""
    fig, axes = figure(1, 1, figsize=(0.45 * len(names) + 4, 0.45 * len(names) + 2.5))
    ax = axes[0][0]
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j and abs(corr[i, j]) >= 0.5:
                ax.text(j, i, f"{corr[i, j]:.1f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.7, label="posterior correlation")
    fig.suptitle("Posterior correlations (|r| >= 0.5 printed)")
    save_png(fig, path)


def place_labels(ax, xs: np.ndarray, ys: np.ndarray, texts: list[str], fontsize: float = 7) -> None:
    """Label each point with the first of a few places around it (right, below right, left, ...) where the label
    overlaps no label placed before it and no point: points of equal or near values got their labels printed over
    each other. Measured in pixels with the axes' limits as they are when called (after the last data is
    drawn); text width is estimated at 0.6 em a character."""
    ax.get_xlim(), ax.get_ylim()  # applies the pending autoscaling, which transData does not
    px = ax.figure.dpi / 72.0  # pixels a point
    points = ax.transData.transform(np.column_stack([xs, ys]))
    taken = [(x - 4 * px, y - 4 * px, x + 4 * px, y + 4 * px) for x, y in points]  # the markers
    places = [(4, 2, "left"), (4, -11, "left"), (-4, 2, "right"), (-4, -11, "right")]
    places += [(4, 11, "left"), (-4, 11, "right"), (4, -20, "left"), (-4, -20, "right")]

    def box(x, y, dx, dy, ha, width, height):
        x0 = x + dx * px - (width if ha == "right" else 0.0)
        return (x0, y + dy * px, x0 + width, y + dy * px + height)

    def free(b) -> bool:
        return not any(b[0] < t[2] and t[0] < b[2] and b[1] < t[3] and t[1] < b[3] for t in taken)

    for (x, y), xd, yd, text in zip(points, xs, ys, texts):
        width, height = 0.6 * fontsize * len(text) * px, 1.1 * fontsize * px
        dx, dy, ha = next((p for p in places if free(box(x, y, *p, width, height))), places[0])
        taken.append(box(x, y, dx, dy, ha, width, height))
        ax.annotate(text, (xd, yd), fontsize=fontsize, textcoords="offset points", xytext=(dx, dy), ha=ha, va="bottom")


def sensitivity_plots(folder: Path, study, scenario: Scenario, rows: list[dict], time_rows: list[dict]) -> list[Path]:
    """Bar charts (Sobol S1 and ST with intervals) or mu*-sigma plots (Morris) per outcome, a heat map of the
    main index (parameter x province/outcome), and the time-resolved indices."""
    folder = Path(folder)
    provinces = list(scenario.provinces)
    params = list(study.parameters)
    outputs = [o.name for o in study.stats]
    made = []
    caption = f"Parameters the study does not vary: {scenario.parameters.label()}"

    def get(province, output, param, index):
        for r in rows:
            if (r["province"], r["output"], r["parameter"], r["index"]) == (province, output, param, index):
                return r["value"], r["conf"]
        return np.nan, np.nan

    for output in outputs:
        fig, axes = panel_row(len(provinces), f"Sensitivity of {output}")
        to_label = []
        for ax, province in zip(axes, provinces):
            if study.method == "sobol":
                y = np.arange(len(params))
                for shift, index, color in ((-0.2, "S1", "tab:blue"), (0.2, "ST", "tab:orange")):
                    vals = np.array([get(province, output, p, index) for p in params])
                    ax.barh(
                        y + shift,
                        vals[:, 0],
                        height=0.4,
                        xerr=vals[:, 1],
                        color=color,
                        label=index,
                        error_kw={"elinewidth": 0.8},
                    )
                ax.set_yticks(y, params, fontsize=7)
                ax.axvline(0, color="0.4", linewidth=0.8)
                ax.set_xlabel("index")
            else:
                vals = np.array(
                    [[get(province, output, p, "mu_star")[0], get(province, output, p, "sigma")[0]] for p in params]
                )
                ax.scatter(vals[:, 0], vals[:, 1], color="tab:blue")
                to_label.append((ax, vals[:, 0], vals[:, 1], [p.split(".")[-1] for p in params]))
                ax.set_xlabel("mu* (mean |elementary effect|)")
                ax.set_ylabel("sigma")
            ax.set_title(scenario.provinces[province].name)
            ax.grid(alpha=0.3)
        if study.method == "sobol":
            axes[0].legend(fontsize=8)
        for args in to_label:  # after every panel: they share their y axis
            place_labels(*args)
        path = child(folder, f"{study.method}_{output}.png")
        save_png(fig, path, caption)
        made.append(path)

    main_index = "ST" if study.method == "sobol" else "mu_star"
    cols = [(prov, out) for out in outputs for prov in provinces]
    grid = np.array([[get(prov, out, p, main_index)[0] for prov, out in cols] for p in params])
    if study.method == "morris":  # scale each outcome's mu* to its largest, so columns compare
        with np.errstate(invalid="ignore", divide="ignore"):
            grid = grid / np.nanmax(np.abs(grid), axis=0, keepdims=True)
    fig, ((ax,),) = figure(figsize=(1.0 + 0.55 * len(cols), 1.2 + 0.35 * len(params)))
    im = ax.imshow(grid, cmap="viridis", aspect="auto", vmin=0, vmax=max(1e-9, float(np.nanmax(grid))))
    ax.set_xticks(range(len(cols)), [f"{out}\n{prov}" for prov, out in cols], rotation=90, fontsize=7)
    ax.set_yticks(range(len(params)), params, fontsize=7)
    fig.colorbar(im, ax=ax, label=main_index + (" (scaled per column)" if study.method == "morris" else ""))
    ax.set_title(f"{main_index}: which parameter drives which outcome")
    path = folder / "heatmap.png"
    save_png(fig, path, caption)
    made.append(path)

    if time_rows:
        tr = study.time_resolved
        index = "ST" if study.method == "sobol" else "mu_star"
        fig, axes = panel_row(len(provinces), f"Time-resolved {index} of {tr.outcome}")
        for ax, province in zip(axes, provinces):
            for i, p in enumerate(params):  # tab20: distinct colours for up to 20 parameters
                vals = [
                    next(
                        (
                            r["value"]
                            for r in time_rows
                            if r["province"] == province
                            and r["parameter"] == p
                            and r["index"] == index
                            and r["output"] == f"t={y}"
                        ),
                        np.nan,
                    )
                    for y in tr.years
                ]
                ax.plot(
                    tr.years,
                    vals,
                    marker="o",
                    markersize=3,
                    label=p,
                    color=colormaps["tab20"](i % 20),
                    linestyle="-" if i < 20 else "--",
                )
            ax.set_title(scenario.provinces[province].name)
            year_axis(ax)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(index)
        axes[-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        path = folder / f"time_resolved_{tr.outcome}.png"
        save_png(fig, path, caption)
        made.append(path)
    return made


STACK_STYLE = {"structure": ("0.55", ":"), "events": ("tab:blue", "--"), "fitted": ("tab:red", "-")}


def structure_vs_data(scenario: Scenario, stacks: dict[str, np.ndarray], labels: dict[str, str], path: Path) -> None:
    """Per province, the supply index and the 12-month use share of each stack (sourced structure only; + dated
    local events; + fitted will effects: analysis/calibration/stacks.py), with the published index values."""
    keys = list(scenario.provinces)
    fig, axes = figure(2, len(keys), figsize=(4.6 * len(keys), 7.2), sharey="row")
    points = supply_index_points()
    for stack, records in stacks.items():
        t = years(scenario, records.shape[1])
        color, dash = STACK_STYLE[stack]
        for p in range(len(keys)):
            band_line(axes[0][p], t, records[:, :, p, COL["supply_index"]], labels[stack], color=color, linestyle=dash)
            band_line(axes[1][p], t, records[:, :, p, COL["use_share_12m"]], labels[stack], color=color, linestyle=dash)
    for p, key in enumerate(keys):
        for pt in (pt for pt in points if pt.province == key):
            axes[0][p].scatter(pt.year + 0.5, pt.value, color="black", marker="o", zorder=5, s=25)
            axes[0][p].annotate(
                pt.label, (pt.year + 0.5, pt.value), textcoords="offset points", xytext=(-4, 4), fontsize=6, ha="right"
            )
        axes[0][p].set_title(scenario.provinces[key].name)
        axes[0][p].set_ylim(0, 1)
        year_axis(axes[1][p])
        for ax in (axes[0][p], axes[1][p]):
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("supply index S (0-1)")
    axes[1][0].set_ylabel("used online services, last 12 months")
    axes[0][0].legend(fontsize=7, loc="lower right")
    some = next(iter(stacks.values()))
    fig.suptitle("What the sourced structure gives, and what local events and the fitted will add" + band_note(some))
    save_png(fig, path)


# ---- scenario discovery and policy search ---------------------------------------------------------------


def discovery_plots(folder: Path, found, name: str) -> list[Path]:
    """PRIM's peeling trajectory (coverage against density, the chosen box ringed) and the chosen box's limits
    on each restricted input's sampled range (`found`: analysis.discovery.Discovery)."""
    folder = Path(folder)
    made = []
    if found.trajectory:
        fig, ax = figure(figsize=(6.4, 4.8))
        ax = ax[0, 0]
        cov = np.array([t["coverage"] for t in found.trajectory])
        den = np.array([t["density"] for t in found.trajectory])
        dims = np.array([t["res_dim"] for t in found.trajectory])
        points = ax.scatter(cov, den, c=dims, cmap="viridis", s=22)
        fig.colorbar(points, ax=ax, label="restricted inputs")
        if found.box is not None:
            ax.scatter(
                [found.box.coverage],
                [found.box.density],
                s=160,
                facecolors="none",
                edgecolors="red",
                label=f"chosen: box {found.box.index}",
            )
            ax.legend(loc="lower left")
        ax.set(
            xlabel="coverage (share of all cases in the box)",
            ylabel="density (share of the box that are cases)",
            xlim=(0, 1.05),
            ylim=(0, 1.05),
            title=f"{name}: PRIM peeling trajectory",
        )
        ax.grid(alpha=0.3)
        made.append(child(folder, "trajectory.png"))
        save_png(
            fig, made[-1], "Each point is a box; peeling moves from the whole sample (right) to smaller, denser boxes."
        )
    if found.box is not None and found.box.limits:
        names = list(found.box.limits)
        fig, ax = figure(figsize=(7.5, 0.6 * len(names) + 1.6))
        ax = ax[0, 0]
        for k, n in enumerate(names):
            rlo, rhi = found.ranges[n]
            lo, hi = found.box.limits[n]
            width = rhi - rlo or 1.0
            ax.plot([0, 1], [k, k], color="0.8", lw=8, solid_capstyle="butt")
            ax.plot([(lo - rlo) / width, (hi - rlo) / width], [k, k], color="tab:blue", lw=8, solid_capstyle="butt")
            tol = 1e-9 * width
            if lo > rlo + tol:  # only the sides the box restricts are labelled
                ax.text((lo - rlo) / width, k + 0.28, f"{lo:.3g}", ha="center", fontsize=8)
            if hi < rhi - tol:
                ax.text((hi - rlo) / width, k + 0.28, f"{hi:.3g}", ha="center", fontsize=8)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.6, len(names) - 0.3)
        ax.set_xlim(-0.05, 1.05)
        ax.set_xlabel("position in the sampled range (0 = lowest sampled, 1 = highest)")
        b = found.box
        ax.set_title(f"Box {b.index}: coverage {b.coverage:.2f}, density {b.density:.2f}, mass {b.mass:.2f}")
        made.append(child(folder, "box.png"))
        save_png(fig, made[-1], "Grey: the sampled range; blue: the box's limits.")
    return made


def pareto_plot(path: Path, cost: np.ndarray, value: np.ndarray, share: np.ndarray, labels: dict, marks: dict) -> None:
    """Rechecked Pareto candidates: cost against the first outcome objective, coloured by the share of draws
    meeting the target; `marks`: {label: (cost, value, share or None)} drawn as named points (status quo, cheapest
    robust), filled with their share's colour where given. The dashed line is the rule's level for the plotted
    outcome: a mean above it need not meet the target, which is a share of draws (the colour)."""
    fig, ax = figure(figsize=(7.2, 4.8))
    ax = ax[0, 0]
    cmap = colormaps["RdYlGn"]
    points = ax.scatter(cost, value, c=share, cmap=cmap, vmin=0, vmax=1, s=36, edgecolors="0.3", linewidths=0.5)
    fig.colorbar(points, ax=ax, label=labels["share"])
    if labels.get("target") is not None:
        level = f"the rule's level, {labels['target']:g} (not the target: that is the share of draws, colour)"
        ax.axhline(labels["target"], color="0.4", ls="--", lw=1, label=level)
    for (name, (x, y, mark_share)), marker in zip(marks.items(), ("s", "*", "D")):
        face = "none" if mark_share is None or not np.isfinite(mark_share) else cmap(float(mark_share))
        ax.scatter([x], [y], marker=marker, s=170, facecolors=face, edgecolors="black", label=name)
    if marks or labels.get("target") is not None:  # under the plot: inside, it hid the status quo in a dense set
        fig.subplots_adjust(bottom=0.27)
        fig.legend(*ax.get_legend_handles_labels(), loc="lower left", bbox_to_anchor=(0.01, 0.01), fontsize=8)
    ax.set(xlabel=labels["x"], ylabel=labels["y"], title=labels["title"])
    ax.grid(alpha=0.3)
    save_png(fig, path, labels.get("caption", ""))
