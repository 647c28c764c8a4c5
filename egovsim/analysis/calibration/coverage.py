"""Coverage of the calibration method (simulation-based calibration, Talts et al. 2018): draw parameter vectors
from the prior, simulate the observations each would give (the model's run plus each term's observation error),
fit them with the same sampler (abc.sampler), and count how often each true value falls inside its 90% credible interval. A
method whose 90% intervals hold the truth far less often than 90% is broken; far more often, needlessly vague.

    egovsim coverage calibration/config.yaml --truths 20 --out results/coverage

writes study.json (what was studied: the config's files, seed, truths and sampler settings), coverage.csv (per
parameter), truths.csv (per truth and parameter: truth, interval, inside, rank) and provenance.json, and prints
the table docs/calibration.md quotes. The tables are rewritten after every truth, over the truths done so far, so
a long run can be read while it goes on. Run again with the same arguments, a stopped run replays the runs it has
in <out>/runs and goes on; other settings into the same folder are refused (they would mix two studies).

More truths come from another seed (another, independent draw from the prior), and studies of the same config and
sampler settings are pooled into one table over all their truths:

    egovsim coverage calibration/config.yaml --truths 10 --seed 1000000 --out B
    egovsim coverage --pool A B --out results/coverage-pooled
"""

from __future__ import annotations

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
from egovsim.config.analysis import measuring_scenario
from egovsim.config.scenario import scenario_from_dict
from egovsim.errors import InputError
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
    stats = measure_quantities(result["records"], measuring_scenario(base, problem.values(truth)), problem.quantities)
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
            seed=fit_seeds_of(seed, truths)[i],
            folder=folder / "fits" / f"truth-{i}",  # pyabc keeps each fit's history there
            store=Store(folder / "runs") if run is run_one else None,
            run=run,
        )
        if fit.tempered:  # wider than the posterior: counting it would overstate the method's coverage
            raise InputError(
                "--populations",
                "",
                f"truth {i}'s fit stopped before the posterior ({fit.stopped}): the coverage of a tempered posterior "
                "is not the method's; allow more populations (the truths before it are in truths.csv)",
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


def fit_seeds_of(seed: int, truths: int) -> list[int]:
    """The seeds of a study's fits, one per truth: seed + 1, seed + 2, ... (studies to pool must not share any)."""
    return [seed + i + 1 for i in range(truths)]


def coverage_rows(names: list[str], per_truth: list[dict]) -> list[dict]:
    """Per parameter, over the truths fitted so far: how many fell inside their 90% interval, the 90% interval
    of that coverage itself (Clopper-Pearson: with 20 truths a calibrated method's 18 can come out 15), and
    how many fell below the interval's 5% point or above its 95% point (a calibrated method: 5% each side).

    `rank_uniform_p` tests the whole shape, not one interval: a calibrated method's truths sit at uniformly
    distributed quantiles of their posteriors (Talts et al. 2018), so a small p (Kolmogorov-Smirnov against the
    uniform) says the posteriors are biased (quantiles piled to one side) or too wide or narrow (piled in the
    middle, or at both ends). Over k parameters, about k / 20 of the p values fall below 0.05 by chance."""
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
STUDY = "study.json"  # what a study fitted: pooled studies must agree on all of it but the seed and truths


def study_settings(problem: FitProblem, settings: ABCSettings, seed: int, truths: int) -> dict:
    """What a study's results depend on: the fit problem (the scenario, free parameters, priors and targets with
    their observations, by hash: a comment in the config changes nothing), the sampler settings, the master seed
    and the number of truths (prior_sample draws each parameter for all truths at once: 10 truths are not the
    first 10 of 20)."""
    import hashlib
    import json

    plain = dataclasses.asdict(problem) | {"bounds": np.asarray(problem.bounds).tolist()}
    text = json.dumps(plain, sort_keys=True, default=str, separators=(",", ":"))
    return {
        "problem_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "abc": dataclasses.asdict(settings),
        "seed": seed,
        "truths": truths,
    }


def read_study(folder: Path) -> dict:
    """A study's study.json (InputError naming it when missing or not a study's)."""
    import json

    from egovsim.errors import InputError, clipped

    path = Path(folder) / STUDY
    try:
        found = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise InputError(
            str(path), "--pool", f"cannot be read ({exc.__class__.__name__}): not a coverage study"
        ) from None
    if not isinstance(found, dict) or not {"problem_sha256", "abc", "seed", "truths"} <= found.keys():
        raise InputError(str(path), "--pool", "is not a coverage study's record (a pooled folder: pool its studies)")
    whole = {k: found[k] for k in ("seed", "truths")}
    if not all(type(v) is int for v in whole.values()) or found["seed"] < 0 or found["truths"] < 1:
        raise InputError(str(path), "seed", f"expected a seed >= 0 and truths >= 1, whole numbers: {clipped(whole)}")
    if not isinstance(found["abc"], dict) or not isinstance(found["problem_sha256"], str):
        raise InputError(str(path), "abc", "is not a coverage study's record (abc and problem_sha256 malformed)")
    return found


def read_truths(folder: Path, study: str) -> list[dict]:
    """The per-truth rows of a finished (or stopped) study, `folder`/truths.csv, typed as `coverage` made them and
    checked (an interval with p5 <= p95, `inside` as the interval and truth say, a quantile in [0, 1], each
    (truth, parameter) once); each tagged with `study`, since truth numbers restart in every study."""
    from egovsim.errors import InputError, clipped

    path = Path(folder) / "truths.csv"
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: a table saved by a spreadsheet
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(str(path), "--pool", f"cannot be read ({exc.__class__.__name__})") from None
    if not rows:
        raise InputError(str(path), "--pool", "holds no truths")
    missing = [c for c in TRUTH_COLUMNS if c not in rows[0]]
    if missing:
        raise InputError(str(path), missing[0], "the column is missing: not a coverage study's truths.csv")
    typed, seen = [], set()
    for i, row in enumerate(rows):
        where = f"row {i + 2}"
        try:
            values = {c: float(row[c]) for c in ("truth", "p5", "p95", "rank")}
            index = int(row["truth_index"])
        except (TypeError, ValueError):
            raise InputError(str(path), where, f"not a number: {clipped(row)}") from None
        flag = str(row["inside"]).strip().lower()  # True, or TRUE as a spreadsheet saves it
        if flag not in ("true", "false") or not all(map(math.isfinite, values.values())):
            raise InputError(str(path), where, f"expected finite numbers and inside True/False: {clipped(row)}")
        inside = flag == "true"
        if not (values["p5"] <= values["p95"] and 0.0 <= values["rank"] <= 1.0):
            raise InputError(str(path), where, "expected p5 <= p95 and a rank (quantile) in [0, 1]")
        if inside != (values["p5"] <= values["truth"] <= values["p95"]):
            raise InputError(str(path), where, "`inside` contradicts the truth and its interval")
        if (index, row["parameter"]) in seen:
            raise InputError(str(path), where, f"truth {index} of {clipped(row['parameter'])} appears twice")
        seen.add((index, row["parameter"]))
        typed.append(
            {"study": study, "truth_index": index, "parameter": row["parameter"], "truth": values["truth"]}
            | {"p5": values["p5"], "p95": values["p95"], "inside": inside, "rank": values["rank"]}
        )
    return typed


def pool(folders: list[Path]) -> tuple[list[dict], list[dict], dict]:
    """The truths of several studies (each drawn with its own seed) as one study: (per-parameter rows over all
    their truths, the per-truth rows labelled by their study's seed, the pool's record). The studies must have
    fitted the same config with the same sampler settings, each from another seed."""
    from egovsim.errors import InputError

    if len({Path(f).resolve() for f in folders}) < len(folders):
        raise InputError("--pool", "", "a study is given twice: its truths would count twice")
    studies = [read_study(f) for f in folders]
    first = studies[0]
    fit_seeds: set[int] = set()
    per_truth: list[dict] = []
    names: list[str] = []
    for folder, study in zip(folders, studies):
        where = str(Path(folder) / STUDY)
        differs = [k for k in ("problem_sha256", "abc") if study[k] != first[k]]
        if differs:
            raise InputError(where, differs[0], f"differs from {folders[0]}'s: the studies fitted different things")
        mine = set(fit_seeds_of(study["seed"], study["truths"]))
        if mine & fit_seeds:  # shared fit seeds: the fits' draws are shared, and the truths no longer independent
            raise InputError(
                where,
                "seed",
                f"{study['seed']}: its fits' seeds ({study['seed'] + 1}-{study['seed'] + study['truths']}) overlap an "
                "earlier study's: pool studies whose seeds lie further apart than their numbers of truths",
            )
        fit_seeds |= mine
        rows = read_truths(folder, f"seed {study['seed']}")
        done = len({r["truth_index"] for r in rows})
        if done != study["truths"]:
            raise InputError(
                str(Path(folder) / "truths.csv"),
                "--pool",
                f"holds {done} of its study's {study['truths']} truths: finish the study first (run its command again)",
            )
        mine = list(dict.fromkeys(r["parameter"] for r in rows))
        if names and sorted(mine) != sorted(names):
            other = sorted(set(mine) ^ set(names))[0]
            raise InputError(str(Path(folder) / "truths.csv"), other, "the studies fitted different parameters")
        names = names or mine
        per_truth += rows
    record = {
        "pool_of": [
            {"folder": str(Path(f).resolve()), "seed": s["seed"], "truths": s["truths"]}
            for f, s in zip(folders, studies)
        ],
        "problem_sha256": first["problem_sha256"],
        "abc": first["abc"],
    }
    return coverage_rows(names, per_truth), per_truth, record


def write_tables(folder: Path, rows: list[dict], per_truth: list[dict]) -> None:
    from egovsim.analysis.calibration.report import rows_csv
    from egovsim.files import atomic_write

    atomic_write(folder / "coverage.csv", rows_csv(rows))
    atomic_write(folder / "truths.csv", rows_csv(per_truth))


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


if __name__ == "__main__":  # the older spelling: the command line (cli.py) sits above this module's layer
    print(
        "egovsim: error: this is now `egovsim coverage ...` (same arguments; see egovsim coverage --help)",
        file=sys.stderr,
    )
    sys.exit(2)
