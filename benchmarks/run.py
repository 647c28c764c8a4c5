"""`make bench`: the speed and scale targets, each measured, printed and judged, in one run.

    .venv/bin/python benchmarks/run.py            # everything (about 3 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # skip the full-scale run and the largest sizes (~1 minute)

Targets (benchmarks/README.md says exactly what is compared and how; issue 16 raised 1 and 2 and added 5):
  1. per citizen-step cost >= 100 x below Mesa's virus_on_network (10,000 nodes, mean degree 10, same steps)
  2. the three provinces at full scale (1:1, ~4.3 million citizens), 2006-2030 monthly: <= 8 s, <= 1 GB
  3. cost linear in the number of citizens: scaling table and plot, 10^4 to 4 x 10^6 citizens (judged: time per
     step within 30% of an affine fit a + b x citizens at every size; bytes of arrays per citizen constant within
     10% from 10^5 citizens; resident memory per citizen not growing from 10^6 citizens on)
  4. the shipped Sobol experiment (experiments/sobol.yaml) in < 20 minutes on 2 cores
  5. calibration-scale runs per second on 2 workers >= 4 x the baseline commit 1817716's, side by side
     (bench_throughput.py)
  6. the browser view: `egovsim serve` start to rendered page <= 5 s, and 7. one Step <= 0.2 s in Chromium
     (benchmarks/bench_browser.py, writes out/browser.json)

Writes benchmarks/out/speed.json, benchmarks/out/scaling.csv and benchmarks/out/scaling.png. If the experiment
runner's benchmark (benchmarks/bench_runner.py) is there, it runs last (not with --quick).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_speed as bs  # noqa: E402

OUT = HERE / "out"
MAX_SECONDS, MAX_BYTES, MIN_RATIO, SOBOL_MINUTES = 8.0, 1e9, 100.0, 20.0
SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000, 2_000_000]


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def fit_affine(n: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """time per step = a + b n, least squares on relative errors (every size counts alike)."""
    A = np.column_stack([np.ones_like(n), n]) / t[:, None]
    a, b = np.linalg.lstsq(A, np.ones_like(t), rcond=None)[0]
    return float(a), float(b)


def scaling(sizes: list[int], full: dict | None, log) -> dict:
    population = bs.total_population()
    rows = []
    for n in sizes:
        r = bs.run_child(n / population, repeats=3 if n <= 300_000 else 1)
        rows.append(r)
        log(
            f"    {r['citizens']:>9,} citizens: {1e3 * r['steps_s'] / r['steps']:8.2f} ms/step, "
            f"peak {r['peak_rss_bytes'] / 1e9:5.2f} GB"
        )
    if full is not None:
        rows.append(full)
    table = []
    for r in rows:
        n = r["citizens"]
        per_step = r["steps_s"] / r["steps"]
        table.append(
            {
                "citizens": n,
                "steps": r["steps"],
                "build_s": round(r["build_s"], 3),
                "runs": r.get("repeats", 1),
                "ms_per_step": round(1e3 * per_step, 3),
                "ns_per_citizen_step": round(1e9 * per_step / n, 2),
                "peak_rss_mb": round(r["peak_rss_bytes"] / 1e6, 1),
                "bytes_per_citizen_resident": round((r["rss_after_run_bytes"] - r["rss_before_build_bytes"]) / n, 1),
                "bytes_per_citizen_state": round(r["state_bytes"] / n, 1),
            }
        )
    n = np.array([row["citizens"] for row in table], dtype=float)
    t = np.array([row["ms_per_step"] for row in table]) / 1e3
    a, b = fit_affine(n, t)
    fitted = a + b * n
    worst = float(np.max(np.abs(t / fitted - 1)))
    # memory: the arrays per citizen are constant from 10^5 citizens on; the resident memory the model adds,
    # per citizen, is above allocator noise from 10^6 on and must not grow with the size
    state = np.array([row["bytes_per_citizen_state"] for row in table])[n >= 1e5]
    rss = np.array([row["bytes_per_citizen_resident"] for row in table])[n >= 1e6]
    return {
        "table": table,
        "fit_fixed_us_per_step": round(a * 1e6, 1),
        "fit_ns_per_citizen_step": round(b * 1e9, 2),
        "fit_worst_relative_deviation": round(worst, 3),
        "state_bytes_per_citizen_range": [float(state.min()), float(state.max())],
        "resident_bytes_per_citizen_from_1e6": rss.tolist(),
        "linear": bool(
            worst <= 0.3 and state.max() <= 1.1 * state.min() and (rss.size < 2 or rss[-1] <= 1.25 * rss[0])
        ),
    }


def plot_scaling(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result["table"]
    n = np.array([r["citizens"] for r in table], dtype=float)
    t = np.array([r["ms_per_step"] for r in table])
    a, b = result["fit_fixed_us_per_step"] / 1e3, result["fit_ns_per_citizen_step"] / 1e6
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.loglog(n, t, "o", label="measured (300 monthly steps)")
    ax1.loglog(grid, a + b * grid, "-", label=f"{a * 1e3:.0f} µs + {b * 1e6:.1f} ns x citizens")
    ax1.loglog(grid, b * grid, ":", color="grey", label="proportional to citizens")
    ax1.set_xlabel("citizens")
    ax1.set_ylabel("ms per step")
    ax1.set_title("time per monthly step")
    ax1.legend(fontsize=8)
    ax2.semilogx(
        n,
        [r["bytes_per_citizen_resident"] for r in table],
        "o-",
        label="resident memory the model adds (after the run)",
    )
    ax2.semilogx(n, [r["bytes_per_citizen_state"] for r in table], "s--", label="citizens' arrays and network")
    ax2.set_xlabel("citizens")
    ax2.set_ylabel("bytes per citizen")
    ax2.set_ylim(0, None)
    ax2.set_title("memory per citizen")
    ax2.legend(fontsize=8)
    fig.suptitle("egovsim: three provinces 2006-2030, scaled (benchmarks/run.py)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def browser_view(quick: bool) -> dict | None:
    """benchmarks/bench_browser.py in its own process (it starts `egovsim serve` and drives Chromium): its
    figures from out/browser.json, or None if it could not run."""
    out = OUT / "browser.json"
    out.unlink(missing_ok=True)
    starts = ["--starts", "1"] if quick else []
    subprocess.run([sys.executable, str(HERE / "bench_browser.py"), *starts], check=False)
    return json.loads(out.read_text()) if out.is_file() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the full-scale run and sizes above 300,000")
    ap.add_argument("--sobol-sample", type=int, default=64, help="runs of the Sobol design timed (64)")
    ap.add_argument("--sobol-full", action="store_true", help="time every run of the Sobol design (minutes)")
    ap.add_argument("--profile", action="store_true", help="also print a profile of one default run")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    from egovsim.engine import default_engine

    log(
        f"egovsim speed benchmarks: {os.cpu_count()} CPUs, engine {default_engine()}, "
        f"load average {os.getloadavg()[0]:.2f}, Python {platform.python_version()}"
    )
    started = time.perf_counter()
    bs.run_child(0.0005)  # compiles the kernels (or loads them from numba's cache) before anything is timed
    results: dict = {"cpus": os.cpu_count(), "engine": default_engine(), "quick": args.quick}

    log("\n[1] per citizen-step cost vs Mesa's bundled network example")
    m = bs.mesa_comparison(log=log)
    results["mesa"] = m
    ok1 = m["ratio"]["cpu"] >= MIN_RATIO
    log(
        f"    egovsim {m['egovsim_ns_per_citizen_step']['cpu']:.1f} ns per citizen-step (median of "
        f"{m['egovsim_runs']} runs), Mesa {m['mesa_ns_per_agent_step']['cpu']:.0f} ns per agent-step: "
        f"{m['ratio']['cpu']:.0f}x (CPU time), {m['ratio']['wall']:.0f}x (wall)"
    )

    log("\n[2] full scale: three provinces 1:1, 2006-2030 monthly, in a fresh process")
    full = None
    if args.quick:
        log("    skipped (--quick)")
    else:
        full = bs.run_child(1.0)
        results["full_scale"] = full
        log(
            f"    {full['citizens']:,} citizens: {full['wall_s']:.1f} s (build {full['build_s']:.1f} s, 300 steps "
            f"{full['steps_s']:.1f} s), peak RSS {full['peak_rss_bytes'] / 1e9:.2f} GB"
        )
    ok2 = full is not None and full["wall_s"] <= MAX_SECONDS and full["peak_rss_bytes"] <= MAX_BYTES

    log("\n[3] scaling, each size in a fresh process")
    sizes = [s for s in SIZES if not args.quick or s <= 300_000]
    sc = scaling(sizes, full, log)
    results["scaling"] = sc
    with open(OUT / "scaling.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(sc["table"][0]))
        w.writeheader()
        w.writerows(sc["table"])
    plot_scaling(sc, OUT / "scaling.png")
    ok3 = sc["linear"]

    log("\n[4] the Sobol experiment (experiments/sobol.yaml) on 2 worker processes")
    study = bs.ROOT / "experiments" / "sobol.yaml"
    sobol = {}
    if study.is_file():
        for label, scale in (("as shipped", None), ("at the default scale 0.01", 0.01)):
            sample = 10**9 if args.sobol_full else args.sobol_sample
            sobol[label] = bs.sobol_projection(study, scale, sample)
            s = sobol[label]
            log(
                f"    {label}: {s['runs_total']:,} runs of {s['citizens']:,} citizens; {s['runs_timed']} timed in "
                f"{s['wall_s_timed']:.1f} s -> {s['projected_s'] / 60:.1f} min for all"
            )
        ok4 = all(s["projected_s"] <= SOBOL_MINUTES * 60 for s in sobol.values())
    else:
        log("    experiments/sobol.yaml not found")
        ok4 = False
    results["sobol"] = sobol

    log("\n[5] one default run (`make run`: scenarios/three_provinces.yaml at its scale), in a fresh process")
    default = bs.run_child(0.01)
    results["default_run"] = default
    log(
        f"    {default['citizens']:,} citizens: {default['wall_s']:.2f} s (build {default['build_s']:.2f} s, "
        f"including loading the compiled kernels; 300 steps {default['steps_s']:.2f} s)"
    )

    log("\n[6] calibration-scale throughput on 2 workers, against the baseline commit (bench_throughput.py)")
    throughput = None
    if args.quick:
        log("    skipped (--quick)")
    else:
        subprocess.run([sys.executable, str(HERE / "bench_throughput.py")], check=False)
        done = OUT / "throughput.json"
        throughput = json.loads(done.read_text()) if done.is_file() else None
        results["throughput"] = throughput
    ok6 = throughput is not None and throughput["met"]

    log("\n[7] the browser view (`egovsim serve`) in Chromium: benchmarks/bench_browser.py")
    view = browser_view(args.quick)
    results["browser"] = view

    if args.profile:
        log("\n[profile] one default run")
        log(bs.profile())

    results["load_average_after"] = os.getloadavg()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["versions"] = {name: __import__(name).__version__ for name in ("numpy", "scipy", "mesa", "numba")}
    (OUT / "speed.json").write_text(json.dumps(results, indent=2, default=float) + "\n")

    # ---- summary ----
    rows = [
        (
            "1 cost per citizen-step, vs Mesa's virus_on_network",
            f"{m['ratio']['cpu']:.0f}x lower ({m['egovsim_ns_per_citizen_step']['cpu']:.1f} vs "
            f"{m['mesa_ns_per_agent_step']['cpu']:.0f} ns; wall: {m['ratio']['wall']:.0f}x)",
            verdict(ok1),
        )
    ]
    if full is not None:
        rows.append(
            (
                f"2 full scale, {full['citizens']:,} citizens x 300 steps",
                f"{full['wall_s']:.1f} s wall, peak {full['peak_rss_bytes'] / 1e9:.2f} GB",
                verdict(ok2),
            )
        )
    else:
        rows.append(("2 full scale", "skipped (--quick)", "NOT RUN"))
    rows.append(
        (
            f"3 linear cost, {sc['table'][0]['citizens']:,} to {sc['table'][-1]['citizens']:,} citizens",
            f"{sc['fit_fixed_us_per_step']:.0f} us/step + {sc['fit_ns_per_citizen_step']:.1f} ns/citizen-step "
            f"(worst {100 * sc['fit_worst_relative_deviation']:.0f}% off)",
            verdict(ok3),
        )
    )
    if sobol:
        rows.append(
            (
                "4 Sobol experiment on 2 workers",
                ", ".join(f"{s['projected_s'] / 60:.1f} min ({'scale ' + str(s['scale'])})" for s in sobol.values()),
                verdict(ok4),
            )
        )
    rows.append(
        (
            f"  one `make run`-size run ({default['citizens']:,} citizens)",
            f"{default['steps_s']:.2f} s for 300 steps, {default['wall_s']:.2f} s with building",
            "",
        )
    )
    if throughput is not None:
        best = throughput["best_runs_per_s"]
        base = next(name for name in best if name != "now")
        rows.append(
            (
                "5 calibration-scale runs/s on 2 workers, vs " + base,
                f"{throughput['ratio']:.2f}x ({best['now']:.1f} vs {best[base]:.1f} runs/s)",
                verdict(ok6),
            )
        )
    else:
        rows.append(("5 calibration-scale throughput vs baseline", "skipped (--quick)", "NOT RUN"))
    if view:
        rows.append(
            (
                "6 browser: `egovsim serve` start to rendered page",
                f"{view['page_rendered_s']:.1f} s (server CPU {view['server_cpu_to_page_s']:.1f} s)",
                verdict(view["page_ok"]),
            )
        )
        rows.append(
            (
                "7 browser: one Step, click to new month shown",
                f"{view['step_median_s']:.3f} s median",
                verdict(view["step_ok"]),
            )
        )
    else:
        rows.append(("6-7 browser view", "not run (no Chromium or Playwright)", "NOT RUN"))
    width = max(len(r[0]) for r in rows) + 2
    fig_width = max(len(r[1]) for r in rows) + 2
    log("\n" + "target".ljust(width) + "figure".ljust(fig_width) + "verdict")
    log("-" * (width + fig_width + 8))
    for name, figure, v in rows:
        log(name.ljust(width) + figure.ljust(fig_width) + v)
    log(f"\nwritten: {OUT / 'speed.json'}, {OUT / 'scaling.csv'}, {OUT / 'scaling.png'}")

    runner = HERE / "bench_runner.py"
    if runner.is_file() and not args.quick:
        log("\n[runner] benchmarks/bench_runner.py (the experiment runner's parallel efficiency)")
        subprocess.run([sys.executable, str(runner)], check=False)
    ok7 = bool(view) and view["page_ok"] and view["step_ok"]
    return 0 if (ok1 and ok3 and ok4 and ok7 and ((ok2 and ok6) or args.quick)) else 1


if __name__ == "__main__":
    sys.exit(main())
