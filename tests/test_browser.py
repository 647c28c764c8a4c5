"""The browser view (`egovsim serve`, egovsim/app/page.py), end to end in a real, headless browser.

The browser test starts `egovsim serve` with the CDN pointed at a closed local port, so the page can only
render from the offline assets installed by `python -m egovsim.app.assets` (make test does it), and blocks every
request that leaves this machine. It needs Debian's chromium (/usr/bin/chromium: .ci/run installs it) and
Playwright for Python (the `test` extra), and skips when they are missing, except in CI (CI=true) where it
fails instead. It saves a screenshot under results/browser/.

The other tests here check the app's model factory without a browser.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "results" / "browser" / "egovsim-serve.png"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")


# ---- the app's model factory (no browser) -------------------------------------------------------------------


def test_app_model_matches_a_plain_run_and_reset_rebuilds_it():
    """EGovViz with the page's defaults is the scenario's model (same records as EGovModel), and Mesa's
    SolaraViz machinery accepts its parameters and rebuilds it on Reset."""
    from mesa.visualization.solara_viz import _build_model_init_kwargs, _check_model_params, split_model_params

    from egovsim.app import page as app
    from egovsim.model.model import EGovModel
    from egovsim.model.outcomes import COL

    base = app.base_scenario(app.SCENARIO_FILE, app.SCALE, app.OVERRIDES)
    viz, plain = app.EGovViz(seed=base.seed), EGovModel(base)
    for _ in range(12):
        viz.step()
        plain.step()
    np.testing.assert_array_equal(viz.records[:13], plain.records[:13])
    assert viz.datacollector.model_vars["hue/access_share"][-1] == plain.records[12, 0, COL["access_share"]]

    params = app.model_params(base)
    _check_model_params(viz, params)
    user, fixed = split_model_params(params)
    values = {**fixed, **{k: v["value"] for k, v in user.items()}, "infrastructure": 3.0, "province": "daklak"}
    kwargs = _build_model_init_kwargs(viz, values, add_scenario_when_empty=True, require_model_accepts_scenario=True)
    rebuilt = type(viz)(**kwargs)
    assert rebuilt.config.provinces["daklak"].policy.infrastructure == 3.0
    assert rebuilt.config.provinces["hue"].policy.infrastructure == base.provinces["hue"].policy.infrastructure


def test_network_sample_is_small_and_leaves_the_model_unchanged():
    from egovsim.app import page as app

    viz = app.EGovViz(sample_servants=6, sample_citizens=5)
    for p, sample in enumerate(viz.samples):
        assert 0 < sample.servants.size <= 6 and 0 < sample.citizens.size <= 30
        assert (viz.civil_service.province[sample.servants] == p).all()
        # every sampled citizen is served by the civil servant it is drawn next to
        assert (viz.citizens.civil_servant[sample.citizens] == sample.servants[sample.citizen_servant]).all()
    svg = app.NetworkChart(viz).svg()
    assert b"<svg" in svg[:1000] and b"Who serves whom" in svg


HOSTILE = 'x\'><img src=nonexistent onerror="alert(1)">'


def test_the_page_escapes_every_text_that_comes_from_a_file():
    """Province keys, scenario and event names (validation restricts keys and names, but the page must not
    rely on it) reach the page's HTML as text, never as markup: no element or attribute of theirs appears."""
    from html.parser import HTMLParser

    from egovsim.app import page as app

    viz = app.EGovViz(scale=0.0005)
    viz.province_ids[0] = HOSTILE
    viz.config.name = HOSTILE
    viz.leaders[0].policy.software_strategy = HOSTILE
    viz.leaders[0].history.append((2006.0, HOSTILE))

    class Elements(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.provinces, self.text = set(), [], ""

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            assert not any(name.startswith("on") for name, _ in attrs), attrs
            self.provinces += [value for name, value in attrs if name == "data-province"]

        def handle_data(self, data):
            self.text += data

    page = Elements()
    for part in app.legend_html(viz):
        page.feed(part)
    assert page.tags <= {"div", "b", "style", "table", "tr", "th", "td"}, page.tags
    assert page.provinces[:2] == [HOSTILE, HOSTILE]  # the attribute holds the key as it is
    assert page.text.count(HOSTILE) == 4  # shown as text: key, strategy, scenario name, event


def test_the_page_has_no_python_console():
    """Mesa's CommandConsole runs Python typed in the page: on a page without login, code execution for
    anyone who reaches the port."""
    from mesa.visualization.command_console import CommandConsole

    from egovsim.app import page as app

    assert CommandConsole not in app.COMPONENTS


def serve(monkeypatch, capsys, *args: str, env: dict | None = None):
    """`egovsim serve ARGS` up to the moment it would start Solara: (exit status, the command, its
    environment, stderr). os.execve is replaced, so no server starts."""
    from egovsim import cli

    started = {}

    def execve(path, argv, environ):
        started.update(argv=argv, env=environ)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    try:
        status = cli.main(["serve", "--scale", "0.001", *args])
    except SystemExit as exc:
        status = exc.code
    return status, started.get("argv"), started.get("env"), capsys.readouterr().err


def test_serve_rejects_an_empty_host(monkeypatch, capsys):
    """--host '' would listen on every interface, IPv4 and IPv6, without a word."""
    for host in ("", "  "):
        status, argv, _, err = serve(monkeypatch, capsys, "--host", host)
        assert status == 2 and argv is None, err
        assert err.count("\n") == 1 and err.startswith("egovsim: error: --host: empty"), err


@pytest.mark.parametrize(
    "host, listens, warned",
    [
        ("127.0.0.1", "127.0.0.1", False),
        ("localhost", "localhost", False),
        ("::1", "::1", False),
        ("0", "0.0.0.0", True),
        ("0.0.0.0", "0.0.0.0", True),
        ("::", "::", True),
        ("192.168.1.20", "192.168.1.20", True),
        ("myhost.example", "myhost.example", True),
    ],
)
def test_serve_warns_when_reachable_from_other_machines(monkeypatch, capsys, host, listens, warned):
    status, argv, _, err = serve(monkeypatch, capsys, "--host", host)
    assert status == 0 and argv[argv.index("--host") + 1] == listens
    warnings = [line for line in err.splitlines() if "warning" in line]
    if warned:
        assert len(warnings) == 1 and "no login" in warnings[0] and listens in warnings[0], err
    else:
        assert warnings == [], err


def test_serve_frees_closed_sessions_after_a_minute(monkeypatch, capsys):
    """Solara keeps a closed tab's session, and its model, for 24 hours by default; egovsim serve sets its
    cull timeout to a minute (unless the user set one), and Solara reads it so."""
    status, _, env, _ = serve(monkeypatch, capsys)
    assert status == 0 and env["SOLARA_KERNEL_CULL_TIMEOUT"] == "60s"
    _, _, env_kept, _ = serve(monkeypatch, capsys, env={"SOLARA_KERNEL_CULL_TIMEOUT": "5m"})
    assert env_kept["SOLARA_KERNEL_CULL_TIMEOUT"] == "5m"
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "import solara.server.settings as s, solara.util as u; print(u.parse_timedelta(s.kernel.cull_timeout))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(read.stdout) == 60.0


# ---- the page in a browser --------------------------------------------------------------------------------


def _skip_or_fail(reason: str):
    if IN_CI:
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"egovsim serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"egovsim serve did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`egovsim serve` (default scenario) on a free local port, offline: Solara's CDN is a closed port."""
    if not CHROMIUM.exists():
        _skip_or_fail(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    from egovsim.app import assets

    missing = assets.missing()
    if missing:
        _skip_or_fail(
            f"offline Solara assets missing ({', '.join(a.spec for a in missing)}): "
            "run `python -m egovsim.app.assets` or `make test`"
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, SOLARA_ASSETS_CDN="http://127.0.0.1:9/")  # nothing may come from the internet
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "egovsim", "serve", "--port", str(port), "--host", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        _wait_http(url, proc, log, timeout=45)
        yield {"url": url, "started": started, "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group, started above
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Tab:
    """One browser context (like a separate tab or user) on the page, recording console errors and any
    request that would leave this machine."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1500, "height": 1100})
        self.errors: list[str] = []
        self.external: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on(
            "console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(url)

    def _route(self, route):
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def rendered(self, timeout: float = 45) -> None:
        """The year is shown and every component's image (network and plots) has loaded."""
        self.page.wait_for_selector(".egov-year", timeout=timeout * 1000)
        self.page.wait_for_function(
            "() => { const im = document.querySelectorAll('.vue-grid-item img');"
            " return im.length >= 6 && Array.from(im).every(i => i.complete && i.naturalWidth > 100); }",
            timeout=timeout * 1000,
        )

    def month(self) -> int:
        return int(re.search(r"month (\d+) of", self.page.locator(".egov-date").inner_text()).group(1))

    def year(self) -> float:
        return float(re.search(r"Year (\d{4}\.\d\d)", self.page.locator(".egov-year").inner_text()).group(1))

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def step_to(self, month: int, timeout: float = 30) -> None:
        self.click("Step")
        self.page.wait_for_selector(f".egov-date:has-text('month {month} of')", timeout=timeout * 1000)
        self.rendered()

    def reset(self) -> None:
        self.click("Reset")
        self.page.wait_for_selector(".egov-date:has-text('month 0 of')", timeout=30000)
        self.rendered()

    def slider_to_max(self, label: str) -> None:
        slider = self.page.locator(".v-input", has=self.page.get_by_text(label, exact=True)).get_by_role("slider")
        slider.focus()
        slider.press("End")
        self.page.wait_for_function(
            "s => s.getAttribute('aria-valuenow') === s.getAttribute('aria-valuemax')",
            arg=slider.element_handle(),
            timeout=5000,
        )

    def access(self, province: str) -> float:
        return float(self.page.locator(f"td.egov-access[data-province='{province}']").inner_text())


@pytest.mark.browser
def test_page_renders_steps_and_keeps_tabs_apart(server, capsys):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # the page renders: year, network and plots (images in the component cards)
            start = time.monotonic()
            a = Tab(browser, server["url"])
            a.rendered()
            render_s = time.monotonic() - start
            serve_to_page_s = time.monotonic() - server["started"]
            assert a.year() == 2006.0 and a.month() == 0
            assert a.page.locator(".vue-grid-item img").count() >= 6

            # Step advances the year (one month a Step by default)
            step_times = []
            for month in (1, 2, 3):
                t = time.monotonic()
                a.step_to(month)
                step_times.append(time.monotonic() - t)
            assert a.year() == pytest.approx(2006.25)

            # a second tab has its own model: it starts at the beginning, and its Step leaves the first alone
            b = Tab(browser, server["url"])
            b.rendered()
            assert b.month() == 0
            b.step_to(1)
            assert a.month() == 3

            # a lever: infrastructure at its maximum (x3 the scenario's spending), Reset, then 100 months in
            # one Step (render interval at its maximum) in both tabs: more internet access in the second
            b.slider_to_max("Infrastructure (× scenario)")
            b.reset()
            a.reset()
            for tab in (a, b):
                tab.slider_to_max("Render Interval (steps)")
                tab.step_to(100)
            assert a.year() == b.year() == pytest.approx(2014.33)
            assert b.access("hue") > a.access("hue") + 0.05, (a.access("hue"), b.access("hue"))
            assert b.access("daklak") > a.access("daklak") + 0.05

            # the default run a little further on, for the screenshot
            a.step_to(200)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            a.page.set_viewport_size({"width": 1500, "height": 1650})  # the cards scroll inside the page
            a.page.wait_for_timeout(500)
            a.page.screenshot(path=str(SCREENSHOT), full_page=True)

            for tab in (a, b):
                assert tab.errors == [], tab.errors
                assert tab.external == [], f"requests leaving this machine: {tab.external}"
        finally:
            browser.close()
    with capsys.disabled():
        print(
            f"\nbrowser test: `egovsim serve` start to rendered page {serve_to_page_s:.1f} s "
            f"(page load {render_s:.1f} s); Step (one month) {np.mean(step_times):.2f} s on average "
            f"({', '.join(f'{s:.2f}' for s in step_times)}); screenshot: {SCREENSHOT}"
        )
