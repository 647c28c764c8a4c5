"""What a fit writes: fit.json (every term, met or not), observed_vs_simulated.csv, posterior.csv (abc), the
calibrated scenario files (into the output folder, and installed as one set where asked)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from egovsim.analysis.calibration.config import load_config, read_observations
from egovsim.analysis.calibration.fit import TEMPERED, Fit
from egovsim.analysis.calibration.posterior import weighted_quantile
from egovsim.analysis.calibration.terms import (
    FitProblem,
    build_terms,
    measure_quantities,
    quantities,
    term_values,
)
from egovsim.config.analysis import NATIONAL
from egovsim.config.scenario import Scenario, apply_values
from egovsim.config.yamlfile import dump_yaml
from egovsim.errors import InputError
from egovsim.files import atomic_write, child, write_json
from egovsim.folders import check_place, check_replaceable, replaced


def term_table(problem: FitProblem, stats: np.ndarray) -> list[dict]:
    """One row per term: observed, simulated mean and 90% interval over replicates, weight, loss, met, in/out of
    fit. The loss is the term's misfit at weight 1 (a check's too, which a weighted loss would show as a perfect
    0); a fit's loss is the sum of weight x loss over the terms in it."""
    per_rep = term_values(problem.terms, problem.quantities, stats)  # (replicates, terms)
    losses, met = problem.losses(stats, weighted=False)
    rows = []
    for j, t in enumerate(problem.terms):
        vals = per_rep[:, j]
        if t.bound:  # read in the quantity's own units: value <= or >= low / scale
            vals = vals / t.scale
        finished = np.isfinite(vals).any()  # else every replicate failed
        lo, hi = np.nanpercentile(vals, [5, 95]) if finished else (math.nan, math.nan)
        rows.append(
            {
                "target": t.target,
                "where": t.label,
                "outcome": t.plus.outcome if t.minus is None else "",  # what a plot draws (value of one quantity)
                "province": t.plus.province,
                "scale": 1.0 if t.bound else t.scale,  # the scale of the values shown: a bound's are its quantity's own
                "kind": t.kind,
                "year": t.year,
                "observed": t.observed
                if t.kind == "value"
                else (f"[{t.low}, {t.high}]" if t.kind == "range" else t.condition()),
                "sd": t.sd / abs(t.scale) if t.bound else t.sd,
                "simulated_mean": float(np.nanmean(vals)) if finished else math.nan,
                "simulated_p5": float(lo),
                "simulated_p95": float(hi),
                "weight": t.weight,
                "loss": float(losses[j]),
                "met": bool(met[j]),
                "in_fit": problem.fitted[j],
                "source": t.source,
            }
        )
    return rows


def orderings_met(rows: list[dict]) -> bool | None:
    """Whether every fitted ordering holds (a check of weight 0 or a held-out one is not fitted); None where no
    ordering is fitted, rather than a vacuous True."""
    fitted = [r["met"] for r in rows if r["kind"] == "at_least" and r["in_fit"]]
    return all(fitted) if fitted else None


SHIPPED_CONFIG = Path(__file__).resolve().parents[3] / "calibration" / "config.yaml"


def observed_vs_simulated(scenario: Scenario, records: np.ndarray, config_path: Path = SHIPPED_CONFIG) -> list[dict]:
    """The calibration's targets a run of `scenario` can be compared with, as rows of term_table (the table
    of observed_vs_simulated.csv): records (replicates, steps + 1, provinces, columns). Kept: the targets'
    provinces the run has, and years inside its horizon; national figures and rank orderings only when the
    run has every province of the calibration (the provinces stand in for the country and for the ranking).
    Empty where nothing is comparable (or the calibration files are absent)."""
    if not Path(config_path).is_file():
        return []
    config, folder = load_config(config_path)
    observations = read_observations(str(config_path), config.observations, folder) if config.observations else {}
    keys = set(scenario.provinces)
    whole = set(config.base_scenario(str(config_path)).provinces) <= keys
    comparable = [*keys, *([NATIONAL] if whole else [])]
    targets = []
    for t in config.targets:
        provinces = [p for p in (t.provinces or scenario.provinces) if p in comparable]
        yrs = [y for y in t.years if scenario.start_year <= y <= scenario.end_year]
        if not provinces or not yrs or (t.type == "order" and not whole):
            continue
        if t.minus_province and t.minus_province not in comparable:
            continue
        targets.append(dataclasses.replace(t, provinces=provinces, years=yrs, year=None))
    if not targets:
        return []
    terms = build_terms(dataclasses.replace(config, targets=targets), scenario, observations, str(config_path))
    if not terms:  # e.g. a Ben Tre run: its only MIC figure is a rank, compared with the other provinces
        return []
    qs = quantities(terms)
    stats = np.stack([measure_quantities(r, scenario, qs) for r in records])
    problem = FitProblem(scenario.to_dict(), [], np.empty((0, 2)), [], qs, terms, config.fit_until)
    return term_table(problem, stats)


def grouped(names: Sequence[str], x: Sequence[float]) -> dict[str, dict[str, float]]:
    """Parameters by province ('shared' for the rest): provinces.hue.leader.will0 -> {'hue': {'leader.will0': ..}};
    provinces.*.leader.will0 (one value for every province) -> {'*': {'leader.will0': ..}}."""
    out: dict[str, dict[str, float]] = {}
    for name, value in zip(names, x):
        parts = name.split(".")
        group, key = (parts[1], ".".join(parts[2:])) if parts[0] == "provinces" else ("shared", name)
        out.setdefault(group, {})[key] = round(float(value), 6)
    return out


def calibrated_name(name: str) -> str:
    """The name of a calibrated scenario: still a valid name (schema.NAME, at most 64 characters)."""
    return f"{name[:53]}_calibrated"


def calibrated_scenarios(
    problem: FitProblem,
    full: Scenario,
    x: Sequence[float],
    header: str,
    source: dict | None = None,
    peers: dict[str, dict] | None = None,
) -> dict[str, str]:
    """Self-contained scenario files (every value written out) with the fitted parameters: the full run
    (all provinces) and one per province, at the base scenario's own scale and horizon. `source` is their
    `parameters:` key (Scenario.parameters: kind calibrated, which calibration), shown on every report. A
    province's own file keeps the provinces it was fitted beside as its leader's outside peers (`peers`, by
    province: posterior.outside_peer_paths), so that alone it is the province of the calibrated model."""
    values = problem.values(x)
    files = {}
    fitted = apply_values(full, values)
    mark = {"parameters": source} if source else {}
    files[f"{full.name}.yaml"] = header + dump_yaml({**fitted.to_dict(), "name": calibrated_name(full.name), **mark})
    for key in full.provinces:
        own = {k: v for k, v in values.items() if not k.startswith("provinces.") or k.split(".")[1] in (key, "*")}
        data = apply_values(full, own).to_dict()
        data["provinces"] = {key: data["provinces"][key]}
        if peers and key in peers:
            data["provinces"][key]["leader"]["outside_peers"] = peers[key]
        data["name"] = calibrated_name(key)
        files[f"{key}.yaml"] = header + dump_yaml({**data, **mark})
    return files


def calibration_mark(folder: Path, summary: dict, drawn_from: Path | None = None) -> dict:
    """The `parameters:` key of the files a fit writes: a calibrated point, from this folder, fitted today; for
    a posterior (abc), kind posterior and the folder's path as seen from `drawn_from` (where the files go), so
    `run --replicates` and `compare` draw from its posterior.csv wherever the files are read from."""
    posterior = {}
    if drawn_from is not None:
        posterior = {
            "kind": "posterior",
            "posterior": os.path.relpath(Path(folder).resolve(), Path(drawn_from).resolve()),
            "posterior_sha256": hashlib.sha256((Path(folder) / "posterior.csv").read_bytes()).hexdigest(),
        }
    return {
        "kind": "calibrated",
        **posterior,
        "calibration": str(folder),
        "fit": fit_words(summary),
        "date": dt.date.today().isoformat(),
        "set": [],
    }


def fit_words(summary: dict) -> str:
    """How the values were fitted, for every label: method, runs, loss and targets met, and what makes them less
    than a fit to all the data (data up to a year only; a tempered posterior)."""
    words = (
        f"{summary['method']}, {summary['model_runs']} model runs, loss {summary['loss']:.3f}, "
        f"{summary['targets_met']}/{summary['targets_in_fit']} fitted targets met"
    )
    if summary.get("fit_until") is not None:
        words += f", fitted to the data up to {summary['fit_until']} only"
    if str(summary.get("stopped", "")).endswith(TEMPERED):
        words += ", stopped before the posterior: a tempered posterior, wider than the posterior"
    return words


def write_outputs(
    folder: Path,
    problem: FitProblem,
    fit: Fit,
    full: Scenario,
    stats: np.ndarray,
    install: Path | None = None,
    extra: dict | None = None,
    peers: dict[str, dict] | None = None,
) -> dict:
    """fit.json (with `extra`'s entries), observed_vs_simulated.csv, posterior.csv (abc) and calibrated/ into
    `folder`; the calibrated scenario files also into `install`, as one set (see install_files)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = term_table(problem, stats)
    losses = problem.losses(stats)[0]  # weighted: what each term adds to the fit's loss
    summary = {
        "method": fit.method,
        "stopped": fit.stopped,
        "model_runs": fit.evaluations,
        "loss": problem.total(losses),
        "prior_penalty": problem.prior_penalty(fit.x),  # -2 log prior + const; the optimiser adds it to loss
        "priors": {n: f"normal({p[0]:g}, {p[1]:g})" for n, p in zip(problem.names, problem.priors or []) if p},
        "parameters": dict(zip(problem.names, map(float, fit.x))),
        "by_province": grouped(problem.names, fit.x),
        "targets_met": sum(r["met"] for r in rows if r["in_fit"]),
        "targets_in_fit": sum(r["in_fit"] for r in rows),
        "orderings_met": orderings_met(rows),
        "terms": rows,
        "runs": fit.runs,
        "replicates": len(problem.seeds),
        "fit_until": problem.fit_until,
    }
    if fit.generations:
        summary["generations"] = fit.generations
    summary |= extra or {}
    if fit.posterior is not None:
        summary["posterior"] = {
            name: {
                "median": weighted_quantile(fit.posterior[:, j], fit.weights, 0.5),
                "p5": weighted_quantile(fit.posterior[:, j], fit.weights, 0.05),
                "p95": weighted_quantile(fit.posterior[:, j], fit.weights, 0.95),
            }
            for j, name in enumerate(problem.names)
        }
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([*problem.names, "weight"])
        for sample, weight in zip(fit.posterior, fit.weights):
            w.writerow([*(format(float(v), ".8g") for v in sample), format(float(weight), ".8g")])
        atomic_write(folder / "posterior.csv", buf.getvalue())
    write_json(folder / "fit.json", _jsonable(summary))
    atomic_write(folder / "observed_vs_simulated.csv", rows_csv(rows))
    header = (
        f"{CALIBRATED_BY} ({fit_words(summary)}).\n"
        f"# Fitted: {', '.join(problem.names)}. Self-contained: every value is written out.\n"
    )
    installs = [install] if install is not None and not fit.tempered else []
    for where in (folder / "calibrated", *installs):
        mark = calibration_mark(folder, summary, drawn_from=where if fit.posterior is not None else None)
        files = calibrated_scenarios(problem, full, fit.x, header, mark, peers)
        if where == install:
            install_files(install, files)
        else:
            for name, text in files.items():
                atomic_write(child(where, name), text)
    if install is not None and fit.tempered:  # scenarios run from there would present it as the posterior
        raise InputError(
            "--install",
            "",
            f"not installed into {install}: the fit stopped before the posterior ({fit.stopped}); its files, "
            f"labelled so, are in {folder / 'calibrated'}. Give it the runs or time to reach temperature 1",
        )
    return summary


def installed_names(full: Scenario) -> set[str]:
    """The names of the calibrated scenario files (calibrated_scenarios): the whole scenario and each province."""
    return {f"{full.name}.yaml", *(f"{key}.yaml" for key in full.provinces)}


CALIBRATED_BY = "# Calibrated by `egovsim calibrate`"  # the first line of every calibrated scenario file


def check_install(folder: Path, full: Scenario, overwrite: bool = False) -> None:
    """--install DIR is replaced whole by the calibrated files: refuse, before fitting, a folder that holds
    anything else (never delete a user's files), or a file of the same name that no calibration wrote (a
    scenario of the user's called hue.yaml), unless --overwrite."""
    if Path(folder).exists() and not Path(folder).is_dir():  # the swap would put a file of the user's aside
        raise InputError(str(folder), "--install", "is a file, not a folder: give a folder for the calibrated files")
    check_place(folder, "--install")  # replaced whole like a run's folder: the same places are refused
    check_replaceable(folder, "--install")
    try:
        entries = sorted(Path(folder).iterdir())
    except FileNotFoundError:
        return
    other = [p.name for p in entries if p.name not in installed_names(full)]
    if other:
        raise InputError(
            str(folder), "--install", f"holds other files ({other[0]}...): give a folder for the calibrated files only"
        )
    mine = [p.name for p in entries if not _written_by_calibrate(p)]
    if mine and not overwrite:
        raise InputError(
            str(folder),
            "--install",
            f"holds {mine[0]}, which no calibration wrote: give --overwrite to replace it, or another folder",
        )


def _written_by_calibrate(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(CALIBRATED_BY)
    except OSError:  # a folder, or unreadable: not a file this command wrote
        return False


def install_files(folder: Path, files: dict[str, str]) -> None:
    """The calibrated scenario files into `folder`, written beside it and swapped in whole: it never holds
    some files of one fit and some of another, even if the command is killed while installing."""
    with replaced(folder) as new:
        for name, text in files.items():
            atomic_write(new / name, text)


def rows_csv(rows: list[dict]) -> str:
    """CSV text of rows (dicts); the columns are the union of the rows' keys, in order of first use."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return _jsonable(obj.item())
    return obj


def print_terms(summary: dict) -> None:
    """The fit's loss and every term, met or not, on stderr."""
    print(
        f"loss {summary['loss']:.3f}; {summary['targets_met']}/{summary['targets_in_fit']} fitted targets met; "
        f"{summary['model_runs']} model runs ({summary['stopped']})",
        file=sys.stderr,
    )
    if summary.get("chain_effective_sample_size") is not None:  # the ESS to quote (docs/calibration.md)
        print(
            f"posterior: effective sample size {summary['chain_effective_sample_size']:.0f} counting the chains' "
            f"autocorrelation ({summary['effective_sample_size']:.0f} by the weights alone)",
            file=sys.stderr,
        )
    for r in summary["terms"]:
        obs = r["observed"] if isinstance(r["observed"], str) else f"{r['observed']:.4g}"
        flag = "met" if r["met"] else "NOT met"
        fitted = "" if r["in_fit"] else (" (a check, weight 0)" if r.get("weight") == 0 else " (held out of the fit)")
        print(
            f"  {r['target']:<28} {r['where']:<22} observed {obs:<12} simulated {r['simulated_mean']:.4g} "
            f"[{r['simulated_p5']:.3g}, {r['simulated_p95']:.3g}]  {flag}{fitted}",
            file=sys.stderr,
        )
