"""A whole calibration as one function: check the inputs, fit (either method) on an executor, write the
output folder. The command line (`egovsim calibrate`) only turns its arguments into these calls."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egovsim.analysis.calibration.abcsmc import abc, seeded_sampler
from egovsim.analysis.calibration.config import ABCSettings, CalibrationConfig, load_config
from egovsim.analysis.calibration.fit import TEMPERED, Fit, generation_bar, optimize
from egovsim.analysis.calibration.report import check_install, rows_csv, write_outputs
from egovsim.analysis.calibration.smc import smc
from egovsim.analysis.calibration.stacks import STACK_LABELS, stack_records, stack_table
from egovsim.analysis.calibration.terms import Evaluation, FitProblem, make_problem
from egovsim.config.scenario import Scenario, load_scenario
from egovsim.config.yamlfile import read_yaml, referenced_file
from egovsim.errors import InputError, clipped
from egovsim.files import atomic_write, write_json
from egovsim.folders import claimed, fresh_outputs, new_folder, overlap
from egovsim.provenance import provenance
from egovsim.report.dictionary import calibration_words, dictionary_csv
from egovsim.report.runfolder import write_scenario
from egovsim.runner.runner import Store, run_one

METHODS = ("optimize", "abc")


@dataclass
class Calibration:
    """A checked calibration: its config, the problem to fit, the full base scenario (for the calibrated
    files) and where to install them."""

    path: Path
    config: CalibrationConfig
    problem: FitProblem
    full: Scenario
    install: Path | None = None


def plan_calibration(
    config_path: str | Path,
    *,
    fit_until: int | None = None,
    install: str | Path | None = None,
    overwrite: bool = False,
) -> Calibration:
    """Read and check the calibration file, its scenario and observations, and the --install folder (whose
    files of the user's are replaced only with `overwrite`): bad input is reported before any worker starts."""
    config, folder = load_config(config_path)
    problem = make_problem(config, folder, str(config_path), fit_until=fit_until)
    full = load_scenario(
        referenced_file(config_path, "scenario", config.scenario), config.set, set_in=str(config_path)
    )  # own scale
    if install is not None:
        check_install(Path(install), full, overwrite)
    return Calibration(Path(config_path), config, problem, full, Path(install) if install is not None else None)


def calibrate(
    plan: Calibration | str | Path,
    *,
    executor: Executor,
    method: str = "optimize",
    out: str | Path | None = None,
    max_runs: int | None = None,
    max_time: float | None = None,
    progress: bool = False,
    command_line: list[str] | None = None,
    provenance_extra: dict | None = None,
) -> tuple[Path, dict]:
    """Fit `plan` (a Calibration, or a calibration file's path) with `method` on `executor`, then write the
    output folder `out` (default results/calibration-<method>-<time>): fit.json, observed_vs_simulated.csv,
    plots, calibrated/ (and the installed copy), provenance.json. The runs are kept in out/runs: the same
    call again with the same `out` resumes. Returns (out, the summary written to fit.json)."""
    if method not in METHODS:
        raise InputError("--method", "", f"expected one of {', '.join(METHODS)}, got {clipped(method)}")
    if not isinstance(plan, Calibration):
        plan = plan_calibration(plan)
    out = Path(out) if out is not None else new_folder(f"calibration-{method}")
    if plan.install is not None and overlap(plan.install, out):  # the swap of one would take the other with it
        raise InputError(
            str(plan.install), "--install", f"is --out, inside it or holding it ({out}): give a folder of its own"
        )
    with claimed(out):
        summary = _calibrate(
            plan, executor, method, out, max_runs, max_time, progress, command_line, provenance_extra or {}
        )
    return out, summary


def _calibrate(
    plan: Calibration,
    executor: Executor,
    method: str,
    out: Path,
    max_runs: int | None,
    max_time: float | None,
    progress: bool,
    command_line: list[str] | None,
    provenance_extra: dict,
) -> dict:
    from egovsim.report.plots import fit_trajectories, structure_vs_data

    config, problem = plan.config, plan.problem
    store = Store(out / "runs")
    start = time.perf_counter()
    if method == "optimize":
        with generation_bar(config.optimize.max_generations, not progress) as bar:
            fit = optimize(
                problem,
                executor,
                config.optimize,
                seed=config.seed,
                store=store,
                max_runs=max_runs,
                max_time=max_time,
                checkpoint=out / "checkpoint.npz",
                progress=bar,
            )
    else:
        # the posterior is of the tempered likelihood (every sd times sqrt(temperature)); what it is checked
        # against below (targets met, the predictive's observation error) stays the stated errors: the same
        # yardstick as every run's report, never one widened for the sampler's sake
        fit = fit_posterior(
            problem.widened(config.abc.temperature),
            config.abc,
            executor,
            seed=config.seed,
            folder=out,
            store=store,
            max_runs=max_runs,
            max_time=max_time,
            progress=progress,
        )
    # the replicates at the fitted point: from the store (the fit ran them), else run now
    final = Evaluation(problem, executor, store)
    stats, records = final.records(fit.x)
    stacks = stack_records(problem, fit.x, executor, store)  # what structure, events and the fit each give
    prov = provenance(
        seeds=problem.seeds,
        wall_time_s=time.perf_counter() - start,
        scenario_file=str(plan.path),
        command=command_line,
        extra={
            "method": method,
            "config": read_yaml(plan.path),
            "max_runs": max_runs,
            "max_time": max_time,
            **provenance_extra,
        },
    )
    refuse_to_replace_a_posterior(out, fit)
    fresh_outputs(out)  # the earlier fit's files go first: the folder never mixes two fits
    write_scenario(out, problem.scenario)  # as the fit ran it: at the fitting scale and end year
    fitted = problem.scenario_at(fit.x)
    extra = {"stacks": stack_table(fitted, stacks)}
    if fit.posterior is not None:
        extra |= _posterior_outputs(problem, fit, config, executor, store, out)
    peers = _outside_peers(problem, fit, plan.full, config.seed, executor, store)
    summary = write_outputs(out, problem, fit, plan.full, stats, plan.install, extra, peers)
    tables = ["observed_vs_simulated.csv", "posterior.csv", "posterior_summary.csv", "predictive.csv"]
    atomic_write(out / "columns.csv", dictionary_csv(out, tables, calibration_words(problem.names)))
    if stacks:
        structure_vs_data(fitted, stacks, STACK_LABELS, out / "plots" / "structure_vs_data.png")
    if len(records):
        fit_trajectories(problem.scenario_at(fit.x), records, summary["terms"], out / "plots" / "fit.png")
    write_json(out / "provenance.json", prov)  # last: it marks the folder's files as one whole set
    return summary


# runs of the whole calibrated scenario that give each province's outside peers (posterior.outside_peer_paths)
PEER_DRAWS = 20


def _outside_peers(problem, fit, full, seed, executor, store) -> dict[str, dict]:
    """Each province's outside peers for its own calibrated file: from posterior draws, or the fitted point."""
    from egovsim.analysis.calibration.posterior import outside_peer_paths

    if fit.posterior is not None:
        samples, weights = fit.posterior, fit.weights
    else:
        samples, weights = np.asarray([fit.x]), np.ones(1)
    return outside_peer_paths(problem, full, samples, weights, executor, draws=PEER_DRAWS, seed=seed, store=store)


def refuse_to_replace_a_posterior(out: Path, fit) -> None:
    """A fit stopped before temperature 1 (a smaller budget given again) does not replace the finished posterior
    of the same fit in `out`: its runs are kept, and a larger budget or another --out gives the tempered one."""
    try:
        earlier = json.loads((out / "fit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    stopped = earlier.get("stopped") if isinstance(earlier, dict) else None
    if fit.tempered and earlier.get("method") == "abc" and isinstance(stopped, str) and not stopped.endswith(TEMPERED):
        raise InputError(
            "--max-runs",
            "",
            f"this fit stopped before the posterior ({fit.stopped}); {out} holds the finished posterior of the same "
            "fit, which is kept: give the budget it needs, or another --out for the tempered one",
        )


def fit_posterior(
    problem: FitProblem,
    settings: ABCSettings,
    executor: Executor,
    *,
    seed: int,
    folder: Path,
    store: Store | None = None,
    max_runs: int | None = None,
    max_time: float | None = None,
    progress: bool = False,
    run: Callable = run_one,
) -> Fit:
    """The posterior of `problem` by the sampler `settings.sampler` names: smc (smc.py) or pyabc's ABC-SMC
    (abcsmc.py, its history in folder/abc.db)."""
    if settings.sampler == "pyabc":
        folder.mkdir(parents=True, exist_ok=True)
        return abc(
            problem,
            settings,
            db=folder / "abc.db",
            sampler=seeded_sampler(executor, seed),
            seed=seed,
            store=store,
            max_runs=max_runs,
            max_time=max_time,
            run=run,
        )
    report = None
    if progress:

        def report(row: dict) -> None:
            print(
                f"egovsim: population {row['population']}: temperature {row['temperature']:.3g}, "
                f"{row['evaluations']} runs, effective sample size {row['ess']:.0f}",
                file=sys.stderr,
            )

    return smc(
        problem,
        settings,
        executor=executor,
        seed=seed,
        store=store,
        max_runs=max_runs,
        max_time=max_time,
        run=run,
        progress=report,
    )


def _posterior_outputs(problem, fit, config, executor, store, out: Path) -> dict:
    """What the posterior says and what it predicts: posterior_summary.csv (prior and posterior side by
    side, the contraction, informed or not), the strong correlations, predictive.csv (every target's 90%
    posterior predictive interval; the held-out check when --fit-until left targets out) and their plots;
    returns the headlines for fit.json."""
    from egovsim.analysis.calibration.posterior import (
        correlations,
        kish_ess,
        marginals,
        predictive_table,
        predictive_terms,
        prior_sample,
        strong_pairs,
    )
    from egovsim.report.plots import posterior_correlations, posterior_marginals

    rows = marginals(problem, fit.posterior, fit.weights, block=fit.chain_length)
    corr = correlations(fit.posterior, fit.weights)
    atomic_write(out / "posterior_summary.csv", rows_csv(rows))
    summary = {
        # the posterior's likelihood: every term's error variance times this (config abc.temperature); the
        # targets met and the predictive below use the stated errors
        "temperature": config.abc.temperature,
        "effective_sample_size": kish_ess(fit.weights),
        # smc: the chains' autocorrelation counted (the weights' ESS above counts every state as independent)
        "chain_effective_sample_size": fit.chain_ess,
        "not_informed": [r["parameter"] for r in rows if r["informed"] == "no"],
        "undetermined": [r["parameter"] for r in rows if r["informed"] == "undetermined"],
        "marginals": rows,
        "strong_correlations": strong_pairs(problem.names, corr),
    }
    prior = prior_sample(problem, 4000, config.seed)
    posterior_marginals(
        problem.names, fit.posterior, fit.weights, problem.bounds, out / "plots" / "posterior.png", rows, prior
    )
    posterior_correlations(problem.names, corr, out / "plots" / "posterior_correlations.png")
    if config.abc.predictive_draws:
        simulated = predictive_terms(
            problem,
            fit.posterior,
            fit.weights,
            executor,
            draws=config.abc.predictive_draws,
            seed=config.seed,
            store=store,
        )
        table = predictive_table(problem, simulated, config.seed)
        atomic_write(out / "predictive.csv", rows_csv(table))
        held = [r for r in table if not r["in_fit"] and not r["check"]]
        summary["predictive"] = {
            "draws": config.abc.predictive_draws,
            "in_fit_inside": sum(r["inside"] for r in table if r["in_fit"]),
            "in_fit": sum(r["in_fit"] for r in table),
            "held_out_inside": sum(r["inside"] for r in held),
            "held_out": len(held),
        }
    return summary
