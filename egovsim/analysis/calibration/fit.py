"""Differential evolution: the quick point estimate (scipy), a generation at a time through the runner."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egovsim.analysis.calibration.config import OptimizeSettings
from egovsim.analysis.calibration.terms import Evaluation, FitProblem
from egovsim.errors import InputError
from egovsim.files import atomic_write
from egovsim.runner.runner import Store, run_one


@dataclass
class Fit:
    method: str
    x: np.ndarray
    loss: float
    evaluations: int
    stopped: str
    posterior: np.ndarray | None = None  # (particles, parameters) for abc
    weights: np.ndarray | None = None
    runs: dict | None = None  # Evaluation.tally(): runs run now, resumed from the store, failed
    generations: list[dict] | None = None  # abc: per population, temperature, acceptance rate, ESS
    chain_ess: float | None = None  # abc by smc: the effective sample size counting the chains' autocorrelation
    chain_length: int = 1  # abc by smc: the posterior's particles are chains of this many consecutive states

    @property
    def tempered(self) -> bool:
        """An abc fit stopped (by its budget or max_populations) before temperature 1: its particles are a
        tempered posterior, wider than the posterior."""
        return self.stopped.endswith(TEMPERED)


# how an abc fit's `stopped` ends when it did not reach temperature 1 (smc.py, abcsmc.py)
TEMPERED = " (stopped before the posterior: a tempered posterior)"


def optimize(
    problem: FitProblem,
    executor: Executor,
    settings: OptimizeSettings,
    *,
    seed: int,
    store: Store | None = None,
    run: Callable[..., dict] = run_one,
    max_runs: int | None = None,
    max_time: float | None = None,
    checkpoint: Path | None = None,
    progress=None,
) -> Fit:
    """Differential evolution (scipy) over the parameter box, all members of a generation evaluated at once
    through the runner on `executor` (runs saved in `store`, a failed run scored as missing). Deterministic for
    a seed whatever the executor and the number of workers (deferred updating and common random numbers).
    Resumes from `checkpoint` when it holds a population of this problem; the runs of its members, and of
    every vector evaluated before, are then taken from the store."""
    from scipy.optimize import differential_evolution

    generations = _generations(problem, settings, max_runs)
    init, done = _resumed(problem, settings, seed, checkpoint)
    evaluation = Evaluation(problem, executor, store, run)
    start = time.monotonic()
    state = {"generation": done, "stopped": "max generations", "evaluations": 0}

    def on_generation(intermediate_result) -> bool:
        state["generation"] += 1
        if checkpoint is not None:
            write_checkpoint(checkpoint, problem, intermediate_result.population, state["generation"], seed)
        if progress is not None:
            progress(state["generation"], float(intermediate_result.fun))
        if max_time is not None and time.monotonic() - start > max_time:
            state["stopped"] = "time budget"
            return True
        return False

    result = differential_evolution(
        evaluation,
        problem.bounds,
        maxiter=max(0, generations - done),
        popsize=settings.popsize,
        tol=settings.tol,
        rng=np.random.default_rng(seed),
        init=init,
        updating="deferred",
        vectorized=True,  # a generation at a time: one batch of runs for the runner
        polish=False,
        callback=on_generation,
    )
    if result.success and state["stopped"] == "max generations":
        state["stopped"] = "converged"
    elif state["stopped"] == "max generations" and generations < settings.max_generations:
        state["stopped"] = f"run budget ({generations} of {settings.max_generations} generations after the first)"
    return Fit(
        "optimize",
        np.asarray(result.x),
        float(result.fun),
        evaluation.vectors * len(problem.seeds),  # scipy's nfev counts calls of a vectorized objective
        state["stopped"],
        runs=evaluation.tally(),
    )


def _generations(problem: FitProblem, settings: OptimizeSettings, max_runs: int | None) -> int:
    """Generations after the first population that the settings and the run budget allow."""
    per_generation = settings.popsize * len(problem.names) * len(problem.seeds)
    if max_runs is None:
        return settings.max_generations
    if max_runs < per_generation:  # the first population costs one generation's runs too
        raise InputError(
            "--max-runs",
            "",
            f"differential evolution needs at least {per_generation} runs "
            f"(popsize {settings.popsize} x {len(problem.names)} parameters x "
            f"{len(problem.seeds)} replicates) for its first population, got {max_runs}",
        )
    return min(settings.max_generations, max_runs // per_generation - 1)


def _resumed(problem: FitProblem, settings: OptimizeSettings, seed: int, checkpoint: Path | None) -> tuple[Any, int]:
    """(scipy's init, generations done): the checkpoint's population when it is one of this problem, else
    a fresh Latin hypercube."""
    saved = read_checkpoint(checkpoint) if checkpoint is not None else None
    if saved is not None and (
        saved["population"].shape == (settings.popsize * len(problem.names), len(problem.names))
        and list(saved["names"]) == problem.names
        and np.array_equal(saved["bounds"], problem.bounds)
        and int(saved["seed"]) == seed
    ):  # continue from the saved population (not bit-identical to an uninterrupted fit)
        return saved["population"], int(saved["generation"])
    return "latinhypercube", 0


def write_checkpoint(path: Path, problem: FitProblem, population: np.ndarray, generation: int, seed: int) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        population=population,
        names=np.array(problem.names),
        generation=generation,
        bounds=problem.bounds,
        seed=seed,
    )
    atomic_write(path, buf.getvalue())


def read_checkpoint(path: Path) -> dict | None:
    """The saved population of an interrupted fit; None when there is none or it cannot be read (said once,
    naming the file: the fit then starts afresh and overwrites it)."""
    keys = ("population", "names", "generation", "bounds", "seed")
    try:
        with np.load(path) as data:
            return {k: data[k] for k in keys}
    except FileNotFoundError:
        return None
    except Exception as exc:  # truncated, empty, not a zip, a key missing
        print(
            f"egovsim: warning: {path}: unreadable checkpoint ({type(exc).__name__}); starting afresh", file=sys.stderr
        )
        return None


class generation_bar:
    """A tqdm bar of generations on stderr, called with (generation, best loss)."""

    def __init__(self, total: int, quiet: bool):
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, desc="differential evolution", unit="generation", disable=quiet, file=sys.stderr, leave=False
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def __call__(self, generation: int, best: float) -> None:
        self.bar.n = generation
        self.bar.set_postfix(best_loss=f"{best:.3g}")
