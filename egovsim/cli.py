"""The `egovsim` command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import InputError

EXIT_INPUT = 2


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a scenario key, e.g. --set provinces.hue.policy.training=2 (repeatable)")
    p.add_argument("--scale", type=float, default=None,
                   help="simulated citizens per real person, for every province (e.g. 1 for the full population)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egovsim", description="Agent-based simulation of e-government adoption in Vietnam's provinces.")
    parser.add_argument("--version", action="version", version=f"egovsim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario and write results and plots",
                         description="Run a scenario file; write scenario.yaml, timeseries.csv, summary.json, "
                                     "provenance.json and plots/ into a new folder under results/.")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's seed)")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: results/<name>-<time>)")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    _scenario_args(run)
    run.set_defaults(func=cmd_run)

    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("scenarios", nargs="+", help="scenario YAML files")
    _scenario_args(val)
    val.set_defaults(func=cmd_validate)
    return parser


def _version() -> str:
    from . import __version__
    return __version__


def cmd_validate(args: argparse.Namespace) -> int:
    from .scenario import load_scenario
    for path in args.scenarios:
        sc = load_scenario(path, args.overrides, args.scale)
        n = sum(max(1, round(p.population * p.scale)) for p in sc.provinces.values())
        print(f"{path}: ok ({sc.name}: {', '.join(sc.provinces)}; {sc.start_year}-{sc.end_year}; "
              f"{n:,} simulated citizens)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .model import EGovModel
    from .output import default_run_folder, provenance, summary, write_run
    from .scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides, args.scale)
    seed = scenario.seed if args.seed is None else args.seed
    if seed < 0:
        raise InputError(args.scenario, "--seed", f"must be >= 0, got {seed}")
    folder = args.out or default_run_folder(scenario.name)
    start = time.perf_counter()
    model = EGovModel(scenario, seed, collect=False)
    with _progress(model.n_steps, f"{scenario.name} (seed {seed})", args.quiet) as bar:
        records = model.run(progress=lambda k: bar.update(1))
    wall = time.perf_counter() - start
    prov = provenance(seeds=[seed], wall_time_s=wall, scenario_file=str(args.scenario), command=args.command_line,
                      extra={"overrides": args.overrides, "scale_override": args.scale,
                             "simulated_citizens": int(model.citizens.n)})
    write_run(folder, scenario, records, prov, plots=not args.no_plots)
    if not args.quiet:
        _print_summary(summary(records, scenario))
    print(folder)
    return 0


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="month", disable=quiet, mininterval=0.5, file=sys.stderr,
                leave=False)


def _print_summary(summ: dict) -> None:
    provinces = summ["provinces"]
    labels = list(next(iter(provinces.values())))
    cols = ("egov_index", "access_share", "adopted_share", "use_share_12m")
    print(f"{'province':<10} {'year':>5} " + " ".join(f"{c:>14}" for c in cols), file=sys.stderr)
    for key, by_year in provinces.items():
        for label in labels:
            row = by_year[label]
            vals = " ".join(f"{row[c]:>14.3f}" if row[c] is not None else f"{'-':>14}" for c in cols)
            print(f"{key:<10} {label:>5} {vals}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = ["egovsim", *(sys.argv[1:] if argv is None else argv)]
    try:
        return args.func(args)
    except InputError as exc:
        print(f"egovsim: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("egovsim: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
