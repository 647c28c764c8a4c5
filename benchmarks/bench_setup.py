"""Set-up and command-line latency: what a new user waits for, measured and judged.

    .venv/bin/python benchmarks/bench_setup.py              # the three CLI timings (~30 s)
    .venv/bin/python benchmarks/bench_setup.py --fresh-clone  # also `make run` in a fresh clone of HEAD (~1 min)

| what                                                   | baseline (1817716) | target  |
|--------------------------------------------------------|--------------------|---------|
| fresh clone: `make run` finished                       | ~80 s              | <= 45 s |
| `egovsim --version`                                    | 1.5-2.0 s          | <= 0.3 s |
| `egovsim validate scenarios/*.yaml`                    | 1.6 s              | <= 0.5 s |
| `egovsim run scenarios/hue.yaml`, whole process, plots | 4.0 s              | <= 1.5 s |

Each command is timed as a whole process (wall clock), the median of several repeats after one warm-up (which
fills the numba cache and Python's bytecode cache, as any second use does). The fresh clone uses the machine's
package cache as a developer's machine has it; `--cold-cache` also empties uv's cache for it, so every package
is downloaded. Writes benchmarks/out/setup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
EGOVSIM = str(Path(sys.executable).with_name("egovsim"))
TARGETS = {"make_run_fresh_clone_s": 45.0, "version_s": 0.3, "validate_s": 0.5, "run_hue_s": 1.5}


def wall(cmd: list[str], cwd: Path = ROOT, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"bench_setup: {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return took


def median_wall(cmd, repeats: int) -> float:
    """cmd: the argument list, or a function of the repeat's number that makes it (a fresh --out each time)."""
    make = cmd if callable(cmd) else (lambda _i: cmd)
    wall(make(-1))  # warm-up: bytecode and numba caches, as on any second use
    return statistics.median(wall(make(i)) for i in range(repeats))


def cli_timings(repeats: int) -> dict:
    scenarios = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "version_s": median_wall([EGOVSIM, "--version"], repeats),
            "validate_s": median_wall([EGOVSIM, "validate", *scenarios], repeats),
            "run_hue_s": median_wall(
                lambda i: [EGOVSIM, "run", "scenarios/hue.yaml", "--quiet", "--out", f"{tmp}/hue{i}"], repeats
            ),
        }


def fresh_clone_make_run(cold_cache: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "egovsim"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV")}
        if cold_cache:
            env["UV_CACHE_DIR"] = str(Path(tmp) / "uv-cache")
        took = wall(["make", "run"], cwd=clone, env=env)
        shutil.rmtree(clone, ignore_errors=True)
        return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh-clone", action="store_true", help="also time `make run` in a fresh clone of HEAD")
    ap.add_argument("--cold-cache", action="store_true", help="with --fresh-clone: an empty uv cache")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    result = cli_timings(args.repeats)
    if args.fresh_clone:
        result["make_run_fresh_clone_s"] = fresh_clone_make_run(args.cold_cache)
        result["cold_cache"] = args.cold_cache
    print("| what | measured | target | verdict |")
    print("|---|---|---|---|")
    for key, target in TARGETS.items():
        if key in result:
            ok = result[key] <= target
            print(f"| {key} | {result[key]:.2f} s | <= {target:g} s | {'MET' if ok else 'NOT MET'} |")
    OUT.mkdir(exist_ok=True)
    (OUT / "setup.json").write_text(json.dumps({**result, "load_1min": os.getloadavg()[0]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
