"""Watch a run in the browser: Mesa's SolaraViz page for egovsim.

    egovsim serve [SCENARIO] [--port 8765]            (or: solara run egovsim/app/page.py)

The page follows the causal chain of the model: a provincial leader's decisions (the levers in the sidebar)
move civil servants' use of the e-office system, which sets how reliably citizens' online dossiers go
through, which, with internet access and contacts who use, moves citizens' adoption. It shows:

- the network: per province, the leader (star), a sample of civil servants (diamonds) and a sample of the
  citizens each of them serves (squares urban, circles rural, thick black outline ethnic minority; blue
  users, white online but not users, grey without internet at home);
- time series from the model's DataCollector: citizens' adoption by group, internet access by group,
  civil servants' genuine and ceremonial use with the leader's will, the supply index against the
  observed indices, and the informal-payment index;
- the current year, the levers in effect, the latest events, and a legend.

Each browser tab builds its own model (inside the `Page` component), so one tab's Step, Play or Reset never
touches another's. The scenario is read from $EGOVSIM_SCENARIO (default scenarios/three_provinces.yaml) at
the scale in $EGOVSIM_SCALE (default: the scenario's own); only the sample is drawn, never every citizen.
"""

from __future__ import annotations

import html
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import solara
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from egovsim.config.observations import supply_index_points
from egovsim.config.scenario import DEFAULT_SCENARIO, Scenario, with_values
from egovsim.errors import clipped
from egovsim.model.costs import load_with_budgets
from egovsim.model.model import EGovModel
from egovsim.model.outcomes import COL
from egovsim.model.population import CEREMONIAL, GENUINE, NON_USER

SCENARIO_FILE = str(Path(os.environ.get("EGOVSIM_SCENARIO") or DEFAULT_SCENARIO).resolve())
SCALE = float(os.environ["EGOVSIM_SCALE"]) if os.environ.get("EGOVSIM_SCALE") else None
OVERRIDES = tuple(json.loads(os.environ.get("EGOVSIM_SET") or "[]"))  # egovsim serve --set key.path=value

ALL = "all provinces"
AS_SCENARIO = "as in scenario"
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
PROVINCE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
GROUP_STYLE = {
    "urban": ("#1f77b4", "-"),
    "rural": ("#8c564b", "-"),
    "majority": ("#7f7f7f", "--"),
    "minority": ("#000000", "--"),
}
USER, ONLINE, OFFLINE = "#1f77b4", "#ffffff", "#c7c7c7"  # citizens' fill colours
SERVANT_COLOURS = {NON_USER: "#d9d9d9", CEREMONIAL: "#ff7f0e", GENUINE: "#2ca02c"}
LEADER_COLOUR = "#6a3d9a"


@lru_cache(maxsize=8)
def base_scenario(path: str, scale: float | None = None, overrides: tuple[str, ...] = ()) -> Scenario:
    return load_with_budgets(path, list(overrides), scale)


def apply_levers(
    base: Scenario,
    province: str,
    training: float,
    infrastructure: float,
    software_strategy: str,
    enforcement: float,
    roadmap_clarity: float | None,
) -> Scenario:
    """The scenario with the page's levers: spending and enforcement as multiples of the scenario's values
    (1 = as in the scenario), for one province or all; roadmap clarity (central) as a value."""
    keys = list(base.provinces) if province == ALL else [province]
    values: dict = {}
    for key in keys:
        if key not in base.provinces:
            raise ValueError(f"unknown province {clipped(key)}: the scenario has {', '.join(base.provinces)}")
        pol, at = base.provinces[key].policy, f"provinces.{key}.policy."
        if training != 1:
            values[at + "training"] = min(100.0, pol.training * float(training))
        if infrastructure != 1:
            values[at + "infrastructure"] = min(100.0, pol.infrastructure * float(infrastructure))
        if software_strategy in ("local", "fragmented", "platform") and software_strategy != pol.software_strategy:
            values[at + "software_strategy"] = software_strategy
        if enforcement != 1:
            values[at + "detection_prob"] = min(1.0, pol.detection_prob * float(enforcement))
    if roadmap_clarity is not None and float(roadmap_clarity) != base.central.initial.roadmap_clarity:
        values["central.initial.roadmap_clarity"] = float(roadmap_clarity)
    return with_values(base, values, source="levers in the browser") if values else base


@dataclass
class Sample:
    """Who the network view draws for one province, and where."""

    servants: np.ndarray  # civil-servant rows
    citizens: np.ndarray  # citizen rows
    servant_xy: np.ndarray  # (n, 2)
    citizen_xy: np.ndarray  # (m, 2)
    citizen_servant: np.ndarray  # index into `servants` of each sampled citizen's civil servant


def draw_sample(model: EGovModel, p: int, rng: np.random.Generator, n_servants: int, per_servant: int) -> Sample:
    """A readable sample of one province: civil servants (commune and provincial staff in proportion to the
    citizens they serve), up to `per_servant` citizens each, laid out radially around the leader (no
    force-directed layout: positions are computed, not searched)."""
    cs, cit = model.civil_service, model.citizens
    staff = model.civil_service.of_province[p]
    staff = staff[model.citizens_per_servant[staff] > 0]
    commune, office = staff[cs.commune[staff]], staff[~cs.commune[staff]]
    n = min(n_servants, staff.size)
    n_commune = min(commune.size, round(n * commune.size / max(staff.size, 1)))
    n_office = min(office.size, n - n_commune)
    servants = np.concatenate(
        [rng.choice(commune, n_commune, replace=False), rng.choice(office, n_office, replace=False)]
    ).astype(np.int64)
    angles = np.pi / 2 + 2 * np.pi * np.arange(servants.size) / max(servants.size, 1)
    servant_xy = np.column_stack([np.cos(angles), np.sin(angles)])
    start, size = cit.province_start[p], cit.province_sizes[p]
    served_by = cit.civil_servant[start : start + size]
    rows, owner, xy = [], [], []
    spread = np.pi / max(servants.size, 1) * 0.8
    for i, s in enumerate(servants):
        theirs = start + np.flatnonzero(served_by == s)
        picked = np.sort(rng.choice(theirs, min(per_servant, theirs.size), replace=False))
        offsets = np.linspace(-spread, spread, picked.size) if picked.size > 1 else np.zeros(1)
        for row, off in zip(picked, offsets):
            rows.append(row)
            owner.append(i)
            xy.append((2.1 * np.cos(angles[i] + off), 2.1 * np.sin(angles[i] + off)))
    return Sample(
        servants,
        np.array(rows, dtype=np.int64),
        servant_xy,
        np.array(xy, dtype=float).reshape(-1, 2),
        np.array(owner, dtype=np.int64),
    )


class EGovViz(EGovModel):
    """EGovModel built from plain keyword arguments (SolaraViz's model_params), with a network sample.

    Levers: `training`, `infrastructure` and `enforcement` (the detection chance of informal payments) are
    multiples of the scenario's values for `province` (or all provinces); `software_strategy` replaces the
    strategy; `roadmap_clarity` is the central government's initial clarity.
    """

    def __init__(
        self,
        scenario_file: str = SCENARIO_FILE,
        scale: float | None = SCALE,
        overrides: tuple[str, ...] = OVERRIDES,
        seed: int | None = None,
        province: str = ALL,
        training: float = 1.0,
        infrastructure: float = 1.0,
        software_strategy: str = AS_SCENARIO,
        enforcement: float = 1.0,
        roadmap_clarity: float | None = None,
        sample_servants: int = 6,
        sample_citizens: int = 5,
    ):
        base = base_scenario(str(scenario_file), None if scale is None else float(scale), tuple(overrides))
        scenario = apply_levers(
            base, province, training, infrastructure, software_strategy, enforcement, roadmap_clarity
        )
        super().__init__(scenario, None if seed is None else int(seed), collect=True)
        self.levers = {
            "province": province,
            "training": training,
            "infrastructure": infrastructure,
            "software_strategy": software_strategy,
            "enforcement": enforcement,
        }
        # the sample has its own random stream: drawing it leaves the model's stream (and results) unchanged
        rng = np.random.default_rng([self.seed, 1])
        self.samples = [
            draw_sample(self, p, rng, int(sample_servants), int(sample_citizens)) for p in range(len(self.leaders))
        ]

    def series(self, province: str, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(years, values) of one outcome so far, from the DataCollector."""
        values = np.asarray(self.datacollector.model_vars[f"{province}/{column}"], dtype=float)
        return self.config.start_year + np.arange(values.size) * self.dt, values


# ---- what the page shows -----------------------------------------------------------------------------------

focus = solara.reactive("")  # province of the detail plots (per browser session), "" = the first


def focus_key(model: EGovViz) -> str:
    key = focus.value
    if key not in model.province_ids:
        lever = model.levers["province"]
        key = lever if lever in model.province_ids else model.province_ids[0]
    return key


def date_label(model: EGovViz) -> str:
    month = round(model.step_index * 12 / model.config.steps_per_year)
    year = model.config.start_year + month // 12
    return f"1 {MONTHS[month % 12]} {year}"


def legend_html(model: EGovViz) -> tuple[str, str]:
    """The HTML of the year (heading) and of the levers table. Every text in it comes from a file (province
    keys, scenario and event names) or from the model: each is escaped, so no file can put markup, let alone
    a script, into the page."""
    e = html.escape  # quotes too: keys also go into attribute values
    sc = model.config
    rows = []
    for p, (key, leader) in enumerate(zip(model.province_ids, model.leaders)):
        pol, rec = leader.policy, model.records[model.step_index, p]
        rows.append(
            f"<tr><td><b>{e(key)}</b></td><td>{leader.will:.2f}</td><td>{pol.training:g}</td>"
            f"<td>{pol.infrastructure:g}</td><td>{e(str(pol.software_strategy))}</td><td>{pol.detection_prob:g}</td>"
            f"<td>{rec[COL['civil_servant_genuine_share']]:.2f}</td>"
            f"<td class='egov-access' data-province='{e(key)}'>{rec[COL['access_share']]:.3f}</td>"
            f"<td class='egov-adopted' data-province='{e(key)}'>{rec[COL['adopted_share']]:.3f}</td>"
            f"<td>{rec[COL['supply_index']]:.3f}</td></tr>"
        )
    events = sorted([ev for leader in model.leaders for ev in leader.history] + model.central.history)[-1:]
    event_html = "".join(f"{d:.1f} {e(name)}" for d, name in events) or "none yet"
    n_sample = sum(s.citizens.size for s in model.samples)
    scale = ", ".join(f"{s:g}" for s in sorted({p.scale for p in sc.provinces.values()}))
    year = f"""
<div class="egov-year" style="font-size:1.8em;font-weight:600;line-height:1.2">Year {model.year:.2f}</div>
<div class="egov-date">{e(date_label(model))} &middot; month {model.step_index} of {model.n_steps} &middot; scenario
<b>{e(sc.name)}</b>, seed {model.seed}</div>"""
    body = f"""
<div style="color:#555;font-size:0.82em">{model.citizens.n:,} simulated citizens (scale {e(scale)} per real
person) and {model.civil_service.n:,} civil servants; the network draws {n_sample} citizens.</div>
<style>.egov-levers td, .egov-levers th {{padding: 0 5px 0 0}}</style>
<table style="border-collapse:collapse;margin-top:4px;font-size:0.8em" class="egov-levers">
<tr style="text-align:left"><th>province</th><th>will</th><th>training</th><th>infra</th><th>software</th>
<th>detect.</th><th>CS genuine</th><th>access</th><th>adopted</th><th>supply idx</th></tr>{"".join(rows)}</table>
<div style="font-size:0.8em;margin-top:4px">Roadmap clarity {model.central.levers.roadmap_clarity:.2f}.
Latest event: {event_html}.</div>
<div style="font-size:0.78em;color:#444;margin-top:2px">Levers: training, infrastructure and enforcement
(detection of informal payments) are multiples of the scenario's values; <b>Reset</b> applies them.</div>
"""
    return year, body


@solara.component
def YearAndLegend(model: EGovViz):
    """The current year, what is simulated, the levers and outcomes now, the latest events."""
    update_counter.get()
    year, body = legend_html(model)
    with solara.Column(gap="2px", style={"padding": "8px", "max-height": "385px", "overflow-y": "auto"}):
        solara.HTML(tag="div", unsafe_innerHTML=year)
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Text("Detail plots:", style={"font-size": "0.85em"})
            solara.ToggleButtonsSingle(
                value=focus_key(model), values=list(model.province_ids), on_value=focus.set, dense=True
            )
        solara.HTML(tag="div", unsafe_innerHTML=body)


class Chart:
    """A figure built once per model (and province) and updated in place each step, sent to the browser as
    SVG with text left to the browser's fonts: rebuilding axes every step, or rasterising and compressing
    PNGs, would double the time a Step takes in the browser."""

    def __init__(self, model: EGovViz, key: str | None = None):
        self.model, self.key = model, key
        self.fig = Figure(figsize=(6.0, 4.0))
        self.build()

    def build(self) -> None: ...

    def update(self) -> None: ...

    def svg(self) -> bytes:
        self.update()
        buf = io.BytesIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "egovsim"}):
            self.fig.savefig(buf, format="svg")
        return buf.getvalue()


class TimeChart(Chart):
    """Lines of outcomes over the scenario's years, from the model's DataCollector."""

    title = ""
    ylabel = "share of citizens"
    ymax = 1.0  # the y axis grows with the data up to this (low shares stay readable)
    legend_loc = "upper left"
    top = 0.0  # the y axis shows at least this (e.g. observed points)

    def lines(self) -> list[tuple[str, str, dict]]:
        """(DataCollector province, column, line style incl. label) of each line."""
        return []

    def build(self) -> None:
        m = self.model
        self.fig.subplots_adjust(left=0.11, right=0.98, top=0.92, bottom=0.08)
        ax = self.ax = self.fig.add_subplot()
        self.series = [(key, column, ax.plot([], [], **style)[0]) for key, column, style in self.lines()]
        ax.set_xlim(m.config.start_year, m.config.end_year + 1)
        ax.set_ylabel(self.ylabel)
        ax.grid(alpha=0.3)
        ax.set_title(self.title.format(name=m.config.provinces[self.key].name if self.key else ""), fontsize=9.5)
        self.extra(ax)
        ax.legend(fontsize=7.5, loc=self.legend_loc)

    def extra(self, ax) -> None: ...

    def update(self) -> None:
        top = self.top
        for key, column, line in self.series:
            x, y = self.model.series(key, column)
            line.set_data(x, y)
            if np.isfinite(y).any():
                top = max(top, float(np.nanmax(y)))
        self.ax.set_ylim(0, min(self.ymax, max(0.05, top * 1.15)))


class CitizenUseChart(TimeChart):
    title = "Citizens using online public services, by group: {name}"

    def lines(self):
        k = self.key
        return [
            (k, f"{g}_adopted_share", {"color": c, "ls": ls, "label": f"{g}: adopted"})
            for g, (c, ls) in GROUP_STYLE.items()
        ] + [(k, "use_share_12m", {"color": USER, "lw": 2.6, "alpha": 0.4, "label": "all: used in the last 12 months"})]


class AccessChart(TimeChart):
    title = "Internet at home, by group: {name}"

    def lines(self):
        k = self.key
        return [(k, f"{g}_access_share", {"color": c, "ls": ls, "label": g}) for g, (c, ls) in GROUP_STYLE.items()] + [
            (k, "access_share", {"color": "#17becf", "lw": 2.6, "alpha": 0.5, "label": "all"})
        ]


class CivilServantChart(TimeChart):
    title = "Leader and civil servants' e-office use: {name}"
    ylabel = "share / level"

    def lines(self):
        k = self.key
        return [
            (k, "civil_servant_genuine_share", {"color": SERVANT_COLOURS[GENUINE], "lw": 2, "label": "genuine use"}),
            (
                k,
                "civil_servant_ceremonial_share",
                {"color": SERVANT_COLOURS[CEREMONIAL], "lw": 2, "label": "ceremonial use"},
            ),
            (k, "leader_will", {"color": LEADER_COLOUR, "ls": "--", "label": "leader's will"}),
            (k, "reliability", {"color": "#555555", "ls": ":", "label": "online dossiers that go through"}),
        ]


class IndexChart(TimeChart):
    title = "Supply index, simulated (lines) and observed (dots)"
    ylabel = "index (0-1)"

    def lines(self):
        return [
            (k, "supply_index", {"color": c, "lw": 2, "label": self.model.config.provinces[k].name})
            for k, c in zip(self.model.province_ids, PROVINCE_COLOURS)
        ]

    def extra(self, ax) -> None:
        colours = dict(zip(self.model.province_ids, PROVINCE_COLOURS))
        points = [pt for pt in _observed() if pt.province in colours]
        if points:
            ax.scatter(
                [pt.year for pt in points],
                [pt.value for pt in points],
                s=30,
                zorder=3,
                c=[colours[pt.province] for pt in points],
                edgecolors="black",
            )
            ax.scatter([], [], color="white", edgecolors="black", label="observed (MIC, DTI digital government)")
            self.top = max(pt.value for pt in points)


class InformalPaymentChart(TimeChart):
    title = "Informal-payment index (dealings with a payment, last 12 months)"
    ylabel = "share of dealings"
    legend_loc = "upper right"

    def lines(self):
        return [
            (k, "informal_payment_index", {"color": c, "lw": 2, "label": self.model.config.provinces[k].name})
            for k, c in zip(self.model.province_ids, PROVINCE_COLOURS)
        ]


@lru_cache(maxsize=1)
def _observed():
    return supply_index_points()


class NetworkChart(Chart):
    """Per province: the leader, sampled civil servants and the citizens they serve, coloured by state."""

    def build(self) -> None:
        m = self.model
        P = len(m.leaders)
        rows = (P + 2) // 2
        self.fig.set_size_inches(6.0, 2.25 * rows)
        self.fig.subplots_adjust(
            left=0.01, right=0.99, top=0.86 if rows > 1 else 0.72, bottom=0.01, wspace=0.05, hspace=0.3
        )
        axes = self.fig.subplots(rows, 2, squeeze=False).ravel()
        self.panels = []
        for ax, sample, leader in zip(axes, m.samples, m.leaders):
            cit = m.citizens
            urban, minority = cit.urban[sample.citizens], cit.minority[sample.citizens]
            to_leader = LineCollection(
                [[(0, 0), tuple(xy)] for xy in sample.servant_xy], colors=LEADER_COLOUR, alpha=0.5, zorder=1
            )
            to_citizens = LineCollection(
                [[tuple(sample.servant_xy[i]), tuple(xy)] for i, xy in zip(sample.citizen_servant, sample.citizen_xy)],
                zorder=1,
            )
            ax.add_collection(to_leader)
            ax.add_collection(to_citizens)
            marks = []
            for mask, marker in ((urban, "s"), (~urban, "o")):
                art = ax.scatter(
                    *sample.citizen_xy[mask].T,
                    s=46,
                    marker=marker,
                    zorder=3,
                    edgecolors=np.where(minority[mask], "#000000", "#777777"),
                    linewidths=np.where(minority[mask], 2.2, 0.6),
                )
                marks.append((mask, art))
            servants = ax.scatter(
                *sample.servant_xy.T, s=80, marker="D", edgecolors="#333333", linewidths=0.7, zorder=4
            )
            star = ax.scatter(
                [0],
                [0],
                s=420,
                marker="*",
                c=[leader.will],
                cmap="Purples",
                vmin=-0.2,
                vmax=1.0,
                edgecolors=LEADER_COLOUR,
                linewidths=1.0,
                zorder=5,
            )
            title = ax.set_title("", fontsize=8)
            ax.set_xlim(-2.6, 2.6)
            ax.set_ylim(-2.6, 2.6)
            ax.set_aspect("equal")
            ax.axis("off")
            self.panels.append((sample, leader, to_leader, to_citizens, marks, servants, star, title))
        legend_ax = axes[P]
        legend_ax.axis("off")
        legend_ax.legend(handles=NETWORK_LEGEND, loc="center", fontsize=7.5, frameon=False)
        for ax in axes[P + 1 :]:
            ax.axis("off")
        self.suptitle = self.fig.suptitle("", fontsize=10)

    def update(self) -> None:
        m = self.model
        cs, cit = m.civil_service, m.citizens
        for p, (sample, leader, to_leader, to_citizens, marks, servants, star, title) in enumerate(self.panels):
            state = cs.state[sample.servants]
            to_leader.set_linewidth(0.5 + 3 * leader.will * leader.policy.monitoring)  # the leader's pull
            genuine = state[sample.citizen_servant] == GENUINE
            to_citizens.set_color(np.where(genuine, "#2ca02c", "#bbbbbb"))
            to_citizens.set_linewidth(np.where(genuine, 1.4, 0.7))
            rows = sample.citizens
            fill = np.where(cit.active[rows], USER, np.where(cit.access[rows], ONLINE, OFFLINE))
            for mask, art in marks:
                art.set_facecolor(fill[mask])
            servants.set_facecolor([SERVANT_COLOURS[int(s)] for s in state])
            star.set_array(np.array([leader.will]))
            lo, n = cit.province_start[p], cit.province_sizes[p]
            genuine_share = (cs.state[cs.province == p] == GENUINE).mean()
            title.set_text(
                f"{leader.name}\nwill {leader.will:.2f} · genuine CS {genuine_share:.0%}"
                f" · users {cit.active[lo : lo + n].mean():.0%}"
            )
        self.suptitle.set_text(f"Who serves whom (sample), {date_label(m)}")


NETWORK_LEGEND = [
    Line2D([], [], marker="*", ls="", ms=13, mfc="#9e9ac8", mec=LEADER_COLOUR, label="leader (darker: more will)"),
    Line2D(
        [], [], marker="D", ls="", ms=7, mfc=SERVANT_COLOURS[GENUINE], mec="#333", label="civil servant: genuine use"
    ),
    Line2D(
        [],
        [],
        marker="D",
        ls="",
        ms=7,
        mfc=SERVANT_COLOURS[CEREMONIAL],
        mec="#333",
        label="civil servant: ceremonial use",
    ),
    Line2D([], [], marker="D", ls="", ms=7, mfc=SERVANT_COLOURS[NON_USER], mec="#333", label="civil servant: no use"),
    Line2D([], [], marker="o", ls="", ms=7, mfc=USER, mec="#777", label="citizen using online services"),
    Line2D([], [], marker="o", ls="", ms=7, mfc=ONLINE, mec="#777", label="citizen online, not a user"),
    Line2D([], [], marker="o", ls="", ms=7, mfc=OFFLINE, mec="#777", label="citizen without internet"),
    Line2D([], [], marker="s", ls="", ms=7, mfc=ONLINE, mec="#777", label="square urban, circle rural"),
    Line2D([], [], marker="o", ls="", ms=7, mfc=ONLINE, mec="#000", mew=2.2, label="thick outline: ethnic minority"),
    Line2D([], [], color="#2ca02c", lw=1.4, label="link to a genuine user"),
]


@solara.component
def ChartView(model: EGovViz, chart_class: type[Chart], per_province: bool):
    """One Chart, redrawn when the model steps or is rebuilt (or when the province shown changes)."""
    update_counter.get()
    key = focus_key(model) if per_province else None
    chart = solara.use_memo(lambda: chart_class(model, key), [model, key])
    svg = solara.use_memo(chart.svg, [chart, model.step_index])
    return solara.Image(svg, format="svg+xml", width="100%")


def chart_component(chart: type, per_province: bool):
    """A page component that draws `chart` (SolaraViz calls each component with the model)."""

    def component(model):
        return ChartView(model, chart, per_province)

    component.__name__ = chart.__name__.replace("Chart", "View")
    return component


COMPONENTS = [
    YearAndLegend,
    *(
        chart_component(chart, per_province)
        for chart, per_province in [
            (NetworkChart, False),
            (CivilServantChart, True),
            (CitizenUseChart, True),
            (AccessChart, True),
            (IndexChart, False),
            (InformalPaymentChart, False),
        ]
    ),
]


def model_params(base: Scenario) -> dict:
    """SolaraViz inputs: every key is a keyword argument of EGovViz."""
    return {
        "scenario_file": SCENARIO_FILE,
        "scale": SCALE,
        "overrides": OVERRIDES,
        "province": {"type": "Select", "value": ALL, "values": [ALL, *base.provinces], "label": "Levers apply to"},
        "training": {
            "type": "SliderFloat",
            "value": 1.0,
            "min": 0.0,
            "max": 3.0,
            "step": 0.25,
            "label": "Training (× scenario)",
        },
        "infrastructure": {
            "type": "SliderFloat",
            "value": 1.0,
            "min": 0.0,
            "max": 3.0,
            "step": 0.25,
            "label": "Infrastructure (× scenario)",
        },
        "software_strategy": {
            "type": "Select",
            "value": AS_SCENARIO,
            "values": [AS_SCENARIO, "local", "fragmented", "platform"],
            "label": "Software strategy",
        },
        "enforcement": {
            "type": "SliderFloat",
            "value": 1.0,
            "min": 0.0,
            "max": 10.0,
            "step": 0.5,
            "label": "Enforcement (× scenario)",
        },
        "roadmap_clarity": {
            "type": "SliderFloat",
            "value": base.central.initial.roadmap_clarity,
            "min": 0.0,
            "max": 1.0,
            "step": 0.05,
            "label": "Roadmap clarity",
        },
        "seed": {
            "type": "SliderInt",
            "value": base.seed,
            "min": 0,
            "max": max(99_999, base.seed),
            "step": 1,
            "label": "Seed",
        },
    }


@solara.component
def Page():
    base = base_scenario(SCENARIO_FILE, SCALE, OVERRIDES)
    # built once per browser tab (this component's own state): tabs never share a model
    model = solara.use_memo(lambda: EGovViz(seed=base.seed), [])
    return SolaraViz(
        model,
        components=COMPONENTS,
        model_params=model_params(base),
        name=f"egovsim: e-government adoption ({base.name})",
        play_interval=50,
    )
