"""The posterior as a user meets it: draws from posterior.csv, what the data did and did not pin down, and the
posterior predictive of every observed number (the held-out check when the fit stopped at --fit-until).

    posterior.csv (weighted particles) -> draws -> runs (through the runner, a seed each) -> term values
    -> + the observation error of each term -> predictive intervals -> inside or not
"""

from __future__ import annotations

import csv
import fnmatch
import math
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from egovsim.analysis.calibration.terms import Evaluation, FitProblem, measure_quantities, term_values
from egovsim.config.scenario import Scenario, missing_posterior, varies_continuously
from egovsim.errors import InputError, clipped
from egovsim.runner.runner import RunSpec, Store, replicate_seeds, run_many, run_one

# a parameter whose posterior variance is more than 80% of its prior variance is "not informed by the data"
# (posterior contraction 1 - var_post / var_prior below 0.2; Betancourt 2018, "Calibrating model-based
# inferences and decisions")
INFORMED_CONTRACTION = 0.2
STRONG_CORRELATION = 0.5  # pairs reported in docs/calibration.md and fit.json
PREDICTIVE_LEVEL = 0.90


def read_posterior(
    folder: str | Path, field: str = "--posterior", source: str | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, samples (particles, parameters), weights) from `folder`/posterior.csv. A missing folder is one line
    naming `source` (the file that names the folder, or the folder) and `field`; a bad cell names its column
    and row."""
    path = Path(folder) / "posterior.csv"
    missing = missing_posterior(folder)
    if missing:
        raise InputError(source or str(path), field, missing)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header, *rows = [row for row in csv.reader(fh) if row] or [[]]  # blank lines skipped
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(str(path), field, f"cannot be read ({exc.__class__.__name__})") from None
    if not rows or "weight" not in header:
        raise InputError(str(path), "weight", "expected parameter columns and a weight column")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:  # a dict per row would keep one of them silently
        raise InputError(str(path), twice[0], "the column appears more than once")
    names = [k for k in header if k != "weight"]
    fixed = [name for name in names if not varies_continuously(name)]
    if fixed:  # e.g. steps_per_year or seed: no calibration varies them, and a draw of one would relabel the runs
        raise InputError(str(path), fixed[0], "takes whole numbers or choices: no posterior draws it")
    order = [header.index(name) for name in [*names, "weight"]]
    values = np.empty((len(rows), len(names) + 1))
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise InputError(str(path), f"row {i + 2}", f"{len(row)} cells, but {len(header)} columns")
        for j, (name, k) in enumerate(zip([*names, "weight"], order)):
            try:
                values[i, j] = float(row[k])
            except ValueError:
                raise InputError(str(path), name, f"row {i + 2}: not a number: {clipped(row[k])}") from None
    samples, weights = values[:, :-1], values[:, -1]
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise InputError(str(path), "weight", "weights must be finite, non-negative and not all zero")
    if not np.all(np.isfinite(samples)):
        raise InputError(str(path), names[0] if names else "weight", "every parameter value must be a finite number")
    weights = weights / weights.max()  # relative weights: huge ones would overflow their sum
    return names, samples, weights / weights.sum()


def posterior_draws(
    folder: str | Path, n: int, seed: int, field: str = "--posterior", source: str | None = None
) -> list[dict]:
    """n parameter vectors drawn (with replacement, by weight) from a calibration's posterior.csv.

    Replicate i of every scenario then runs with draw i and seed i, so differences stay paired while the
    intervals take in parameter uncertainty as well as chance."""
    names, samples, weights = read_posterior(folder, field, source)
    pick = np.random.default_rng(seed).choice(len(weights), size=n, p=weights)
    return [dict(zip(names, map(float, samples[j]))) for j in pick]


def scenario_draws(scenario, n: int, seed: int, source: str) -> list[dict]:
    """The first n draws of a calibrated scenario's posterior (scenario.parameters.draws_from), each restricted
    to the scenario and checked against it before any run: replicate i of a sweep's points and the browser's
    draw i + 1 are then the draw `run --replicates` gives replicate i. A bad posterior.csv, or a draw the scenario
    cannot take, is blamed on `source`."""
    from egovsim.config.scenario import apply_values

    scenario.parameters.check_posterior_file(source)
    folder = scenario.parameters.draws_from
    draws = [restricted(d, scenario) for d in posterior_draws(folder, n, seed, "parameters.posterior", source)]
    for draw in draws:
        apply_values(scenario, draw, f"{source} with {folder}/posterior.csv")
    return draws


def restricted(draw: dict, scenario) -> dict:
    """A draw's values for `scenario`: a province's own parameters (provinces.<key>.*) only where the scenario
    has that province, and none of the values the scenario sets itself (a what-if's own parameter, a --set):
    those stay as the scenario says, in every replicate."""
    own = scenario.parameters.changed_keys()
    return {
        k: v
        for k, v in draw.items()
        if (not k.startswith("provinces.") or k.split(".")[1] in scenario.provinces)
        and not any(fnmatch.fnmatchcase(k, pattern) for pattern in own)
    }


# ---- what the data pin down ----------------------------------------------------------------------------------


def to_parameters(problem: FitProblem, z: np.ndarray) -> np.ndarray:
    """Parameter values (..., parameters) of points z on the samplers' search scale, where every prior is a
    standard logistic (abcsmc.abc_prior, smc.log_prior): x = F^-1(sigmoid(z)) with F the parameter's prior CDF."""
    from scipy.special import expit
    from scipy.stats import truncnorm

    u = expit(np.asarray(z, dtype=float))
    x = np.empty_like(u)
    for i, (lo, hi) in enumerate(problem.bounds):
        normal = (problem.priors or [None] * len(problem.bounds))[i]
        if normal is None:
            x[..., i] = lo + u[..., i] * (hi - lo)
        else:
            mean, sd = normal
            x[..., i] = truncnorm.ppf(u[..., i], (lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)
    return np.clip(x, problem.bounds[:, 0], problem.bounds[:, 1])


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights: (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w**2).sum())


def posterior_point(
    problem: FitProblem, samples: np.ndarray, weights: np.ndarray, executor: Executor, store=None, run=run_one
) -> tuple[np.ndarray, float]:
    """The posterior's medians, a point for single runs and the calibrated scenario files, and the objective
    there (its runs with the problem's replicate seeds, through the runner)."""
    point = np.array([weighted_quantile(samples[:, j], weights, 0.5) for j in range(samples.shape[1])])
    return point, problem.objective(Evaluation(problem, executor, store, run).statistics([point])[0], point)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(np.interp(q, cum, values[order]))


def prior_moments(bounds: tuple[float, float], normal: tuple[float, float] | None) -> dict:
    """Mean, sd and 5-95% of a parameter's prior: uniform on its bounds, or its normal truncated to them."""
    lo, hi = bounds
    if normal is None:
        return {
            "mean": (lo + hi) / 2,
            "sd": (hi - lo) / math.sqrt(12),
            "p5": lo + 0.05 * (hi - lo),
            "p95": hi - 0.05 * (hi - lo),
        }
    from scipy.stats import truncnorm

    mean, sd = normal
    dist = truncnorm((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)
    return {
        "mean": float(dist.mean()),
        "sd": float(dist.std()),
        "p5": float(dist.ppf(0.05)),
        "p95": float(dist.ppf(0.95)),
    }


def prior_sample(problem: FitProblem, n: int, seed: int) -> np.ndarray:
    """n draws (n, parameters) from the calibration's prior: uniform on the bounds, or the normal truncated."""
    from scipy.stats import truncnorm

    rng = np.random.default_rng([seed, 31])
    out = np.empty((n, len(problem.names)))
    for j, (lo, hi) in enumerate(problem.bounds):
        normal = (problem.priors or [None] * len(problem.names))[j]
        if normal is None:
            out[:, j] = rng.uniform(lo, hi, size=n)
        else:
            mean, sd = normal
            out[:, j] = truncnorm.rvs((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd, size=n, random_state=rng)
    return out


def weighted_variance(values: np.ndarray, w: np.ndarray) -> float:
    """Unbiased weighted variance (reliability weights): divided by 1 - sum(w^2), which matters when a few
    particles carry most of the weight."""
    w = w / w.sum()
    mean = float(np.sum(w * values))
    return float(np.sum(w * (values - mean) ** 2) / max(1.0 - float(np.sum(w**2)), 1e-12))


def marginals(
    problem: FitProblem, samples: np.ndarray, weights: np.ndarray, resamples: int = 400, block: int = 1
) -> list[dict]:
    """Per parameter: prior and posterior summaries side by side, the contraction 1 - var_post / var_prior with
    a 90% bootstrap interval over the particles, and whether the data inform it: `yes` when the whole
    interval is at or above INFORMED_CONTRACTION, `no` when it is below, `undetermined` when it straddles it
    (too few effective particles to say). `block`: the particles come in runs of `block` consecutive states
    of one chain (smc.py), and the bootstrap resamples whole chains, since states of a chain are alike."""
    w = weights / weights.sum()
    rng = np.random.default_rng(7)
    blocks = len(w) // block if block > 1 and len(w) % block == 0 else len(w)
    size = len(w) // blocks
    picks = [
        (rng.choice(blocks, size=blocks, replace=True)[:, None] * size + np.arange(size)).reshape(-1)
        for _ in range(resamples)
    ]
    rows = []
    for j, name in enumerate(problem.names):
        prior = prior_moments(tuple(problem.bounds[j]), (problem.priors or [None] * len(problem.names))[j])
        var = weighted_variance(samples[:, j], w)
        contraction = 1.0 - var / prior["sd"] ** 2
        boot = [1.0 - weighted_variance(samples[k, j], w[k]) / prior["sd"] ** 2 for k in picks]
        low, high = np.quantile(boot, [0.05, 0.95])
        informed = "yes" if low >= INFORMED_CONTRACTION else "no" if high < INFORMED_CONTRACTION else "undetermined"
        rows.append(
            {
                "parameter": name,
                "prior_mean": prior["mean"],
                "prior_sd": prior["sd"],
                "prior_p5": prior["p5"],
                "prior_p95": prior["p95"],
                "posterior_median": weighted_quantile(samples[:, j], w, 0.5),
                "posterior_mean": float(np.sum(w * samples[:, j])),
                "posterior_sd": math.sqrt(var),
                "posterior_p5": weighted_quantile(samples[:, j], w, 0.05),
                "posterior_p95": weighted_quantile(samples[:, j], w, 0.95),
                "contraction": contraction,
                "contraction_p5": float(low),
                "contraction_p95": float(high),
                "informed": informed,
            }
        )
    return rows


def correlations(samples: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlations between the parameters (parameters x parameters)."""
    w = weights / weights.sum()
    centred = samples - w @ samples
    cov = (centred * w[:, None]).T @ centred
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    return cov / np.outer(sd, sd)


def strong_pairs(names: list[str], corr: np.ndarray, threshold: float = STRONG_CORRELATION) -> list[dict]:
    pairs = [
        {"a": names[i], "b": names[j], "correlation": float(corr[i, j])}
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if abs(corr[i, j]) >= threshold
    ]
    return sorted(pairs, key=lambda p: -abs(p["correlation"]))


# ---- the posterior predictive ---------------------------------------------------------------------------------


def predictive_terms(
    problem: FitProblem,
    samples: np.ndarray,
    weights: np.ndarray,
    executor: Executor,
    *,
    draws: int,
    seed: int,
    store: Store | None = None,
) -> np.ndarray:
    """Simulated term values (draws, terms) at `draws` posterior draws, each run with a seed of its own."""
    from egovsim.config.analysis import measuring_scenario
    from egovsim.config.scenario import scenario_from_dict

    base = scenario_from_dict(problem.scenario)
    results = posterior_runs(
        problem,
        base,
        samples,
        weights,
        executor,
        label="predictive",
        draws=draws,
        pick=[seed, 17],
        master=seed,
        store=store,
    )
    stats = np.full((draws, len(problem.quantities)), np.nan)
    for i, result in enumerate(results):
        if result.ok:
            stats[i] = measure_quantities(
                result.records, measuring_scenario(base, result.spec.values), problem.quantities
            )
    return term_values(problem.terms, problem.quantities, stats)


def posterior_runs(
    problem: FitProblem,
    base: Scenario,
    samples: np.ndarray,
    weights: np.ndarray,
    executor: Executor,
    *,
    label: str,
    draws: int,
    pick: list[int],
    master: int,
    store: Store | None = None,
) -> list:
    """`draws` runs of `base`: run i at the posterior sample the stream `pick` draws by weight, with the i-th seed
    spawned from `master` (each use its own stream and master, so no two share their runs)."""
    rng = np.random.default_rng(pick)
    chosen = rng.choice(len(weights), size=draws, p=weights / weights.sum())
    specs = [
        RunSpec(label, i, s, problem.values(samples[j]), point=i)
        for i, (j, s) in enumerate(zip(chosen, replicate_seeds(master, draws)))
    ]
    return run_many(specs, {label: base}, executor, store=store)


def outside_peer_paths(
    problem: FitProblem,
    full: Scenario,
    samples: np.ndarray,
    weights: np.ndarray,
    executor: Executor,
    *,
    draws: int,
    seed: int,
    store: Store | None = None,
) -> dict[str, dict]:
    """For each province of the calibrated scenario, its peers' path when it runs alone (OutsidePeers): the
    median over `draws` runs of the whole calibrated scenario (posterior draws, or the fitted point when
    `samples` has one row), at the fitting scale and to `full`'s end year, of the highest supply index among
    the other provinces on each 1 January. {} for a scenario of one province."""
    from egovsim.config.scenario import scenario_from_dict, with_values
    from egovsim.model.outcomes import COL

    if len(full.provinces) < 2 or draws < 1:
        return {}
    base = with_values(scenario_from_dict(problem.scenario), {"end_year": full.end_year})
    runs = posterior_runs(
        problem,
        base,
        samples,
        weights,
        executor,
        label="peers",
        draws=draws,
        pick=[seed, 31],
        master=seed + 31,
        store=store,
    )
    results = [r for r in runs if r.ok]
    if not results:
        return {}
    years = np.arange(base.start_year, base.end_year + 2)  # every 1 January, the end's included
    rows = (years - base.start_year) * base.steps_per_year
    index = np.stack([r.records[rows, :, COL["supply_index"]] for r in results])  # (runs, years, provinces)
    paths = {}
    for p, key in enumerate(base.provinces):
        others = np.delete(index, p, axis=2).max(axis=2)  # (runs, years)
        paths[key] = {
            "provinces": [k for k in base.provinces if k != key],
            "from_year": int(years[0]),
            "index": [round(float(v), 4) for v in np.median(others, axis=0)],
            "source": f"egovsim calibrate: median of {len(results)} runs of the whole calibrated scenario, the best "
            f"of {', '.join(k for k in base.provinces if k != key)} each 1 January",
        }
    return paths


def predictive_table(problem: FitProblem, simulated: np.ndarray, seed: int, noise_draws: int = 200) -> list[dict]:
    """Each term's posterior predictive: the simulated value plus the term's observation error (its total sd),
    its median and 90% interval, and whether the observation falls inside. An ordering or pattern is inside
    when the predictive chance of seeing it is at least 5% (outside the 5% tail, as a 90% interval's ends)."""
    from scipy.special import ndtr

    rng = np.random.default_rng([seed, 29])
    tail = (1 - PREDICTIVE_LEVEL) / 2
    rows = []
    for j, term in enumerate(problem.terms):
        sims = simulated[:, j][np.isfinite(simulated[:, j])]
        row = {
            "target": term.target,
            "where": term.label,
            "year": term.year,
            "kind": term.kind,
            "in_fit": problem.fitted[j],
            "check": term.weight == 0,  # shown beside the fit, never part of it (nor held out)
            "sd": term.sd / abs(term.scale) if term.bound else term.sd,  # in the units `observed` is read in
            "draws": int(sims.size),
        }
        if not sims.size:
            rows.append(row | {"inside": False, "note": "every run failed"})
            continue
        if term.kind == "at_least":
            chance = float(np.mean(ndtr((sims - term.low) / term.sd)))
            rows.append(row | {"observed": term.condition(), "chance_seen": chance, "inside": chance >= tail})
            continue
        noisy = (sims[:, None] + rng.normal(0.0, term.sd, size=(sims.size, noise_draws))).ravel()
        lo, mid, hi = np.quantile(noisy, [tail, 0.5, 1 - tail])
        observed = term.observed if term.kind == "value" else (term.low + term.high) / 2
        rows.append(
            row
            | {
                "observed": observed,
                "predictive_p5": float(lo),
                "predictive_median": float(mid),
                "predictive_p95": float(hi),
                "inside": bool(lo <= observed <= hi),
            }
        )
    return rows


# ---- stability: two fits of the same posterior ----------------------------------------------------------------


def stability(a: list[dict], b: list[dict]) -> list[dict]:
    """Two fits' posterior_summary.csv rows (e.g. two seeds): per parameter, the distance between their medians
    in prior sds and the ratio of their 90% interval widths. Monte Carlo error alone keeps the first well
    below 0.5 and the second near 1 when both fits have converged to the same posterior."""
    by = {r["parameter"]: r for r in b}
    rows = []
    for r in a:
        s = by[r["parameter"]]
        width_a = float(r["posterior_p95"]) - float(r["posterior_p5"])
        width_b = float(s["posterior_p95"]) - float(s["posterior_p5"])
        rows.append(
            {
                "parameter": r["parameter"],
                "median_a": float(r["posterior_median"]),
                "median_b": float(s["posterior_median"]),
                "shift_in_prior_sd": abs(float(r["posterior_median"]) - float(s["posterior_median"]))
                / float(r["prior_sd"]),
                "width_ratio": width_b / width_a if width_a > 0 else math.nan,
            }
        )
    return rows


if __name__ == "__main__":  # python -m egovsim.analysis.calibration.posterior FOLDER_A FOLDER_B
    import sys

    def _rows(folder: str) -> list[dict]:
        with open(Path(folder) / "posterior_summary.csv", newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    print("| parameter | median A | median B | shift (prior sd) | width B / width A |\n|---|---|---|---|---|")
    for row in stability(_rows(sys.argv[1]), _rows(sys.argv[2])):
        print(
            f"| {row['parameter']} | {row['median_a']:.4g} | {row['median_b']:.4g} | "
            f"{row['shift_in_prior_sd']:.2f} | {row['width_ratio']:.2f} |"
        )
