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
- Faults: a run that raises becomes a failed RunResult with its error; the other runs go on. A worker killed
  from outside costs no run (`completed`, `ProcessPool`); a damaged stored run is run again (`DamagedRun`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egovsim.config.scenario import Scenario, apply_values, scenario_from_dict
from egovsim.engine import default_engine, engine_mark
from egovsim.errors import InputError, WorkerDied, clipped
from egovsim.files import atomic_write, interrupts_deferred, write_json
from egovsim.model import population
from egovsim.model.model import simulate
from egovsim.model.outcomes import COLUMNS
from egovsim.provenance import git_commit

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
    npz: bytes | None = field(default=None, repr=False)  # the records as packed by the worker, until stored

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
    that simulates (SIMULATION_PACKAGES) no stored run matches, so a store never hands back results of other
    code, while edits of reports, plots or the command line keep a resumed experiment's finished runs."""
    key = {"scenario": scenario_hash, "values": dict(values), "seed": int(seed), "code": code_fingerprint()}
    return content_hash({**key, **engine_mark()})[:24]


# The code that decides a run's records from (scenario, values, seed): the configuration (it resolves the
# scenario and applies the values) and the model, the error type both raise, and which engine runs. A test
# checks that a worker loads nothing else of egovsim to simulate. Edits of the runner, reports, plots or the command line keep a
# resumed experiment's finished runs.
SIMULATION_PACKAGES = ("config", "model")
SIMULATION_FILES = ("__init__.py", "errors.py", "engine.py")


def simulation_sources() -> list[Path]:
    package = Path(__file__).resolve().parents[1]
    files = [package / name for name in SIMULATION_FILES]
    for sub in SIMULATION_PACKAGES:
        files += sorted((package / sub).glob("*.py"))
    return files


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the source of the simulating code (the git commit misses uncommitted edits)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in simulation_sources():
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# ---- the worker -------------------------------------------------------------------------------------------


def run_one(scenario: dict, values: Mapping[str, Any], seed: int) -> dict:
    """Run the model once; top-level and given plain data so any executor can pickle it to any machine.

    Never raises for a failing run: the error comes back as data, so one bad run cannot stop the others."""
    start = time.perf_counter()
    try:
        # a fresh, validated Scenario for every run (nothing a run does can leak into the next), built from
        # a cached base so a worker validates each base scenario once, not once per run
        base = _base(scenario)
        sc = apply_values(base, values, "<run>")
        records = simulate(sc, seed)
        return {
            "records": records,
            "error": None,
            "traceback": None,
            "wall_time_s": time.perf_counter() - start,
            "host": socket.gethostname(),
            "engine": default_engine(),  # the worker's: a cluster's workers may be set up unlike the command
        }
    except Exception as exc:
        return {
            "records": None,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "wall_time_s": time.perf_counter() - start,
            "host": socket.gethostname(),
        }


def run_packed(run: Callable[..., dict], scenario: dict, values: Mapping[str, Any], seed: int) -> dict:
    """`run` (run_one by default) in the worker, its records returned as the store's file (Store.pack): the
    worker compresses, so the command's one process, which collects every worker's runs, only writes them.
    Compressing there took 5 of the command's 8 ms of work a run at calibration scale: with two workers it
    took a third of a core from them, and on a cluster it capped the runs per second whatever the workers."""
    out = run(scenario, values, seed)
    if out.get("records") is not None:
        out = {**out, "records": None, "npz": Store.pack(out["records"])}
    return out


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
        """The run's json, None when it is missing or cannot be read."""
        try:
            return self._meta(key)
        except DamagedRun:
            return None

    def _meta(self, key: str) -> dict | None:
        path = self._json(key)
        try:
            meta = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON
            raise DamagedRun(path, exc) from None
        if not isinstance(meta, dict):
            raise DamagedRun(path, f"expected a JSON object, got {type(meta).__name__}")
        return meta

    def records(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The run's records; DamagedRun (naming the file) if they cannot be read or have another shape."""
        path = self._npz(key)
        try:
            with np.load(path) as data:
                records = data["records"]
        except Exception as exc:  # a damaged zip raises anything from BadZipFile and EOFError to KeyError
            raise DamagedRun(path, exc) from None
        if records.dtype != np.float64 or records.ndim != 3 or (shape is not None and records.shape != shape):
            raise DamagedRun(path, f"records of shape {records.shape} ({records.dtype}), expected {shape} (float64)")
        return records

    def save(self, result: RunResult) -> None:
        with interrupts_deferred():  # a Ctrl-C or kill inside numpy's savez became a ValueError and a traceback
            self._save(result)

    @staticmethod
    def pack(records: np.ndarray) -> bytes:
        """A run's records as its `.npz` file: numpy's savez_compressed layout (np.load reads it), deflated at
        level 1, which takes 3.2 ms a calibration-scale run where savez_compressed's level 6 takes 5.0, for files
        5% larger (the records are float64 in their last bits: no level compresses them much)."""
        buf = io.BytesIO()
        with (
            zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
            archive.open("records.npy", "w", force_zip64=True) as member,
        ):
            np.lib.format.write_array(member, np.asarray(records), allow_pickle=False)
        return buf.getvalue()

    @staticmethod
    def unpack(npz: bytes) -> np.ndarray:
        with np.load(io.BytesIO(npz)) as data:
            return data["records"]

    def _save(self, result: RunResult) -> None:
        if result.npz is not None or result.records is not None:
            atomic_write(self._npz(result.key), result.npz if result.npz is not None else self.pack(result.records))
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

    def load(
        self, key: str, spec: RunSpec, shape: tuple[int, ...] | None, keep_records: bool = True
    ) -> RunResult | None:
        """The finished run stored under `key` (its records checked against `shape`), or None when there is
        none or it failed. Raises DamagedRun, naming the file, when a stored file cannot be read."""
        meta = self._meta(key)
        if meta is None or meta.get("status") != STATUS_OK:
            return None
        records = self.records(key, shape)
        return RunResult(
            spec,
            key,
            STATUS_OK,
            wall_time_s=_float(meta.get("wall_time_s")),
            records=records if keep_records else None,
            resumed=True,
            host=meta.get("host") if isinstance(meta.get("host"), str) else None,
        )

    def commits(self, keys: Iterable[str]) -> list[str]:
        """The code commits that produced these runs (more than one: results mix model versions)."""
        found = {str((self.meta(k) or {}).get("code", {}).get("commit")) for k in keys}
        return sorted(found)


def _round(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def _float(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


class DamagedRun(OSError):
    """A stored run file that cannot be read (truncated, empty, not UTF-8, not a JSON object, records of the
    wrong shape): the runner treats it as missing and runs it again."""

    def __init__(self, path: Path, reason: Any):
        if isinstance(reason, BaseException):
            reason = f"{type(reason).__name__}: {reason}".rstrip(": ")
        super().__init__(None, f"unreadable stored run ({reason})", str(path))


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
        ctx.set_forkserver_preload(["egovsim.runner.no_sigint", "egovsim.runner.runner"])
        return ctx
    return multiprocessing.get_context("spawn")


class ProcessPool(Executor):
    """A local process pool that survives a dead worker and leaves no process behind when this one ends.

    - A worker killed from outside (an out-of-memory kill) breaks a ProcessPoolExecutor for good: every run in
      it fails with BrokenProcessPool. The next submit here starts a fresh pool, and `completed` runs again
      what the break took down.
    - Workers exit when this process is gone, however it ended (SIGKILL included): each waits on a pipe whose
      only write end this process holds. (They are children of the forkserver, not of this process, so
      prctl's parent-death signal would not see this process die.) The forkserver and the resource tracker
      then end by themselves, their last clients gone."""

    def __init__(self, workers: int):
        self.workers = workers
        self._context = _process_context()
        self._alive, self._alive_w = self._context.Pipe(duplex=False)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        busy = 2 * self.workers > available_cpus()  # no spare core per worker for a large run's second thread
        return ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=_start_worker, initargs=(self._alive, busy)
        )

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with _ctrl_c_deferred():  # a submit may start workers
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenExecutor:  # a worker died: this pool is unusable, start another
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = self._start()
                return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Like Executor.map (calibration's ABC sampler uses it), with the runs a dead worker took down run again."""
        done = dict(completed(self, enumerate((fn, *args) for args in zip(*iterables))))
        return (done[i].result() for i in range(len(done)))

    def stop(self) -> None:
        """At Ctrl-C, SIGTERM or a crash: end the running runs now (their results would be thrown away)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)
        # A worker ended while sending a result leaves half a message in the result pipe, and the pool's
        # manager thread would wait for the rest forever (shutdown too). With the workers gone, closing our own
        # copy of the pipe's write end turns that wait into EOF: the pool counts itself broken and ends.
        results = getattr(self._pool, "_result_queue", None)
        if results is not None:
            results._writer.close()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)
        if wait:  # the workers have exited: they no longer need to watch us
            self._alive_w.close()
            self._alive.close()


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Ctrl-C held until the block ends. Starting a worker waits for the forkserver (seconds, while it first
    imports the model); interrupted then, the pool would never learn of the worker, which, forked a moment
    later, would find the pool's semaphores gone and print a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def _start_worker(alive, busy: bool) -> None:
    """Worker initializer: end this worker the moment the process that started the pool is gone. Ctrl-C
    reaches every process of the terminal's group; a worker leaves it to the command, which stops the pool
    (ProcessPool.stop), instead of printing its own traceback. `busy`: as many workers as cores, so a large run
    draws no step ahead in a second thread (population.share_cores)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if busy:
        population.share_cores()

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            alive.recv_bytes()  # nothing is ever sent: this returns (EOFError) when the parent's end closes
        os._exit(1)

    threading.Thread(target=watch, name="egovsim-exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def make_executor(
    workers: int | None = None, executor: str = "process", scheduler: str | None = None
) -> Iterator[Executor]:
    """An executor to hand to `run_many`, closed properly on leaving the block (also on Ctrl-C or SIGTERM).

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
        pool = ProcessPool(n)
        try:
            yield pool
        except BaseException:  # Ctrl-C, SIGTERM or a crash: drop queued runs, end running ones, no orphans
            pool.stop()
            raise
        finally:
            try:
                pool.shutdown(wait=True, cancel_futures=True)
            except BaseException:  # Ctrl-C while the idle workers exit: end them now, the runs are done
                pool.stop()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        with dask_client(n, scheduler) as client:
            yield client.get_executor(pure=False)  # run_many already runs each distinct run once


def _shared_cores_plugin(client, local_threads: int | None):
    """A Dask worker plugin that, in every worker, calls population.share_cores unless its machine has a spare core
    for each thread of the cluster's workers there: `local_threads` for a LocalCluster, else as counted when the
    plugin is registered (a worker's own count if its machine had none then)."""
    from distributed import WorkerPlugin
    from distributed.comm import get_address_host

    threads: dict[str, int] = {}
    for address, info in client.scheduler_info().get("workers", {}).items():
        host = get_address_host(address)
        threads[host] = threads.get(host, 0) + int(info.get("nthreads", 1))
    if local_threads is not None:
        threads = dict.fromkeys(threads, local_threads)

    class SharedCores(WorkerPlugin):
        name = "egovsim-shared-cores"

        def setup(self, worker) -> None:
            busy = threads.get(get_address_host(worker.address), local_threads or worker.state.nthreads)
            if 2 * busy > available_cpus():
                population.share_cores()

    return SharedCores()


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None):
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, ValueError) as exc:  # ValueError: not an address (distributed's parser says why)
            raise InputError(
                "--scheduler", "", f"cannot connect to the Dask scheduler at {clipped(scheduler)}: {exc}"
            ) from None
    else:
        # one thread per worker process: the model is numpy-bound and holds the GIL between calls
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
    try:
        # workers started or restarted later included; a LocalCluster's are all on this machine
        client.register_plugin(_shared_cores_plugin(client, workers if cluster is not None else None))
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
    again (one that cannot be read is named in a warning and run again); each new run is saved the moment it
    finishes. progress: a description for a progress bar on stderr
    (None: no bar). on_result: called with each run as it finishes. keep_records=False drops records from
    memory once stored (large sweeps; read them back with `store.records(key)`). run: the worker function,
    `run(scenario_dict, values, seed) -> dict` (tests replace it). max_pending bounds the runs submitted but
    not yet collected, so memory stays flat however large the design.
    """
    plain = {label: sc.to_dict() for label, sc in scenarios.items()}
    # `parameters` says where the values came from (labels, a posterior's path on this machine): it changes no
    # run, so it is not part of a run's key, and a moved checkout still resumes
    hashes = {label: content_hash({k: v for k, v in d.items() if k != "parameters"}) for label, d in plain.items()}
    keys = [run_key(hashes[s.scenario], s.values, s.seed) for s in specs]
    done: dict[str, RunResult] = {}
    todo: dict[str, RunSpec] = {}
    damaged: list[DamagedRun] = []
    for spec, key in zip(specs, keys):
        if key in done or key in todo:
            continue  # the same run asked for twice (e.g. one scenario compared with itself): run it once
        stored = None
        if store is not None:
            try:
                stored = store.load(key, spec, records_shape(scenarios[spec.scenario], spec.values), keep_records)
            except DamagedRun as exc:  # a damaged file is a missing run: said once, then run again
                damaged.append(exc)
        if stored is not None:
            done[key] = stored
        else:
            todo[key] = spec
    if damaged:
        warn_damaged(damaged)

    # a worker packs the runs a store will keep (run_packed); without a store, the records come back as they are
    call = (lambda *args: (run_packed, run, *args)) if store is not None else (lambda *args: (run, *args))
    calls = ((key, call(plain[spec.scenario], dict(spec.values), spec.seed)) for key, spec in todo.items())
    with (
        progress_bar(len(todo), progress, resumed=len(done)) as bar,
        contextlib.closing(completed(executor, calls, max_pending)) as finished,
    ):  # closing: Ctrl-C here cancels what has not started
        for key, future in finished:
            result = _collect(future, key, todo[key])
            if store is not None:
                store.save(result)  # stored before the next run is handed out (a serial executor runs at submit)
            if keep_records and result.npz is not None:
                result.records = Store.unpack(result.npz)
            if not keep_records:
                result.records = None
            result.npz = None
            done[key] = result
            bar(result)
            if on_result is not None:
                on_result(result)
    return [dataclasses.replace(done[key], spec=spec) for spec, key in zip(specs, keys)]


def completed(executor: Executor, calls: Iterable[tuple[Any, tuple]], max_pending: int = 512) -> Iterator[tuple]:
    """Submit each call `(tag, (fn, *args))` to `executor` and yield `(tag, future)` as each finishes, with at
    most `max_pending` submitted and not yet yielded (memory stays flat however many calls).

    A worker that dies (killed for lack of memory, say) breaks a process pool: every run in it fails with
    BrokenExecutor, though only one was on the dead worker. Those runs are run again, each alone (so memory
    is not short twice, and a second break names the culprit): one that breaks the pool even alone fails with
    WorkerDied. Calls not yet submitted are untouched: a process pool gets only one more than it has
    workers. On leaving early (Ctrl-C, SIGTERM), runs submitted but not started are cancelled."""
    calls = iter(calls)
    max_pending = min(max_pending, getattr(executor, "workers", max_pending) + 1)
    pending: dict[Future, tuple[Any, tuple, bool]] = {}
    suspects: deque[tuple[Any, tuple]] = deque()

    def submit(tag: Any, call: tuple, alone: bool) -> Future:
        try:
            future = executor.submit(*call)
        except Exception as exc:  # e.g. cannot be pickled: this run fails (retried next time), the rest go on
            future = Future()
            future.set_exception(exc)
        pending[future] = (tag, call, alone)
        return future

    try:
        while True:
            if suspects and not pending:
                submit(*suspects.popleft(), alone=True)
            while not suspects and len(pending) < max_pending:
                tag_call = next(calls, None)
                if tag_call is None or submit(*tag_call, alone=False).done():
                    break  # done already: a serial executor, hand it back before the next one starts
            if not pending:
                return
            finished = [f for f in pending if f.done()] or wait(pending, return_when=FIRST_COMPLETED)[0]
            for future in finished:
                tag, call, alone = pending.pop(future)
                if not future.cancelled() and isinstance(future.exception(), BrokenExecutor):
                    if not alone:
                        suspects.append((tag, call))
                        continue
                    future = Future()
                    future.set_exception(
                        WorkerDied(
                            "a worker process died twice on the same run, the second time with no other run beside it "
                            "(killed from outside: out of memory?)"
                        )
                    )
                yield tag, future
    finally:
        for future in pending:
            future.cancel()


def records_shape(scenario: Scenario, values: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """The shape of a run's records, (steps + 1, provinces, columns); None if the values are invalid (the run
    then fails and says why)."""
    try:
        if {"start_year", "end_year", "steps_per_year"} & set(values):
            scenario = apply_values(scenario, values)
    except InputError:
        return None
    return (scenario.n_steps + 1, len(scenario.provinces), len(COLUMNS))


def warn_damaged(damaged: Sequence[DamagedRun], show: int = 5) -> None:
    lines = [f"egovsim: warning: {exc.filename}: {exc.strerror}; running it again" for exc in damaged[:show]]
    if len(damaged) > show:
        lines.append(f"egovsim: warning: ... and {len(damaged) - show} more unreadable stored runs, run again")
    print("\n".join(lines), file=sys.stderr)


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
    if out.get("error") is None and out.get("engine", default_engine()) != default_engine():
        # keyed and recorded as this command's engine: a worker's other engine would be stored under that name
        out = {
            **out,
            "records": None,
            "error": f"the worker on {out.get('host')} ran the {out['engine']} engine "
            f"(EGOVSIM_ENGINE), this command the {default_engine()} one: set it alike on every worker",
        }
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
        npz=out.get("npz") if status == STATUS_OK else None,
    )


@contextlib.contextmanager
def progress_bar(total: int, desc: str | None, resumed: int = 0):
    """A tqdm bar on stderr (runs done, failures, time left), yielded as a callback taking each RunResult."""
    from tqdm import tqdm

    failed = 0
    bar = tqdm(
        total=total, desc=desc, unit="run", disable=desc is None, file=sys.stderr, mininterval=0.5, dynamic_ncols=True
    )
    if resumed:
        bar.set_postfix_str(f"{resumed} resumed from store")

    def update(result: RunResult) -> None:
        nonlocal failed
        failed += not result.ok
        bar.set_postfix_str(f"failed {failed}" + (f", {resumed} resumed" if resumed else ""), refresh=False)
        bar.update(1)

    try:
        yield update
    finally:
        with _ctrl_c_deferred():  # the bar ends its line whole: a Ctrl-C meanwhile would print after a half line
            bar.close()


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
        if self.failed and all(r.error == self.failed[0].error for r in self.failed) and len(self.failed) > 1:
            # one message for every failure: the input, not chance (a crashed worker, a full disk)
            text += (
                "\n  every failed run gave the same message: if it is about the input, change that (a retry fails "
                "alike); else run the same command again to retry them"
            )
        elif self.failed:
            text += "\n  run the same command again to retry the failed runs"
        return text

    def as_dict(self) -> dict:
        return {"total": self.total, "run_now": self.ran, "resumed": self.resumed, "failed": len(self.failed)}


# ---- replicates of one scenario: statistics and the run folder -------------------------------------------
