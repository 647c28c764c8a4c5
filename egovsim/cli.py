"""The `egovsim` command line."""

from __future__ import annotations

import argparse
import errno
import functools
import math
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from egovsim.errors import CLIP, EgovsimWarning, InputError, RunsFailed, WorkerDied, clipped, one_line
from egovsim.provenance import forget_start, note_start

EXIT_INPUT = 2
EXIT_FAILED = 1  # the input was fine but the work could not be done (e.g. a write failed)
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report them
MAX_REPLICATES = 100_000  # as an analysis file's `replicates` (config/analysis.py)
MAX_WORKERS = 1024


def count(lo: int, hi: int):
    """An argparse type: a whole number in lo..hi, else argparse's one-line error naming the option (exit 2).
    Every count the command line takes is bounded, so a slip of the keyboard cannot start 10**12 runs."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {clipped(text)}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo:,}..{hi:,}, got {clipped(text)}")
        return value

    return parse


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a scenario key, e.g. --set provinces.hue.policy.training=2 (repeatable)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="simulated citizens per real person, for every province (e.g. 1 for the full population)",
    )


def output_path(text: str) -> Path:
    """An output folder as given, '..' resolved against the folders named (../results/x from a subfolder, r1/plots/..
    for r1): the checks of where a command may write see the folder it will write, not a path through another."""
    return Path(os.path.abspath(text)) if ".." in Path(text).parts else Path(text)


def _output_args(p: argparse.ArgumentParser, default: str, quiet: str = "no progress bar or summary") -> None:
    p.add_argument("--out", type=output_path, default=None, help=f"output folder (default: {default})")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of another command in --out (without it, a folder is written only by the "
        "command that wrote it: the same kind, input files and settings; its kept runs are then resumed)",
    )
    p.add_argument("--quiet", action="store_true", help=quiet)


def _executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers", type=count(1, MAX_WORKERS), default=None, metavar="N", help="parallel runs (default: all cores)"
    )
    p.add_argument(
        "--executor",
        choices=("process", "dask", "serial"),
        default=None,  # process; None tells an --executor given beside --scheduler (check_executor)
        help="process: a local process pool (default); dask: a Dask LocalCluster, or the cluster "
        "given by --scheduler; serial: one run after another in this process",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run on this Dask cluster (implies --executor dask)",
    )


def _executor_info(args: argparse.Namespace) -> dict:
    executor = "dask" if args.scheduler else args.executor
    return {"executor": executor, "workers": args.workers, "scheduler": args.scheduler}


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="egovsim", description="Agent-based simulation of e-government adoption in Vietnam's provinces."
    )
    parser.add_argument("--version", action="version", version=f"egovsim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a scenario and write results and plots",
        description="Run a scenario file; write scenario.yaml, timeseries.csv, columns.csv, summary.json, report.html, "
        "provenance.json and plots/ into a new folder under results/.",
    )
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's seed)")
    _output_args(run, "results/<name>-<time>", "no progress bar or summary table")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    _scenario_args(run)
    run.add_argument(
        "--replicates",
        type=count(1, MAX_REPLICATES),
        default=None,
        metavar="R",
        help="R runs with seeds spawned from the master seed (--seed or the scenario's); writes "
        "every replicate's time series, their mean and 5-95%% band, and plots with bands "
        "(with --out DIR, running the same command again resumes an interrupted run)",
    )
    _executor_args(run)
    run.set_defaults(func=cmd_run)

    val = sub.add_parser(
        "validate",
        help="check scenario, experiment, study and calibration files without running them",
        description="Check each file by its own schema (its kind told by its keys) and list every error of "
        "every file, one line each; exit 2 if any. --set and --scale apply to scenario files.",
    )
    val.add_argument("scenarios", nargs="+", metavar="FILE", help="YAML files")
    _scenario_args(val)
    val.set_defaults(func=cmd_validate)

    cmp_ = sub.add_parser(
        "compare",
        help="what-if comparison of scenarios, paired replicates with 95%% intervals",
        description="Run R replicates of each scenario, replicate i of every scenario with the same seed "
        "(common random numbers); write comparison.csv (means and paired differences with 95% "
        "t intervals), report.md and plots. Run the same command again to resume.",
    )
    cmp_.add_argument("scenarios", nargs="+", help="two or more scenario YAML files")
    cmp_.add_argument(
        "--replicates",
        type=count(2, MAX_REPLICATES),
        default=10,
        metavar="R",
        help="replicates per scenario (10; at least 2, the fewest a t interval can be made from)",
    )
    cmp_.add_argument(
        "--baseline", default=None, help="the scenario (file or name) differences are taken from (default: the first)"
    )
    cmp_.add_argument("--seed", type=int, default=None, help="master seed (default: the baseline's seed)")
    _output_args(cmp_, "results/compare-A-vs-B")
    cmp_.add_argument(
        "--posterior",
        default=None,
        metavar="DIR",
        help="a calibration folder (egovsim calibrate --method abc): replicate i of every scenario "
        "runs with the i-th draw from its posterior, so intervals include parameter uncertainty",
    )
    cmp_.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    _scenario_args(cmp_)
    _executor_args(cmp_)
    cmp_.set_defaults(func=cmd_compare)

    swp = sub.add_parser(
        "sweep",
        help="run an experiment file: a design over parameters, with replicates",
        description="Run every point of an experiment's design (grid, Latin hypercube or list) with its "
        "replicates; write runs.csv and timeseries.parquet. Finished runs are kept as they "
        "complete: run the same command again after an interruption to run only what is missing.",
    )
    swp.add_argument("experiment", help="experiment YAML file (see experiments/example_sweep.yaml)")
    _output_args(swp, "results/<experiment name>")
    _executor_args(swp)
    swp.set_defaults(func=cmd_sweep)

    sen = sub.add_parser(
        "sensitivity",
        help="global sensitivity analysis (Sobol or Morris, with SALib)",
        description="Sample the parameters of a study file, run the model at every point (with replicates), "
        "and write indices.csv, report.md and plots. Give the same --out again to resume.",
    )
    sen.add_argument("experiment", help="study YAML file (see experiments/sobol.yaml, experiments/morris.yaml)")
    _output_args(sen, "results/sensitivity-...")
    _executor_args(sen)
    sen.set_defaults(func=cmd_sensitivity)

    dis = sub.add_parser(
        "discover",
        help="scenario discovery: under which levers and conditions does a case hold (PRIM, CART)",
        description="Sample the levers and uncertain parameters of a discovery file (and posterior draws), run the "
        "model at every point, and find with PRIM the boxes of inputs where the file's case holds; write "
        "boxes.csv, trajectory.csv, sample.csv, cart.txt, plots and report.md. Give the same --out again to resume.",
    )
    dis.add_argument("experiment", help="discovery YAML file (see experiments/discover_bentre_rural.yaml)")
    _output_args(dis, "results/discover-...")
    _executor_args(dis)
    dis.set_defaults(func=cmd_discover)

    opt = sub.add_parser(
        "optimize",
        help="robust, costed policy search: the cheapest lever mix reaching a target in most draws (NSGA-II)",
        description="Search the levers of an optimisation file for the Pareto set of its objectives over draws "
        "(NSGA-II, common random numbers), recheck it and the status quo on more draws, and write pareto.csv, "
        "candidates.csv, plots and report.md naming the cheapest mix that reaches the target in enough draws. "
        "Give the same --out again to resume.",
    )
    opt.add_argument("experiment", help="optimisation YAML file (see experiments/optimize_bentre.yaml)")
    _output_args(opt, "results/optimize-...")
    _executor_args(opt)
    opt.set_defaults(func=cmd_optimize)

    cal = sub.add_parser(
        "calibrate",
        help="fit parameters to the observations (differential evolution, or a posterior by tempered SMC)",
        description="Fit the free parameters of a calibration config to its targets; write fit.json, "
        "observed_vs_simulated.csv, plots and calibrated scenario files. Give the same --out again "
        "to resume an interrupted fit.",
    )
    cal.add_argument("config", help="calibration config YAML (see calibration/config.yaml)")
    cal.add_argument(
        "--method",
        choices=("optimize", "abc"),
        default="optimize",
        help="optimize: a point estimate (scipy differential evolution); abc: a posterior (tempered SMC, or pyabc's "
        "ABC-SMC with abc.sampler: pyabc)",
    )
    _output_args(cal, "results/calibration-...", "no progress display or table")
    cal.add_argument("--max-runs", type=int, default=None, metavar="N", help="budget of model runs")
    cal.add_argument("--max-time", type=float, default=None, metavar="SECONDS", help="budget of wall time")
    cal.add_argument(
        "--fit-until",
        type=int,
        default=None,
        metavar="YEAR",
        help="fit only targets up to YEAR; later ones are reported out of sample",
    )
    cal.add_argument(
        "--install",
        type=output_path,
        default=None,
        metavar="DIR",
        help="also write the calibrated scenario files into DIR (e.g. scenarios/calibrated); a file there of the "
        "same name that no calibration wrote is replaced only with --overwrite",
    )
    _executor_args(cal)
    cal.set_defaults(func=cmd_calibrate)

    cov = sub.add_parser(
        "coverage",
        help="coverage of the calibration method: fit data simulated from known parameters, count truths inside",
        description="Draw parameter vectors from a calibration config's prior, simulate the observations each "
        "gives, fit each with the config's abc sampler and count how often the truth falls inside its 90% credible "
        "interval (simulation-based calibration); write study.json, coverage.csv, truths.csv and provenance.json. "
        "Give the same --out again to resume. With --pool, pool finished studies (each from its own --seed) into "
        "one table.",
    )
    cov.add_argument("config", nargs="?", help="calibration config YAML (not with --pool)")
    cov.add_argument("--pool", nargs="+", type=Path, metavar="FOLDER", help="pool these finished studies' truths")
    cov.add_argument("--truths", type=count(1, 10_000), default=None, help="parameter vectors to fit (default 20)")
    cov.add_argument(
        "--seed",
        type=count(0, 2**63 - 1),
        default=None,
        help="master seed of the truths and their fits (default: the config's); another seed, other truths",
    )
    cov.add_argument("--population", type=int, default=None, metavar="N", help="particles (default: the config's)")
    cov.add_argument("--populations", type=int, default=None, metavar="N", help="most populations (default: config)")
    cov.add_argument(
        "--chain-length", type=int, default=None, metavar="N", help="smc: states per chain (default: config)"
    )
    _output_args(cov, "results/coverage-...", "no table at the end")
    _executor_args(cov)
    cov.set_defaults(func=cmd_coverage)

    serve = sub.add_parser(
        "serve",
        help="watch a run in the browser (Mesa's SolaraViz page)",
        description="Start Mesa's SolaraViz page for a scenario on this machine and print its address: the "
        "network of a leader, civil servants and citizens, time series, and the policy levers. "
        "Works offline once `python -m egovsim.app.assets` (run by make test / make serve) has "
        "installed the page's front end.",
    )
    serve.add_argument(
        "scenario",
        nargs="?",
        default=None,
        help="scenario YAML file (default: scenarios/calibrated/three_provinces.yaml)",
    )
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 or :: for every interface: "
        "the page has no login, see docs/security.md)",
    )
    _scenario_args(serve)
    serve.set_defaults(func=cmd_serve)
    return parser


def _version() -> str:
    from egovsim import __version__

    return __version__


def cmd_validate(args: argparse.Namespace) -> int:
    """Every error of every file, one line each (exit 2 if any); a file's kind is told by its keys."""
    failed = False
    for path in args.scenarios:
        try:
            print(f"{path}: {_validated(path, args)}")
        except InputError as exc:
            failed = True
            for error in getattr(exc, "errors", [exc]):
                print(f"egovsim: error: {error}", file=sys.stderr)
    return EXIT_INPUT if failed else 0


def _validated(path: str, args: argparse.Namespace) -> str:
    """What the file at `path` is, checked by its own schema (scenario files with --set and --scale)."""
    from egovsim.config.analysis import file_kind
    from egovsim.config.yamlfile import read_yaml

    kind = file_kind(read_yaml(Path(path)), path)
    if kind != "scenario" and (args.overrides or args.scale is not None):
        raise InputError(
            path,
            "--set" if args.overrides else "--scale",
            f"is for scenario files; a {kind} file has its own `set:` and `scale:` keys",
        )
    if kind == "observations":  # read by calibration configs (`observations:`), which validate what they use
        return "not checked: sourced observations, read by a calibration config (validate that config instead)"
    if kind == "experiment":  # the analysis code (Mesa, numba) loads only for these files
        from egovsim.analysis.sweep import design_fields, load_experiment

        exp, base = load_experiment(path)
        for warning in exp.levers_in_play(base, design_fields(exp), path):
            _warn(path, warning)
        return f"ok (experiment {exp.name}: {exp.design.size} points x {exp.replicates} replicates of {base.name})"
    if kind == "study":
        from egovsim.analysis.sensitivity import load_study, study_fields

        study, base, _ = load_study(path)
        for warning in study.levers_in_play(base, study_fields(study), path):
            _warn(path, warning)
        return f"ok (sensitivity study {study.name}: {study.method}, {len(study.parameters)} parameters of {base.name})"
    if kind == "discovery":
        from egovsim.analysis.discover import load_discovery

        spec, base = load_discovery(path)
        for warning in spec.levers_in_play(base, spec.varied_fields(base), path):
            _warn(path, warning)
        return f"ok (discovery {spec.name}: {spec.n} points x {spec.replicates} replicates of {base.name})"
    if kind == "optimisation":
        from egovsim.analysis.optimize import load_search

        spec, base = load_search(path)
        for warning in spec.levers_in_play(base, spec.varied_fields(base), path):
            _warn(path, warning)
        return f"ok (policy search {spec.name}: {len(spec.levers)} levers, {len(spec.objectives)} objectives, of {base.name})"
    if kind == "calibration":
        from egovsim.analysis.calibration.pipeline import plan_calibration

        plan = plan_calibration(path)
        return (
            f"ok (calibration {plan.config.name}: {len(plan.config.parameters)} parameters, "
            f"{len(plan.config.targets)} targets, of {plan.full.name})"
        )
    return _validated_scenario(path, args)


def _validated_scenario(path: str, args: argparse.Namespace) -> str:
    from egovsim.config.scenario import horizon_warning
    from egovsim.model.costs import load_with_budgets

    try:
        sc = load_with_budgets(path, args.overrides, args.scale)
    except InputError as exc:
        no_provinces = ("missing required key", "at least one province is required")
        if all(e.field == "provinces" and e.message in no_provinces for e in getattr(exc, "errors", [exc])):
            return "a fragment (no provinces) for scenario files to extend; it cannot run by itself"
        raise
    _overrides_in_play(path, sc, args.overrides)
    _warn(path, horizon_warning(sc))
    _warn(path, posterior_warning(sc, path))
    n = sum(max(1, round(p.population * p.scale)) for p in sc.provinces.values())
    return f"ok ({sc.name}: {', '.join(sc.provinces)}; {sc.start_year}-{sc.end_year}; {n:,} simulated citizens)"


def posterior_warning(scenario, source) -> str | None:
    """What a calibrated scenario's posterior folder cannot give (missing, unreadable, or another fit's): a single
    run uses the file's medians and goes ahead, but run --replicates, compare and the page's draws would stop."""
    if not scenario.parameters.draws_from:
        return None
    needed = "a single run uses the file's medians; run --replicates, compare and the browser's posterior draws need it"
    missing = scenario.parameters.missing_posterior()  # not read_posterior: the analysis code costs serve a second
    if missing:
        return f"parameters.posterior: {missing} ({needed})"
    try:
        scenario.parameters.check_posterior_file(str(source))
    except InputError as exc:
        return f"{exc.field}: {exc.message} ({needed})"
    return None


def _warn(source, warning: str | None) -> None:
    if warning:
        print(f"egovsim: warning: {source}: {warning}", file=sys.stderr)


def _overrides_in_play(source, scenario, overrides: list[str] | None, quiet: bool = False) -> list[str]:
    """--set values of levers that the scenario's own dated events set again: refused if an event replaces one
    before the first step (the value would never act), else a warning, printed and returned for provenance."""
    from egovsim.config.scenario import refuse_undone_at_start

    keys = {item.partition("=")[0].strip(): f"--set {item.partition('=')[0].strip()}" for item in overrides or []}
    warnings = [f"--set {u.key}: {u.words()}" for u in refuse_undone_at_start(scenario, keys, str(source))]
    for warning in warnings if not quiet else ():
        _warn(source, warning)
    return warnings


def cmd_run(args: argparse.Namespace) -> int:
    from egovsim.analysis.calibration.report import observed_vs_simulated
    from egovsim.config.scenario import horizon_warning
    from egovsim.folders import claimed, new_folder
    from egovsim.model.costs import load_with_budgets
    from egovsim.model.model import EGovModel
    from egovsim.provenance import provenance
    from egovsim.report.runfolder import write_run
    from egovsim.report.tables import POSTERIOR_POINT, summary

    scenario = load_with_budgets(args.scenario, args.overrides, args.scale)
    if not args.quiet:  # --quiet: scripts that read summary.json know the years they asked for
        _warn(args.scenario, horizon_warning(scenario))
    args.lever_warnings = _overrides_in_play(args.scenario, scenario, args.overrides, args.quiet)
    seed = scenario.seed if args.seed is None else args.seed
    scenario = with_seed(scenario, seed, args.scenario)  # scenario.yaml then reruns as this command ran
    if args.replicates is not None and args.replicates < 1:
        raise InputError(args.scenario, "--replicates", f"must be >= 1, got {args.replicates}")
    folder = args.out or new_folder(scenario.name)
    if args.replicates is not None:  # replicate i is the same run whatever R: R may change between resumes
        # the posterior's draws define the runs too: a changed posterior.csv is another command, never resumed into
        drawn_from = [Path(scenario.parameters.draws_from) / "posterior.csv"] if scenario.parameters.draws_from else []
        _declare(args, "run --replicates", [args.scenario, *drawn_from], {"scenario": scenario.to_dict()})
        return _run_replicates(args, scenario, seed, folder)
    if args.scheduler or args.workers or args.executor != "process":
        _warn(args.scenario, "--executor, --scheduler and --workers apply to --replicates; one run runs here")
    _declare(args, "run", [args.scenario], resumes=False)  # replaced whole: any seed or --set may follow
    earlier = (Path(folder) / "provenance.json").is_file()  # a finished run there is replaced whole: say so
    with claimed(folder, whole=True):
        start = time.perf_counter()
        model = EGovModel(scenario, seed, collect=False)
        with _progress(model.n_steps, f"{scenario.name} (seed {seed})", args.quiet) as bar:
            records = model.run(progress=lambda k: bar.update(1))
        wall = time.perf_counter() - start
        prov = provenance(
            seeds=[seed],
            wall_time_s=wall,
            scenario_file=str(args.scenario),
            command=args.command_line,
            extra={
                "overrides": args.overrides,
                "scale_override": args.scale,
                "simulated_citizens": int(model.citizens.n),
                "warnings": args.lever_warnings,
            },
        )
        observed = observed_vs_simulated(scenario, records[None])  # report.html's table
        write_run(folder, scenario, records, prov, plots=not args.no_plots, observed=observed)
    if not args.quiet:
        what = f" {POSTERIOR_POINT}" if scenario.parameters.kind == "posterior" else ""
        _print_summary(summary(records, scenario), f"one run (seed {seed}){what}:")
        if earlier:
            print(f"egovsim: the earlier run in {folder} was replaced by this one", file=sys.stderr)
    print(folder)
    return 0


def _declare(args: argparse.Namespace, kind: str, inputs: list, settings: dict | None = None, resumes=True) -> None:
    """The command about to claim its output folder (folders.Command: the one rule of who may write there).
    Besides `settings`, the content of every input file counts (an experiment's design, a fit's targets)."""
    from egovsim.engine import engine_mark
    from egovsim.folders import Command, declare

    files = [Path(p).resolve() for p in inputs]
    # the files' contents in the order of `inputs`, not by their paths: the same files elsewhere are the same input
    contents = [f.read_text(encoding="utf-8", errors="replace") if f.is_file() else None for f in files]
    earlier = {}  # how a folder recorded before this form was hashed: it resumes where it is
    if resumes:
        by_path = {str(f): c for f, c in zip(files, contents) if c is not None}
        earlier = {**(settings or {}), "files": by_path, **engine_mark()}
    settings = {**_located(settings or {}), "files": contents, **engine_mark()} if resumes else {}
    argv = tuple(args.command_line)
    declare(Command(kind, tuple(map(str, files)), settings, resumes, argv, args.overwrite, earlier))


def _located(settings: object) -> object:
    """`settings` with each scenario's posterior folder (an absolute path once read) given by the sha256 of its
    posterior.csv: a project moved whole, or a clone, is the same command's; another posterior is not."""
    import hashlib

    if isinstance(settings, list):
        return [_located(x) for x in settings]
    if not isinstance(settings, dict):
        return settings
    out = {k: _located(v) for k, v in settings.items()}
    parameters = out.get("parameters")
    if isinstance(parameters, dict) and isinstance(parameters.get("posterior"), str):
        draws = Path(parameters["posterior"]) / "posterior.csv"
        if draws.is_file():
            out["parameters"] = {**parameters, "posterior": "sha256:" + hashlib.sha256(draws.read_bytes()).hexdigest()}
    return out


def with_seed(scenario, seed: int, source):
    """The scenario with the seed a command actually uses (--seed, or the master seed of replicates), so the
    resolved scenario.yaml it writes reproduces the command's results."""
    import dataclasses

    if not 0 <= seed <= 2**63 - 1:
        raise InputError(source, "--seed", f"must be in 0..2**63-1, got {seed}")
    return dataclasses.replace(scenario, seed=seed)


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="month", disable=quiet, mininterval=0.5, file=sys.stderr, leave=False)


def _print_summary(summ: dict, heading: str) -> None:
    for line in summ.get("small_groups", []):
        print(f"warning: small group: {line}", file=sys.stderr)
    print(heading, file=sys.stderr)
    provinces = summ["provinces"]
    labels = list(next(iter(provinces.values())))
    cols = ("supply_index", "access_share", "adopted_share", "use_share_12m")
    print(f"{'province':<10} {'state on':>10} " + " ".join(f"{c:>14}" for c in cols), file=sys.stderr)
    for key, by_year in provinces.items():
        for label in labels:
            row = by_year[label]
            vals = " ".join(f"{row[c]:>14.3f}" if row[c] is not None else f"{'-':>14}" for c in cols)
            print(f"{key:<10} {row['date']:>10} {vals}", file=sys.stderr)


EXIT_RUNS_FAILED = 1  # some runs of an experiment failed; the others are written, and a re-run retries them


def _run_replicates(args: argparse.Namespace, scenario, seed: int, folder: Path) -> int:
    import dataclasses

    from egovsim.analysis.calibration.posterior import posterior_draws, restricted
    from egovsim.analysis.replicates import run_replicates
    from egovsim.config.scenario import apply_values
    from egovsim.report.tables import summary
    from egovsim.runner.runner import Tally, make_executor

    draws = None
    if scenario.parameters.draws_from:  # a calibrated scenario: replicate i runs with posterior draw i
        scenario.parameters.check_posterior_file(str(args.scenario))
        draws = posterior_draws(
            scenario.parameters.draws_from, args.replicates, seed, "parameters.posterior", str(args.scenario)
        )
        for d in draws:  # every draw must fit before workers start
            apply_values(scenario, restricted(d, scenario), f"{args.scenario} with its posterior")
        scenario = dataclasses.replace(
            scenario, parameters=scenario.parameters.drawn_from(scenario.parameters.draws_from)
        )

    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        results, records = run_replicates(
            scenario,
            seed,
            args.replicates,
            folder,
            executor,
            plots=not args.no_plots,
            progress=None if args.quiet else f"{scenario.name} x {args.replicates}",
            scenario_file=str(args.scenario),
            provenance_extra={
                "overrides": args.overrides,
                "scale_override": args.scale,
                "warnings": args.lever_warnings,
                **_executor_info(args),
            },
            draws=draws,
        )
    tally = Tally.of(results)
    if not args.quiet and records.size:
        _print_summary(summary(records.mean(axis=0), scenario), f"mean of {records.shape[0]} replicates:")
    if tally.failed or not args.quiet:
        print(tally.line(scenario.name), file=sys.stderr)
    print(folder)
    return EXIT_RUNS_FAILED if tally.failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from egovsim.analysis.compare import headline, mixed_parameters, plan_comparison, run_comparison
    from egovsim.config.scenario import horizon_warning
    from egovsim.runner.runner import make_executor

    plan = plan_comparison(
        args.scenarios,
        args.replicates,
        baseline=args.baseline,
        seed=args.seed,
        overrides=args.overrides,
        scale=args.scale,
        posterior=args.posterior,
    )  # bad input fails before workers start
    # the runs are defined by the resolved scenarios (their seed is the master seed) and the posterior; the
    # replicate count and the baseline only change what is computed from them, rewritten whole every time
    lever_warnings = []
    if (mixed := mixed_parameters(plan.labels, plan.scenarios, plan.posterior)) and not args.quiet:
        print(f"egovsim: warning: {mixed}", file=sys.stderr)
    for path, scenario in zip(plan.paths, plan.scenarios):
        if not args.quiet:
            _warn(path, horizon_warning(scenario))
        lever_warnings += [f"{path}: {w}" for w in _overrides_in_play(path, scenario, args.overrides, args.quiet)]
    inputs = [*args.scenarios, *([Path(plan.posterior) / "posterior.csv"] if plan.posterior else [])]
    _declare(args, "compare", inputs, {"scenarios": [sc.to_dict() for sc in plan.scenarios]})
    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        folder, tally, rows = run_comparison(
            plan,
            executor,
            folder=args.out,
            progress=not args.quiet,
            plots=not args.no_plots,
            provenance_extra={**_executor_info(args), "warnings": lever_warnings},
        )
    if not args.quiet and rows:
        print(headline(rows, plan.baseline), file=sys.stderr)
    if tally.failed or not args.quiet:
        print(tally.line("compare"), file=sys.stderr)
    print(folder)
    return EXIT_RUNS_FAILED if tally.failed else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from egovsim.analysis.sweep import load_experiment, run_sweep
    from egovsim.runner.runner import make_executor

    exp, base = load_experiment(args.experiment)  # a bad file is reported before any worker starts
    # a calibrated base scenario's replicates run on its posterior's draws: a changed posterior.csv is another
    # command, never resumed into
    drawn_from = [Path(base.parameters.draws_from) / "posterior.csv"] if base.parameters.draws_from else []
    _declare(args, "sweep", [args.experiment, *drawn_from], {"scenario": base.to_dict()})
    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        folder, tally = run_sweep(
            args.experiment,
            exp,
            base,
            executor,
            folder=args.out,
            progress=not args.quiet,
            provenance_extra=_executor_info(args),
        )
    if tally.failed or not args.quiet:
        print(tally.line(f"sweep {args.experiment}"), file=sys.stderr)
    print(folder)
    return EXIT_RUNS_FAILED if tally.failed else 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from egovsim.analysis.sensitivity import StudyIncomplete, load_study, run_study, top_parameters
    from egovsim.folders import new_folder
    from egovsim.runner.runner import make_executor

    study_path = Path(args.experiment)
    loaded = load_study(study_path)  # a bad file is reported before any worker starts; checked once
    base = loaded[1]
    _declare(args, "sensitivity", [study_path], {"scenario": base.to_dict()})
    folder = Path(args.out) if args.out else new_folder(f"sensitivity-{study_path.stem}")
    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        try:
            out = run_study(study_path, executor, folder, quiet=args.quiet, command=args.command_line, loaded=loaded)
        except StudyIncomplete as exc:
            print(f"egovsim: {exc}", file=sys.stderr)
            return EXIT_RUNS_FAILED
    if not args.quiet:
        main_index = "ST" if out["rows"] and out["rows"][0]["method"] == "sobol" else "mu_star"
        print(f"{out['runs']} runs, {out['points']} points; {len(out['flagged'])} unreliable indices", file=sys.stderr)
        outputs = sorted({r["output"] for r in out["rows"]})
        for province in sorted({r["province"] for r in out["rows"]}):
            for o in outputs:
                top = top_parameters(out["rows"], province, o, main_index)
                print(f"  {province:<8} {o:<26} " + ", ".join(f"{p} {v:.2f}" for p, v, _ in top), file=sys.stderr)
    print(folder)
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from egovsim.analysis.discover import conditions, prepare, run_discovery
    from egovsim.analysis.discovery import chosen_in_words
    from egovsim.folders import new_folder
    from egovsim.runner.runner import make_executor

    path = Path(args.experiment)
    prepared = prepare(path)  # a bad file is reported before any worker starts; its sample is made once
    spec, base = prepared.spec, prepared.base
    inputs = [path, *([path.parent / spec.posterior / "posterior.csv"] if spec.posterior else [])]
    _declare(args, "discover", inputs, {"scenario": base.to_dict()})
    folder = Path(args.out) if args.out else new_folder(f"discover-{path.stem}")
    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        out = run_discovery(path, executor, folder, quiet=args.quiet, command=args.command_line, prepared=prepared)
    tally, box = out["tally"], out["found"].box
    if not args.quiet:
        print(f"the case holds at {out['found'].cases} of {out['points']} points", file=sys.stderr)
        if box is not None:
            print(chosen_in_words(out["found"], spec.min_density, spec.mass_min), file=sys.stderr)
            for line in conditions(out["found"], spec.resamples):
                print(f"  {line}", file=sys.stderr)
    if tally.failed or not args.quiet:
        print(tally.line("discover"), file=sys.stderr)
    print(folder)
    return EXIT_RUNS_FAILED if tally.failed else 0


def cmd_optimize(args: argparse.Namespace) -> int:
    from egovsim.analysis.optimize import load_search, run_search
    from egovsim.folders import new_folder
    from egovsim.runner.runner import make_executor

    path = Path(args.experiment)
    spec, base = load_search(path)  # a bad file is reported before any worker starts
    inputs = [path, *([path.parent / spec.posterior / "posterior.csv"] if spec.posterior else [])]
    _declare(args, "optimize", inputs, {"scenario": base.to_dict()})
    folder = Path(args.out) if args.out else new_folder(f"optimize-{path.stem}")
    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        out = run_search(path, executor, folder, quiet=args.quiet, command=args.command_line)
    if not args.quiet:
        checked, i = out["checked"], out["choice"]
        if out["status_quo_suffices"]:
            print("the status quo already meets the target: no added spending is needed", file=sys.stderr)
        elif i is None:
            print(f"no mix on the Pareto set meets the target in {spec.success_share:.0%} of draws", file=sys.stderr)
        else:
            from egovsim.analysis.optimize import confirmation_held

            mix = ", ".join(f"{k} {v:.2f}" for k, v in zip(spec.levers, checked.X[i]))
            chosen = out["confirmed"][0] if out["confirmed"] is not None else None
            confirmation = (
                ""
                if chosen is None
                else f"; on {spec.recheck} fresh draws {chosen.share(spec)[0]:.0%}: "
                + ("confirmed" if confirmation_held(spec, out["confirmed"]) else "NOT confirmed")
            )
            print(
                f"cheapest robust mix: {mix}: {checked.cost[i]:.1f} bn VND/yr, target met in "
                f"{checked.share(spec)[i]:.0%} of {spec.recheck} recheck draws{confirmation}",
                file=sys.stderr,
            )
    if out["failed"] or not args.quiet:
        print(f"optimize: {out['runs']} runs, {out['failed']} failed", file=sys.stderr)
    print(folder)
    return EXIT_RUNS_FAILED if out["failed"] else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from egovsim.analysis.calibration import calibrate, plan_calibration, print_terms
    from egovsim.runner.runner import make_executor

    if args.max_runs is not None and args.max_runs < 1:
        raise InputError(args.config, "--max-runs", f"must be >= 1, got {args.max_runs}")
    if args.max_time is not None and not 0 < args.max_time < math.inf:  # nan fails too
        raise InputError(args.config, "--max-time", f"must be a number of seconds > 0, got {args.max_time}")
    plan = plan_calibration(args.config, fit_until=args.fit_until, install=args.install, overwrite=args.overwrite)
    fitted = {"scenario": plan.full.to_dict(), "fit_until": args.fit_until}  # the checkpoint depends on both
    observations = Path(args.config).parent / plan.config.observations
    _declare(args, f"calibrate --method {args.method}", [args.config, observations], fitted)
    if args.method == "abc" and not args.quiet:  # pyabc reports each population (epsilon, acceptance) by logging;
        # the smc sampler prints a line per population itself
        import logging

        logging.basicConfig(format="%(name)s: %(message)s", stream=sys.stderr)
        logging.getLogger("ABC").setLevel(logging.INFO)
    with make_executor(args.workers, args.executor, args.scheduler) as executor:
        folder, summary = calibrate(
            plan,
            executor=executor,
            method=args.method,
            out=args.out,
            max_runs=args.max_runs,
            max_time=args.max_time,
            progress=not args.quiet,
            command_line=args.command_line,
            provenance_extra=_executor_info(args),
        )
    if not args.quiet:
        print_terms(summary)
    runs = summary.get("runs") or {}
    if runs.get("failed"):  # the fit went on, scoring those vectors on the runs that finished
        print(
            f"egovsim: warning: {runs['failed']} of {runs['total']} model runs failed (see {folder / 'runs'}); "
            "run the same command again to retry them",
            file=sys.stderr,
        )
    print(folder)
    return 0


STUDY_OPTIONS = ("truths", "seed", "population", "populations", "chain_length")


def cmd_coverage(args: argparse.Namespace) -> int:
    """A coverage study of a calibration config, or (--pool) the pooled tables of finished studies."""
    from egovsim.analysis.calibration import coverage as cov

    if (args.config is None) == (args.pool is None):
        raise InputError("egovsim coverage", "", "give a calibration config to study, or --pool FOLDER... to pool")
    if args.pool is not None:
        given = [name for name in (*STUDY_OPTIONS, "workers", "scheduler") if getattr(args, name) is not None]
        given += ["executor"] if args.executor != "process" else []
        if given:  # a pool runs nothing: these would be silently ignored
            raise InputError("--pool", f"--{given[0].replace('_', '-')}", "is a setting of a study, not of a pool")
        return _pool_coverage(args, cov)
    return _study_coverage(args, cov)


def _pool_coverage(args: argparse.Namespace, cov) -> int:
    from egovsim.files import atomic_write, write_json
    from egovsim.folders import claimed, new_folder, replaced
    from egovsim.provenance import provenance

    rows, per_truth, record = cov.pool(args.pool)
    folder = args.out or new_folder("coverage-pooled")
    _declare(args, "coverage --pool", [Path(f) / "truths.csv" for f in args.pool], resumes=False)
    with claimed(folder, whole=True), replaced(folder) as stage:
        cov.write_tables(stage, rows, per_truth)
        # the scenario the studies fitted: one for all (pool checks that their fit problems are the same)
        resolved = next((Path(f) / "scenario.yaml" for f in args.pool if (Path(f) / "scenario.yaml").is_file()), None)
        if resolved is not None:
            atomic_write(stage / "scenario.yaml", resolved.read_bytes())
        prov = provenance(
            seeds=[s["seed"] for s in record["pool_of"]],
            wall_time_s=0.0,
            scenario_file=None,
            command=args.command_line,
            extra={"coverage": record},
        )
        write_json(stage / "provenance.json", prov)
    if not args.quiet:
        cov.print_table(rows)
    print(folder)
    return 0


def _study_coverage(args: argparse.Namespace, cov) -> int:
    import dataclasses

    from egovsim.analysis.calibration.config import ABCSettings
    from egovsim.analysis.calibration.pipeline import plan_calibration
    from egovsim.config.schema import build
    from egovsim.files import write_json
    from egovsim.folders import MARKER, claimed, new_folder
    from egovsim.provenance import provenance
    from egovsim.report.runfolder import write_scenario
    from egovsim.runner.runner import make_executor

    plan = plan_calibration(args.config)
    given = {"population_size": args.population, "max_populations": args.populations, "chain_length": args.chain_length}
    # the command line's sizes checked by the config's own rules (bounds, at least two chains)
    settings = build(
        ABCSettings,
        {
            **dataclasses.asdict(plan.config.abc),
            **{k: v for k, v in given.items() if v is not None},
            "predictive_draws": 0,
        },
        f"{args.config} with the command line's sizes",
        "abc",
    )
    settings.check_chains(f"{args.config} with the command line's sizes")
    seed = plan.config.seed if args.seed is None else args.seed
    truths = 20 if args.truths is None else args.truths
    observations = Path(args.config).parent / plan.config.observations
    problem = plan.problem.widened(settings.temperature)
    record = cov.study_settings(problem, settings, seed, truths)
    folder = args.out or new_folder(f"coverage-{plan.config.name}")
    _declare(args, "coverage", [args.config, observations], {"study": record})
    start = time.perf_counter()
    with claimed(folder):
        # the same study again: its tables are rewritten truth by truth as its runs replay; until the end they are
        # a study in progress, so the mark of a finished one goes first
        (folder / MARKER).unlink(missing_ok=True)
        write_json(folder / cov.STUDY, record)
        write_scenario(folder, plan.problem.scenario)  # what every fit runs: the fitting scale and end year
        with make_executor(args.workers, args.executor, args.scheduler) as executor:
            rows, _ = cov.coverage(problem, settings, executor, truths=truths, seed=seed, folder=folder)
        prov = provenance(
            seeds=[seed],
            wall_time_s=time.perf_counter() - start,
            scenario_file=str(args.config),
            command=args.command_line,
            extra={"coverage": record, **_executor_info(args)},
        )
        write_json(folder / "provenance.json", prov)
    if not args.quiet:
        cov.print_table(rows)
    print(folder)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the scenario, then replace this process with egovsim.app.server, which checks the page's front end
    and runs `solara run egovsim.app.serving` (the page reads the scenario from EGOVSIM_SCENARIO, EGOVSIM_SCALE and
    EGOVSIM_SET). Solara is imported there only: importing it here too would add a second or more to the start."""
    import json
    import os

    from egovsim.config.scenario import DEFAULT_SCENARIO
    from egovsim.model.costs import load_with_budgets

    scenario = Path(args.scenario or DEFAULT_SCENARIO)
    # a bad file, or a --set an event undoes at once, is reported before the server starts
    loaded = load_with_budgets(scenario, args.overrides, args.scale)
    _overrides_in_play(scenario, loaded, args.overrides)
    loaded.parameters.check_posterior_file(str(scenario))  # the page draws from it (its Draw control)
    _warn(scenario, posterior_warning(loaded, scenario))
    if not 0 <= args.port <= 65535:
        raise InputError("--port", "", f"must be in 0-65535, got {clipped(args.port)}")
    host = listen_address(args.host)
    check_can_listen(host, args.port)  # before "serving ... at": the address must be this server's
    env = dict(
        os.environ,
        EGOVSIM_SCENARIO=str(scenario.resolve()),
        EGOVSIM_SET=json.dumps(args.overrides),
        SOLARA_TELEMETRY_MIXPANEL_ENABLE="False",
    )
    # a closed tab's session (and its model, tens of MB) is freed a minute later, not after Solara's 24 hours
    env.setdefault("SOLARA_KERNEL_CULL_TIMEOUT", CULL_TIMEOUT)
    env.pop("EGOVSIM_SCALE", None)
    if args.scale is not None:
        env["EGOVSIM_SCALE"] = repr(args.scale)
    shown = f"[{host}]" if ":" in host else host
    where = f"http://{shown}:{args.port}/" if args.port else f"http://{shown} (a free port, printed below)"
    if not is_loopback(host):
        print(
            f"egovsim: warning: listening on {host}, reachable from other machines: the page has no login, so "
            f"anyone who can reach this port can drive the model and read the scenario (docs/security.md)",
            file=sys.stderr,
        )
    # printed by the server process once it has checked that the page's front end is installed
    env["EGOVSIM_SERVING"] = f"egovsim: serving {scenario} at {where} (Ctrl-C to stop)"
    sys.stderr.flush()
    cmd = [
        sys.executable,
        "-m",
        "egovsim.app.server",  # checks the front end, then `solara run egovsim.app.serving` with these options
        "--host",
        host,
        "--port",
        str(args.port),
        "--production",
        "--no-open",
    ]
    os.execve(sys.executable, cmd, env)  # the server keeps this process id: Ctrl-C and kill reach it directly
    return 0  # not reached


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a batch scheduler's stop), handled like Ctrl-C: workers stopped, nothing half-written."""


def _terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not interrupt the clean-up
    raise Terminated


CULL_TIMEOUT = "60s"
ALL_INTERFACES = {"0": "0.0.0.0", "0.0.0.0": "0.0.0.0", "::": "::"}


def listen_address(host: str) -> str:
    """The address `egovsim serve --host` listens on. An empty host would make the server listen on every
    interface (IPv4 and IPv6) without saying so: every interface must be asked for by name."""
    host = host.strip()
    if not host:
        raise InputError(
            "--host", "", "empty: give 127.0.0.1 (this machine only, the default) or 0.0.0.0 (every interface)"
        )
    return ALL_INTERFACES.get(host, host)


def check_can_listen(host: str, port: int) -> None:
    """The host resolves and the port is free on every address it resolves to, so `serve` never announces an
    address another program owns. Each probe binds as the server will a moment later (asyncio: SO_REUSEADDR, and
    IPv6 sockets IPv6-only, so `::` does not also claim IPv4's port)."""
    import errno
    import socket

    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError("--host", "", f"{clipped(host)} cannot be resolved to an address ({exc})") from None
    for family, kind, proto, _, address in dict.fromkeys(found):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise InputError(
                        "--port",
                        "",
                        f"{port} on {address[0]} is in use by another program: choose another (0: a free one)",
                    ) from None
                raise InputError(
                    "--host", "", f"cannot listen on {address[0]} port {port}: {exc.strerror or exc}"
                ) from None


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def check_engine() -> None:
    """EGOVSIM_ENGINE names an engine (engine.ENGINES): checked before any run, so a typo is one line, not a
    failure of every run in the workers."""
    from egovsim.engine import default_engine

    default_engine()


def main(argv: list[str] | None = None) -> int:
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.command_line = ["egovsim", *(sys.argv[1:] if argv is None else argv)]
        note_start()  # the tree as found, before this command writes into it
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_warning_line, warnings.showwarning)
            return _main(args)
    except KeyboardInterrupt as exc:  # while parsing, or a second Ctrl-C during the clean-up of the first
        return _interrupted(exc)
    finally:
        forget_start()
        _clean_up(in_main_thread, previous, argv is None)


def _warning_line(shown, message, category, filename, lineno, file=None, line=None) -> None:
    """egovsim's own warnings (EgovsimWarning, e.g. a constant output of a sensitivity study) read as its other
    warnings, one line; a library's keep Python's form (`shown`, how they were shown before), wherever raised."""
    if issubclass(category, EgovsimWarning):
        print(f"egovsim: warning: {message}", file=sys.stderr if file is None else file)
    else:
        shown(message, category, filename, lineno, file, line)


def _clean_up(in_main_thread: bool, previous, process_ends: bool) -> None:
    try:
        if "egovsim.folders" in sys.modules:
            sys.modules["egovsim.folders"].remove_unused()
    except KeyboardInterrupt:  # a Ctrl-C here: the command has ended already, and has said how
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            if process_ends:  # the process ends now: a Ctrl-C while Python joins the pool's threads is not news
                signal.signal(signal.SIGINT, signal.SIG_IGN)


# errors of a write that name no file: the disk or quota is full, the file system read-only or the file too large
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


# what each command reads (its argument, the kind of file: config.analysis.file_kind) and who reads each kind
READS = {
    "run": ("scenario", "scenario"),
    "serve": ("scenario", "scenario"),
    "compare": ("scenarios", "scenario"),
    "sweep": ("experiment", "experiment"),
    "sensitivity": ("experiment", "study"),
    "discover": ("experiment", "discovery"),
    "optimize": ("experiment", "optimisation"),
    "calibrate": ("config", "calibration"),
    "coverage": ("config", "calibration"),
}
READER = {
    "scenario": "`egovsim run`, `compare` and `serve` read it",
    "experiment": "`egovsim sweep` reads it",
    "study": "`egovsim sensitivity` reads it",
    "discovery": "`egovsim discover` reads it",
    "optimisation": "`egovsim optimize` reads it",
    "calibration": "`egovsim calibrate` and `coverage` read it",
    "observations": "a calibration config names it as its `observations`",
}


def check_file_kinds(args: argparse.Namespace) -> None:
    """A file of another kind than the command reads (an experiment given to `run`) is named as what it is: its
    own keys read as unknown ones ("design: unknown key") and said nothing of the mistake."""
    import dataclasses

    from egovsim.config.analysis import file_kind
    from egovsim.config.scenario import Scenario
    from egovsim.config.yamlfile import read_yaml

    if args.command not in READS:
        return
    attribute, expected = READS[args.command]
    given = getattr(args, attribute, None)
    scenario_keys = {f.name for f in dataclasses.fields(Scenario)} | {"extends"}
    for path in given if isinstance(given, list) else [given] if given else []:
        try:
            data = read_yaml(Path(path))
            kind = file_kind(data, str(path))
        except InputError:  # unreadable, or the keys of two kinds: the command's own reading says what is wrong
            continue
        if kind == "scenario" and not (isinstance(data, dict) and scenario_keys & set(data)):
            continue  # file_kind's default (empty, a list, no known key): the command's own reading says what it is
        if kind != expected:
            raise InputError(
                str(path),
                "(top level)",
                f"is {_a(kind)} {kind} file ({READER[kind]}); `egovsim {args.command}` reads {_a(expected)} "
                f"{expected} file",
            )


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def check_executor(args: argparse.Namespace) -> None:
    """--scheduler runs on that Dask cluster: an --executor of another kind beside it is a contradiction, said at
    once (it tried the cluster and failed 20 s later); without either, runs go to a local process pool."""
    if not hasattr(args, "executor"):
        return
    if getattr(args, "scheduler", None) and args.executor not in (None, "dask"):
        raise InputError(
            "--executor", "", f"{args.executor} runs locally, --scheduler on a Dask cluster: give one of the two"
        )
    args.executor = args.executor or "process"


def _main(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "out", None) is not None:
            from egovsim.files import check_out_folder

            check_out_folder(args.out)  # before any run: an hour of simulation must not end in "cannot write"
        if args.command != "validate":
            check_engine()
        check_executor(args)
        check_file_kinds(args)
        return args.func(args)
    except InputError as exc:
        print(f"egovsim: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:  # e.g. the disk filled up while writing: say so on one line, no traceback
        where = exc.filename
        if where is None and exc.errno in WRITE_ERRORS:  # a write the system refused: the folder being written
            where = getattr(args, "out", None)
        where = f"{one_line(str(where), 4 * CLIP)}: " if where else ""
        print(f"egovsim: error: {where}{one_line(str(exc.strerror or exc), 4 * CLIP)}", file=sys.stderr)
        return EXIT_FAILED
    except (WorkerDied, RunsFailed) as exc:
        print(f"egovsim: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        return _interrupted(exc)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line on Ctrl-C or SIGTERM: what the output folder holds and, if runs were kept, the command that
    resumes (with --out named: a default folder is timestamped, so the same command would start afresh)."""
    folders = sys.modules.get("egovsim.folders")
    state = folders.interruption() if folders else "nothing half-written was left behind"
    progress = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(progress, "tqdm", None), "_instances", ())):  # a bar still open ends its line
        bar.close()
    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    print(f"egovsim: {what}; {state}", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
