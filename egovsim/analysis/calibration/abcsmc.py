"""ABC-SMC (pyabc): a posterior of the free parameters, and the sampler that runs its particle tasks on the
experiment runner's executors with the same posterior for a seed whatever the executor."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from egovsim.analysis.calibration.config import ABCSettings
from egovsim.analysis.calibration.fit import TEMPERED, Fit
from egovsim.analysis.calibration.posterior import kish_ess, posterior_point, to_parameters
from egovsim.analysis.calibration.terms import FitProblem, replicate_mean, run_vectors, term_values
from egovsim.config.scenario import scenario_from_dict
from egovsim.runner.runner import SerialExecutor, Store, run_one

SEED_DRAW = 2**63 - 1  # the particle's run seed is drawn below this from the particle task's seeded generator


class _ABCModel:
    """pyabc model: parameters -> simulated term values, from `replicates` runs with seeds of their own drawn
    from the particle task's seeded generator (so a particle's likelihood is an unbiased estimate over the
    model's chance, not conditional on one fixed seed: a pseudo-marginal), through the runner in the particle
    task's process (serially: the particle tasks are what the executor spreads), saved in the store at
    `store_folder` when given. Picklable for pyabc's samplers."""

    def __init__(self, problem: FitProblem, replicates: int, store_folder=None, code=None, run: Callable = run_one):
        self.problem, self.replicates, self.run = problem, replicates, run
        self.store_folder, self.code = store_folder, code

    def __call__(self, pars: dict) -> dict:
        x = to_parameters(self.problem, np.array([pars[f"x{i}"] for i in range(len(self.problem.names))]))
        seeds = [int(s) for s in np.random.randint(0, SEED_DRAW, size=self.replicates, dtype=np.int64)]
        problem = dataclasses.replace(self.problem, seeds=seeds)
        store = Store(self.store_folder, self.code) if self.store_folder is not None else None
        if getattr(self, "_base", None) is None:  # validated once per process, not once per particle
            self._base = scenario_from_dict(problem.scenario)
        stats, _ = run_vectors(problem, [x], SerialExecutor(), store=store, run=self.run, base=self._base)
        values = term_values(problem.terms, problem.quantities, replicate_mean(stats[0]))
        return {f"t{i}": float(v) for i, v in enumerate(values)}


class _LogLikelihood:
    """log likelihood of the observations given a particle's simulated term values: -loss / 2 over the fitted
    terms (terms.py: each term's loss is -2 log likelihood relative to its best). pyabc's stochastic acceptor accepts a particle
    with chance (likelihood / the highest seen) ** (1 / T), T falling to 1 over the populations; at T = 1 the
    accepted particles are draws from the posterior for that likelihood (Wilkinson 2013, "Approximate Bayesian
    computation gives exact results under the assumption of model error"), up to the cap described in abc()."""

    def __init__(self, problem: FitProblem):
        self.problem = problem

    def __call__(self, x: dict, x_0: dict, t: int | None = None, par: dict | None = None) -> float:
        losses = np.array([term.score(x[f"t{i}"])[0] for i, term in enumerate(self.problem.terms)])
        return -0.5 * self.problem.total(losses)


INFLATION = 1.2  # the proposal a little wider than the population: a narrower one gives the heavier weights


def shrunk_covariance(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted covariance shrunk toward its diagonal by d / ESS (at most all the way).

    Why: 60 particles estimate a 21 x 21 covariance badly (its eigenvalues spread from about 0.2 to 2.5 times
    the true ones, Marchenko-Pastur), and a proposal too narrow in some direction gives weights without
    bound there; shrinking keeps each parameter's own spread and trusts correlations as far as the sample
    can tell them."""
    from pyabc.transition.util import smart_cov

    cov = np.atleast_2d(smart_cov(values, w))
    ess = kish_ess(w)
    shrink = min(1.0, cov.shape[0] / max(ess, 1.0))
    cov = (1 - shrink) * cov + shrink * np.diag(np.diag(cov))
    return cov + np.eye(len(cov)) * 1e-9 * max(float(np.trace(cov)) / len(cov), 1e-300)  # never singular


def defensive_transition(defensive: float = 0.1):
    """pyabc transition on the logistic scale (abc_prior): with chance 1 - `defensive` a multivariate normal
    with the weighted population's mean and covariance, else a draw from the prior itself (a defensive mixture,
    Hesterberg 1995), instead of pyabc's default kernel density mixture.

    Why: a particle's importance weight is prior / proposal density, and in 21 dimensions any mismatch of
    shape is multiplied over the dimensions. pyabc's mixture of one narrow normal per particle is a lumpy
    density, and a multivariate t's one shared radial scale misplaces the mass of a product of independent
    priors; each left an effective sample size of 2-7 of 60 after one population (measured). A normal matched
    to the population differs from the logistic prior, coordinate by coordinate, only a little where the data
    leave a parameter at its prior, and the prior in the mixture bounds every weight by 1 / `defensive` (10);
    the price is that a tenth of the proposals come from the prior, and most of those are rejected."""
    import pandas as pd
    from pyabc import Parameter
    from pyabc.transition import Transition
    from scipy.stats import logistic, multivariate_normal

    class DefensiveTransition(Transition):
        def fit(self, X: pd.DataFrame, w: np.ndarray) -> None:
            values = X.to_numpy()
            self.mean = np.average(values, axis=0, weights=w)
            self.cov = shrunk_covariance(values, w) * INFLATION
            self.normal = multivariate_normal(mean=self.mean, cov=self.cov, allow_singular=True)

        def rvs_single(self) -> Parameter:
            # from numpy's global generator, which the particle task has seeded (a frozen scipy distribution
            # would carry its own generator, pickled alike into every task)
            if np.random.uniform() < defensive:
                draw = np.random.logistic(size=len(self.mean))
            else:
                draw = np.random.multivariate_normal(self.mean, self.cov)
            return Parameter(dict(zip(self.X.columns, draw)))

        def pdf(self, x):
            if isinstance(x, Parameter | pd.Series):
                z = np.array([x[key] for key in self.X.columns])
            else:
                z = x[self.X.columns].to_numpy()
            prior = np.exp(logistic.logpdf(z).sum(axis=-1))
            density = (1 - defensive) * self.normal.pdf(z) + defensive * prior
            return float(density) if np.ndim(density) == 0 else np.atleast_1d(density)

    return DefensiveTransition()


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
    run: Callable = run_one,
) -> Fit:
    """ABC-SMC (pyabc) with the calibration's priors and the terms' likelihood, tempered from the prior to the
    posterior over `settings.max_populations` populations (the last at temperature 1); history in SQLite at
    `db` (a rerun continues it). Runs are saved in `store` (a rerun after an interruption takes the particles'
    runs from it: particle tasks are seeded, so they ask for the same runs)."""
    import pyabc
    from pyabc.distance import SCALE_LOG

    np.random.seed(seed % 2**32)  # what pyabc draws in this process (its particle tasks seed their own)
    smc = pyabc.ABCSMC(
        _ABCModel(
            problem,
            settings.replicates,
            store.folder if store is not None else None,
            store.code if store is not None else None,
            run,
        ),
        abc_prior(problem),
        pyabc.distance.FunctionKernel(_LogLikelihood(problem), ret_scale=SCALE_LOG),
        population_size=settings.population_size,
        sampler=sampler,
        transitions=defensive_transition(),
        eps=pyabc.Temperature(),
        # no importance weights for particles above the highest likelihood found so far (they are accepted with
        # weight 1): with one noisy run per particle a lucky run's weight would dwarf the others' (measured: an
        # effective sample size of 2 of 60 after one population). The price, a likelihood capped at the best
        # value seen, flattens the posterior only near its peak; coverage (coverage.py) shows its effect
        acceptor=pyabc.StochasticAcceptor(apply_importance_weighting=False),
    )
    done = _open_history(smc, db, len(problem.terms))
    if done:  # a resumed fit goes on with the temperatures it had, toward the same last population
        smc.eps = resumed_temperature(smc.history)
    # the total, not what is left: pyabc's temperature schedule counts populations from 0 whether or not the
    # fit was resumed, and ends at temperature 1 at population max_populations - 1
    kwargs: dict[str, Any] = {"max_nr_populations": settings.max_populations}
    if max_runs is not None:
        kwargs["max_total_nr_simulations"] = max(settings.population_size, max_runs // settings.replicates)
    if max_time is not None:
        kwargs["max_walltime"] = datetime.timedelta(seconds=max_time)
    history = smc.run(**kwargs) if done < settings.max_populations else smc.history
    frame, weights = history.get_distribution()
    samples = to_parameters(problem, frame[[f"x{i}" for i in range(len(problem.names))]].to_numpy())
    weights = np.asarray(weights, dtype=float)
    point, loss = posterior_point(problem, samples, weights, SerialExecutor(), store, run)
    evaluations = int(history.total_nr_simulations) * settings.replicates
    temperature = _temperatures(history)[-1]
    stopped = f"{history.max_t + 1} populations, temperature {temperature:.3g}" + (TEMPERED if temperature > 1 else "")
    return Fit(
        "abc",
        point,
        loss,
        evaluations,
        stopped,
        samples,
        weights,
        generations=generation_table(history, settings.replicates),
    )


def resumed_temperature(history):
    """pyabc's temperature schedule carrying the temperatures of the populations already in `history`, so the
    next one follows from them as in an uninterrupted fit (pyabc starts a loaded fit's schedule empty)."""
    import pyabc

    temperature = pyabc.Temperature()
    pops = history.get_all_populations()
    temperature.temperatures.update({int(t): float(e) for t, e in zip(pops["t"], pops["epsilon"]) if t >= 0})
    return temperature


def _open_history(smc, db: Path, n_terms: int) -> int:
    """Continue the history in `db` (returns the populations it holds), or start one; a damaged history is
    kept aside."""
    url = f"sqlite:///{db}"
    try:
        if not db.exists():
            raise FileNotFoundError(db)
        smc.load(url, 1)
        return int(smc.history.max_t) + 1
    except Exception as exc:  # none, or unreadable: start afresh, keeping a damaged history aside
        if db.exists():
            aside = db.with_name(db.name + ".unreadable")
            print(
                f"egovsim: warning: {db}: unreadable ABC history ({type(exc).__name__}); moved to {aside.name}, "
                "starting afresh",
                file=sys.stderr,
            )
            os.replace(db, aside)
        smc.new(url, {f"t{i}": 0.0 for i in range(n_terms)})
        return 0


def _temperatures(history) -> list[float]:
    pops = history.get_all_populations()
    return [float(e) for t, e in zip(pops["t"], pops["epsilon"]) if t >= 0]


def generation_table(history, replicates: int = 1) -> list[dict]:
    """Per population: temperature, model runs (particles evaluated x replicates), acceptance rate, effective sample size (Kish)."""
    pops = history.get_all_populations()
    rows = []
    for t, temperature, samples, particles in zip(pops["t"], pops["epsilon"], pops["samples"], pops["particles"]):
        if t < 0:
            continue  # pyabc's calibration sample
        _, w = history.get_distribution(t=int(t))
        w = np.asarray(w, dtype=float)
        rows.append(
            {
                "population": int(t),
                "temperature": float(temperature),
                "evaluations": int(samples) * replicates,  # model runs, as the smc sampler counts them
                "accepted": int(particles),
                "acceptance_rate": float(particles) / float(samples) if samples else math.nan,
                "ess": kish_ess(w),
            }
        )
    return rows


def abc_prior(problem: FitProblem):
    """pyabc's prior, on the scale ABC-SMC searches: z = logit(F(x)) with F the parameter's prior CDF (uniform
    over its bounds, or its normal prior truncated to them), so every z is standard logistic, whatever the box.

    Why: a particle's weight is prior / proposal density. Where the data leave a parameter at its prior, a flat
    prior on a box against a bell-shaped proposal gives weights that grow without bound toward the box's
    edges; over 21 parameters their product left an effective sample size of 1.5 of 60 after one population
    (measured). On the logistic scale the prior is itself bell-shaped and the weights stay even.
    to_parameters(problem, z) maps back."""
    import pyabc

    return pyabc.Distribution(**{f"x{i}": pyabc.RV("logistic", 0, 1) for i in range(len(problem.names))})


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
