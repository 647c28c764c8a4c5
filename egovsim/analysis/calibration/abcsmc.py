"""ABC-SMC (pyabc): a posterior of the free parameters, and the sampler that runs its particle tasks on the
experiment runner's executors with the same posterior for a seed whatever the executor."""

from __future__ import annotations

import datetime
import functools
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from egovsim.analysis.calibration.config import ABCSettings
from egovsim.analysis.calibration.fit import Fit
from egovsim.analysis.calibration.terms import Evaluation, FitProblem, replicate_mean, run_vectors, term_values
from egovsim.runner.runner import SerialExecutor, Store


class _ABCModel:
    """pyabc model: parameters -> term values (replicate means), the replicates run through the runner in the
    particle task's process (serially: the particle tasks are what the executor spreads), saved in the store
    at `store_folder` when given. Picklable for pyabc's samplers."""

    def __init__(self, problem: FitProblem, store_folder: Path | None = None, code: dict | None = None):
        self.problem = problem
        self.store_folder, self.code = store_folder, code

    def __call__(self, pars: dict) -> dict:
        x = [pars[f"x{i}"] for i in range(len(self.problem.names))]
        store = Store(self.store_folder, self.code) if self.store_folder is not None else None
        stats, _ = run_vectors(self.problem, [x], SerialExecutor(), store=store)
        values = term_values(self.problem.terms, self.problem.quantities, replicate_mean(stats[0]))
        return {f"t{i}": float(v) for i, v in enumerate(values)}


class _ABCDistance:
    """sqrt of the fitted loss: the distance ABC-SMC shrinks population by population."""

    def __init__(self, problem: FitProblem):
        self.problem = problem

    def __call__(self, x: dict, x0: dict) -> float:
        losses = np.array([t.score(x[f"t{i}"])[0] for i, t in enumerate(self.problem.terms)])
        return math.sqrt(self.problem.total(losses))


def abc(
    problem: FitProblem,
    settings: ABCSettings,
    *,
    db: Path,
    sampler,
    seed: int,
    store: Store | None = None,
    max_runs: int | None = None,
    max_time: float | None = None,
) -> Fit:
    """ABC-SMC (pyabc) with uniform priors on the bounds; history in SQLite at `db` (a rerun continues it).
    Runs are saved in `store` (a rerun after an interruption takes the particles' runs from it: particle
    tasks are seeded, so they ask for the same runs)."""
    import pyabc

    np.random.seed(seed % 2**32)  # what pyabc draws in this process (its particle tasks seed their own)
    prior = abc_prior(problem)
    smc = pyabc.ABCSMC(
        _ABCModel(problem, store.folder if store is not None else None, store.code if store is not None else None),
        prior,
        _ABCDistance(problem),
        population_size=settings.population_size,
        sampler=sampler,
    )
    url = f"sqlite:///{db}"
    try:
        if not db.exists():
            raise FileNotFoundError(db)
        smc.load(url, 1)
    except Exception as exc:  # none, or unreadable: start afresh, keeping a damaged history aside
        if db.exists():
            aside = db.with_name(db.name + ".unreadable")
            print(
                f"egovsim: warning: {db}: unreadable ABC history ({type(exc).__name__}); moved to {aside.name}, "
                "starting afresh",
                file=sys.stderr,
            )
            os.replace(db, aside)
        smc.new(url, {f"t{i}": 0.0 for i in range(len(problem.terms))})
    kwargs: dict[str, Any] = {"minimum_epsilon": settings.min_epsilon, "max_nr_populations": settings.max_populations}
    if max_runs is not None:
        kwargs["max_total_nr_simulations"] = max(settings.population_size, max_runs // len(problem.seeds))
    if max_time is not None:
        kwargs["max_walltime"] = datetime.timedelta(seconds=max_time)
    history = smc.run(**kwargs)
    frame, weights = history.get_distribution()
    samples = frame[[f"x{i}" for i in range(len(problem.names))]].to_numpy()
    weights = np.asarray(weights, dtype=float)
    point = np.array([weighted_quantile(samples[:, j], weights, 0.5) for j in range(samples.shape[1])])
    evaluations = int(history.total_nr_simulations) * len(problem.seeds)
    evaluation = Evaluation(problem, SerialExecutor(), store)
    loss = problem.objective(evaluation.statistics([point])[0], point)
    return Fit("abc", point, loss, evaluations, f"{history.max_t + 1} populations", samples, weights)


def abc_prior(problem: FitProblem):
    """pyabc's prior: per parameter uniform over its bounds, or its normal prior truncated to them."""
    import pyabc

    rvs = {}
    for i, (lo, hi) in enumerate(problem.bounds):
        normal = (problem.priors or [None] * len(problem.bounds))[i]
        if normal is None:
            rvs[f"x{i}"] = pyabc.RV("uniform", lo, hi - lo)
        else:
            mean, sd = normal
            rvs[f"x{i}"] = pyabc.RV("truncnorm", (lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)
    return pyabc.Distribution(**rvs)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(np.interp(q, cum, values[order]))


def seeded_sampler(executor, seed: int):
    """A pyabc sampler that runs through one of the experiment runner's executors (process pool, Dask,
    serial) and gives the same posterior for a seed whatever the number of workers.

    It is pyabc's MappingSampler (one task per accepted particle, results kept in task order) with one
    change: task i of population t seeds numpy and `random` from SeedSequence([seed, t + 1]).spawn(n)[i],
    where pyabc reseeds from the OS. (pyabc's other parallel samplers hand out particles first-come
    first-served, so their posteriors depend on timing.)"""
    from pyabc.sampler import MappingSampler

    class SeededMappingSampler(MappingSampler):
        def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False, ana_vars=None):
            task = functools.partial(seeded_particle, self.sample_factory, self.pickle(simulate_one))
            # t = -1 is pyabc's calibration sample (it sets the first epsilon)
            seeds = [s.generate_state(4) for s in np.random.SeedSequence([seed, t + 1]).spawn(n)]
            results = list(self.map_(task, seeds))  # a task that raises stops the fit with its error
            self.nr_evaluations_ = sum(evaluations for _, evaluations in results)
            sample = self._create_empty_sample()
            for particles, _ in results:
                sample += particles
            return sample

    return SeededMappingSampler(map_=executor.map)


# pyabc's simulate_one draws from numpy's and `random`'s process-wide generators: a worker with several
# threads (a Dask worker started with --nthreads > 1) runs its particle tasks one at a time, or their draws
# would interleave by timing
_GLOBAL_RANDOM = threading.Lock()


def seeded_particle(sample_factory, simulate_one: bytes, seed: np.ndarray):
    """Simulate from one seed until a particle is accepted: (the sample, model evaluations). A module-level
    function so that process pools and Dask can ship it; the caller's global random state is restored."""
    import random

    import cloudpickle

    simulate_one = cloudpickle.loads(simulate_one)
    with _GLOBAL_RANDOM:
        saved = np.random.get_state(), random.getstate()
        np.random.seed(seed)
        random.seed(int.from_bytes(seed.tobytes(), "little"))
        try:
            sample, evaluations = sample_factory(), 0
            while True:
                particle = simulate_one()
                evaluations += 1
                sample.append(particle)
                if particle.accepted:
                    return sample, evaluations
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])
