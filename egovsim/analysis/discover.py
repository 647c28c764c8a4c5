"""Scenario discovery on the simulator (`egovsim discover`): the model-agnostic PRIM and CART of
`discovery.py` applied to egovsim through the runner.

    discovery file -> Latin hypercube over levers and parameters (+ posterior draw i at point i) -> RunSpecs
      (points x replicates, common random numbers) -> run_many(executor, store) -> named outcomes
      -> the case (a rule on them) -> find_boxes -> boxes.csv, sample.csv, trajectory.csv, cart.txt, plots, report.md

Runs are parallel, resumable and failure-isolated because they go through `run_many` with a store in the output
folder; everything follows from the master seed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from egovsim.analysis import discovery as sd
from egovsim.analysis.levers import cell, draws, lever_values, outcome_values
from egovsim.config.analysis import DiscoveryFile, holds, refuse_overlaps, refuse_set_and_varied, spans
from egovsim.config.scenario import UNDONE_WARNING, Scenario, apply_values, check_real_parameter, expand_wildcards
from egovsim.config.schema import build
from egovsim.config.yamlfile import read_yaml
from egovsim.errors import InputError
from egovsim.files import atomic_write, write_json
from egovsim.folders import claimed, fresh_outputs
from egovsim.provenance import provenance
from egovsim.report.dictionary import dictionary_csv, lever_file_words
from egovsim.report.markdown import inert
from egovsim.report.runfolder import write_scenario
from egovsim.report.tables import plots_section
from egovsim.runner.runner import MAX_RUNS, RunSpec, Store, Tally, run_many


class Prepared(NamedTuple):
    """A discovery file checked and sampled once (prepare): what the runs take."""

    spec: DiscoveryFile
    base: Scenario
    names: list[str]
    X: np.ndarray
    values: list[dict]


def load_discovery(path: str | Path) -> tuple[DiscoveryFile, Scenario]:
    """The file and its base scenario, every name and range checked before any run."""
    prepared = prepare(path)
    return prepared.spec, prepared.base


def prepare(path: str | Path) -> Prepared:
    """load_discovery's checks, and the sample they check point by point (sample), made once."""
    path = Path(path)
    source = str(path)
    spec = build(DiscoveryFile, read_yaml(path), source)
    spec.named(path, "discover")
    base = spec.base_scenario(path)
    spec.check_scenario(base, source)
    for name, rng in spec.parameters.items():
        for key in expand_wildcards(base, {name: 0.0}):
            check_real_parameter(base, key, *rng.reach, source, f"parameters.{name}")
    refuse_overlaps(base, {name: f"parameters.{name}" for name in spec.parameters}, source)
    refuse_set_and_varied(base, spec, {name: f"parameters.{name}" for name in spec.parameters}, source)
    if spec.n * spec.replicates > MAX_RUNS:
        raise InputError(source, "n", f"{spec.n * spec.replicates:,} runs, more than {MAX_RUNS:,}")
    drawn, _ = draws(spec, path, base, 1)
    # a lever set from the start leaves a parameter on the same value nothing to do (set later, it acts before)
    from_start = spec.levers_from is None or spec.levers_from <= base.start_year
    levers = {f"provinces.{spec.province}.policy.{lever}" for lever in spec.levers} if from_start else set()
    for name in spec.parameters:  # each value is set by one input, or PRIM is handed one that does nothing
        keys = set(expand_wildcards(base, {name: 0.0}))
        if keys & set(drawn[0]):
            raise InputError(source, f"parameters.{name}", "drawn from the posterior already: leave it out here")
        if keys & levers:
            raise InputError(source, f"parameters.{name}", f"sets {sorted(keys & levers)[0]}, a lever of the file")
    names, X, values = sample(spec, path, base)
    for i, point in enumerate(values):  # a draw, a parameter and a lever valid alone may break a rule together
        try:
            apply_values(base, point, source)
        except InputError as exc:
            raise InputError(source, f"point {i} of the sample", f"{exc.field}: {exc.message}") from None
    return Prepared(spec, base, names, X, values)


def sample(spec: DiscoveryFile, path: str | Path, base: Scenario) -> tuple[list[str], np.ndarray, list[dict]]:
    """The input table (inputs named: levers by name, parameters and posterior columns by dotted key) and
    each point's parameter values; point i takes posterior draw i."""
    from scipy.stats import qmc

    ranges = {
        **{k: tuple(v) for k, v in spec.levers.items()},
        **{k: tuple(r.bounds) for k, r in spec.parameters.items()},
    }
    names = list(ranges)
    if names:
        unit = qmc.LatinHypercube(d=len(names), rng=np.random.default_rng(spec.seed)).random(spec.n)
        lo, hi = np.array([r[0] for r in ranges.values()]), np.array([r[1] for r in ranges.values()])
        box = qmc.scale(unit, lo, hi)
    else:
        box = np.zeros((spec.n, 0))
    drawn, _ = draws(spec, path, base, spec.n)
    drawn_names = sorted({k for d in drawn for k in d})
    X = np.column_stack([box, np.array([[d[k] for k in drawn_names] for d in drawn]).reshape(spec.n, -1)])
    values = []
    for i in range(spec.n):
        mix = {k: X[i, j] for j, k in enumerate(names) if k in spec.levers}
        params = {k: float(X[i, j]) for j, k in enumerate(names) if k in spec.parameters}
        values.append({**drawn[i], **params, **lever_values(spec, base, mix)})
    return names + drawn_names, X, values


def run_discovery(
    path: str | Path, executor, folder: Path, *, quiet: bool = False, command=None, prepared: Prepared | None = None
) -> dict:
    """Sample, run (resumably), find the boxes and write the outputs; `prepared`: the file as prepare() checked and
    sampled it already (the CLI checks it before any worker starts), else it is done here."""
    with claimed(folder):
        return _run_discovery(Path(path), executor, Path(folder), quiet, command, prepared)


def _run_discovery(path: Path, executor, folder: Path, quiet: bool, command, prepared: Prepared | None) -> dict:
    start = time.perf_counter()
    spec, base, names, X, values = prepared if prepared is not None else prepare(path)
    _, seeds = draws(spec, path, base, spec.replicates)
    specs = [RunSpec("base", r, s, values[i], point=i) for i in range(spec.n) for r, s in enumerate(seeds)]
    store = Store(folder / "runs")
    results = run_many(
        specs, {"base": base}, executor, store=store, keep_records=False, progress=None if quiet else spec.name
    )
    tally = Tally.of(results)
    Y = {name: np.full((spec.n, spec.replicates), np.nan) for name in spec.stats}
    for res in results:
        if res.ok:
            for name, v in outcome_values(spec, base, store.records(res.key)).items():
                Y[name][res.spec.point, res.spec.replicate] = v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": a point none of whose runs finished
        means = {name: np.nanmean(y, axis=1) for name, y in Y.items()}
    # a point with a result: nan only where every run failed (inf: a level never reached, a result)
    ran = ~np.isnan(np.column_stack(list(means.values()))).any(axis=1)
    case = holds(spec.rule, means) & ran
    # a column that never varies says nothing (nor does any where no run finished): a posterior column may barely vary
    keep = [j for j in range(len(names)) if ran.any() and spans(X[ran, j].min(), X[ran, j].max())]
    found = sd.find_boxes(
        X[ran][:, keep],
        case[ran],
        [names[j] for j in keep],
        min_density=spec.min_density,
        peel_alpha=spec.peel_alpha,
        mass_min=spec.mass_min,
        resamples=spec.resamples,
        seed=spec.seed,
    )
    fresh_outputs(folder)
    write_scenario(folder, base)
    atomic_write(folder / "sample.csv", sample_csv(names, X, means, case, ran))
    atomic_write(folder / "boxes.csv", boxes_csv(found))
    atomic_write(folder / "trajectory.csv", trajectory_csv(found))
    atomic_write(folder / "cart.txt", found.tree or "no tree: the case holds at every point or at none\n")
    described = dictionary(spec, base, names)
    atomic_write(
        folder / "columns.csv", dictionary_csv(folder, ["sample.csv", "boxes.csv", "trajectory.csv"], described)
    )
    from egovsim.report.plots import discovery_plots

    plots = discovery_plots(folder / "plots", found, spec.name)
    wall = time.perf_counter() - start
    atomic_write(folder / "report.md", inert(report_md(spec, base, found, int(ran.sum()), tally, plots, folder, wall)))
    write_json(
        folder / "provenance.json",
        provenance(
            seeds=seeds,
            wall_time_s=wall,
            scenario_file=str(path),
            command=command,
            extra={
                "discovery": read_yaml(path),
                "runs": tally.as_dict(),
                "code_commits_of_runs": store.commits(r.key for r in results),
            },
        ),
    )
    return {"found": found, "tally": tally, "points": int(ran.sum())}


# ---- outputs ------------------------------------------------------------------------------------------------


def dictionary(spec, base: Scenario, names: list[str]) -> dict[str, tuple[str, str, str]]:
    """columns.csv's words for sample.csv's own columns: the point, its levers, parameters and posterior draw's
    values, and the outcomes (the mean of the point's replicates)."""
    described = lever_file_words(spec, base, f"mean over the point's {spec.replicates} replicate(s)")
    described["point"] = (
        "sample point (row of the Latin hypercube over the levers and parameters)",
        "count",
        "[0, inf)",
    )
    for name in names:
        if name in spec.parameters:
            lo, hi = spec.parameters[name].bounds[:2]  # sampled uniformly between them (sample)
            described[name] = (
                f"the scenario field {name} at the point (the file's range)",
                "as the field",
                f"[{lo:g}, {hi:g}]",
            )
        elif name not in described:
            described[name] = (f"the scenario field {name} at the point, from its posterior draw", "as the field", "")
    return described


def sample_csv(names: list[str], X: np.ndarray, means: dict[str, np.ndarray], case: np.ndarray, ran) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point", *names, *means, "case"])
    for i in range(len(X)):
        w.writerow([i, *map(cell, X[i]), *(cell(m[i]) for m in means.values()), int(case[i]) if ran[i] else ""])
    return buf.getvalue()


def boxes_csv(found: sd.Discovery) -> str:
    """One row per input the chosen box restricts, with the box's coverage, density and mass."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "box",
            "input",
            "low",
            "high",
            "qp_low",
            "qp_high",
            "restricted_in_half_samples_pct",
            "coverage",
            "density",
            "mass",
            "sampled_low",
            "sampled_high",
        ]
    )
    box = found.box
    for name, (lo, hi) in (box.limits if box else {}).items():
        qp = box.qp[name]
        w.writerow(
            [
                box.index,
                name,
                cell(lo),
                cell(hi),
                cell(qp[0]),
                cell(qp[1]),
                cell(found.stability.get(name, math.nan)),
                cell(box.coverage),
                cell(box.density),
                cell(box.mass),
                *map(cell, found.ranges[name]),
            ]
        )
    return buf.getvalue()


def trajectory_csv(found: sd.Discovery) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["box", "coverage", "density", "mass", "restricted_inputs"])
    for t in found.trajectory:
        w.writerow([t["id"], cell(t["coverage"]), cell(t["density"]), cell(t["mass"]), int(t["res_dim"])])
    return buf.getvalue()


def described(stat) -> str:
    """'rural_use_share_12m at 2030' for a named statistic (its label would be its name)."""
    plain = dataclasses.replace(stat, name="", province=None)  # `short` (init=False) is reset by replace
    return plain.label.replace("@", " at ")


SIGNIFICANT = 0.05  # a limit whose quasi-p value is above this could be chance


def conditions(found: sd.Discovery, resamples: int, emphasis: str = "") -> list[str]:
    """The chosen box's limits in words, each with its quasi-p value, whether it could be chance, and how often
    half samples restrict it again: the same lines in report.md and on the terminal."""
    box = found.box
    lines = []
    for name, words in zip(box.limits, sd.limits_in_words(box.limits, found.ranges)):
        qp = [q for q in box.qp[name] if math.isfinite(q)]
        sig = "significant" if qp and max(qp) <= SIGNIFICANT else f"{emphasis}could be chance{emphasis}"
        stab = found.stability.get(name)
        again = f"; restricted again in {stab:.0f}% of half samples" if stab is not None and resamples else ""
        lines.append(f"{words}: quasi-p {max(qp) if qp else math.nan:.2g}, {sig}{again}")
    return lines


def report_md(spec, base, found: sd.Discovery, points: int, tally: Tally, plots, folder: Path, wall: float) -> str:
    rule = " and ".join(map(str, spec.rule))
    outcomes = ", ".join(f"`{n}`: {described(s)}" for n, s in spec.stats.items())
    lines = [
        f"# Scenario discovery: {spec.name}",
        "",
        spec.description,
        "",
        f"Case of interest: **{rule}** ({outcomes}), in {base.provinces[spec.province].name}. "
        f"{points} sample points x {spec.replicates} replicates of `{spec.scenario}` "
        f"(scale {base.provinces[spec.province].scale:g}), master seed {spec.seed}; the case holds at "
        f"{found.cases} points ({100 * found.cases / max(points, 1):.0f}%). Wall time {wall:.0f} s; {tally.line('runs')}.",
        "",
        f"Levers ({', '.join(spec.levers) or 'none'}) take their sampled values from "
        f"{spec.levers_from if spec.levers_from is not None else base.start_year:g}; "
        + (
            f"calibrated parameters are drawn from `{spec.posterior}/posterior.csv` (point i: draw i)."
            if spec.posterior
            else f"other parameters are those of the base scenario ({base.parameters.label()})."
        ),
        "",
    ]
    if in_play := spec.levers_in_play(base, spec.varied_fields(base), spec.name):
        lines += [UNDONE_WARNING, *(f"- {line}" for line in in_play), ""]
    lines += ["## Conditions under which the case holds", ""]
    box = found.box
    if box is None:
        lines.append("None to find: the case holds at every point or at none of the sample.")
    else:
        lines.append(sd.chosen_in_words(found, spec.min_density, spec.mass_min))
        if box.limits:
            lines += ["", "In words, the case holds mostly when:", ""]
            lines += [f"- {text}" for text in conditions(found, spec.resamples, "**")]
        others = [n for n, s in found.stability.items() if n not in box.limits and s >= 50]
        if others:
            lines += ["", f"Also restricted in most half samples, though not in this box: {', '.join(others)}."]
    if found.leaves:
        good = sorted((lf for lf in found.leaves if lf["density"] >= 0.5), key=lambda lf: -lf["coverage"])
        lines += ["", "## A second view: CART", "", "Leaves of the tree where the case holds in most points:", ""]
        for lf in good[:5]:
            text = "; ".join(sd.limits_in_words(lf["limits"], found.ranges)) or "everywhere"
            lines.append(
                f"- {text}: coverage {100 * lf['coverage']:.0f}%, density {100 * lf['density']:.0f}%, "
                f"mass {100 * lf['mass']:.0f}%"
            )
        lines += ["", "The whole tree is in `cart.txt`."]
    lines += [
        "",
        "## Files",
        "",
        "- `boxes.csv`: the chosen box's limits, quasi-p values and stability",
        "- `trajectory.csv`: every box of the peeling trajectory",
        "- `sample.csv`: every point's inputs, outcomes (mean of the replicates) and whether the case holds",
    ]
    lines += plots_section(plots, folder)
    return "\n".join(lines) + "\n"
