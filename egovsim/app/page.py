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

The browser draws the charts (egovsim/app/frontend.py) from data: each Step sends the time charts only the
months they have not shown, and the network only its colours, so a Step costs milliseconds on the server.

Each browser tab builds its own model (inside the `Page` component), so one tab's Step, Play or Reset never
touches another's. The scenario is read from $EGOVSIM_SCENARIO (default scenarios/three_provinces.yaml) at
the scale in $EGOVSIM_SCALE (default: the scenario's own); only the sample is drawn, never every citizen.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import solara
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from egovsim.app.frontend import NetworkWidget, TimeChartWidget
from egovsim.config.observations import supply_index_points
from egovsim.config.scenario import DEFAULT_SCENARIO, Scenario, apply_values, with_values
from egovsim.errors import InputError, clipped
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


def posterior_draw(base: Scenario, draw: int) -> Scenario:
    """A calibrated scenario at draw `draw` (1, 2, ...) of its posterior: the draw `egovsim run --replicates`
    gives replicate draw - 1 (the same master seed, the scenario's), restricted as there to what the scenario
    does not set itself; 0 leaves the file's values, the posterior medians."""
    folder = base.parameters.draws_from
    if draw <= 0 or not folder:
        return base
    from egovsim.analysis.calibration.posterior import scenario_draws

    scenario = apply_values(base, scenario_draws(base, draw, base.seed, base.name)[draw - 1], base.name)
    return dataclasses.replace(scenario, parameters=base.parameters.drawn_from(folder))


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
        draw: int = 0,
    ):
        base = base_scenario(str(scenario_file), None if scale is None else float(scale), tuple(overrides))
        self.draw = max(0, int(draw)) if base.parameters.draws_from else 0
        self.draw_error = ""  # a draw the posterior cannot give (a bad posterior.csv, a clash with --set): medians
        try:
            drawn = posterior_draw(base, self.draw)
        except InputError as exc:
            drawn, self.draw, self.draw_error = base, 0, f"draw {int(draw)} not run, the medians instead: {exc}"
        scenario = apply_levers(
            drawn,
            province,
            training,
            infrastructure,
            software_strategy,
            enforcement,
            roadmap_clarity,
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

    def _wrapped_step(self) -> None:
        """Mesa's step (its clock, then ours) while the scenario has steps left; after the last, nothing moves:
        Mesa's wrapper would advance its clock on every further call, and the page's Time would pass the last
        month (mesa.Model._wrapped_step, which Model.__init__ binds as `step`)."""
        if self.step_index >= self.n_steps:
            self.running = False
            return
        super()._wrapped_step()

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


STEP_NAMES = {1: "year", 4: "quarter", 12: "month", 52: "week", 365: "day"}


def step_label(model: EGovViz) -> str:
    """'month 5 of 300' at monthly steps; the scenario's own step otherwise ('week 5 of 1040', 'step 5 of 60')."""
    name = STEP_NAMES.get(model.config.steps_per_year, "step")
    return f"{name} {model.step_index} of {model.n_steps}"


def date_label_of(year: float) -> str:
    """'1 July 2025' for 2025.5: the first of the month a decimal year falls in."""
    whole = int(year)
    return f"1 {MONTHS[min(11, round((year - whole) * 12))]} {whole}"


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
    mergers = "".join(
        f"<br>{e(date_label_of(m.date))}: {e(' + '.join(sc.provinces[k].name for k in m.members))} &rarr; "
        f"<b>{e(m.label)}</b> ({'in force' if model.year >= m.date else 'due'}; leader {e(m.leader)}, policy "
        f"{e(m.policy)}, systems {e(m.systems)})"
        for m in sc.mergers
    )
    scale = ", ".join(f"{s:g}" for s in sorted({p.scale for p in sc.provinces.values()}))
    year = f"""
<div class="egov-year" style="font-size:1.8em;font-weight:600;line-height:1.2">Year {model.year:.2f}</div>
<div class="egov-date">{e(date_label(model))} &middot; {step_label(model)} &middot; scenario
<b>{e(sc.name)}</b>, seed {model.seed}</div>"""
    body = f"""
<div class="egov-parameters" style="font-size:0.82em;margin-bottom:2px">Parameters: <b>{e(sc.parameters.label())}</b>{
        f"; this run: draw {model.draw}" if model.draw else ""
    }{
        f"<br><span class='egov-draw-error' style='color:#b00'>{e(model.draw_error)}</span>" if model.draw_error else ""
    }</div>
<div style="color:#555;font-size:0.82em">{model.citizens.n:,} simulated citizens (scale {e(scale)} per real
person) and {model.civil_service.n:,} civil servants; the network draws {n_sample} citizens.</div>
<div class="egov-mergers" style="font-size:0.8em">{"Mergers:" + mergers if mergers else ""}</div>
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


# SolaraViz names its one page "Page 0" (a tab bar with one tab says nothing), and its sliders show their value
# only while dragged: the page hides the bar and keeps each slider's value in view
PAGE_CSS = """
.v-tabs-bar { display: none !important; }
.v-slider__thumb-label-container { display: block !important; }
.v-application .v-slider .v-slider__thumb-label, .v-slider__thumb-label { transform: translate(-50%, 22px) !important; border-radius: 0 !important; height: 13px !important;
  width: auto !important; min-width: 20px; background-color: transparent !important; border-color: transparent !important;
  color: #1565c0 !important; font-size: 10.5px; }
.v-slider__thumb-label > * { transform: none !important; }
.v-application .v-slider .v-slider__thumb-label.primary { background-color: transparent !important; border-color: transparent !important; }
.v-input__slider { margin-bottom: 6px; }
"""


@solara.component
def YearAndLegend(model: EGovViz):
    """The current year, what is simulated, the levers and outcomes now, the latest events."""
    update_counter.get()
    solara.Style(PAGE_CSS)  # page-wide (a component's element: what Page returns is SolaraViz alone)
    year, body = legend_html(model)
    with solara.Column(gap="2px", style={"padding": "8px", "max-height": "385px", "overflow-y": "auto"}):
        solara.HTML(tag="div", unsafe_innerHTML=year)
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Text("Detail plots:", style={"font-size": "0.85em"})
            solara.ToggleButtonsSingle(
                value=focus_key(model), values=list(model.province_ids), on_value=focus.set, dense=True
            )
        solara.HTML(tag="div", unsafe_innerHTML=body)


DASHES = {"-": "", "--": "6,3", ":": "1.5,2.5"}  # matplotlib's line styles as SVG dash arrays


def line_style(style: dict) -> dict:
    return {
        "label": style["label"],
        "color": style["color"],
        "width": style.get("lw", 1.5),
        "alpha": style.get("alpha", 1.0),
        "dash": DASHES[style.get("ls", "-")],
    }


def months_since(values: list, start: int) -> list:
    """The values recorded from month `start` on, as JSON numbers (NaN, which JSON lacks, as null: a gap)."""
    return [None if v != v else round(float(v), 5) for v in values[start:]]


class TimeChart:
    """Lines of outcomes over the scenario's years, from the model's DataCollector. The browser draws it
    (frontend.TimeChartWidget): `spec` is sent once, then each Step sends only the months not yet shown."""

    title = ""
    ylabel = "share of citizens"
    ymax = 1.0  # the y axis grows with the data up to this (low shares stay readable)
    legend_loc = "upper left"

    def __init__(self, model: EGovViz, key: str | None = None):
        self.model, self.key = model, key

    def lines(self) -> list[tuple[str, str, dict]]:
        """(DataCollector province, column, matplotlib-style line style incl. label) of each line."""
        return []

    def observed(self) -> list[tuple[float, float, str, str]]:
        """Observed (year, value, colour, label) dots."""
        return []

    def spec(self) -> dict:
        m, points = self.model, self.observed()
        return {
            "title": self.title.format(name=m.config.provinces[self.key].name if self.key else ""),
            "ylabel": self.ylabel,
            "xlabel": "year (1 January)",
            "xlim": [m.config.start_year, m.config.end_year + 1],
            "x0": m.config.start_year,
            "dx": m.dt,
            "ymax": self.ymax,
            "top": max([p[1] for p in points], default=0.0),  # the y axis shows every observed dot
            "legend": self.legend_loc,
            "series": [line_style(style) for _, _, style in self.lines()],
            "points": [list(p) for p in points],
            "points_label": "observed (MIC, DTI digital government)",
        }

    def recorded(self) -> int:
        """Months recorded so far."""
        key, column, _ = self.lines()[0]
        return len(self.model.datacollector.model_vars[f"{key}/{column}"])

    def tail(self, start: int) -> dict:
        cols = self.model.datacollector.model_vars
        return {"from": start, "y": [months_since(cols[f"{k}/{c}"], start) for k, c, _ in self.lines()]}


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
    ylabel = "share of civil servants; will (0-1)"

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

    def observed(self):
        colours = dict(zip(self.model.province_ids, PROVINCE_COLOURS))
        return [(pt.year, pt.value, colours[pt.province], pt.label) for pt in _observed() if pt.province in colours]


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


# ColorBrewer's Purples (matplotlib's "Purples"), light to dark: the leader's star, darker with more will
PURPLES = ("#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8", "#807dba", "#6a51a3", "#54278f", "#3f007d")


def will_colour(will: float, lo: float = -0.2, hi: float = 1.0) -> str:
    """The leader's fill: `will` on the Purples scale from `lo` to `hi` (clipped), interpolated in RGB."""
    t = min(1.0, max(0.0, (will - lo) / (hi - lo))) * (len(PURPLES) - 1)
    i = min(int(t), len(PURPLES) - 2)
    a, b = (np.array([int(c[k : k + 2], 16) for k in (1, 3, 5)]) for c in PURPLES[i : i + 2])
    return "#" + "".join(f"{round(v):02x}" for v in a + (b - a) * (t - i))


def network_places(model: EGovViz) -> dict:
    """What the network view draws where, sent once per model: per province the sampled civil servants'
    (x, y) and the sampled citizens' (x, y, urban, minority, index of their civil servant); and the legend."""
    cit = model.citizens
    panels = [
        {
            "servants": np.round(s.servant_xy, 3).tolist(),
            "citizens": [
                [round(float(x), 3), round(float(y), 3), int(cit.urban[row]), int(cit.minority[row]), int(owner)]
                for (x, y), row, owner in zip(s.citizen_xy, s.citizens, s.citizen_servant)
            ],
        }
        for s in model.samples
    ]
    return {"panels": panels, "legend": NETWORK_LEGEND}


def network_colours(model: EGovViz) -> dict:
    """Each Step: per province the leader's colour and pull, the state of each sampled civil servant and
    citizen, which citizens' civil servant uses the system genuinely, and the panel's two title lines."""
    cs, cit = model.civil_service, model.citizens
    panels = []
    for p, (sample, leader) in enumerate(zip(model.samples, model.leaders)):
        state = cs.state[sample.servants]
        rows = sample.citizens
        lo, n = cit.province_start[p], cit.province_sizes[p]
        panels.append(
            {
                "name": leader.name,
                "line": f"will {leader.will:.2f} · genuine CS {(cs.state[cs.province == p] == GENUINE).mean():.0%}"
                f" · users {cit.active[lo : lo + n].mean():.0%}",
                "leader": will_colour(leader.will),
                "pull": round(0.5 + 3 * leader.will * leader.policy.monitoring, 3),  # the leader's pull
                "servants": [SERVANT_COLOURS[int(s)] for s in state],
                "genuine": (state[sample.citizen_servant] == GENUINE).astype(int).tolist(),
                "citizens": np.where(cit.active[rows], USER, np.where(cit.access[rows], ONLINE, OFFLINE)).tolist(),
            }
        )
    return {"title": f"Who serves whom (sample), {date_label(model)}", "panels": panels}


NETWORK_LEGEND = [
    {"shape": "star", "fill": "#9e9ac8", "stroke": LEADER_COLOUR, "label": "leader (darker: more will)"},
    {"shape": "diamond", "fill": SERVANT_COLOURS[GENUINE], "stroke": "#333", "label": "civil servant: genuine use"},
    {
        "shape": "diamond",
        "fill": SERVANT_COLOURS[CEREMONIAL],
        "stroke": "#333",
        "label": "civil servant: ceremonial use",
    },
    {"shape": "diamond", "fill": SERVANT_COLOURS[NON_USER], "stroke": "#333", "label": "civil servant: no use"},
    {"shape": "circle", "fill": USER, "stroke": "#777", "label": "citizen using online services"},
    {"shape": "circle", "fill": ONLINE, "stroke": "#777", "label": "citizen online, not a user"},
    {"shape": "circle", "fill": OFFLINE, "stroke": "#777", "label": "citizen without internet"},
    {"shape": "square", "fill": ONLINE, "stroke": "#777", "label": "square urban, circle rural"},
    {"shape": "circle", "fill": ONLINE, "stroke": "#000", "width": 2.2, "label": "thick outline: ethnic minority"},
    {"shape": "line", "stroke": "#2ca02c", "label": "link to a genuine user"},
]


@solara.component
def TimeChartView(model: EGovViz, chart_class: type[TimeChart], per_province: bool):
    """One time chart. Each Step sends only the months the browser has not shown yet: `shown` holds how many
    it has, and is advanced after the update is committed (an effect), so a render that is superseded before
    it reaches the browser cannot make it skip months."""
    update_counter.get()
    key = focus_key(model) if per_province else None
    chart = solara.use_memo(lambda: chart_class(model, key), [model, key])
    spec = solara.use_memo(chart.spec, [chart])
    shown = solara.use_ref((None, 0))
    months = chart.recorded()
    start = shown.current[1] if shown.current[0] is chart else 0

    def mark_shown():
        shown.current = (chart, months)

    solara.use_effect(mark_shown, [chart, months])
    return TimeChartWidget.element(spec=spec, tail=chart.tail(min(start, months)), month=model.step_index)


@solara.component
def NetworkView(model: EGovViz):
    """The network sample: its layout is sent once per model, then only its colours and titles."""
    update_counter.get()
    places = solara.use_memo(lambda: network_places(model), [model])
    return NetworkWidget.element(places=places, colours=network_colours(model), month=model.step_index)


def time_chart_component(chart: type[TimeChart], per_province: bool):
    """A page component that draws `chart` (SolaraViz calls each component with the model)."""

    def component(model):
        return TimeChartView(model, chart, per_province)

    component.__name__ = chart.__name__.replace("Chart", "View")
    return component


COMPONENTS = [
    YearAndLegend,
    NetworkView,
    *(
        time_chart_component(chart, per_province)
        for chart, per_province in [
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
        # a calibrated scenario: which of its posterior's draws to run (0: its medians)
        **(
            {
                "draw": {
                    "type": "SliderInt",
                    "value": 0,
                    "min": 0,
                    "max": 100,
                    "step": 1,
                    "label": "Posterior draw (0: medians)",
                }
            }
            if base.parameters.draws_from
            else {}
        ),
    }


_built_ahead: list[EGovViz] = []  # a model with the page's defaults, built before a tab asked for it
_built_ahead_lock = threading.Lock()


def build_ahead() -> None:
    """Build the model the next tab opens with (the scenario's seed, the levers as in the scenario) now, while
    nothing waits for it (egovsim/app/serving.py calls it while the browser loads the front end)."""
    model = EGovViz(seed=base_scenario(SCENARIO_FILE, SCALE, OVERRIDES).seed)
    _observed()
    with _built_ahead_lock:
        _built_ahead.append(model)


def load_step_kernels() -> None:
    """Load the compiled code a Step runs (a small throwaway model takes one step), so the first click does
    not wait for it."""
    EGovViz(scale=0.0005).step()


def tab_model(seed: int) -> EGovViz:
    """A new tab's own model: the one built ahead if there is one (given to one tab only), else a new one."""
    with _built_ahead_lock:
        if _built_ahead and _built_ahead[-1].seed == seed:
            return _built_ahead.pop()
    return EGovViz(seed=seed)


@solara.component
def Page():
    base = base_scenario(SCENARIO_FILE, SCALE, OVERRIDES)
    # built once per browser tab (this component's own state): tabs never share a model
    model = solara.use_memo(lambda: tab_model(base.seed), [])
    name = f"egovsim: e-government adoption ({base.name})"
    # SolaraViz places its bar and sidebar in the app's layout wherever it is in the tree; the Title names the tab
    with solara.Column(style={"padding": "0", "gap": "0"}) as main:
        solara.Title(name)
        SolaraViz(model, components=COMPONENTS, model_params=model_params(base), name=name, play_interval=50)
    return main
