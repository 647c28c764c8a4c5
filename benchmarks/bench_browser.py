"""The browser view (`egovsim serve`), timed in real Chromium: what a user waits for.

    .venv/bin/python benchmarks/bench_browser.py               # 3 server starts, 10 Steps each (~1 min)
    .venv/bin/python benchmarks/bench_browser.py --starts 5 --steps 20

| what                                                                    | before (ad5717c) | target   |
|-------------------------------------------------------------------------|------------------|----------|
| `egovsim serve` started -> page rendered (year, network and five charts) | 10.5-11.5 s      | <= 5 s   |
| Step clicked -> the page shows the new month in every chart, median      | 0.36-0.40 s      | <= 0.2 s |

Each start is a fresh `egovsim serve` process (default scenario, scenarios/three_provinces.yaml) on a free local
port, offline as in the browser test (Solara's CDN points at a closed port, requests leaving the machine are
blocked). The page counts as rendered when the year is shown and every chart (the SVG of each card) shows the
model's current month, or, for the page before issue 16, when every card's image has loaded. The start is timed
from just before the process starts (Chromium is launched first, so its start-up is not counted); a Step from
the click until the date and every chart show the new month; and, after the Steps, a new tab on the same server
(a server kept running: no start-up). Figures are medians over the starts (page) and
over all Steps; the machine's load average is printed with them. Writes benchmarks/out/browser.json.

The install is measured as `make assets` leaves it: the bytecode of what the server imports and the model's
numba kernels compiled once (egovsim/app/warm.py, run first here; quick when nothing changed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
TARGET_PAGE_S, TARGET_STEP_S = 5.0, 0.2

# true when the date shows `month` and every chart has drawn it (the matplotlib page: every image loaded)
SHOWS_MONTH = """month => {
  const date = document.querySelector('.egov-date');
  if (!date || !date.innerText.includes('month ' + month + ' of')) return false;
  const charts = Array.from(document.querySelectorAll('.egov-chart'));
  const images = Array.from(document.querySelectorAll('.vue-grid-item img'));
  if (charts.length) return charts.length >= 6 && charts.every(c => c.getAttribute('data-month') === String(month));
  return images.length >= 6 && images.every(i => i.complete && i.naturalWidth > 100);
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log) -> subprocess.Popen:
    env = dict(os.environ, SOLARA_ASSETS_CDN="http://127.0.0.1:9/")  # offline, as in the browser test
    return subprocess.Popen(
        [sys.executable, "-m", "egovsim", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:  # it has stopped by itself (its error is in browser-serve.log and said above)
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group, started above
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (OUT / "browser-serve.log").read_text(errors="replace").strip().splitlines()
            raise SystemExit(f"bench_browser: egovsim serve exited with {proc.returncode}: {log[-1] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"bench_browser: no answer at {url} within {timeout:.0f} s")


def block_external(route) -> None:
    if route.request.url.startswith(LOCAL):
        route.continue_()
    else:
        route.abort()


def one_start(browser, steps: int) -> dict:
    """Start `egovsim serve`, open the page, click Step `steps` times: the timings of this start."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    context.route("**/*", block_external)
    page = context.new_page()
    with open(OUT / "browser-serve.log", "w") as log:
        started = time.monotonic()
        proc = start_server(port, log)
    try:
        wait_http(url, proc)
        http_s = time.monotonic() - started
        page.goto(url)
        page.wait_for_function(SHOWS_MONTH, arg=0, timeout=60_000, polling="raf")
        page_s = time.monotonic() - started
        cpu = psutil.Process(proc.pid).cpu_times()  # the server's own CPU time: less distorted by other work
        step = page.get_by_role("button", name="Step", exact=True)
        times = []
        for month in range(1, steps + 1):
            t = time.monotonic()
            step.click()
            page.wait_for_function(SHOWS_MONTH, arg=month, timeout=30_000, polling="raf")
            times.append(time.monotonic() - t)
        # a server kept running: a new tab (its own model) renders without any start-up
        tab = browser.new_context(viewport={"width": 1500, "height": 1100})
        tab.route("**/*", block_external)
        t = time.monotonic()
        tab.new_page().goto(url)
        tab.pages[0].wait_for_function(SHOWS_MONTH, arg=0, timeout=60_000, polling="raf")
        new_tab_s = time.monotonic() - t
        tab.close()
        return {
            "http_ready_s": http_s,
            "page_s": page_s,
            "new_tab_s": new_tab_s,
            "server_cpu_to_page_s": cpu.user + cpu.system,
            "step_s": times,
        }
    finally:
        context.close()
        stop_server(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=3, help="fresh server starts (3)")
    ap.add_argument("--steps", type=int, default=10, help="Steps clicked after each start (10)")
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print(f"bench_browser: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("bench_browser: playwright is not installed (the `test` extra: make test)", file=sys.stderr)
        return 2

    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "egovsim.app.warm"], cwd=ROOT, check=True)
    runs = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for i in range(args.starts):
                runs.append(one_start(browser, args.steps))
                r = runs[-1]
                print(
                    f"  start {i + 1}: HTTP answers {r['http_ready_s']:.1f} s, page rendered {r['page_s']:.1f} s "
                    f"(server CPU {r['server_cpu_to_page_s']:.1f} s), "
                    f"Step median {statistics.median(r['step_s']):.3f} s, a new tab then {r['new_tab_s']:.1f} s",
                    flush=True,
                )
        finally:
            browser.close()
    page_s = statistics.median(r["page_s"] for r in runs)
    step_s = statistics.median(t for r in runs for t in r["step_s"])
    cpu_s = statistics.median(r["server_cpu_to_page_s"] for r in runs)
    new_tab_s = statistics.median(r["new_tab_s"] for r in runs)
    result = {
        "page_rendered_s": round(page_s, 2),
        "new_tab_on_running_server_s": round(new_tab_s, 2),
        "server_cpu_to_page_s": round(cpu_s, 2),
        "step_median_s": round(step_s, 3),
        "page_ok": page_s <= TARGET_PAGE_S,
        "step_ok": step_s <= TARGET_STEP_S,
        "targets": {"page_rendered_s": TARGET_PAGE_S, "step_median_s": TARGET_STEP_S},
        "runs": runs,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    (OUT / "browser.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = {True: "MET", False: "NOT MET"}
    print(
        f"browser: `egovsim serve` start -> page rendered {page_s:.2f} s (target <= {TARGET_PAGE_S:g} s): "
        f"{verdict[result['page_ok']]}"
    )
    print(
        f"browser: Step -> new month shown, median of {sum(len(r['step_s']) for r in runs)} Steps {step_s:.3f} s "
        f"(target <= {TARGET_STEP_S:g} s): {verdict[result['step_ok']]}"
    )
    print(
        f"browser: a new tab on a server kept running, median {new_tab_s:.2f} s (server CPU to the first page {cpu_s:.2f} s)"
    )
    print(f"written: {OUT / 'browser.json'} (load average {os.getloadavg()[0]:.2f})")
    return 0 if result["page_ok"] and result["step_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
