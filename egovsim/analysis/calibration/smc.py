"""The posterior by tempered sequential Monte Carlo with pseudo-marginal random-walk moves (waste-free SMC).

    prior draws -> runs -> log likelihoods -> [reweight to the next exponent -> resample -> move] ... -> exponent 1

The target is prior x likelihood, the likelihood of terms.py: pyabc's ABC-SMC (abcsmc.py) fits the same one,
but caps it at the highest value seen (its acceptor's choice there). A particle's likelihood is estimated by
its own runs, each with a seed of its own: the mean of their likelihoods is an unbiased estimate over the
model's chance, so the sampler is exact for the likelihood of "model run + observation error" (Andrieu & Roberts
2009, Wilkinson 2013). How particles move toward it:
- **Adaptive tempering** (Jasra et al. 2011): the likelihood is raised to an exponent that rises from 0 to 1;
  each step goes as far as keeps the reweighted sample's effective size at half its size (ESS_FRACTION).
- **Moves by Metropolis-Hastings, not by importance sampling.** After reweighting, M chains start from particles
  resampled by weight, and each takes P - 1 random-walk steps (the population's covariance, scaled by
  2.38 / sqrt(d)); every state of every chain is kept (waste-free SMC, Dau & Chopin 2022), so the next
  population has N = M x P equally weighted particles. A proposal's likelihood comes from its own new runs and a
  chain keeps its current state's estimate (pseudo-marginal).

Why not pyabc's proposals: an independent draw from a normal fitted to 80 particles is weighted by prior /
proposal, and in 21 dimensions those weights vary widely (the shipped pyabc posterior had an effective sample
size of 12.8 of 80 after 16,858 runs), and rejection at exponent 1 accepted 1 proposal in 100-170. Random-walk
moves need no such weights. Measured on the shipped calibration (2 workers): 7,700 runs and 7 min 34 s for
2,000 particles from 100 chains (docs/calibration.md).

Why not the `particles` library (Chopin), which implements this sampler: it pins numpy < 2, which this
project's locked stack cannot take.

Every random number is drawn in this process from generators seeded by `seed`, and the runs go through the
experiment runner: the posterior is the same on any executor, and a rerun after an interruption takes every
run already made from the store and replays the same path."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
from scipy.special import logsumexp

from egovsim.analysis.calibration.config import ABCSettings
from egovsim.analysis.calibration.fit import TEMPERED, Fit
from egovsim.analysis.calibration.posterior import kish_ess, posterior_point, to_parameters
from egovsim.analysis.calibration.terms import Evaluation, FitProblem
from egovsim.errors import RunsFailed
from egovsim.runner.runner import Store, run_one

ESS_FRACTION = 0.5  # each tempering step keeps half the effective sample size (Jasra et al. 2011; Chopin 2020)
RW_SCALE = 2.38  # step = 2.38 / sqrt(d) x the covariance's square root (Roberts, Gelman & Gilks 1997)
SEED_DRAW = 2**63 - 1  # run seeds are drawn below this


def log_prior(z: np.ndarray) -> np.ndarray:
    """log density of independent standard logistics (the search scale: posterior.to_parameters)."""
    a = np.abs(z)
    return -(a + 2.0 * np.log1p(np.exp(-a))).sum(axis=-1)


def ess(logw: np.ndarray) -> float:
    """Kish's effective sample size of weights given by their logs (-inf: weight 0)."""
    finite = np.isfinite(logw)
    if not finite.any():
        return 0.0
    return kish_ess(np.exp(logw[finite] - logw[finite].max()))


def next_exponent(loglik: np.ndarray, exponent: float, fraction: float = ESS_FRACTION) -> float:
    """The next tempering exponent: the largest in (exponent, 1] whose reweighting, by likelihood ** (new -
    exponent), keeps an effective sample size of at least `fraction` x the particles that have a likelihood
    (bisection: the ESS falls as the step grows)."""
    target = fraction * np.isfinite(loglik).sum()
    if ess((1.0 - exponent) * np.where(np.isfinite(loglik), loglik, -np.inf)) >= target:
        return 1.0
    lo, hi = 0.0, 1.0 - exponent
    for _ in range(100):
        mid = (lo + hi) / 2
        if ess(mid * np.where(np.isfinite(loglik), loglik, -np.inf)) >= target:
            lo = mid
        else:
            hi = mid
    return exponent + max(lo, 1e-12)


def systematic_resample(w: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m indices drawn in proportion to the normalised weights `w` (systematic resampling, one uniform)."""
    positions = (rng.random() + np.arange(m)) / m
    return np.minimum(np.searchsorted(np.cumsum(w), positions), len(w) - 1)


def random_walk_root(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the random walk's step covariance: (2.38^2 / d) x the weighted covariance."""
    d = z.shape[1]
    cov = np.atleast_2d(np.cov(z.T, aweights=w))
    cov += np.eye(d) * 1e-9 * max(float(np.trace(cov)) / d, 1e-12)  # never singular
    return RW_SCALE / math.sqrt(d) * np.linalg.cholesky(cov)


class _Likelihood:
    """log likelihood of parameter points on the search scale: each point's `replicates` runs, with seeds drawn
    from `seeds` (a generator of this process), through the runner (Evaluation: stored, counted). With several
    runs a point, its likelihood is the mean of theirs (what keeps the estimate unbiased), a failed run counting
    as likelihood 0."""

    def __init__(self, problem, replicates, executor, store, run, seeds: np.random.Generator):
        self.problem, self.replicates, self.seeds = problem, replicates, seeds
        self.evaluation = Evaluation(problem, executor, store, run)
        self.runs = 0

    def __call__(self, z: np.ndarray) -> np.ndarray:
        seeds = self.seeds.integers(0, SEED_DRAW, size=(len(z), self.replicates), dtype=np.int64)
        stats = self.evaluation.statistics(to_parameters(self.problem, z), seeds=seeds.tolist())
        self.runs += len(z) * self.replicates
        # per run: -loss / 2 of its own statistics (a failed run's are nan: loss inf, likelihood 0)
        per_run = np.array([[-0.5 * self.problem.loss(run[None]) for run in point] for point in stats])
        return logsumexp(per_run, axis=1) - math.log(self.replicates)


def smc(
    problem: FitProblem,
    settings: ABCSettings,
    *,
    executor: Executor,
    seed: int,
    store: Store | None = None,
    max_runs: int | None = None,
    max_time: float | None = None,
    run: Callable = run_one,
    progress: Callable[[dict], None] | None = None,
) -> Fit:
    """The posterior of `problem` (its terms' sds as given: widen them first for a temperature) by waste-free
    tempered SMC: population_size // chain_length chains of chain_length states (one chain of population_size
    states if that is shorter), at most `settings.max_populations` populations. `max_runs` / `max_time` stop it
    early: the result is then the tempered posterior it reached, and Fit.stopped says so."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))  # prior draws, resampling, steps, acceptance
    likelihood = _Likelihood(
        problem, settings.replicates, executor, store, run, np.random.default_rng(np.random.SeedSequence([seed, 2]))
    )
    length = min(settings.chain_length, settings.population_size)
    chains = settings.population_size // length
    n, d = chains * length, len(problem.names)
    start = time.perf_counter()
    z = rng.logistic(size=(n, d))
    loglik = likelihood(z)
    exponent, acceptance, generations = 0.0, math.nan, []
    runs_before = 0
    while True:
        new = next_exponent(loglik, exponent)
        logw = np.where(np.isfinite(loglik), (new - exponent) * loglik, -np.inf)
        exponent = new
        w = np.exp(logw - logw[np.isfinite(logw)].max()) if np.isfinite(logw).any() else np.zeros(n)
        if not w.sum() > 0:
            tally, error = likelihood.evaluation.tally(), likelihood.evaluation.first_error
            why = (
                f"{tally['failed']} of its {tally['total']} runs failed (first: {error})"
                if tally["failed"]
                else "every run finished, but no target could be scored (a quantity a target needs is not finite)"
            )
            raise RunsFailed(f"no particle of the first population has a likelihood: {why}")
        w /= w.sum()
        row = {
            "population": len(generations),
            "temperature": 1.0 / exponent,
            "evaluations": likelihood.runs - runs_before,
            "accepted": n,
            "acceptance_rate": acceptance,  # the random walk's, in the moves that made this population
            "ess": kish_ess(w),
        }
        generations.append(row)
        runs_before = likelihood.runs
        if progress is not None:
            progress(row)
        over_runs = max_runs is not None and likelihood.runs + chains * (length - 1) * settings.replicates > max_runs
        over_time = max_time is not None and time.perf_counter() - start > max_time
        if exponent >= 1.0 or len(generations) >= settings.max_populations or over_runs or over_time:
            break
        z, loglik, acceptance = _move(z, loglik, w, exponent, chains, length, likelihood, rng)
    samples = to_parameters(problem, z)
    point, loss = posterior_point(problem, samples, w, executor, store, run)
    length = length if len(generations) > 1 else 1  # the first population: independent prior draws
    stopped = f"{len(generations)} populations, temperature {1.0 / exponent:.3g}"
    if exponent < 1.0:
        stopped += TEMPERED
    return Fit(
        "abc",
        point,
        loss,
        likelihood.runs,
        stopped,
        samples,
        w,
        runs=likelihood.evaluation.tally(),
        generations=generations,
        chain_ess=chain_ess(samples, w, n // length, length),
        chain_length=length,
    )


def _move(z, loglik, w, exponent, chains, length, likelihood, rng):
    """Resample `chains` particles by weight and run each as a random-walk Metropolis chain of `length` states
    targeting prior x likelihood ** exponent; all states, chain after chain, and the mean acceptance."""
    ancestors = systematic_resample(w, chains, rng)
    root = random_walk_root(z, w)
    current, current_ll = z[ancestors], loglik[ancestors]
    current_lp = log_prior(current)
    states, lls, accepted = [current], [current_ll], []
    for _ in range(length - 1):
        proposal = current + rng.standard_normal(current.shape) @ root.T
        proposal_ll = likelihood(proposal)
        proposal_lp = log_prior(proposal)
        with np.errstate(invalid="ignore"):  # -inf - -inf: neither has a likelihood, the chain stays
            log_ratio = proposal_lp + exponent * proposal_ll - current_lp - exponent * current_ll
        accept = np.log(rng.random(chains)) < np.nan_to_num(log_ratio, nan=-np.inf)
        current = np.where(accept[:, None], proposal, current)
        current_ll = np.where(accept, proposal_ll, current_ll)
        current_lp = np.where(accept, proposal_lp, current_lp)
        states.append(current)
        lls.append(current_ll)
        accepted.append(accept.mean())
    # chain-major order (chain c's states together): chain_ess reads the chains back from it
    z_new = np.stack(states, axis=1).reshape(-1, z.shape[1])
    ll_new = np.stack(lls, axis=1).reshape(-1)
    return z_new, ll_new, float(np.mean(accepted))


def chain_ess(samples: np.ndarray, w: np.ndarray, chains: int, length: int) -> float:
    """The effective sample size that counts the chains' autocorrelation: for each parameter, its posterior
    variance over the variance of the weighted mean estimated from the chains' own weighted means (batch
    means, each chain a batch); the smallest over the parameters, at most the Kish ESS of the weights.

    Why: the waste-free sample's particles come from `chains` chains, and neighbouring states of a chain are
    alike; the weights' ESS alone would count them as independent."""
    kish = kish_ess(w)
    if length == 1:  # independent draws (the first population)
        return kish
    wc = w.reshape(chains, length)
    chain_w = wc.sum(axis=1)
    keep = chain_w > 0
    mean = w @ samples
    var = w @ (samples - mean) ** 2
    chain_means = np.einsum("cl,cld->cd", wc[keep], samples.reshape(chains, length, -1)[keep]) / chain_w[keep, None]
    # var of the overall weighted mean = sum_c W_c^2 var(chain mean c): estimated by the chains' spread
    var_of_mean = (chain_w[keep, None] ** 2 * (chain_means - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_parameter = np.where(var_of_mean > 0, var / var_of_mean, kish)
    return float(min(kish, np.nanmin(per_parameter)))
