"""The one runner behind every experiment: replicates (`egovsim run --replicates`), what-if comparisons
(`egovsim compare`) and parameter sweeps (`egovsim sweep`).

Data flows one way::

    base scenarios + design points -> RunSpecs -> run_many(executor, store) -> RunResults -> output files

- Seeds: replicate r of every scenario and every design point runs with the r-th seed spawned from one master
  seed (`replicate_seeds`, numpy SeedSequence): common random numbers, so differences between scenarios are
  paired and a run's result depends only on (scenario, seed), never on which worker ran it or when.
- Executors: `run_many` takes any `concurrent.futures.Executor`; `make_executor` gives a local process pool,
  a Dask cluster (local or remote) or a serial one. We never schedule work ourselves.
- Store: every finished run is written at once, atomically, as one small file per run keyed by a hash of what
  determines its result (scenario, parameter values, seed, egovsim's code). Running the same command again
  skips finished keys and retries failed ones, so an interruption loses at most the runs that were in flight.
- Faults: a run that raises becomes a failed RunResult with its error; the other runs go on.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import math
import multiprocessing
import os
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, clipped
from .model import simulate
from .outcomes import COLUMNS
from .output import atomic_write, format_value, git_commit, summary, timeseries_csv, write_json, years
from .scenario import Scenario, dump_yaml, scenario_from_dict, with_values

EXECUTORS = ("process", "dask", "serial")
STATUS_OK, STATUS_FAILED = "ok", "failed"
MAX_RUNS = 1_000_000  # of one experiment: at a second a run, eleven days of a core; more is a mistake in a file


# ---- seeds ------------------------------------------------------------------------------------------------


def replicate_seeds(master: int, n: int) -> list[int]:
    """n independent seeds spawned from one master seed (numpy SeedSequence), as plain Python ints.

    Mesa rejects numpy integers, and 63 bits keep every seed a valid scenario `seed` and an int64 column."""
    if master < 0:
        raise ValueError(f"master seed must be >= 0, got {master}")
    children = np.random.SeedSequence(master).spawn(n)
    return [int(child.generate_state(1, dtype=np.uint64)[0]) >> 1 for child in children]


# ---- what to run, what came back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run: a base scenario (by label), parameter values set on it (dotted keys, `provinces.*.` allowed),
    the replicate index and its seed. `point` numbers the design point in a sweep."""

    scenario: str
    replicate: int
    seed: int
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)
    point: int = 0


@dataclass
class RunResult:
    """A finished run. `records` (steps + 1, provinces, columns, float64) is None for a failed run, and when
    the caller asked `run_many` not to keep records in memory (read them from the store instead)."""

    spec: RunSpec
    key: str
    status: str
    error: str | None = None
    wall_time_s: float = math.nan
    records: np.ndarray | None = None
    resumed: bool = False  # taken from the store, not run by this call
    traceback: str | None = None
    host: str | None = None  # the machine that ran it (Dask clusters span several)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def content_hash(data: Any) -> str:
    """A stable hash of plain data (dicts, lists, numbers, text): the same content gives the same hash in
    every process and on every machine (unlike Python's hash())."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_key(scenario_hash: str, values: Mapping[str, Any], seed: int) -> str:
    """What determines a run's result: the scenario's content, the values set on it, the seed and the code.
    Two specs with the same key are the same run, so it is run (and stored) once; after an edit of the code
    that simulates (SIMULATION_MODULES) no stored run matches, so a store never hands back results of other
    code, while edits of reports, plots or the command line keep a resumed experiment's finished runs."""
    return content_hash(
        {"scenario": scenario_hash, "values": dict(values), "seed": int(seed), "code": code_fingerprint()}
    )[:24]


# The modules whose code decides a run's records from (scenario, values, seed): the model and everything it
# imports, the plain reference engine, and this runner (it applies the values). A test keeps the list whole.
SIMULATION_MODULES = (
    "__init__",
    "agents",
    "errors",
    "experiment",
    "kernels",
    "model",
    "network",
    "outcomes",
    "plain",
    "population",
    "scenario",
    "schema",
)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the source of the simulating modules (the git commit misses uncommitted edits)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in SIMULATION_MODULES:
        path = package / f"{name}.py"
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def expand_wildcards(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, Any]:
    """`provinces.*.policy.training: 2` sets the lever in every province of the scenario."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        parts = key.split(".")
        if len(parts) > 2 and parts[0] == "provinces" and parts[1] == "*":
            for province in scenario.provinces:
                out[".".join(["provinces", province, *parts[2:]])] = value
        else:
            out[key] = value
    return out


def apply_values(scenario: Scenario, values: Mapping[str, Any], source: str = "<parameters>") -> Scenario:
    """The scenario with a design point's values set (validated like a file)."""
    return with_values(scenario, expand_wildcards(scenario, values), source) if values else scenario


# ---- the worker -------------------------------------------------------------------------------------------


def run_one(scenario: dict, values: Mapping[str, Any], seed: int) -> dict:
    """Run the model once; top-level and given plain data so any executor can pickle it to any machine.

    Never raises for a failing run: the error comes back as data, so one bad run cannot stop the others."""
    start = time.perf_counter()
    try:
        # a fresh, validated Scenario for every run (nothing a run does can leak into the next), built from
        # a cached base so a worker validates each base scenario once, not once per run
        base = _base(scenario)
        sc = with_values(base, expand_wildcards(base, values), "<run>")
        records = simulate(sc, seed)
        return {
            "records": records,
            "error": None,
            "traceback": None,
            "wall_time_s": time.perf_counter() - start,
            "host": socket.gethostname(),
        }
    except Exception as exc:
        return {
            "records": None,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "wall_time_s": time.perf_counter() - start,
            "host": socket.gethostname(),
        }


_BASES: dict[str, Scenario] = {}


def _base(scenario: dict) -> Scenario:
    key = content_hash(scenario)
    if key not in _BASES:
        if len(_BASES) >= 32:
            _BASES.clear()
        _BASES[key] = scenario_from_dict(scenario, "<run>")
    return _BASES[key]


# ---- the store: one file per finished run -------------------------------------------------------------------


class Store:
    """Finished runs on disk: `<key>.npz` (records, float64, so outputs rebuilt from the store are
    byte-identical to a direct run) and `<key>.json` (spec, status, error, timing, code version).

    Both are written atomically, the npz first: a json file therefore marks a complete run, and a crash at any
    moment leaves either a complete run or none. Failed runs have a json only and are retried next time."""

    def __init__(self, folder: Path, code: dict | None = None):
        self.folder = Path(folder)
        self.code = code if code is not None else {**git_commit(), "fingerprint": code_fingerprint()}

    def _json(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def _npz(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def meta(self, key: str) -> dict | None:
        try:
            return json.loads(self._json(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def finished(self, key: str) -> bool:
        meta = self.meta(key)
        return meta is not None and meta.get("status") == STATUS_OK and self._npz(key).exists()

    def records(self, key: str) -> np.ndarray:
        with np.load(self._npz(key)) as data:
            return data["records"]

    def save(self, result: RunResult) -> None:
        if result.records is not None:
            buf = io.BytesIO()
            np.savez_compressed(buf, records=result.records)
            atomic_write(self._npz(result.key), buf.getvalue())
        spec = result.spec
        write_json(
            self._json(result.key),
            {
                "key": result.key,
                "scenario": spec.scenario,
                "point": spec.point,
                "values": dict(spec.values),
                "replicate": spec.replicate,
                "seed": spec.seed,
                "status": result.status,
                "error": result.error,
                "traceback": result.traceback,
                "wall_time_s": _round(result.wall_time_s),
                "host": result.host,
                "code": self.code,
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def load(self, key: str, spec: RunSpec, keep_records: bool = True) -> RunResult:
        meta = self.meta(key) or {}
        return RunResult(
            spec,
            key,
            meta.get("status", STATUS_FAILED),
            meta.get("error"),
            _float(meta.get("wall_time_s")),
            self.records(key) if keep_records else None,
            resumed=True,
            traceback=meta.get("traceback"),
            host=meta.get("host"),
        )

    def commits(self, keys: Iterable[str]) -> list[str]:
        """The code commits that produced these runs (more than one: results mix model versions)."""
        found = {str((self.meta(k) or {}).get("code", {}).get("commit")) for k in keys}
        return sorted(found)


def _round(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


# ---- executors ------------------------------------------------------------------------------------------


class SerialExecutor(Executor):
    """Runs each task when it is submitted, in this process: for debugging (pdb, profilers) and as the
    reference the parallel executors must reproduce."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _process_context() -> multiprocessing.context.BaseContext:
    # Never fork: the parent may hold threads (tqdm's monitor, Dask's event loop) and forking those deadlocks.
    # forkserver starts every worker from one clean process that has imported the model once.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["egovsim.experiment"])
        return ctx
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def make_executor(
    workers: int | None = None, executor: str = "process", scheduler: str | None = None
) -> Iterator[Executor]:
    """An executor to hand to `run_many`, closed properly on leaving the block (also on Ctrl-C).

    executor: "process" (a local process pool of `workers`, default all cores), "dask" (a Dask cluster: the
    one at `scheduler`, e.g. tcp://host:8786, or else a LocalCluster of `workers` single-threaded processes),
    or "serial" (this process). Giving a scheduler implies "dask"."""
    if workers is not None and workers < 1:
        raise InputError("--workers", "", f"must be >= 1, got {workers}")
    if scheduler:
        executor = "dask"
    if executor not in EXECUTORS:
        raise InputError("--executor", "", f"expected one of {', '.join(EXECUTORS)}, got {clipped(executor)}")
    n = workers or available_cpus()
    if executor == "serial":
        yield SerialExecutor()
    elif executor == "process":
        pool = ProcessPoolExecutor(max_workers=n, mp_context=_process_context())
        try:
            yield pool
        finally:  # on Ctrl-C: drop queued runs, let running ones end, leave no orphan processes
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        with dask_client(n, scheduler) as client:
            yield client.get_executor(pure=False)  # run_many already runs each distinct run once


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None):
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="20s")
        else:
            # one thread per worker process: the model is numpy-bound and holds the GIL between calls
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise InputError("--scheduler", "", f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---- the runner -----------------------------------------------------------------------------------------


def run_many(
    specs: Sequence[RunSpec],
    scenarios: Mapping[str, Scenario],
    executor: Executor,
    *,
    store: Store | None = None,
    progress: str | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    keep_records: bool = True,
    run: Callable[..., dict] = run_one,
    max_pending: int = 512,
) -> list[RunResult]:
    """Run every spec on `executor` and return one RunResult per spec, in the order of `specs`.

    scenarios: the base scenarios by label (RunSpec.scenario). store: finished runs found there are not run
    again; each new run is saved the moment it finishes. progress: a description for a progress bar on stderr
    (None: no bar). on_result: called with each run as it finishes. keep_records=False drops records from
    memory once stored (large sweeps; read them back with `store.records(key)`). run: the worker function,
    `run(scenario_dict, values, seed) -> dict` (tests replace it). max_pending bounds the runs submitted but
    not yet collected, so memory stays flat however large the design.
    """
    plain = {label: sc.to_dict() for label, sc in scenarios.items()}
    hashes = {label: content_hash(d) for label, d in plain.items()}
    keys = [run_key(hashes[s.scenario], s.values, s.seed) for s in specs]
    done: dict[str, RunResult] = {}
    todo: dict[str, RunSpec] = {}
    for spec, key in zip(specs, keys):
        if key in done or key in todo:
            continue  # the same run asked for twice (e.g. one scenario compared with itself): run it once
        if store is not None and store.finished(key):
            done[key] = store.load(key, spec, keep_records)
        else:
            todo[key] = spec

    queue = iter(todo.items())
    pending: dict[Future, tuple[str, RunSpec]] = {}

    with progress_bar(len(todo), progress, resumed=len(done)) as bar:

        def collect(future: Future) -> None:
            key, spec = pending.pop(future)
            result = _collect(future, key, spec)
            if store is not None:
                store.save(result)
            if not keep_records:
                result.records = None
            done[key] = result
            bar(result)
            if on_result is not None:
                on_result(result)

        def submit_more() -> None:
            for key, spec in queue:
                try:
                    future = executor.submit(run, plain[spec.scenario], dict(spec.values), spec.seed)
                except Exception as exc:
                    future = Future()  # run as failed (retried next time) rather than lose the summary
                    future.set_exception(exc)
                pending[future] = (key, spec)
                if future.done():  # a serial executor runs at submission: store it before the next one starts
                    collect(future)
                if len(pending) >= max_pending:
                    return

        try:
            submit_more()
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    collect(future)
                submit_more()
        except BaseException:
            # Ctrl-C or a crash of this process: what finished is already stored; drop what has not started
            for future in pending:
                future.cancel()
            raise
    return [dataclasses.replace(done[key], spec=spec) for spec, key in zip(specs, keys)]


def _collect(future: Future, key: str, spec: RunSpec) -> RunResult:
    try:
        out = future.result()
    except Exception as exc:
        return RunResult(
            spec,
            key,
            STATUS_FAILED,
            f"{type(exc).__name__}: {exc}".strip(),
            traceback="".join(traceback.format_exception(exc)),
        )
    status = STATUS_OK if out.get("error") is None else STATUS_FAILED
    return RunResult(
        spec,
        key,
        status,
        out.get("error"),
        float(out.get("wall_time_s", math.nan)),
        out.get("records"),
        traceback=out.get("traceback"),
        host=out.get("host"),
    )


@contextlib.contextmanager
def progress_bar(total: int, desc: str | None, resumed: int = 0):
    """A tqdm bar on stderr (runs done, failures, time left), yielded as a callback taking each RunResult."""
    from tqdm import tqdm

    failed = 0
    with tqdm(
        total=total, desc=desc, unit="run", disable=desc is None, file=sys.stderr, mininterval=0.5, dynamic_ncols=True
    ) as bar:
        if resumed:
            bar.set_postfix_str(f"{resumed} resumed from store")

        def update(result: RunResult) -> None:
            nonlocal failed
            failed += not result.ok
            bar.set_postfix_str(f"failed {failed}" + (f", {resumed} resumed" if resumed else ""), refresh=False)
            bar.update(1)

        yield update


# ---- a tally for the end of a command ---------------------------------------------------------------------


@dataclass
class Tally:
    """How an experiment's runs went, for the closing line of a command and its exit status."""

    total: int
    ran: int
    resumed: int
    failed: list[RunResult]

    @classmethod
    def of(cls, results: Sequence[RunResult]) -> Tally:
        unique = list({r.key: r for r in results}.values())
        return cls(
            len(unique),
            sum(not r.resumed for r in unique),
            sum(r.resumed for r in unique),
            [r for r in unique if not r.ok],
        )

    def line(self, what: str) -> str:
        text = (
            f"{what}: {self.total} runs ({self.ran} run now, {self.resumed} resumed from the store), "
            f"{len(self.failed)} failed"
        )
        for r in self.failed[:5]:
            point = f" point {r.spec.point}" if r.spec.values else ""
            text += f"\n  failed: {r.spec.scenario}{point} replicate {r.spec.replicate} (seed {r.spec.seed}): {r.error}"
        if len(self.failed) > 5:
            text += f"\n  ... and {len(self.failed) - 5} more (see the runs table)"
        if self.failed:
            text += "\n  run the same command again to retry the failed runs"
        return text

    def as_dict(self) -> dict:
        return {"total": self.total, "run_now": self.ran, "resumed": self.resumed, "failed": len(self.failed)}


# ---- replicates of one scenario: statistics and the run folder -------------------------------------------


def stack(results: Sequence[RunResult]) -> tuple[np.ndarray, list[int]]:
    """Records of the successful runs, (replicates, steps + 1, provinces, columns), and their replicate indices."""
    ok = [r for r in results if r.ok]
    if not ok:
        return np.empty((0,)), []
    return np.stack([r.records for r in ok]), [r.spec.replicate for r in ok]


BAND = (5, 95)


def band(records: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and 5th/95th percentiles over replicates (axis 0), ignoring nan (an outcome undefined in some
    replicates, e.g. the informal payment index before anyone has dealt with government)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(records, BAND, axis=0)
        return {
            "n": np.isfinite(records).sum(axis=0),
            "mean": np.nanmean(records, axis=0),
            f"p{BAND[0]}": lo,
            f"p{BAND[1]}": hi,
        }


def band_csv(records: np.ndarray, scenario: Scenario) -> str:
    """Long table: year, province, outcome, replicates (n with a value), mean, p5, p95."""
    stats = band(records)
    names = [k for k in stats if k != "n"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["year", "province", "outcome", "replicates", *names])
    provinces = list(scenario.provinces)
    for k, year in enumerate(years(scenario, records.shape[1])):
        year_text = format(round(float(year), 6), ".6f")
        for p, key in enumerate(provinces):
            for c, col in enumerate(COLUMNS):
                writer.writerow(
                    [
                        year_text,
                        key,
                        col,
                        int(stats["n"][k, p, c]),
                        *(format_value("", stats[s][k, p, c]) for s in names),
                    ]
                )
    return buf.getvalue()


def replicate_summary(records: np.ndarray, scenario: Scenario) -> dict:
    """summary.json of a replicated run: every value of the single-run summary as mean, p5 and p95."""
    stats = {name: summary(arr, scenario) for name, arr in band(records).items() if name != "n"}
    first = next(iter(stats.values()))
    provinces = {}
    for key, by_label in first["provinces"].items():
        provinces[key] = {}
        for label, row in by_label.items():
            provinces[key][label] = {
                "year": row["year"],
                **{
                    col: {name: s["provinces"][key][label][col] for name, s in stats.items()}
                    for col in row
                    if col != "year"
                },
            }
    return {
        "scenario": scenario.name,
        "replicates": int(records.shape[0]),
        "statistics": f"mean and {BAND[0]}th/{BAND[1]}th percentiles over replicates",
        "value_for_year": first["value_for_year"],
        "provinces": provinces,
    }


def runs_table(results: Sequence[RunResult]) -> str:
    """replicates.csv: replicate, seed, status, wall time, error."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["replicate", "seed", "status", "wall_time_s", "run", "error"])
    for r in results:
        writer.writerow(
            [r.spec.replicate, r.spec.seed, r.status, format_value("", r.wall_time_s), r.key, r.error or ""]
        )
    return buf.getvalue()


def write_replicates(
    folder: Path, scenario: Scenario, results: Sequence[RunResult], prov: dict, plots: bool = True
) -> np.ndarray:
    """Everything a replicated run leaves behind in `folder`:

    scenario.yaml; timeseries/replicate_###.csv (each byte-identical to `egovsim run --seed <its seed>`);
    timeseries_band.csv (mean, p5, p95 per outcome); replicates.csv (seeds, status); summary.json (mean, p5,
    p95 at the report years); plots/ with mean lines and 90% bands; provenance.json. Returns the stacked
    records of the successful replicates."""
    folder = Path(folder)
    atomic_write(folder / "scenario.yaml", dump_yaml(scenario.to_dict()))
    width = max(3, len(str(max(r.spec.replicate for r in results))))
    for r in results:
        if r.ok:
            atomic_write(
                folder / "timeseries" / f"replicate_{r.spec.replicate:0{width}d}.csv",
                timeseries_csv(r.records, scenario),
            )
    atomic_write(folder / "replicates.csv", runs_table(results))
    records, _ = stack(results)
    if records.size:
        atomic_write(folder / "timeseries_band.csv", band_csv(records, scenario))
        write_json(folder / "summary.json", replicate_summary(records, scenario))
        if plots:
            from .plots import run_plots

            run_plots(folder / "plots", scenario, records)
    write_json(folder / "provenance.json", prov)
    return records


def run_replicates(
    scenario: Scenario,
    master_seed: int,
    replicates: int,
    folder: Path,
    executor: Executor,
    *,
    progress: str | None = None,
    plots: bool = True,
    provenance_extra: dict | None = None,
    scenario_file: str | None = None,
) -> tuple[list[RunResult], np.ndarray]:
    """`egovsim run --replicates R`: R runs with seeds spawned from `master_seed`, stored under
    folder/runs/ (run again with the same folder to resume), written by `write_replicates`."""
    from .output import provenance

    if replicates < 1:
        raise InputError("--replicates", "", f"must be >= 1, got {replicates}")
    seeds = replicate_seeds(master_seed, replicates)
    specs = [RunSpec(scenario.name, i, s) for i, s in enumerate(seeds)]
    start = time.perf_counter()
    results = run_many(
        specs, {scenario.name: scenario}, executor, store=Store(Path(folder) / "runs"), progress=progress
    )
    prov = provenance(
        seeds=seeds,
        wall_time_s=time.perf_counter() - start,
        scenario_file=scenario_file,
        extra={
            "master_seed": master_seed,
            "replicates": replicates,
            "seed_rule": "numpy SeedSequence(master_seed).spawn(replicates)",
            "runs": Tally.of(results).as_dict(),
            **(provenance_extra or {}),
        },
    )
    return results, write_replicates(folder, scenario, results, prov, plots=plots)
