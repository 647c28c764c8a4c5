"""The experiment runner: seeds, executors, the resumable store, fault isolation, sweeps and their files.

Runs are tiny (Dak Lak at scale 0.001, a few years) so the whole file takes seconds; what is tested is the
runner, not the model."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from egovsim import cli
from egovsim.analysis.sweep import design_points, load_experiment
from egovsim.config.scenario import load_scenario
from egovsim.model.model import simulate
from egovsim.model.outcomes import COL
from egovsim.runner import runner as experiment
from egovsim.runner.runner import RunSpec, SerialExecutor, Store, make_executor, replicate_seeds, run_many, run_one

from .workers import half_sent_result, killing_run

ROOT = Path(__file__).resolve().parents[1]
DAKLAK = ROOT / "scenarios" / "daklak.yaml"


def tiny(end_year: int = 2009, path: Path = DAKLAK):
    return load_scenario(path, [f"end_year={end_year}"], scale=0.001)


def specs_for(label: str, n: int, master: int = 7, values=None) -> list[RunSpec]:
    return [RunSpec(label, i, s, values=values or {}) for i, s in enumerate(replicate_seeds(master, n))]


def write_experiment(folder: Path, body: str, end_year: int = 2009) -> Path:
    path = folder / "exp.yaml"
    path.write_text(f"scenario: {DAKLAK}\nscale: 0.001\nset: [end_year={end_year}]\n" + body, encoding="utf-8")
    return path


def same_table(a: Path, b: Path) -> bool:
    """Equal Parquet contents, nan equal to nan (pyarrow's Table.equals says nan != nan)."""
    return pq.read_table(a).to_pandas().equals(pq.read_table(b).to_pandas())


def without_wall_time(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    drop = rows[0].index("wall_time_s")
    return [r[:drop] + r[drop + 1 :] for r in rows]


# ---- seeds ------------------------------------------------------------------------------------------------


def test_store_keys_cover_every_module_a_run_imports():
    """A run's key hashes the simulating code (config/, model/, errors): every egovsim module a worker loads
    to simulate (with either engine) must be in it, or an edit there would hand back stale stored results."""
    code = (
        "import os, sys; os.environ['EGOVSIM_ENGINE'] = sys.argv[1]; "
        "import egovsim.model.model as m, egovsim.config.scenario as s; "
        "m.simulate(s.load_scenario(sys.argv[2], ['end_year=2007'], 0.0005), 1); "
        "print(' '.join(sorted(v.__file__ for k, v in sys.modules.items() if k.startswith('egovsim'))))"
    )
    hashed = {p.resolve() for p in experiment.simulation_sources()}
    for engine in ("numba", "plain"):
        loaded = subprocess.run(
            [sys.executable, "-c", code, engine, str(DAKLAK)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert loaded and {Path(f).resolve() for f in loaded} <= hashed, (engine, loaded)
    assert all(p.is_file() for p in hashed) and len(hashed) > 10


def test_replicate_seeds_are_plain_distinct_and_reproducible():
    seeds = replicate_seeds(2024, 50)
    assert seeds == replicate_seeds(2024, 50)
    assert seeds[:10] == replicate_seeds(2024, 10)  # adding replicates keeps the earlier ones
    assert len(set(seeds)) == 50
    assert all(type(s) is int and 0 <= s < 2**63 for s in seeds)
    assert replicate_seeds(2025, 3) != seeds[:3]


# ---- executors: same results whatever runs them -------------------------------------------------------


def test_one_and_two_process_workers_give_the_serial_results_exactly():
    sc = tiny()
    specs = specs_for(sc.name, 4)
    with make_executor(executor="serial") as ex:
        serial = run_many(specs, {sc.name: sc}, ex)
    for workers in (1, 2):
        with make_executor(workers, "process") as ex:
            parallel = run_many(specs, {sc.name: sc}, ex)
        for a, b in zip(serial, parallel):
            assert b.ok and b.spec == a.spec and b.key == a.key
            np.testing.assert_array_equal(a.records, b.records)
    np.testing.assert_array_equal(serial[2].records, simulate(sc, specs[2].seed))  # the runner adds nothing


@pytest.mark.parametrize("executor", ["process", pytest.param("dask", marks=pytest.mark.slow)])
def test_a_pool_without_a_spare_core_per_worker_draws_no_step_ahead(executor):
    """A large run draws its next step's dealings in a second thread (population.DRAW_AHEAD_FROM); in a pool
    without a spare core for each worker that thread would only take CPU time from the other workers."""
    from egovsim.runner.runner import available_cpus

    from .workers import draw_ahead_from

    cpus = available_cpus()
    with make_executor(cpus, executor) as ex:
        assert list(ex.map(draw_ahead_from, range(4))) == [None] * 4
    if cpus >= 2:
        with make_executor(cpus // 2, executor) as ex:
            assert None not in list(ex.map(draw_ahead_from, range(2)))


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_results_exactly():
    sc = tiny()
    specs = specs_for(sc.name, 3)
    with make_executor(executor="serial") as ex:
        serial = run_many(specs, {sc.name: sc}, ex)
    with make_executor(2, "dask") as ex:  # LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        dask = run_many(specs, {sc.name: sc}, ex)
    for a, b in zip(serial, dask):
        assert b.ok
        np.testing.assert_array_equal(a.records, b.records)


# ---- store, faults and resumption ---------------------------------------------------------------------


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    sc = tiny()
    specs = specs_for(sc.name, 4)
    bad_seed = specs[1].seed

    def flaky(scenario, seed=None, progress=None):
        if seed == bad_seed:
            raise ValueError("boom in the model")
        return simulate(scenario, seed)

    monkeypatch.setattr(experiment, "simulate", flaky)
    store = Store(tmp_path / "runs")
    results = run_many(specs, {sc.name: sc}, SerialExecutor(), store=store)
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error == "ValueError: boom in the model" and "flaky" in results[1].traceback
    assert store.meta(results[1].key)["status"] == "failed"

    monkeypatch.setattr(experiment, "simulate", simulate)  # the bug is fixed: the next call retries it only
    ran = []
    again = run_many(specs, {sc.name: sc}, SerialExecutor(), store=store, on_result=ran.append)
    assert [r.spec.replicate for r in ran] == [1]
    assert all(r.ok for r in again) and [r.resumed for r in again] == [True, False, True, True]


def test_resuming_after_ctrl_c_runs_only_what_is_missing_and_matches_an_uninterrupted_run(tmp_path):
    sc = tiny()
    specs = specs_for(sc.name, 6)
    calls = []

    def interrupted_after_two(scenario, values, seed):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(seed)
        return run_one(scenario, values, seed)

    store = Store(tmp_path / "runs")
    with pytest.raises(KeyboardInterrupt):
        run_many(specs, {sc.name: sc}, SerialExecutor(), store=store, run=interrupted_after_two)
    assert len(list(store.folder.glob("*.npz"))) == 2

    ran = []
    resumed = run_many(specs, {sc.name: sc}, SerialExecutor(), store=store, on_result=ran.append)
    assert sorted(r.spec.seed for r in ran) == sorted(s.seed for s in specs[2:])
    reference = run_many(specs, {sc.name: sc}, SerialExecutor())
    for a, b in zip(resumed, reference):
        np.testing.assert_array_equal(a.records, b.records)


def test_a_sweep_killed_with_sigkill_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    exp = write_experiment(
        tmp_path,
        "design:\n  grid:\n    citizens.q0: [" + ", ".join(f"{0.1 + 0.01 * i:.2f}" for i in range(16)) + "]\nseed: 3\n",
        end_year=2008,
    )
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "egovsim", "sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list((out / "runs").glob("*.json"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the sweep ended before it could be killed"
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert 3 <= len(before) < 16 and not (out / "runs.csv").exists()

    assert cli.main(["sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert len(after) == 16
    assert all(after[name] == mtime for name, mtime in before.items())  # finished runs were not redone

    ref = tmp_path / "reference"
    assert cli.main(["sweep", str(exp), "--out", str(ref), "--executor", "serial", "--quiet"]) == 0
    assert without_wall_time((out / "runs.csv").read_text()) == without_wall_time((ref / "runs.csv").read_text())
    assert same_table(out / "timeseries.parquet", ref / "timeseries.parquet")


def test_the_worker_packs_a_runs_file_and_the_store_keeps_its_bits(tmp_path, monkeypatch):
    """A worker returns its records as the store's file (runner.run_packed); the command's process writes those
    bytes as they are and compresses nothing itself. The file is numpy's npz, read back bit for bit by np.load
    and by the store, and the records kept in memory are the direct run's."""
    sc = tiny()
    specs = specs_for(sc.name, 3)
    packed = experiment.run_packed(run_one, sc.to_dict(), {}, specs[0].seed)
    assert packed["records"] is None and packed["error"] is None
    direct = simulate(sc, specs[0].seed)
    with np.load(io.BytesIO(packed["npz"])) as data:
        assert list(data) == ["records"]
        np.testing.assert_array_equal(data["records"], direct)
        assert data["records"].dtype == np.float64

    real_pack, in_worker, sent = Store.pack, [False], {}

    def pack(records):
        assert in_worker[0], "the command's process compressed a run"
        npz = real_pack(records)
        sent[npz] = records
        return npz

    class Worker(SerialExecutor):  # runs the call in this process, as a worker would
        def submit(self, fn, /, *args, **kwargs):
            in_worker[0] = True
            try:
                return super().submit(fn, *args, **kwargs)
            finally:
                in_worker[0] = False

    monkeypatch.setattr(Store, "pack", staticmethod(pack))
    for keep in (True, False):
        results = run_many(specs, {sc.name: sc}, Worker(), store=Store(tmp_path / f"runs-{keep}"), keep_records=keep)
        for spec, result in zip(specs, results):
            reference = simulate(sc, spec.seed)
            store = Store(tmp_path / f"runs-{keep}")
            assert store._npz(result.key).read_bytes() in sent  # the worker's bytes, as they were
            np.testing.assert_array_equal(store.records(result.key), reference)
            if keep:
                np.testing.assert_array_equal(result.records, reference)
            else:
                assert result.records is None
            assert result.npz is None  # not kept once stored


# ---- egovsim run --replicates -------------------------------------------------------------------------


def test_run_replicates_writes_each_replicate_as_egovsim_run_would(tmp_path, capsys):
    common = [str(DAKLAK), "--scale", "0.001", "--set", "end_year=2009", "--quiet"]
    assert cli.main(["run", *common, "--replicates", "3", "--executor", "serial", "--out", str(tmp_path / "reps")]) == 0
    reps = tmp_path / "reps"
    table = list(csv.DictReader(io.StringIO((reps / "replicates.csv").read_text())))
    assert [r["status"] for r in table] == ["ok"] * 3
    seed = table[2]["seed"]
    assert cli.main(["run", *common, "--seed", seed, "--no-plots", "--out", str(tmp_path / "one")]) == 0
    one = (tmp_path / "one" / "timeseries.csv").read_bytes()
    assert (reps / "timeseries" / "replicate_002.csv").read_bytes() == one
    band = list(csv.DictReader(io.StringIO((reps / "timeseries_band.csv").read_text())))
    assert band[0].keys() == {"year", "date", "province", "outcome", "replicates", "mean", "median", "p5", "p95"}
    # the median (the line the plots draw) and the band, from the replicates' own series
    last = [list(csv.DictReader((reps / "timeseries" / f"replicate_{i:03d}.csv").open()))[-1] for i in range(3)]
    row = next(r for r in band if r["date"] == last[0]["date"] and r["outcome"] == "adopted_share")
    values = [float(x["adopted_share"]) for x in last]
    assert float(row["median"]) == pytest.approx(np.median(values), abs=1e-9)
    assert float(row["p5"]) == pytest.approx(np.percentile(values, 5), abs=1e-9)
    page = (reps / "report.html").read_text()
    assert "the plots draw the median" in page and "costs.*" in page
    assert "too low against the data" not in page  # the held-out finding is of the calibrated model, not the priors
    assert (reps / "report.html").is_file() and (reps / "columns.csv").is_file()
    assert {p.name for p in (reps / "plots").iterdir()} >= {"supply_index.png", "use_by_group.png"}
    assert len(list((reps / "runs").glob("*.npz"))) == 3


# ---- sweeps -----------------------------------------------------------------------------------------------


def test_sweep_gives_identical_results_with_one_and_two_workers(tmp_path):
    exp = write_experiment(
        tmp_path,
        "design:\n  grid:\n    provinces.*.policy.training: [0.5, 2.0]\n"
        "    citizens.q0: [0.2, 0.4]\nreplicates: 2\nseed: 11\n"
        "outputs: [supply_index@2008, adopted_share@end]\n",
    )
    outs = {}
    for workers in (1, 2):
        outs[workers] = tmp_path / f"w{workers}"
        assert cli.main(["sweep", str(exp), "--out", str(outs[workers]), "--workers", str(workers), "--quiet"]) == 0
    runs = [without_wall_time((outs[w] / "runs.csv").read_text()) for w in (1, 2)]
    assert runs[0] == runs[1]
    header, *rows = runs[0]
    assert len(rows) == 8 and {r[header.index("status")] for r in rows} == {"ok"}
    assert "daklak.supply_index@2008" in header and "provinces.*.policy.training" in header
    assert same_table(outs[1] / "timeseries.parquet", outs[2] / "timeseries.parquet")
    table = pq.read_table(outs[1] / "timeseries.parquet")
    assert table.num_rows == 8 * 49
    # the parquet holds exactly what a direct run gives
    first = table.slice(0, 49).to_pandas()
    sc = load_scenario(
        DAKLAK, ["end_year=2009", "provinces.daklak.policy.training=0.5", "citizens.q0=0.2"], scale=0.001
    )
    direct = simulate(sc, int(first["seed"][0]))
    np.testing.assert_array_equal(first["supply_index"].to_numpy(), direct[:, 0, COL["supply_index"]])


def test_sweep_reports_failed_runs_with_a_nonzero_status_and_retries_them(tmp_path, monkeypatch, capsys):
    exp = write_experiment(tmp_path, "design:\n  points: [{citizens.q0: 0.2}, {citizens.q0: 0.3}]\n")

    def failing_for_q03(scenario, seed=None, progress=None):
        if scenario.citizens.q0 == 0.3:
            raise RuntimeError("no convergence")
        return simulate(scenario, seed)

    monkeypatch.setattr(experiment, "simulate", failing_for_q03)
    out = tmp_path / "out"
    assert cli.main(["sweep", str(exp), "--out", str(out), "--executor", "serial", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "1 failed" in err and "RuntimeError: no convergence" in err
    rows = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    assert [r["status"] for r in rows] == ["ok", "failed"] and rows[1]["error"] == "RuntimeError: no convergence"

    monkeypatch.setattr(experiment, "simulate", simulate)
    assert cli.main(["sweep", str(exp), "--out", str(out), "--executor", "serial"]) == 0
    assert "(1 run now, 1 resumed from the store), 0 failed" in capsys.readouterr().err


def test_latin_hypercube_design_is_seeded_and_inside_its_bounds(tmp_path):
    exp_file = write_experiment(
        tmp_path,
        "design:\n  lhs:\n    n: 16\n    bounds:\n"
        "      citizens.q0: [0.1, 0.5]\n"
        "      provinces.*.policy.training: [0.5, 2]\nseed: 5\n",
    )
    exp, _ = load_experiment(exp_file)
    points = design_points(exp)
    assert len(points) == 16 and points == design_points(exp)
    q0 = np.array([p["citizens.q0"] for p in points])
    assert q0.min() >= 0.1 and q0.max() <= 0.5
    # Latin hypercube: exactly one point in each of the 16 equal slices of every parameter's range
    assert sorted(np.floor((q0 - 0.1) / 0.4 * 16).astype(int)) == list(range(16))
    exp.seed = 6
    assert design_points(exp) != points


def test_example_experiment_is_valid():
    exp, base = load_experiment(ROOT / "experiments" / "example_sweep.yaml")
    assert len(design_points(exp)) * exp.replicates == 12 and set(base.provinces) == {"hue", "daklak", "bentre"}


@pytest.mark.parametrize(
    "body, field, message",
    [
        (
            "design: {grid: {citizens.q0: [0.2]}}\nreplicate: 2\n",
            "replicate",
            "unknown key (did you mean 'replicates'?)",
        ),
        (
            "design: {grid: {citizens.q0: [0.2]}, points: [{citizens.q0: 0.1}]}\n",
            "design",
            "give exactly one of grid, lhs, points (got grid, points)",
        ),
        (
            "design: {grid: {provinces.*.policy.training: [1, 500]}}\n",
            "design.grid.provinces.*.policy.training[1]",
            "must be <= 100.0",
        ),
        ("design: {grid: {citizens.q00: [0.2]}}\n", "design.grid.citizens.q00[0]", "did you mean 'q0'?"),
        ("design: {lhs: {n: 4, bounds: {citizens.q0: [0.5, 0.1]}}}\n", "design.lhs.bounds.citizens.q0", "low < high"),
        (
            "design: {grid: {citizens.q0: [0.2]}}\noutputs: [supply_indx@2008]\n",
            "outputs[0]",
            "did you mean 'supply_index'?",
        ),
        ("design: {grid: {citizens.q0: [0.2]}}\noutputs: [supply_index@2031]\n", "outputs[0]", "outside"),
        ("design: {grid: {citizens.q0: [0.2]}}\nreplicates: 0\n", "replicates", "must be >= 1"),
        ("design: {grid: {citizens.q0: [0.2]\n", "line", "malformed YAML"),
        # names become folder names (issue 13): a safe pattern only
        *(
            (f"name: {name}\ndesign: {{grid: {{citizens.q0: [0.2]}}}}\n", "name", "must be 1-64 letters")
            for name in ("/tmp/x", "../../../../tmp/x", "..", ".x", "'a b'", "''", "x" * 65)
        ),
        # a control character in any text (a NUL here) is refused before the name's own rule is checked
        ('name: "a\\0b"\ndesign: {grid: {citizens.q0: [0.2]}}\n', "name", "control character U+0000"),
        # sizes and counts
        ("design: {grid: {citizens.q0: " + "[" * 3000 + "\n", "line", "nested deeper than 50"),
        ("design: {points: " + "[" * 20_000 + "\n", "line", "nested deeper than 50"),
        (
            "design: {grid: {citizens.q0: [0.2]}}\ndescription: &a [&b [x, x, x, x, x, x, x, x, x, x], "
            + ", ".join(f"&c{i} [" + ", ".join([f"*{'b' if i == 0 else f'c{i - 1}'}"] * 10) + "]" for i in range(5))
            + "]\n",
            "line",
            "aliases expand to more than 100,000 nodes",
        ),
        ("design: {grid: {citizens.q0: [0.2]}}\ndescription: " + "x" * 1_000_001 + "\n", "", "larger than 1 MB"),
        (
            "design: {grid: {citizens.q0: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], "
            "citizens.p0: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1], "
            "provinces.*.policy.training: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}\nreplicates: 1001\n",
            "design",
            "1,001,000 runs",
        ),
        ("design: {lhs: {n: 1.0e+300, bounds: {citizens.q0: [0.1, 0.5]}}}\n", "design.lhs.n", "whole number"),
        ("design: {grid: {citizens.q0: [0.2]}}\nreplicates: 1.0e+308\n", "replicates", "whole number"),
        ("design: {grid: {citizens.q0: [0.2]}}\nseed: 1.0e+19\n", "seed", "whole number"),
        ("design: {grid: {citizens.q0: [1.0e+300]}}\n", "design.grid.citizens.q0[0]", "between"),
        ("design: {points: [{citizens.q0: 1.0e+300}]}\n", "design.points[0]", "between"),
        ("design: {points: [{end_year: 2008}]}\n", "design.points[0].end_year", "cannot vary end_year"),
        ("design: {grid: {start_year: [2006, 2010]}}\n", "design.grid.start_year", "cannot vary start_year"),
        ("design: {grid: {citizens.q0: [0.2]}}\noutputs: ['" + "x" * 500 + "@end']\n", "outputs[0]", "..."),
    ],
)
def test_a_bad_experiment_file_is_one_line_naming_file_and_field(tmp_path, capsys, body, field, message):
    exp = write_experiment(tmp_path, body)
    assert cli.main(["sweep", str(exp), "--out", str(tmp_path / "out"), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) < 400, err
    assert err.startswith(f"egovsim: error: {exp}: {field}") and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["{outside}", "../../outside", "../outside/x"])
def test_an_experiment_name_cannot_write_outside_the_results_folder(tmp_path, monkeypatch, capsys, name):
    """Without --out a sweep writes into results/<name>: a name that is a path must not lead out of it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    name = name.format(outside=tmp_path / "outside")
    exp = write_experiment(tmp_path, f"name: '{name}'\ndesign: {{grid: {{citizens.q0: [0.2]}}}}\n")
    status = cli.main(["sweep", str(exp), "--executor", "serial", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"{exp}: name: must be" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["exp.yaml", "work"]  # nothing written anywhere


@pytest.mark.parametrize("file_name", ["...yaml", "my sweep.yaml", "-x.yaml"])
def test_a_sweep_named_after_its_file_writes_inside_results(tmp_path, monkeypatch, file_name):
    monkeypatch.chdir(tmp_path)
    exp = write_experiment(tmp_path, "design: {grid: {citizens.q0: [0.2]}}\n")
    exp = exp.rename(tmp_path / file_name)
    assert cli.main(["sweep", str(exp), "--executor", "serial", "--quiet"]) == 0
    (folder,) = (tmp_path / "results").iterdir()
    assert (folder / "runs.csv").is_file() and folder.name not in (".", "..") and not folder.name.startswith((".", "-"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([file_name, "results"])


@pytest.mark.parametrize(
    "scenario, message",
    [("nowhere.yaml", "file not found"), (".", "is a folder, not a file"), ("/dev/null", "not a regular file")],
)
def test_a_missing_base_scenario_names_the_experiment_field(tmp_path, capsys, scenario, message):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"scenario: {scenario}\ndesign: {{grid: {{citizens.q0: [0.2]}}}}\n")
    assert cli.main(["sweep", str(exp)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"egovsim: error: {exp}: scenario: ") and message in err and err.count("\n") == 1, err


# ---- a damaged store ----------------------------------------------------------------------------------


def _damage(store: Store, key: str, how: str) -> Path:
    npz, js = store.folder / f"{key}.npz", store.folder / f"{key}.json"
    if how == "truncated npz":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif how == "empty npz":
        npz.write_bytes(b"")
    elif how == "missing npz":
        npz.unlink()
    elif how == "records of another shape":
        np.savez_compressed(npz, records=np.zeros((3, 2)))
    elif how == "records with a step missing":
        with np.load(npz) as data:
            np.savez_compressed(npz, records=data["records"][:-1])
    elif how == "json not UTF-8":
        js.write_bytes(b'{"status": "ok", "host": "\xff\xfe"}')
    elif how == "json not an object":
        js.write_text('["ok"]')
    elif how == "json truncated":
        js.write_text(js.read_text()[:20])
    return npz if "npz" in how or "records" in how else js


@pytest.mark.parametrize(
    "how",
    [
        "truncated npz",
        "empty npz",
        "missing npz",
        "records of another shape",
        "records with a step missing",
        "json not UTF-8",
        "json not an object",
        "json truncated",
    ],
)
def test_a_damaged_stored_run_is_run_again_with_one_warning_naming_it(tmp_path, capsys, how):
    sc = tiny(2008)
    specs = specs_for(sc.name, 3)
    store = Store(tmp_path / "runs")
    first = run_many(specs, {sc.name: sc}, SerialExecutor(), store=store)
    path = _damage(store, first[1].key, how)
    capsys.readouterr()
    ran = []
    again = run_many(specs, {sc.name: sc}, SerialExecutor(), store=store, on_result=ran.append)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"egovsim: warning: {path}: unreadable stored run")
    assert [r.spec.replicate for r in ran] == [1] and all(r.ok for r in again)
    np.testing.assert_array_equal(again[1].records, simulate(sc, specs[1].seed))
    run_many(specs, {sc.name: sc}, SerialExecutor(), store=store)  # repaired: no warning, nothing run
    assert capsys.readouterr().err == ""


def test_compare_resumes_over_a_damaged_store(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(DAKLAK), str(DAKLAK), "--replicates", "2", "--scale", "0.001", "--set", "end_year=2008"]
    args += ["--executor", "serial", "--quiet", "--no-plots", "--out", str(out)]
    assert cli.main(args) == 0
    reference = (out / "comparison.csv").read_bytes()
    for i, npz in enumerate(sorted((out / "runs").glob("*.npz"))):
        npz.write_bytes(b"" if i == 0 else b"PK\x03\x04 truncated")
    capsys.readouterr()
    assert cli.main(args) == 0
    assert capsys.readouterr().err.count("unreadable stored run") == 2
    assert (out / "comparison.csv").read_bytes() == reference


# ---- a worker killed from outside; this process killed --------------------------------------------------


def _victim(specs, i, kill):
    return [
        s if j != i else RunSpec(s.scenario, s.replicate, s.seed, values={"_kill": kill}) for j, s in enumerate(specs)
    ]


def test_a_worker_killed_once_costs_no_run(tmp_path):
    sc = tiny(2007)
    specs = specs_for(sc.name, 8)
    with make_executor(2, "process") as ex:
        results = run_many(_victim(specs, 3, str(tmp_path / "killed")), {sc.name: sc}, ex, run=killing_run)
    assert (tmp_path / "killed").exists()
    assert [r.ok for r in results] == [True] * 8, [r.error for r in results if not r.ok]
    np.testing.assert_array_equal(results[3].records, simulate(sc, specs[3].seed))


def test_a_run_that_always_kills_its_worker_fails_alone_with_a_clear_error(tmp_path):
    sc = tiny(2007)
    specs = specs_for(sc.name, 8)
    with make_executor(2, "process") as ex:
        results = run_many(_victim(specs, 5, "always"), {sc.name: sc}, ex, run=killing_run, store=Store(tmp_path))
        assert ex.submit(run_one, sc.to_dict(), {}, specs[0].seed).result()["error"] is None  # the pool works on
    assert [r.ok for r in results] == [i != 5 for i in range(8)]
    assert results[5].error.startswith("WorkerDied: a worker process died twice on the same run")


def test_map_of_the_process_pool_survives_a_killed_worker(tmp_path):
    sc = tiny(2007)
    seeds = replicate_seeds(3, 6)
    values = [{"_kill": str(tmp_path / "killed")} if i == 2 else {} for i in range(6)]
    with make_executor(2, "process") as ex:
        out = list(ex.map(killing_run, [sc.to_dict()] * 6, values, seeds))
    assert (tmp_path / "killed").exists()
    for seed, o in zip(seeds, out):
        np.testing.assert_array_equal(o["records"], simulate(sc, seed))


def test_stopping_the_pool_does_not_hang_on_a_half_sent_result(tmp_path):
    """Ctrl-C or SIGTERM ends the workers at once; one ended while sending its result must not hang the end."""
    import threading

    pool = experiment.ProcessPool(1)
    pool.submit(half_sent_result, str(tmp_path / "sent"))
    deadline = time.monotonic() + 30
    while not (tmp_path / "sent").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the pool's manager thread is now waiting for the rest of the message

    def stop():
        pool.stop()
        pool.shutdown(wait=True, cancel_futures=True)

    stopping = threading.Thread(target=stop, daemon=True)
    stopping.start()
    stopping.join(10)
    assert not stopping.is_alive()


def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except ImportError:  # /proc: every process whose chain of parents reaches pid
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
        found, frontier = [], [pid]
        while frontier:
            kids = [p for p, parent in parents.items() if parent in frontier]
            found += kids
            frontier = kids
        return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left to collect


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_process_outlives_a_killed_command(tmp_path, sig):
    exp = write_experiment(
        # enough runs that the sweep is still under way half a second after its workers start (40 took 1.5 s)
        tmp_path,
        "design:\n  grid:\n    citizens.q0: [" + ", ".join(f"{0.1 + 0.003 * i:.3f}" for i in range(160)) + "]\n",
    )
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    cmd = [sys.executable, "-m", "egovsim", "sweep", str(exp), "--out", str(out), "--workers", "2", "--quiet"]
    with open(log, "w") as err:  # a file, not a pipe: orphans holding a pipe open would hang this test
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    children = []
    try:
        deadline = time.monotonic() + 60
        while len(children) < 4 and time.monotonic() < deadline and proc.poll() is None:
            children = _descendants(proc.pid)  # the resource tracker, the forkserver, two workers
            time.sleep(0.05)
        assert len(children) >= 4
        time.sleep(0.5)  # runs under way
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while any(map(_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)]
    finally:
        proc.kill()
        for pid in filter(_alive, children):
            os.kill(pid, signal.SIGKILL)
    err = log.read_text()
    if sig == signal.SIGTERM:  # like Ctrl-C: nothing half-written (SIGKILL leaves temporary files)
        kept = any((out / "runs").glob("*.json"))  # then the one line names the command that resumes
        line = shlex.join(["egovsim", "sweep", str(exp), "--workers", "2", "--quiet", "--out", str(out)])
        resume = f"the finished runs are kept; to resume: {line}\n"
        expected = resume if kept else "nothing half-written was left behind\n"
        assert proc.returncode == 143 and err == "egovsim: terminated; " + expected, err
        assert not list(out.rglob("*.tmp"))
    assert not (out / "runs.csv").exists()
    stored = {p.stem for p in (out / "runs").glob("*.json")}
    assert stored <= {p.stem for p in (out / "runs").glob("*.npz")}  # a run is stored whole or not at all
