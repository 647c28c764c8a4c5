"""Calibration-scale throughput: runs per second on 2 worker processes, this code against a baseline commit, side
by side, and where a run's time goes in each.

    .venv/bin/python benchmarks/bench_throughput.py                 # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_throughput.py --runs 120 --rounds 3

A calibration-scale run is what calibration, Sobol and scenario discovery repeat thousands of times: the three
provinces at scale 0.003 (12,929 citizens), 2006-2024 monthly (228 steps), each version on its own
scenarios/three_provinces.yaml. The baseline's code (default 1817716, the commit issue 16 measured) is taken from
git history into benchmarks/out/ and imported in place of this one (PYTHONPATH), in the same interpreter and
environment; its compiled kernels are built on first use and cached there.

Runs per second: `--runs` runs (distinct seeds, build included) on a pool of 2 worker processes that have already
run one warm-up run each (imports and the kernels' loading are not counted), timed by wall clock. The versions
alternate for `--rounds` rounds so that both see the same machine load; each version's figure is its best round.
The profile: one process, `--profile-runs` runs under pyinstrument, the share of time in each part of a step.
Writes benchmarks/out/throughput.json and benchmarks/out/profile-<version>.txt.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
BASELINE = "1817716"
TARGET_RATIO = 4.0
SCALE, END_YEAR = 0.003, 2024


# ---- inside a version's process -----------------------------------------------------------------------------------


def _imports():
    """load_scenario, with_values and EGovModel of the version whose code is first on sys.path (the package's
    layout changed after the baseline: egovsim.scenario / egovsim.model then, egovsim.config.scenario /
    egovsim.model.model now). Chosen by the layout on disk, not by trying imports: this environment's editable
    install could otherwise supply one version's modules to the other."""
    import egovsim

    if (Path(egovsim.__file__).parent / "config").is_dir():
        from egovsim.config.scenario import load_scenario, with_values
        from egovsim.model.model import EGovModel
    else:
        from egovsim.scenario import load_scenario, with_values

        from egovsim.model import EGovModel
    return load_scenario, with_values, EGovModel


def calibration_scenario(root: Path):
    load_scenario, with_values, _ = _imports()
    return with_values(load_scenario(root / "scenarios" / "three_provinces.yaml", scale=SCALE), {"end_year": END_YEAR})


_SCENARIO = _MODEL = None


def _worker_init(root: str) -> None:
    global _SCENARIO, _MODEL
    _SCENARIO, _MODEL = calibration_scenario(Path(root)), _imports()[2]
    _one_run(0)  # imports, the compiled kernels' loading: not timed


def _one_run(seed: int) -> int:
    model = _MODEL(_SCENARIO, seed, collect=False)
    model.run()
    return model.citizens.n


def rate(root: Path, runs: int, workers: int) -> dict:
    """Runs per second of `runs` calibration-scale runs on `workers` processes (this process's version)."""
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(workers, initializer=_worker_init, initargs=(str(root),)) as pool:
        pool.map(_sleep, range(workers))  # every worker started and warmed up
        start = time.perf_counter()
        citizens = pool.map(_one_run, range(1, runs + 1), chunksize=1)
        wall = time.perf_counter() - start
    return {"runs": runs, "workers": workers, "wall_s": wall, "runs_per_s": runs / wall, "citizens": citizens[0]}


def _sleep(_: int) -> None:
    time.sleep(0.2)


def profile(root: Path, runs: int) -> str:
    from pyinstrument import Profiler

    global _SCENARIO, _MODEL
    _SCENARIO, _MODEL = calibration_scenario(root), _imports()[2]
    _one_run(0)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for seed in range(1, runs + 1):
        _one_run(seed)
    profiler.stop()
    return profiler.output_text(color=False, unicode=False, time="percent_of_total")


def child(args: argparse.Namespace) -> None:
    root = Path(args.root)
    if args.what == "rate":
        print(json.dumps(rate(root, args.runs, args.workers)))
    else:
        print(profile(root, args.profile_runs))


# ---- the driver ---------------------------------------------------------------------------------------------------


def baseline_tree(commit: str) -> Path:
    """The baseline's egovsim/ and scenarios/ from git history, extracted once into benchmarks/out/."""
    folder = OUT / f"baseline-{commit}"
    if not (folder / "egovsim").is_dir():
        OUT.mkdir(parents=True, exist_ok=True)
        archive = OUT / f"baseline-{commit}.tar"
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), commit, "egovsim", "scenarios"],
            check=True,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        archive.unlink()
    return folder


def in_version(root: Path, *argv: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, __file__, "child", "--root", str(root), *argv]
    res = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(
            f"{root.name}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
        )
    return res.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command")
    c = sub.add_parser("child")
    c.add_argument("what", choices=["rate", "profile"])
    c.add_argument("--root", required=True)
    c.add_argument("--runs", type=int, default=60)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--profile-runs", type=int, default=20)
    ap.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default {BASELINE})")
    ap.add_argument("--runs", type=int, default=60, help="runs per round and version (60)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    ap.add_argument("--profile-runs", type=int, default=20, help="runs profiled per version (20)")
    args = ap.parse_args()
    if args.command == "child":
        child(args)
        return 0

    versions = {"baseline " + args.baseline: baseline_tree(args.baseline), "now": ROOT}
    print(
        f"calibration-scale throughput: 3 provinces at scale {SCALE}, 2006-{END_YEAR} monthly, {args.runs} runs on "
        f"2 workers per round, {args.rounds} alternating rounds; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rounds: dict[str, list[dict]] = {name: [] for name in versions}
    for r in range(args.rounds):
        for name, root in versions.items():
            got = json.loads(in_version(root, "rate", "--runs", str(args.runs)))
            rounds[name].append(got)
            print(f"  round {r + 1}: {name:18s} {got['runs_per_s']:6.2f} runs/s ({got['citizens']:,} citizens)")
    best = {name: max(x["runs_per_s"] for x in got) for name, got in rounds.items()}
    base_name = next(iter(versions))
    ratio = best["now"] / best[base_name]
    ok = ratio >= TARGET_RATIO
    print(
        f"best: now {best['now']:.2f} runs/s ({1000 / best['now'] * 2:.0f} ms a run per worker), {base_name} "
        f"{best[base_name]:.2f} runs/s: {ratio:.2f}x (target >= {TARGET_RATIO:g}x: {'MET' if ok else 'NOT MET'})"
    )
    profiles = {}
    for name, root in versions.items():
        text = in_version(root, "profile", "--profile-runs", str(args.profile_runs))
        path = OUT / f"profile-{name.split()[-1]}.txt"
        path.write_text(text)
        profiles[name] = str(path.relative_to(ROOT))
    print("profiles: " + ", ".join(profiles.values()))
    result = {
        "scale": SCALE,
        "end_year": END_YEAR,
        "rounds": rounds,
        "best_runs_per_s": best,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": ok,
        "profiles": profiles,
        "load_average_after": os.getloadavg(),
    }
    (OUT / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
