"""The posterior sampler (egovsim/analysis/calibration/smc.py): its parts against their definitions, and the
whole against the exact posterior of a model whose posterior is known, on any executor, resumed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import logistic

from egovsim.analysis.calibration.config import ABCSettings
from egovsim.analysis.calibration.coverage import credible_interval
from egovsim.analysis.calibration.smc import (
    chain_ess,
    ess,
    log_prior,
    next_exponent,
    random_walk_root,
    smc,
    systematic_resample,
)
from egovsim.runner.runner import SerialExecutor, Store, make_executor

from .test_coverage import RUN_NOISE, toy_problem, toy_run


def test_the_prior_on_the_search_scale_is_a_product_of_standard_logistics():
    z = np.random.default_rng(1).normal(0, 4, size=(50, 3))
    assert log_prior(z) == pytest.approx(logistic.logpdf(z).sum(axis=1), rel=1e-12)


def test_each_tempering_step_keeps_half_the_effective_sample_size():
    loglik = np.random.default_rng(2).normal(-50, 10, size=1000)
    new = next_exponent(loglik, 0.2)
    assert 0.2 < new < 1.0
    assert ess((new - 0.2) * loglik) == pytest.approx(500, rel=1e-3)
    # a likelihood that hardly varies goes straight to 1; a failed run (-inf) has weight 0 and is not counted
    assert next_exponent(np.full(100, -3.0), 0.0) == 1.0
    flat_but_failed = np.r_[np.full(99, -3.0), -np.inf]
    assert next_exponent(flat_but_failed, 0.5) == 1.0


def test_systematic_resampling_draws_each_particle_in_proportion_to_its_weight():
    w = np.random.default_rng(3).dirichlet(np.ones(20))
    counts = np.bincount(systematic_resample(w, 1000, np.random.default_rng(4)), minlength=20)
    assert np.all(np.abs(counts - 1000 * w) < 1.0 + 1e-9)  # systematic: within one of the expected count


def test_the_random_walk_step_is_the_optimal_scaling_of_the_population_covariance():
    rng = np.random.default_rng(5)
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    z = rng.multivariate_normal([0, 0], cov, size=200_000)
    root = random_walk_root(z, np.full(len(z), 1 / len(z)))
    assert root @ root.T == pytest.approx(2.38**2 / 2 * cov, rel=0.02)


def test_chain_ess_counts_chains_not_states_when_states_repeat():
    rng = np.random.default_rng(6)
    chains, length = 40, 25
    w = np.full(chains * length, 1 / (chains * length))
    independent = rng.normal(size=(chains * length, 2))
    stuck = np.repeat(rng.normal(size=(chains, 2)), length, axis=0)  # every chain stayed where it started
    assert chain_ess(independent, w, chains, length) == pytest.approx(chains * length, rel=0.5)
    assert chain_ess(stuck, w, chains, length) == pytest.approx(chains, rel=0.5)


def test_smc_posterior_matches_the_exact_posterior_of_a_linear_model(tmp_path):
    """Value terms 5 p0 ~ N(0.2, s) and q0 ~ N(0.5, s), s = sqrt(sd^2 + run noise^2): the exact posterior is
    p0 ~ N(0.04, s / 5), q0 ~ N(0.5, s) (the uniform prior is flat there). The noisy single-run likelihood
    is what the pseudo-marginal sampler must see through."""
    problem = toy_problem(tmp_path, sd=0.05)
    problem.terms = problem.terms[:2]
    fit = smc(
        problem,
        ABCSettings(population_size=1200, chain_length=20, max_populations=20),
        executor=SerialExecutor(),
        seed=5,
        run=toy_run,
    )
    assert fit.generations[-1]["temperature"] == 1.0 and "tempered" not in fit.stopped
    s = np.hypot(0.05, RUN_NOISE)
    mean = np.average(fit.posterior, axis=0, weights=fit.weights)
    sd = np.sqrt(np.average((fit.posterior - mean) ** 2, axis=0, weights=fit.weights))
    assert np.abs(mean - [0.04, 0.5]) / [s / 5, s] == pytest.approx([0, 0], abs=0.2)  # within 0.2 sd
    assert sd == pytest.approx([s / 5, s], rel=0.15)
    interval = credible_interval(fit.posterior, fit.weights)
    assert interval[0] == pytest.approx([0.04 - 1.645 * s / 5, 0.04 + 1.645 * s / 5], abs=0.003)
    assert 30 < fit.chain_ess <= fit.weights.size


def test_smc_gives_the_same_posterior_on_any_executor_and_resumes_to_it(tmp_path):
    problem = toy_problem(tmp_path, sd=0.05)
    settings = ABCSettings(population_size=60, chain_length=6, max_populations=10)

    def fit(executor, **kw):
        return smc(problem, settings, executor=executor, seed=7, run=toy_run, **kw)

    serial = fit(SerialExecutor())
    with make_executor(2, "process") as pool:
        pooled = fit(pool)
    assert np.array_equal(serial.posterior, pooled.posterior) and np.array_equal(serial.weights, pooled.weights)

    # cut short by a budget of runs after a move, it says so; run again on the same store it replays what it had
    # (the prior draws and the move) from the store and ends where the uninterrupted fit ended, bit for bit
    assert len(serial.generations) == 3  # the uninterrupted fit: two moves
    store = Store(tmp_path / "runs")
    cut = fit(SerialExecutor(), store=store, max_runs=110)  # 60 prior draws + one move of 10 chains x 5 steps
    assert cut.evaluations == 110 and len(cut.generations) == 2 and "tempered" in cut.stopped
    resumed = fit(SerialExecutor(), store=store)
    assert np.array_equal(resumed.posterior, serial.posterior) and np.array_equal(resumed.weights, serial.weights)
    assert resumed.runs["resumed"] == cut.runs["total"] and resumed.runs["total"] > cut.runs["total"]


def test_a_failed_run_gives_its_particle_no_weight_and_the_fit_goes_on(tmp_path):
    problem = toy_problem(tmp_path, sd=0.05)

    def fails_for_large_q0(scenario, values, seed):
        if values["citizens.q0"] > 0.7:
            return {"records": None, "error": "boom", "traceback": "", "wall_time_s": 0.0, "host": "toy"}
        return toy_run(scenario, values, seed)

    fit = smc(
        problem,
        ABCSettings(population_size=120, chain_length=6, max_populations=10),
        executor=SerialExecutor(),
        seed=8,
        run=fails_for_large_q0,
    )
    assert fit.runs["failed"] > 0  # the prior puts a quarter of its draws above 0.7
    assert np.all(fit.posterior[fit.weights > 0, 1] <= 0.7)
    assert fit.generations[-1]["temperature"] == 1.0


def test_what_the_data_pin_down_is_bootstrapped_over_chains_not_states(tmp_path):
    """Forty chains that never moved hold forty distinct values, each repeated: the contraction's bootstrap
    interval must be as wide as forty particles give, not as narrow as a thousand independent ones would."""
    from egovsim.analysis.calibration.posterior import marginals

    problem = toy_problem(tmp_path)
    rng = np.random.default_rng(9)
    chains, length = 40, 25
    starts = np.column_stack([rng.uniform(0.005, 0.08, chains), rng.uniform(0.1, 0.9, chains)])
    stuck = np.repeat(starts, length, axis=0)
    w = np.full(chains * length, 1.0)
    by_state = marginals(problem, stuck, w)
    by_chain = marginals(problem, stuck, w, block=length)
    width = [r["contraction_p95"] - r["contraction_p5"] for r in by_chain]
    naive = [r["contraction_p95"] - r["contraction_p5"] for r in by_state]
    assert all(c > 3 * s for c, s in zip(width, naive))  # sqrt(25) = 5 times, up to the bootstrap's noise


def test_a_fit_whose_every_first_run_fails_says_so_in_one_line(tmp_path):
    from egovsim.errors import RunsFailed

    def always_fails(scenario, values, seed):
        return {"records": None, "error": "ValueError: broken", "traceback": "", "wall_time_s": 0.0, "host": "t"}

    with pytest.raises(RunsFailed, match="first population has a likelihood: 12 of its 12 runs failed \\(first: Val"):
        smc(
            toy_problem(tmp_path),
            ABCSettings(population_size=12, chain_length=4),
            executor=SerialExecutor(),
            seed=1,
            run=always_fails,
        )


def test_a_particles_likelihood_is_the_mean_of_its_runs_likelihoods(tmp_path):
    """With several runs a particle the estimate must stay unbiased: the mean of the runs' likelihoods (a failed
    run counting 0), not the likelihood of their mean."""
    from egovsim.analysis.calibration.smc import _Likelihood

    problem = toy_problem(tmp_path, sd=0.05)
    problem.terms = problem.terms[:1]  # 5 p0 + run noise against 0.2, sd 0.05
    calls = []

    def half_fail(scenario, values, seed):
        calls.append(seed)
        if len(calls) % 2 == 0:
            return {"records": None, "error": "boom", "traceback": "", "wall_time_s": 0.0, "host": "t"}
        return toy_run(scenario, values, seed)

    z = np.zeros((1, 2))  # the prior's median: p0 at the middle of its box
    single = _Likelihood(problem, 1, SerialExecutor(), None, half_fail, np.random.default_rng(1))(z)
    calls.clear()
    pair = _Likelihood(problem, 2, SerialExecutor(), None, half_fail, np.random.default_rng(1))(z)
    assert pair == pytest.approx(single + np.log(0.5))  # the first run as alone, the failed one adds 0


def test_a_calibration_file_asking_for_one_chain_is_refused(tmp_path):
    from egovsim.analysis.calibration import load_config
    from egovsim.errors import InputError

    path = tmp_path / "toy.yaml"
    toy_problem(tmp_path)  # writes base.yaml and toy.yaml
    path.write_text(path.read_text() + "abc: {population_size: 30, chain_length: 20}\n")
    with pytest.raises(InputError, match=r"abc\.population_size: 30 particles make fewer than 2 chains of 20"):
        load_config(path)


def test_the_command_line_names_the_chain_ess_beside_the_weights_one(capsys):
    from egovsim.analysis.calibration.report import print_terms

    head = {"loss": 1.0, "targets_met": 1, "targets_in_fit": 1, "model_runs": 10, "stopped": "x", "terms": []}
    print_terms({**head, "chain_effective_sample_size": 106.4, "effective_sample_size": 1845.2})
    assert "effective sample size 106 counting the chains' autocorrelation (1845 by the weights alone)" in (
        capsys.readouterr().err
    )
    print_terms({**head, "chain_effective_sample_size": None})  # pyabc's fit: no chains, no line
    assert "chains" not in capsys.readouterr().err
