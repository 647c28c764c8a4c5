"""The browser view (`egovsim serve`, egovsim/app/page.py), end to end in a real, headless browser.

The browser test starts `egovsim serve` with the CDN pointed at a closed local port, so the page can only
render from the offline assets installed by `python -m egovsim.app.assets` (make test does it), and blocks every
request that leaves this machine. It needs Debian's chromium (/usr/bin/chromium: .ci/run installs it) and
Playwright for Python (the `test` extra), and skips when they are missing, except in CI (CI=true) where it
fails instead. It saves a screenshot under results/browser/.

The other tests here check the app's model factory without a browser.
"""

from __future__ import annotations

import contextlib
import json
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
TIMINGS = ROOT / "results" / "browser" / "timings.json"
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
STEP_BOUND_S, PAGE_BOUND_S = 1.0, 30.0  # regression bounds of the browser test (see its end), not the targets


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


def test_a_calibrated_scenario_runs_any_draw_of_its_posterior_in_the_page():
    """On a calibrated scenario the page offers its posterior's draws: draw i is the draw `run --replicates`
    gives replicate i - 1 (restricted to what the scenario does not set itself), the levers still apply over
    it, the page says which draw it runs; 0 is the file's medians. Other scenarios get no draw control."""
    from mesa.visualization.solara_viz import _check_model_params

    from egovsim.analysis.calibration.posterior import posterior_draws, restricted
    from egovsim.app import page as app

    path = str(ROOT / "scenarios" / "calibrated" / "three_provinces.yaml")
    base = app.base_scenario(path, 0.0005)
    expected = restricted(posterior_draws(base.parameters.draws_from, 3, base.seed)[2], base)
    viz = app.EGovViz(scenario_file=path, scale=0.0005, seed=1, draw=3, training=2.0, province="hue")
    for key, value in expected.items():
        section, name = key.rsplit(".", 1)
        holder = viz.config
        for part in section.split("."):
            holder = holder[part] if isinstance(holder, dict) else getattr(holder, part)
        assert getattr(holder, name) == pytest.approx(value), key
    assert viz.config.provinces["hue"].policy.training == 2.0 * base.provinces["hue"].policy.training
    assert viz.config.citizens.p0 != base.citizens.p0  # a draw, not the medians
    assert "this run: draw 3" in app.legend_html(viz)[1]
    assert app.EGovViz(scenario_file=path, scale=0.0005, seed=1).config == base
    assert "draw" in app.model_params(base)
    _check_model_params(viz, app.model_params(base))
    assert "draw" not in app.model_params(app.base_scenario(str(ROOT / "scenarios" / "hue.yaml"), 0.0005))


def test_a_draw_the_posterior_cannot_give_runs_the_medians_and_says_why(tmp_path):
    """A posterior.csv whose draw breaks a rule of the scenario: the page runs the medians and says, in one
    escaped line, which draw was not run and why (it was a traceback in the page)."""
    from egovsim.app import page as app

    post = tmp_path / "post<script>"  # a path the message quotes
    post.mkdir()
    (post / "posterior.csv").write_text("citizens.p0,weight\n-1.0,1\n")
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"extends: {ROOT / 'scenarios' / 'calibrated' / 'daklak.yaml'}\nname: mine\n"
        f"parameters: {{kind: posterior, calibration: test, posterior: '{post}', posterior_sha256: ''}}\n"
    )  # the extended file's hash is its own posterior's: a file naming another says it is not tied to a fit
    viz = app.EGovViz(scenario_file=str(path), scale=0.0005, seed=1, draw=2)
    assert viz.draw == 0 and viz.config.citizens.p0 == app.base_scenario(str(path), 0.0005).citizens.p0
    legend = app.legend_html(viz)[1]
    assert "draw 2 not run, the medians instead" in legend and "citizens.p0" in legend
    assert "<script>" not in legend and "&lt;script&gt;" in legend


def test_the_model_built_ahead_is_the_first_tabs_own_and_a_plain_one():
    """egovsim serve builds the first tab's model while the browser loads the front end: that model is the one
    a tab would build (same records step by step), it goes to one tab only, and the next tab builds its own."""
    from egovsim.app import page as app

    seed = app.base_scenario(app.SCENARIO_FILE, app.SCALE, app.OVERRIDES).seed
    app.build_ahead()
    first, second = app.tab_model(seed), app.tab_model(seed)
    assert first is not second and app._built_ahead == []
    for _ in range(6):
        first.step()
        second.step()
    np.testing.assert_array_equal(first.records, second.records)
    assert first.step_index == 6 and first.seed == second.seed == seed


def test_the_served_app_waits_for_the_page_then_shows_it():
    """Solara serves egovsim.app.serving: light to import, it loads egovsim.app.page in a thread and its Page
    renders the page's own component once that is done."""
    from egovsim.app import page as app
    from egovsim.app import serving

    assert serving._loaded.wait(120) and serving._failure == []
    assert serving.Page.f().component is app.Page  # the page's own component, with nothing around it
    app._built_ahead.clear()


def test_network_sample_is_small_and_leaves_the_model_unchanged():
    from egovsim.app import page as app

    viz = app.EGovViz(sample_servants=6, sample_citizens=5)
    for p, sample in enumerate(viz.samples):
        assert 0 < sample.servants.size <= 6 and 0 < sample.citizens.size <= 30
        assert (viz.civil_service.province[sample.servants] == p).all()
        # every sampled citizen is served by the civil servant it is drawn next to
        assert (viz.citizens.civil_servant[sample.citizens] == sample.servants[sample.citizen_servant]).all()
    # what the browser draws: every sampled person at its place, coloured by its state in the model
    places, colours = app.network_places(viz), app.network_colours(viz)
    assert len(places["panels"]) == len(colours["panels"]) == len(viz.leaders)
    for sample, drawn, now in zip(viz.samples, places["panels"], colours["panels"]):
        assert len(drawn["citizens"]) == len(now["citizens"]) == sample.citizens.size
        assert [c[4] for c in drawn["citizens"]] == sample.citizen_servant.tolist()
        users = [colour == app.USER for colour in now["citizens"]]
        assert users == viz.citizens.active[sample.citizens].tolist()
        genuine = viz.civil_service.state[sample.servants] == app.GENUINE
        assert now["servants"].count(app.SERVANT_COLOURS[app.GENUINE]) == genuine.sum()
    assert colours["title"] == "Who serves whom (sample), 1 January 2006"


def test_time_charts_send_only_the_months_not_yet_shown():
    """A chart's tail from month k holds the model's own records from month k on, one list per line, in the
    order of the legend; NaN (JSON has none) becomes a gap (null)."""
    from egovsim.app import page as app
    from egovsim.model.outcomes import COL

    viz = app.EGovViz(scale=0.0005)
    for _ in range(9):
        viz.step()
    chart = app.CitizenUseChart(viz, "hue")
    p = viz.province_ids.index("hue")
    assert chart.recorded() == 10
    tail = chart.tail(7)
    assert tail["from"] == 7 and [len(y) for y in tail["y"]] == [3] * 5
    np.testing.assert_allclose(tail["y"][-1], viz.records[7:10, p, COL["use_share_12m"]], atol=1e-5)
    np.testing.assert_allclose(tail["y"][0], viz.records[7:10, p, COL["urban_adopted_share"]], atol=1e-5)
    assert chart.tail(10)["y"] == [[]] * 5  # nothing new: nothing sent
    assert [s["label"] for s in chart.spec()["series"]][-1] == "all: used in the last 12 months"
    assert app.months_since([0.25, float("nan"), 1 / 3], 0) == [0.25, None, 0.33333]
    index = app.IndexChart(viz).spec()
    assert index["points"] and index["top"] == max(p[1] for p in index["points"])
    assert all(p[3].startswith(("MIC", "DTI")) for p in index["points"])  # each dot says what it is


def test_after_the_last_step_neither_clock_moves_and_the_step_is_named_by_the_scenarios_pace(tmp_path):
    """Pressing Step (Mesa's model.step) after the last month changes nothing: Mesa's Time card stays at the
    number of steps, as the page's 'month n of n'. A scenario of weekly steps counts weeks, not months."""
    from egovsim.app import page as app

    viz = app.EGovViz(scale=0.0005, overrides=("end_year=2006",))
    for _ in range(viz.n_steps + 5):
        viz.step()
    assert viz.step_index == viz.n_steps == 12 and viz.time == 12 and viz.steps == 12 and not viz.running
    assert app.step_label(viz) == "month 12 of 12"
    weekly = app.EGovViz(scale=0.0005, overrides=("end_year=2006", "steps_per_year=52"))
    weekly.step()
    assert app.step_label(weekly) == "week 1 of 52"
    assert "week 1 of 52" in app.legend_html(weekly)[0]


def test_leader_colour_is_matplotlibs_purples():
    """The leader's star is coloured on matplotlib's Purples scale from will -0.2 to 1 (as before)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from egovsim.app import page as app

    for will in (-0.5, -0.2, 0.1, 0.4, 0.73, 1.0, 1.3):
        expected = np.array(colormaps["Purples"](np.clip((will + 0.2) / 1.2, 0, 1))[:3]) * 255
        got = np.array([int(app.will_colour(will)[k : k + 2], 16) for k in (1, 3, 5)])
        assert np.abs(got - expected).max() <= 2, (will, app.will_colour(will), to_hex(expected / 255))


def test_the_charts_put_no_markup_into_the_page():
    """The browser-drawn charts show texts from files (titles, legends, province names) through Vue's text
    and attribute bindings only: no template renders a value as HTML."""
    from egovsim.app import frontend

    for template in (frontend.TIME_CHART, frontend.NETWORK):
        assert "v-html" not in template and "innerHTML" not in template


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


def test_warm_writes_the_bytecode_a_start_would_otherwise_compile(tmp_path):
    """`make assets` (egovsim.app.warm) writes each module's bytecode where Python looks for it, in Python's
    own timestamp-checked form: a source changed afterwards is compiled again, never run stale."""
    import importlib.util
    import marshal

    from egovsim.app import warm

    assert warm.__file__ in warm.python_sources() and all(s.endswith(".py") for s in warm.python_sources())
    source = tmp_path / "probe.py"
    source.write_text("ANSWER = 42\n")
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert not cached.exists()
    assert warm.compile_sources([str(source)]) == 0
    data = cached.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER  # the header Python checks before using it
    namespace = {}
    exec(marshal.loads(data[16:]), namespace)
    assert namespace["ANSWER"] == 42
    source.write_text("ANSWER = 43\n")
    os.utime(source, (time.time() + 10, time.time() + 10))
    assert warm.compile_sources([str(source)]) == 0
    exec(marshal.loads(cached.read_bytes()[16:]), namespace)
    assert namespace["ANSWER"] == 43


def serve(monkeypatch, capsys, *args: str, env: dict | None = None):
    """`egovsim serve ARGS` up to the moment it would start Solara: (exit status, the command, its
    environment, stderr). os.execve is replaced, so no server starts."""
    from egovsim import cli

    started = {}

    def execve(path, argv, environ):
        started.update(argv=argv, env=environ)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    # whether this machine can listen there is the probe's question (tests/test_hostile_r8.py), not these tests'
    monkeypatch.setattr(cli, "check_can_listen", lambda host, port: None)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    try:
        status = cli.main(["serve", "--scale", "0.001", *args])
    except SystemExit as exc:
        status = exc.code
    return status, started.get("argv"), started.get("env"), capsys.readouterr().err


def test_serve_without_the_front_end_says_how_to_install_it(tmp_path):
    """Without Solara's front end the page would stay blank offline: `egovsim serve` says so on one line,
    names the command that installs it, and exits with 2 before starting a server (no traceback)."""
    env = dict(os.environ, SOLARA_ASSETS_PROXY_CACHE_DIR=str(tmp_path))  # an empty cache
    proc = subprocess.run(
        [sys.executable, "-m", "egovsim", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "front end is not installed" in proc.stderr and "-m egovsim.app.assets" in proc.stderr
    assert "requirejs@" in proc.stderr and proc.stdout == ""


def test_serve_checks_the_scenario_without_loading_the_analysis_code():
    """`egovsim serve` checks the scenario (and its posterior) before it replaces itself with the server: the
    analysis code (the runner, SALib, pyabc, ...) is not needed for that, and loading it cost a second of the page's
    start (a check of round 12 did). Run in a fresh interpreter, whose modules are its own."""
    probe = (
        "import os, sys\n"
        "def execve(*args):  # no server: where the command would start one, say what it has loaded\n"
        "    print(sorted(m for m in sys.modules if m.startswith('egovsim.analysis')))\n"
        "    sys.exit(0)\n"
        "os.execve = execve\n"
        "from egovsim.cli import main\n"
        "sys.exit(main(['serve', '--port', '0']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


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


def _check_browser_setup() -> None:
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


@contextlib.contextmanager
def _serving(folder: Path, *scenario: str):
    """`egovsim serve` (the default scenario, or the one given) on a free local port, offline: Solara's CDN is a
    closed port."""
    _check_browser_setup()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = folder / "serve.log"
    env = dict(os.environ, SOLARA_ASSETS_CDN="http://127.0.0.1:9/")  # nothing may come from the internet
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "egovsim", "serve", *scenario, "--port", str(port), "--host", "127.0.0.1"],
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with _serving(tmp_path_factory.mktemp("serve")) as running:
        yield running


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
        """The year is shown and every chart (network and five time charts) has drawn the month shown."""
        self.page.wait_for_selector(".egov-year", timeout=timeout * 1000)
        self.page.wait_for_function(
            "() => { const d = document.querySelector('.egov-date'); if (!d) return false;"
            " const m = d.innerText.match(/month (\\d+) of/); const c = document.querySelectorAll('.egov-chart');"
            " return m && c.length >= 6 && Array.from(c).every(e => e.getAttribute('data-month') === m[1]); }",
            timeout=timeout * 1000,
        )

    def points(self) -> dict[str, list[int]]:
        """Per time chart (by title), the number of months each line draws (its path's points)."""
        return self.page.evaluate(
            "() => Object.fromEntries(Array.from(document.querySelectorAll('svg.egov-chart[data-title]'))"
            ".map(c => [c.getAttribute('data-title'), Array.from(c.querySelectorAll('path.egov-line'))"
            ".map(p => (p.getAttribute('d').match(/[ML]/g) || []).length)]))"
        )

    def draws_months(self, months: int) -> None:
        """Every line of every time chart draws `months` months (the informal-payment index has no value in
        the first month: no dealings yet), so no Step's months went missing on the way."""
        drawn = self.points()
        assert len(drawn) == 5, drawn
        for title, lines in drawn.items():
            expected = months - 1 if title.startswith("Informal-payment") else months
            assert lines == [expected] * len(lines), (title, lines, expected)

    def titles(self) -> list[str]:
        return self.page.locator("svg.egov-chart text").all_text_contents()

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


# per time chart: the observed dots and the lines' vertices (every month a vertex) inside its legend's box, in the
# chart's own units (the legend's translate plus its rectangle)
LEGEND_OVERLAPS = """() => Array.from(document.querySelectorAll('svg.egov-chart[data-title]')).map(svg => {
  const m = svg.querySelector('.egov-legend').transform.baseVal.consolidate().matrix;
  const r = svg.querySelector('.egov-legend rect').getBBox();
  const inside = (x, y) => x >= m.e + r.x && x <= m.e + r.x + r.width && y >= m.f + r.y && y <= m.f + r.y + r.height;
  let vertices = 0;
  for (const path of svg.querySelectorAll('path.egov-line')) {
    for (const xy of (path.getAttribute('d') || '').split(/[ML]/).filter(Boolean)) {
      const [x, y] = xy.split(',').map(Number);
      if (inside(x, y)) vertices++;
    }
  }
  const dots = Array.from(svg.querySelectorAll('circle.egov-observed'))
    .filter(c => inside(+c.getAttribute('cx'), +c.getAttribute('cy'))).length;
  return {title: svg.dataset.title, vertices, dots};
})"""


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
            assert a.page.title().startswith("egovsim: e-government adoption (")  # the tab says what it shows
            assert a.page.locator("svg.egov-chart").count() == 6
            assert a.page.locator("text.egov-xlabel").all_text_contents() == ["year (1 January)"] * 5
            titles = a.titles()
            for title in (
                "Leader and civil servants' e-office use: Thua Thien Hue",
                "Citizens using online public services, by group: Thua Thien Hue",
                "Internet at home, by group: Thua Thien Hue",
                "Supply index, simulated (lines) and observed (dots)",
                "Informal-payment index (dealings with a payment, last 12 months)",
                "Who serves whom (sample), 1 January 2006",
                "observed (MIC, DTI digital government)",
                "link to a genuine user",
            ):
                assert title in titles, (title, titles)
            assert a.page.locator("circle.egov-observed").count() >= 4  # observed supply indices
            assert a.page.locator(".egov-network .egov-citizen").count() == 90  # the network's sample
            assert a.page.locator(".egov-network .egov-servant").count() == 18
            a.draws_months(1)

            # Step advances the year (one month a Step by default); each chart draws every month so far,
            # though each Step sends only the new one
            step_times = []
            for month in range(1, 11):
                t = time.monotonic()
                a.step_to(month)
                step_times.append(time.monotonic() - t)
            assert a.year() == pytest.approx(2006 + 10 / 12, abs=0.005)
            a.draws_months(11)

            # a second tab has its own model: it starts at the beginning, and its Step leaves the first alone
            b = Tab(browser, server["url"])
            b.rendered()
            assert b.month() == 0
            b.step_to(1)
            assert a.month() == 10

            # a lever: infrastructure at its maximum (x3 the scenario's spending), Reset, then 100 months in
            # one Step (render interval at its maximum) in both tabs: more internet access in the second
            b.slider_to_max("Infrastructure (× scenario)")
            b.reset()
            a.reset()
            a.draws_months(1)  # Reset: from month 0 again
            for tab in (a, b):
                tab.slider_to_max("Render Interval (steps)")
                tab.step_to(100)
            assert a.year() == b.year() == pytest.approx(2014.33)
            a.draws_months(101)
            assert b.access("hue") > a.access("hue") + 0.05, (a.access("hue"), b.access("hue"))
            assert b.access("daklak") > a.access("daklak") + 0.05

            # the default run a little further on, for the screenshot; there every legend has a corner free of
            # lines and observed dots, and takes it (the supply index's legend once hid its early lines)
            a.step_to(200)
            for chart in a.page.evaluate(LEGEND_OVERLAPS):
                assert chart["dots"] == 0 and chart["vertices"] == 0, chart
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            a.page.set_viewport_size({"width": 1500, "height": 1650})  # the cards scroll inside the page
            a.page.wait_for_timeout(500)
            a.page.screenshot(path=str(SCREENSHOT), full_page=True)

            # the default scenario is calibrated: its posterior's last offered draw, on Reset, is what the page runs
            assert "this run: draw" not in a.page.locator(".egov-parameters").inner_text()
            a.slider_to_max("Posterior draw (0: medians)")
            a.reset()
            assert "this run: draw 100" in a.page.locator(".egov-parameters").inner_text()

            for tab in (a, b):
                assert tab.errors == [], tab.errors
                assert tab.external == [], f"requests leaving this machine: {tab.external}"
        finally:
            browser.close()
    # recorded here; the targets (page <= 5 s, Step <= 0.2 s) are judged by benchmarks/bench_browser.py. The
    # bounds below only catch a regression, with room for a loaded machine: a Step took 0.1-0.2 s at load 1-6
    # and 0.9-1.1 s when every chart was a matplotlib figure redrawn; the page 6-12 s from the server's start,
    # Chromium's own start included (a cold numba cache or bytecode compiled at each start adds 5-10 s)
    timings = {
        "serve_to_rendered_page_s": round(serve_to_page_s, 2),
        "page_load_s": round(render_s, 2),
        "step_median_s": round(float(np.median(step_times)), 3),
        "step_s": [round(t, 3) for t in step_times],
    }
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")
    with capsys.disabled():
        print(
            f"\nbrowser test: `egovsim serve` start to rendered page {serve_to_page_s:.1f} s "
            f"(page load {render_s:.1f} s); Step (one month) median {timings['step_median_s']:.3f} s over "
            f"{len(step_times)} Steps; written: {TIMINGS}, screenshot: {SCREENSHOT}"
        )
    assert timings["step_median_s"] < STEP_BOUND_S, timings
    assert serve_to_page_s < PAGE_BOUND_S, timings


@pytest.mark.browser
def test_long_names_stay_inside_their_charts(tmp_path):
    """A province name may be 120 characters: every chart title wraps or is cut inside the chart's width (the whole
    title on hover), every legend stays inside its plot, and a network panel's name is cut with an ellipsis."""
    from playwright.sync_api import sync_playwright

    name = (
        "Thanh pho Hue (Thua Thien Hue, a centrally-run city from 2025, formerly a province of the North Central Coast)"
    )
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        f'extends: {ROOT / "scenarios" / "hue.yaml"}\nname: long_names\nprovinces:\n  hue:\n    name: "{name}"\n'
    )
    with _serving(tmp_path, str(scenario)) as running, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = Tab(browser, running["url"])
            tab.rendered()
            # in each time chart's own units (viewBox 600 wide; the plot frame from x 60 to 582)
            boxes = tab.page.evaluate(
                "() => Array.from(document.querySelectorAll('svg.egov-chart[data-title]')).map(svg => ({"
                " title: Array.from(svg.querySelectorAll('.egov-title text')).map(t => { const b = t.getBBox();"
                "   return [b.x, b.x + b.width]; }),"
                " legend: (() => { const b = svg.querySelector('.egov-legend rect').getBBox();"
                "   const m = svg.querySelector('.egov-legend').transform.baseVal.consolidate().matrix;"
                "   return [m.e + b.x, m.e + b.x + b.width]; })(),"
                " hover: svg.querySelector('.egov-title title').textContent }))"
            )
            assert len(boxes) == 5
            for chart in boxes:
                assert all(left >= 0 and right <= 600 for left, right in chart["title"]), chart
                assert chart["legend"][0] >= 60 and chart["legend"][1] <= 582, chart
            assert any(name in chart["hover"] for chart in boxes)  # the whole name, on hover
            panel = tab.page.locator(".egov-network text").nth(1).text_content()
            assert panel.endswith("\u2026") and name.startswith(panel[:-1]), panel
            assert tab.errors == [], tab.errors
        finally:
            browser.close()
