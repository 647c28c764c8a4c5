"""Coverage of the calibration method (simulation-based calibration, Talts et al. 2018): draw parameter vectors
from the prior, simulate the observations each would give (the model's run plus each term's observation error),
fit them with the same sampler (abc.sampler), and count how often each true value falls inside its 90% credible interval. A
method whose 90% intervals hold the truth far less often than 90% is broken; far more often, needlessly vague.

    python -m egovsim.analysis.calibration.coverage calibration/config.yaml --truths 20 --out results/coverage

writes coverage.csv (per parameter), truths.csv (per truth and parameter: truth, interval, inside, rank) and
prints the table docs/calibration.md quotes. Both files are rewritten after every truth, over the truths done so
far, so a long run can be read while it goes on. Run again with the same arguments, a stopped run replays the
runs it has in <out>/runs and goes on.

More truths come from another seed (another, independent draw from the prior), and studies are pooled into one
table over all their truths:

    python -m egovsim.analysis.calibration.coverage calibration/config.yaml --truths 10 --seed 1000000 --out B
    python -m egovsim.analysis.calibration.coverage --pool A B --out results/coverage-pooled
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from egovsim.analysis.calibration.config import ABCSettings
from egovsim.analysis.calibration.pipeline import fit_posterior
from egovsim.analysis.calibration.posterior import prior_sample, weighted_quantile
from egovsim.analysis.calibration.terms import FitProblem, Term, measure_quantities, term_values
from egovsim.config.scenario import apply_values, scenario_from_dict
from egovsim.runner.runner import Store, replicate_seeds, run_one

LEVEL = 0.90


def synthetic_observations(problem: FitProblem, truth: np.ndarray, seed: int, run: Callable = run_one) -> FitProblem:
    """The problem with every fitted term's observation replaced by what `truth` gives: one run (seed `seed`)
    plus a draw of the term's observation error, the generative model the likelihood assumes. A value term
    observes sim + N(0, sd^2); an ordering or pattern is seen with chance Phi(margin / sd), and when it is not,
    the reverse ordering is what was observed (the term is flipped)."""
    base = scenario_from_dict(problem.scenario)
    result = run(problem.scenario, problem.values(truth), seed)
    if result["error"]:
        raise RuntimeError(f"the synthetic truth's run failed: {result['error']}")
    stats = measure_quantities(result["records"], apply_values(base, problem.values(truth)), problem.quantities)
    simulated = term_values(problem.terms, problem.quantities, stats)
    rng = np.random.default_rng([seed, 41])
    terms: list[Term] = []
    for term, sim in zip(problem.terms, simulated):
        error = rng.normal(0.0, term.sd)
        if term.kind == "value":
            terms.append(dataclasses.replace(term, observed=float(sim + error)))
        elif term.kind == "at_least":
            seen = sim + error >= term.low
            terms.append(term if seen else dataclasses.replace(term, scale=-term.scale, low=-term.low))
        else:  # a range observation is interval-censored: the bin of the range's width, on the grid its ends
            # lie on, that holds the noisy value (the likelihood is P(sim + e in that fixed bin))
            width = term.high - term.low
            low = term.low + math.floor((sim + error - term.low) / width) * width
            terms.append(dataclasses.replace(term, low=float(low), high=float(low + width)))
    return dataclasses.replace(problem, terms=terms)


def credible_interval(samples: np.ndarray, weights: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """(parameters, 2): the central `level` interval of each weighted marginal."""
    tail = (1 - level) / 2
    return np.array(
        [[weighted_quantile(samples[:, j], weights, q) for q in (tail, 1 - tail)] for j in range(samples.shape[1])]
    )


def coverage(
    problem: FitProblem,
    settings: ABCSettings,
    executor: Executor,
    *,
    truths: int,
    seed: int,
    folder: Path,
    run: Callable = run_one,
) -> tuple[list[dict], list[dict]]:
    """Fit `truths` synthetic data sets drawn from the prior; (per-parameter coverage rows, per-truth rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    vectors = prior_sample(problem, truths, seed)
    per_truth: list[dict] = []
    for i, (truth, run_seed) in enumerate(zip(vectors, replicate_seeds(seed, truths))):
        if i:
            write_tables(folder, coverage_rows(problem.names, per_truth), per_truth)
        synthetic = synthetic_observations(problem, truth, run_seed, run)
        fit = fit_posterior(
            synthetic,
            settings,
            executor,
            seed=seed + i + 1,
            folder=folder / f"truth-{i}",
            store=Store(folder / "runs") if run is run_one else None,
            run=run,
        )
        interval = credible_interval(fit.posterior, fit.weights)
        for j, name in enumerate(problem.names):
            below = float(fit.weights[fit.posterior[:, j] < truth[j]].sum() / fit.weights.sum())
            per_truth.append(
                {
                    "truth_index": i,
                    "parameter": name,
                    "truth": float(truth[j]),
                    "p5": float(interval[j, 0]),
                    "p95": float(interval[j, 1]),
                    "inside": bool(interval[j, 0] <= truth[j] <= interval[j, 1]),
                    "rank": below,  # the truth's quantile in its posterior: uniform when the method is calibrated
                }
            )
    rows = coverage_rows(problem.names, per_truth)
    write_tables(folder, rows, per_truth)
    return rows, per_truth


def coverage_rows(names: list[str], per_truth: list[dict]) -> list[dict]:
    """Per parameter, over the truths fitted so far: how many fell inside their 90% interval, the 90% interval
    of that coverage itself (Clopper-Pearson: with 20 truths a calibrated method's 18 can come out 15), and
    how many fell below the interval's 5% point or above its 95% point (a calibrated method: 5% each side).

    `rank_uniform_p` tests the whole shape, not one interval: a calibrated method's truths sit at uniformly
    distributed quantiles of their posteriors (Talts et al. 2018), so a small p (Kolmogorov-Smirnov against the
    uniform) says the posteriors are biased (quantiles piled to one side) or too wide or narrow (piled in the
    middle, or at both ends). With 21 parameters, about one p below 0.05 is expected by chance."""
    from scipy.stats import binomtest, kstest

    rows = []
    for name in names:
        mine = [r for r in per_truth if r["parameter"] == name]
        n, k = len(mine), sum(r["inside"] for r in mine)
        ci = binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="exact") if n else None
        rows.append(
            {
                "parameter": name,
                "truths": n,
                "inside": k,
                "coverage": k / n if n else math.nan,
                "coverage_low": ci.low if ci else math.nan,
                "coverage_high": ci.high if ci else math.nan,
                "below_p5": sum(r["truth"] < r["p5"] for r in mine),
                "above_p95": sum(r["truth"] > r["p95"] for r in mine),
                "mean_rank": float(np.mean([r["rank"] for r in mine])) if n else math.nan,
                "rank_uniform_p": float(kstest([r["rank"] for r in mine], "uniform").pvalue) if n else math.nan,
            }
        )
    return rows


TRUTH_COLUMNS = ("truth_index", "parameter", "truth", "p5", "p95", "inside", "rank")


def read_truths(folder: Path) -> list[dict]:
    """The per-truth rows of a finished (or stopped) study, `folder`/truths.csv, typed as `coverage` made them;
    each tagged with its study (the folder's name), since truth numbers restart in every study."""
    from egovsim.errors import InputError, clipped

    path = Path(folder) / "truths.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(str(path), "--pool", f"cannot be read ({exc.__class__.__name__})") from None
    if not rows:
        raise InputError(str(path), "--pool", "holds no truths")
    missing = [c for c in TRUTH_COLUMNS if c not in rows[0]]
    if missing:
        raise InputError(str(path), missing[0], "the column is missing: not a coverage study's truths.csv")
    typed = []
    for i, row in enumerate(rows):
        try:
            values = {c: float(row[c]) for c in ("truth", "p5", "p95", "rank")}
            index = int(row["truth_index"])
        except (TypeError, ValueError):
            raise InputError(str(path), f"row {i + 2}", f"not a number: {clipped(row)}") from None
        if row["inside"] not in ("True", "False") or not all(map(math.isfinite, values.values())):
            raise InputError(
                str(path), f"row {i + 2}", f"expected finite numbers and inside True/False: {clipped(row)}"
            )
        typed.append(
            {"study": Path(folder).name, "truth_index": index, "parameter": row["parameter"]}
            | values
            | {"inside": row["inside"] == "True"}
        )
    return typed


def pool(folders: list[Path]) -> tuple[list[dict], list[dict]]:
    """The truths of several studies (each drawn with its own --seed) as one study: (per-parameter rows over all
    their truths, the per-truth rows). The studies must have fitted the same parameters."""
    from egovsim.errors import InputError

    if len({Path(f).resolve() for f in folders}) < len(folders):
        raise InputError("--pool", "", "a study is given twice: its truths would count twice")
    per_truth: list[dict] = []
    names: list[str] | None = None
    for folder in folders:
        rows = read_truths(folder)
        mine = list(dict.fromkeys(r["parameter"] for r in rows))
        if names is not None and sorted(mine) != sorted(names):
            other = sorted(set(mine) ^ set(names))[0]
            raise InputError(str(Path(folder) / "truths.csv"), other, "the studies fitted different parameters")
        names = names or mine
        seen = {(r["parameter"], r["truth"]) for r in per_truth}
        if any((r["parameter"], r["truth"]) in seen for r in rows):  # prior draws never repeat by chance
            raise InputError(
                str(Path(folder) / "truths.csv"), "truth", "holds truths of an earlier study (same --seed?)"
            )
        per_truth += rows
    return coverage_rows(names or [], per_truth), per_truth


def write_tables(folder: Path, rows: list[dict], per_truth: list[dict]) -> None:
    from egovsim.analysis.calibration.report import rows_csv
    from egovsim.files import atomic_write

    atomic_write(folder / "coverage.csv", rows_csv(rows))
    atomic_write(folder / "truths.csv", rows_csv(per_truth))


def main(argv: list[str] | None = None) -> int:
    from egovsim.analysis.calibration.pipeline import plan_calibration
    from egovsim.runner.runner import make_executor

    parser = argparse.ArgumentParser(
        prog="python -m egovsim.analysis.calibration.coverage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="the calibration config to study (not with --pool)")
    parser.add_argument("--pool", nargs="+", type=Path, metavar="FOLDER", help="pool finished studies' truths")
    parser.add_argument("--truths", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("results/coverage"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--population", type=int, default=None, help="particles per population (default: config)")
    parser.add_argument("--populations", type=int, default=None, help="populations (default: config)")
    parser.add_argument("--chain-length", type=int, default=None, help="smc: states per chain (default: config)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="master seed of the truths and their fits (default: the config's); another seed gives another, "
        "independent set of truths, to pool with --pool",
    )
    args = parser.parse_args(argv)
    if (args.config is None) == (args.pool is None):
        parser.error("give a calibration config to run a study, or --pool FOLDER... to pool finished ones")
    if args.pool is not None:
        return _pool_command(args.pool, args.out)
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed must be a whole number >= 0, got {args.seed}")
    plan = plan_calibration(args.config)
    settings = plan.config.abc
    settings = dataclasses.replace(
        settings,
        population_size=args.population or settings.population_size,
        max_populations=args.populations or settings.max_populations,
        chain_length=args.chain_length or settings.chain_length,
        predictive_draws=0,
    )
    with make_executor(args.workers, "process", None) as executor:
        rows, _ = coverage(
            plan.problem.widened(settings.temperature),
            settings,
            executor,
            truths=args.truths,
            seed=plan.config.seed if args.seed is None else args.seed,
            folder=args.out,
        )
    print_table(rows)
    return 0


def _pool_command(folders: list[Path], out: Path) -> int:
    from egovsim.errors import InputError

    try:
        rows, per_truth = pool(folders)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if any(out.resolve() == Path(f).resolve() for f in folders):
        print(f"error: --out {out}: is one of the pooled studies; its tables would be overwritten", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    write_tables(out, rows, per_truth)
    print_table(rows)
    return 0


def print_table(rows: list[dict]) -> None:
    print(
        f"{'parameter':45s} truths inside the 90% interval, coverage (its 90% interval), below p5 / above p95, "
        "mean quantile of the truth (0.5 when unbiased), p of uniform quantiles"
    )
    for r in rows:
        print(
            f"{r['parameter']:45s} {r['inside']:3d} of {r['truths']}  {r['coverage']:4.0%} "
            f"({r['coverage_low']:.0%}-{r['coverage_high']:.0%})  {r['below_p5']} / {r['above_p95']}  "
            f"{r['mean_rank']:.2f}  {r['rank_uniform_p']:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
