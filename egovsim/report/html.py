"""report.html: one page per run that opens in any browser, offline and alone (plots embedded as base64 PNG):
the scenario, where its parameters come from, key numbers, the plots and the observed-vs-simulated table.

Made with jinja2 with autoescaping on: a scenario name, description or path can never inject markup."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import jinja2
import numpy as np

from egovsim.config.outcomes import PRIOR_DRIVEN, USE_TOO_LOW, label, unit
from egovsim.config.scenario import Scenario
from egovsim.report.tables import BAND, FEW_FOR_A_BAND, POSTERIOR_POINT, state_date, summary, year_day

KEY_OUTCOMES = ("supply_index", "access_share", "adopted_share", "use_share_12m", "spend_cumulative")
PLOT_CAPTIONS = {
    "supply_index": "Supply index (government side) with the published index values it is compared with.",
    "use_by_group": "Internet at home, adoption and 12-month use of online public services, by group.",
    "gaps": "Digital divides: urban minus rural, majority minus ethnic-minority adopted share.",
    "government": "Government side: civil servants' use, procedures online and published, agencies' IT, "
    "informal payments, the leader's will.",
}

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>egovsim run: {{ scenario.name }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 1.8rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.source { font-size: 0.75rem; color: #444; }
td.date { white-space: nowrap; }
.parameters { padding: 0.6rem 0.8rem; border-left: 5px solid {{ colour }}; background: #f6f6f6; }
.miss { color: #a40000; font-weight: 600; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .note { font-size: 0.85rem; color: #555; }
</style>
</head>
<body>
<h1>egovsim run: {{ scenario.name }}</h1>
{% if scenario.description %}<p>{{ scenario.description }}</p>{% endif %}
<table>
<tr><th>provinces</th><td>{% for p in provinces %}{{ p.name }} ({{ p.key }}: {{ "{:,}".format(p.population) }}
 people, scale {{ p.scale }}){% if not loop.last %}; {% endif %}{% endfor %}</td></tr>
<tr><th>horizon</th><td>{{ scenario.start_year }} to {{ scenario.end_year }}: states from {{ first_date }} to
 {{ last_date }}, {{ scenario.steps_per_year }} steps a year</td></tr>
<tr><th>seed</th><td>{{ seed_text }}</td></tr>
<tr><th>scenario file</th><td>{{ scenario_file }}</td></tr>
<tr><th>egovsim</th><td>{{ version }}</td></tr>
</table>

<h2>Where the parameters come from</h2>
<div class="parameters"><strong>{{ kind_title }}.</strong> This run's parameters: {{ parameters }}.
{% if kind == "prior" %}<p class="note">These are the sourced prior values of the scenario files, not fitted to
the data. The calibrated scenarios are in scenarios/calibrated/ (docs/calibration.md).</p>{% endif %}
</div>

<h2>Key numbers</h2>
<p class="note">{{ value_note }}</p>
{% if small_groups %}<p class="miss">Shares of small simulated groups: quote them with care.</p>
<ul>{% for line in small_groups %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}
{% for p in key_tables %}
<h3>{{ p.name }}</h3>
<table>
<tr><th>when</th><th>date</th>{% for c in key_columns %}<th>{{ c.label }}<br><small>{{ c.unit }}</small></th>{% endfor %}</tr>
{% for row in p.rows %}<tr><td>{{ row.label }}</td><td class="date">{{ row.date }}</td>
{% for v in row.cells %}<td class="num">{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endfor %}
<p class="note"><strong>Read with care.</strong></p>
<ul class="note">{% for line in caveats %}<li>{{ line }}</li>{% endfor %}</ul>

<h2>Plots</h2>
{% for plot in plots %}
<figure><img src="data:image/png;base64,{{ plot.data }}" alt="{{ plot.caption }}">
<figcaption>{{ plot.caption }}</figcaption></figure>
{% else %}<p class="note">No plots (run without --no-plots to draw them).</p>
{% endfor %}

<h2>Observed and simulated</h2>
{% if observed %}
<p class="note">The targets of the calibration (calibration/config.yaml) this run can be compared with:
observed value with its stated uncertainty (sd), or the range or ordering it must meet; simulated
{{ simulated_note }}. Met: within 2 sd, inside the range, or the ordering holds. A what-if is compared with
what happened, so its misses may be what the what-if changes.
{% if misses %}<span class="miss">{{ misses }} of {{ fitted }} fitted targets not met.</span>{% endif %}
{% if fitted < observed|length %}Rows marked "not fitted" are checks the calibration left out (held out, or of
weight 0): compared here, not counted.{% endif %}</p>
<table>
<tr><th>target</th><th>where</th><th>year</th><th>observed</th><th>sd</th><th>simulated</th><th>met</th>
<th>source</th></tr>
{% for r in observed %}<tr><td>{{ r.target }}{% if not r.in_fit %} (not fitted){% endif %}</td><td>{{ r.where }}</td><td>{{ r.year }}</td>
<td class="num">{{ r.observed }}</td><td class="num">{{ r.sd }}</td><td class="num">{{ r.simulated }}</td>
<td{% if not r.met %} class="miss"{% endif %}>{{ "yes" if r.met else "no" }}</td><td class="source">{{ r.source }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class="note">No calibration target falls on this run's provinces and years.</p>
{% endif %}

<h2>Files</h2>
<p class="note">{{ files_note }}</p>
</body>
</html>
"""


def _environment() -> jinja2.Environment:
    # autoescape on for every template: file text (names, descriptions, paths) is shown, never interpreted
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def _number(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, ".3g")


def _key_tables(summ: dict, scenario: Scenario) -> list[dict]:
    tables = []
    for key, by_label in summ["provinces"].items():
        rows = []
        for when, row in by_label.items():
            rows.append({"label": when, "date": row["date"], "cells": [_key_cell(row[c]) for c in KEY_OUTCOMES]})
        tables.append({"name": scenario.provinces[key].name, "rows": rows})
    return tables


def _sentence(words: str) -> str:
    return words[0].upper() + words[1:] + "."


def _key_cell(value) -> str:
    """One run's value, or the replicates' mean with their 5-95% band (summary.json's statistics)."""
    if not isinstance(value, dict):
        return _number(value)
    low, high = value[f"p{BAND[0]}"], value[f"p{BAND[1]}"]
    if low is None or high is None or low == high or any(isinstance(x, float) and math.isnan(x) for x in (low, high)):
        return _number(value["mean"])
    return f"{_number(value['mean'])} [{_number(low)}, {_number(high)}]"


def _observed_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        observed = r["observed"] if isinstance(r["observed"], str) else _number(r["observed"])
        simulated = _number(r["simulated_mean"])
        if r["simulated_p5"] != r["simulated_p95"] and not math.isnan(r["simulated_p5"]):
            simulated += f" [{_number(r['simulated_p5'])}, {_number(r['simulated_p95'])}]"
        out.append(
            {**r, "observed": observed, "sd": _number(r["sd"]), "simulated": simulated, "in_fit": r.get("in_fit", True)}
        )
    return out


KIND_TITLES = {"prior": "Prior parameters", "calibrated": "Calibrated point", "posterior": "Posterior"}
KIND_COLOURS = {"prior": "#d08000", "calibrated": "#2a7a2a", "posterior": "#2a5aa0"}


FILES_ONE_RUN = (
    "timeseries.csv (every outcome, every month; columns.csv says what each column means, its unit and range), "
    "summary.json, scenario.yaml (the resolved scenario: runs again as it is), provenance.json, plots/."
)
FILES_REPLICATES = (
    f"timeseries_band.csv (the mean, median and {BAND[0]}th-{BAND[1]}th percentile band of every outcome, every step; "
    "columns.csv says what each column means), timeseries/ (each replicate's time series), replicates.csv (each "
    "replicate's seed and status), summary.json, scenario.yaml (the resolved scenario), provenance.json, plots/."
)


def run_report_html(
    scenario: Scenario,
    records: np.ndarray,
    plots: list[Path],
    observed: list[dict],
    prov: dict,
    summ: dict | None = None,
) -> str:
    """report.html of a run: records (replicates, steps + 1, provinces, columns); `summ` its summary.json
    (default: the single run's); `observed` rows of the observed-vs-simulated table (calibration's term_table)."""
    summ = summ if summ is not None else summary(records[0], scenario)
    replicates = records.shape[0]
    kind = scenario.parameters.kind
    seeds = prov.get("seeds") or [scenario.seed]
    git = prov.get("git") or {}
    context = {
        "scenario": scenario,
        "provinces": [
            {"key": k, "name": p.name, "population": p.population, "scale": p.scale}
            for k, p in scenario.provinces.items()
        ],
        "first_date": state_date(scenario, 0).isoformat(),
        "last_date": state_date(scenario, records.shape[1] - 1).isoformat(),
        "seed_text": str(seeds[0])
        if replicates == 1
        else f"{replicates} replicates, seeds spawned from master seed {prov.get('master_seed', scenario.seed)}",
        "scenario_file": prov.get("scenario_file") or "-",
        "version": " ".join(str(x) for x in ((prov.get("versions") or {}).get("egovsim"), git.get("commit")) if x)
        or "-",
        "kind": kind,
        "kind_title": KIND_TITLES[kind],
        "colour": KIND_COLOURS[kind],
        "parameters": scenario.parameters.label(),
        "value_note": f"Years: the state on {year_day(scenario)}; end: the last state of the run. "
        + (
            f"Mean of {replicates} replicates [{BAND[0]}th, {BAND[1]}th percentile]; the plots draw the median "
            "(all three, and the median, are in timeseries_band.csv and summary.json)."
            if replicates > 1
            else "One run."
        )
        + (
            f" With {replicates} replicates the {BAND[0]}th-{BAND[1]}th percentile band is interpolated between "
            f"a few runs: read it as their range (about {FEW_FOR_A_BAND} give the percentiles their meaning)."
            if 1 < replicates < FEW_FOR_A_BAND
            else ""
        )
        + (
            f" It is {POSTERIOR_POINT}."
            if kind == "posterior" and replicates == 1 and "master_seed" not in prov
            else ""
        ),
        "key_columns": [{"label": label(c), "unit": unit(c)} for c in KEY_OUTCOMES],
        "key_tables": _key_tables(summ, scenario),
        # the held-out check's finding is of the calibrated model; costs are priors whatever the parameters
        "caveats": [_sentence(USE_TOO_LOW)] * (kind != "prior") + [_sentence(PRIOR_DRIVEN["spend_cumulative"])],
        "plots": [
            {
                "data": base64.b64encode(p.read_bytes()).decode("ascii"),
                "caption": PLOT_CAPTIONS.get(p.stem, p.stem),
            }
            for p in plots
        ],
        "observed": _observed_rows(observed),
        "misses": sum(not r["met"] for r in observed if r.get("in_fit", True)),
        "fitted": sum(bool(r.get("in_fit", True)) for r in observed),
        "small_groups": summ.get("small_groups", []),
        "files_note": FILES_REPLICATES if "master_seed" in prov else FILES_ONE_RUN,  # run --replicates, even R = 1
        "simulated_note": "in the run"
        if replicates == 1
        else f"mean [{BAND[0]}th, {BAND[1]}th percentile] of replicates",
    }
    return _environment().from_string(TEMPLATE).render(context)
