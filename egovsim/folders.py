"""Output folders: one egovsim command at a time in each, and never the files of two runs mixed.

- Lock: a command holds an exclusive lock (flock) on `.egovsim.lock` inside its output folder for its whole
  life (and removes it at the end); a second command on the same folder stops at once (exit 2) instead of
  running every run beside it.
- A single run's folder is written whole into a fresh sibling and swapped in (one rename), so it is always
  entirely the old run or entirely the new one.
- An experiment folder keeps its store (runs/, calibrate's checkpoint) across commands; its summary files are
  a set: before writing one, the earlier set is removed, provenance.json first, and the new provenance.json
  is written last. A folder with provenance.json holds one whole set; one without holds part of one set.
- One command per folder: the command a CLI invocation declares (`declare`) is recorded in command.json when it
  claims the folder, before any work. A folder holding egovsim's files is written again only by the same
  command (`Command.same_as`): another kind of result, other inputs, or (where runs are kept to resume) other
  settings are refused unless --overwrite, which clears egovsim's files first. After Ctrl-C, `interruption`
  says what the folder holds and the exact command line that resumes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from egovsim.errors import InputError
from egovsim.files import TEMPORARY, safe_name, write_json

try:
    import fcntl
except ImportError:  # not on Windows: no lock there
    fcntl = None

PACKAGE = Path(__file__).resolve().parent  # egovsim's own code: never an output folder
LOCK = ".egovsim.lock"
RECORD = "command.json"  # the command that writes this folder: written first, kept with the stores
MARKER = "provenance.json"  # written last, removed first
# the folders among egovsim's outputs: a command that keeps its runs writes them afresh each time
OUTPUT_FOLDERS = frozenset({"plots", "timeseries", "scenarios", "calibrated"})
# every name egovsim writes into an output folder (a test keeps this whole): only these are ever removed
OUTPUTS = OUTPUT_FOLDERS | frozenset(
    {
        MARKER,
        "scenario.yaml",
        "timeseries.csv",
        "summary.json",
        "timeseries_band.csv",
        "replicates.csv",
        "comparison.csv",
        "report.md",
        "experiment.yaml",
        "runs.csv",
        "timeseries.parquet",
        "indices.csv",
        "time_resolved.csv",
        "fit.json",
        "posterior.csv",
        "posterior_summary.csv",
        "predictive.csv",
        "observed_vs_simulated.csv",
        "columns.csv",
        "report.html",
        "sample.csv",
        "boxes.csv",
        "trajectory.csv",
        "cart.txt",
        "pareto.csv",
        "candidates.csv",
        "study.json",
        "coverage.csv",
        "truths.csv",
    }
)
STORES = frozenset({"runs", "fits", "checkpoint.npz", "abc.db", "abc.db.unreadable", RECORD})  # kept: reruns resume
_STAGE = ".egovsim-stage"


class FolderInUse(InputError):
    def __str__(self) -> str:
        return f"{self.source} {self.message}"


@dataclasses.dataclass(frozen=True)
class Command:
    """What a command writes into its output folder, as far as deciding whether it may write there again.

    kind: the kind of result ("run", "run --replicates", "compare", "sweep", "sensitivity", "calibrate ...").
    inputs: the files it reads (resolved paths). settings: everything else that changes its results (the
    resolved scenarios, seeds, ...), compared by hash. resumes: it keeps its runs in the folder to resume from
    (False: the folder is replaced whole, so only kind and inputs must match). argv: its command line."""

    kind: str
    inputs: tuple[str, ...]
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    resumes: bool = True
    argv: tuple[str, ...] = ()
    overwrite: bool = False
    earlier_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)  # as once hashed

    def record(self, folder: Path) -> dict:
        return {
            "kind": self.kind,
            "inputs": self.inputs_from(folder),
            "inputs_absolute": list(self.inputs),
            "settings": settings_hash(self.settings),
            "command": resume_line(self.argv, folder),
        }

    def inputs_from(self, folder: Path) -> list[str]:
        """The input files as paths from `folder`: a results folder and its inputs moved or cloned together (the
        shipped calibration, a copied project) are still the same command's."""
        return [os.path.relpath(Path(i).resolve(), Path(folder).resolve()) for i in self.inputs]

    def refusal(self, found: dict, folder: Path) -> str | None:
        """Why this command may not write into `folder`, which holds `found` (its command.json), None if it may.
        The same inputs are the same files from the folder (the two moved together) or at the same place (the folder
        moved alone); records of before the first hold absolute paths as `inputs`."""
        earlier = f"`{clipped_line(found.get('command') or '?')}`"
        if found.get("kind") != self.kind:
            return f"holds the results of {earlier} (a {found.get('kind')}, not a {self.kind})"
        here = list(self.inputs)
        if found.get("inputs") not in (self.inputs_from(folder), here) and found.get("inputs_absolute") != here:
            return f"holds the results of {earlier}, from other input files"
        hashed_then = settings_hash(self.earlier_settings) if self.earlier_settings else ""
        if self.resumes and found.get("settings") not in (settings_hash(self.settings), hashed_then):
            return (
                f"holds the runs of {earlier}, whose file contents or result-changing options (--set, --scale, "
                "--seed, ...) differ: resuming would mix the two"
            )
        return None


def clipped_line(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def settings_hash(settings: Mapping[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resume_line(argv: Sequence[str], folder: Path) -> str:
    """`argv` as one shell line, with --out naming `folder` (a default folder is timestamped: the same command
    without --out would start afresh), input files by absolute path, and without --overwrite (it would throw the
    kept runs away)."""
    import shlex

    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out=") and arg != "--overwrite":
            # an input file by its absolute path: the line then works from any directory, not only this one
            kept.append(str(Path(arg).resolve()) if not arg.startswith("-") and Path(arg).is_file() else arg)
    return shlex.join([*kept, "--out", str(folder)])


_DECLARED: list[Command] = []  # the command this process runs (egovsim.cli declares it): claimed checks it
# folders claimed: (folder, command, [finished, swapped in]): `replaced` marks the swap, `claimed` the end
_CLAIMS: list[tuple[Path, Command | None, list[bool]]] = []


def declare(command: Command | None) -> None:
    """The command whose output folder `claimed` will hold next (None: no check, as for library calls)."""
    _DECLARED[:] = [] if command is None else [command]


@contextlib.contextmanager
def claimed(folder: Path, whole: bool = False) -> Iterator[Path]:
    """Hold `folder` (created if need be) for one command: locked against other egovsim processes until the
    block ends. whole=True: the command replaces the folder whole (`replaced`), so a folder holding anything
    egovsim did not write is refused before any work, not deleted. A declared command (`declare`) may write
    only into a folder that is empty or was written by the same command (`Command.refusal`), or with
    --overwrite, which removes egovsim's files there first; it is recorded in command.json."""
    folder = Path(folder)
    check_place(folder)
    if whole:
        check_replaceable(folder)
    created = not folder.exists() or folder in _MADE
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(folder), "--out", f"cannot be made: {exc.strerror or exc}") from None
    fd = _lock(folder)  # first: a folder in use is said to be in use, whatever it holds
    command = _DECLARED[0] if _DECLARED else None
    finished = [False, False]
    provisional = False  # a whole run's record written at the start, replaced by the one swapped in with the run
    try:
        if whole:  # a whole run replaces the folder: anything it did not write must not be there
            foreign = not_written_by_the_run(folder)
            if foreign:
                raise InputError(
                    str(folder),
                    "--out",
                    f"holds files egovsim did not write ({foreign[0]}...): choose a new or empty folder",
                )
        _remove_stale_stages(folder)  # left by a killed run: no live process can own them while we hold the lock
        foreign = set()  # entries named like ours that no recorded command wrote: never removed by egovsim
        if command is not None:
            recorded = _egovsim_folder(folder)
            same = _check_writer(folder, command)
            if command.resumes and not recorded:  # a folder of the user's own files does not become ours
                _refuse_unrecorded_entries(folder)
            held = {p.name for p in _entries(folder) if _holds_results(p)} - {RECORD}
            foreign = _foreign(folder) & held if same else held  # what is left after --overwrite is not ours
            if command.resumes:  # first: the runs it keeps are then always those of a recorded command
                write_json(folder / RECORD, {**command.record(folder), "foreign": sorted(foreign)})
            elif _provisional(folder) or not (folder / RECORD).exists():
                # fenced off from the start: no other command may claim a folder inside this one while it runs
                # (the swap at its end would delete it); the run's own record is swapped in with the run
                write_json(folder / RECORD, {**command.record(folder), "entries": [], "provisional": True})
                provisional = True
        _CLAIMS.append((folder, command, finished))
        yield folder
        finished[0] = True
        if command is not None and command.resumes:
            _record_summary_files(folder)
    finally:
        if provisional and not any(finished):  # the run was not swapped in: its provisional record goes
            with contextlib.suppress(OSError):
                (folder / RECORD).unlink()
        # unlinked while still locked: a process that opened it meanwhile sees it gone (_lock) and starts over
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(folder / LOCK)):
                (folder / LOCK).unlink()
        if created:  # no empty folder behind a command that wrote nothing (bad input, Ctrl-C)
            with contextlib.suppress(OSError):
                if [p.name for p in _entries(folder)] == [RECORD]:
                    (folder / RECORD).unlink()
                folder.rmdir()
        os.close(fd)


def _check_writer(folder: Path, command: Command) -> bool:
    """The one rule: egovsim's files in a folder are those of one command (see Command.refusal). Returns whether
    the folder holds this same command's results (False: empty of results, or replaced with --overwrite)."""
    held = [p for p in _entries(folder) if _holds_results(p)]
    if not held or (_provisional(folder) and [p.name for p in held] == [RECORD]):  # a killed run's fence only
        return False
    found = _read_record(folder)
    if found is None and (folder / RECORD).exists():
        raise InputError(
            str(folder),
            "--out",
            f"holds a {RECORD} egovsim cannot read (not a record of a command): remove it, or choose another --out",
        )
    if found is None:  # e.g. an earlier egovsim's results, or a folder of the user's named like ours ("runs")
        raise InputError(
            str(folder),
            "--out",
            f"holds {held[0].name} but no {RECORD} saying which egovsim command wrote it: choose another --out",
        )
    added = _added_files(folder, _owned(folder, {p.name for p in held}))
    if added:  # a rerun, or --overwrite, writes these folders afresh: the user's file in one would go with it
        raise InputError(
            str(folder),
            "--out",
            f"holds {added[0]}, which egovsim did not write, in a folder it replaces: move it out first",
        )
    reason = command.refusal(found, folder)
    if reason is None:
        return True
    if not command.overwrite:
        raise InputError(
            str(folder), "--out", f"{reason}; choose another --out, or give --overwrite to replace its results"
        )
    inside = [i for i in command.inputs if Path(i).resolve().is_relative_to(folder.resolve())]
    if inside:  # its own input would be among what is removed
        raise InputError(str(folder), "--out", f"holds this command's input {inside[0]}: choose another --out")
    # --overwrite: the recorded command's files go (its runs too, finished or interrupted); what was already
    # there when it started and is not ours (its `foreign`) stays, whatever its name
    owned = _owned(folder, {p.name for p in held})
    for entry in held:
        if entry.name not in owned and entry.name != RECORD:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    return False


def not_written_by_the_run(folder: Path) -> list[str]:
    """What a whole run's folder holds that its recorded run did not write (the user's files, or another
    command's folder made inside it): replacing the folder would delete them."""
    held = {p.name for p in _entries(folder) if _holds_results(p)} - {RECORD}
    owned = _owned(folder, held)
    return sorted(
        p.name
        for p in _entries(folder)
        if p.name not in (LOCK, RECORD) and (not _ours(p.name) or (p.name in held and p.name not in owned))
    ) + _added_files(folder, owned)


def _refuse_unrecorded_entries(folder: Path) -> None:
    """A folder no egovsim command recorded may hold nothing but an earlier egovsim's own entries: results
    written among the user's files would be mixed with them (and a rerun would clear folders named like ours)."""
    theirs = sorted(p.name for p in _entries(folder) if p.name != LOCK and not _ours(p.name))
    if theirs:
        raise InputError(
            str(folder), "--out", f"holds files egovsim did not write ({theirs[0]}...): choose a new or empty folder"
        )


def _record_summary_files(folder: Path) -> None:
    """After a resumable command wrote its summary files: every file in its summary folders, in its record, so
    a file added there later is known to be the user's (_added_files)."""
    found = _read_record(folder)
    if found is not None:
        write_json(folder / RECORD, {**found, "files": sorted(_files_below(folder, OUTPUT_FOLDERS - _foreign(folder)))})


def _foreign(folder: Path) -> set[str]:
    """Entries named like egovsim's outputs that were in the folder before its recorded command started and are
    not its own (command.json `foreign`): the user's, never removed or counted as results by egovsim."""
    found = _read_record(folder)
    names = found.get("foreign") if found else None
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _owned(folder: Path, held: set[str]) -> set[str]:
    """Which of the `held` entries the folder's recorded command wrote: those it lists (a whole run records
    its entries), or else all but its `foreign` ones (a command that resumes records what was there before it)."""
    found = _read_record(folder) or {}
    entries = found.get("entries")
    if isinstance(entries, list):
        return held & {n for n in entries if isinstance(n, str)}
    return held - _foreign(folder)


def _files_below(folder: Path, names: frozenset[str] | None = None) -> list[str]:
    """Every file below `folder`'s subfolders (those in `names` if given), as paths relative to it (a run's
    plots/gaps.png, ...)."""
    return [
        p.relative_to(folder).as_posix()
        for sub in _entries(folder)
        if sub.is_dir() and not sub.is_symlink() and (names is None or sub.name in names)
        for p in sub.rglob("*")
        if not p.is_dir()
    ]


def _added_files(folder: Path, owned: set[str]) -> list[str]:
    """Files in the recorded command's own subfolders that it did not write (e.g. the user's plots/my.png): a
    rerun, or --overwrite, replaces those folders and would delete them. A whole run's record lists the files of
    all its subfolders, a command that keeps its runs those of its OUTPUT_FOLDERS (not its runs/). Empty where
    the record lists no files (an older egovsim's)."""
    found = _read_record(folder) or {}
    files = found.get("files")
    if not isinstance(files, list):
        return []
    written = {f for f in files if isinstance(f, str)}
    listed = None if isinstance(found.get("entries"), list) else OUTPUT_FOLDERS
    return [f for f in _files_below(folder, listed) if f.split("/", 1)[0] in owned and f not in written]


def _provisional(folder: Path) -> bool:
    """The folder's record is a single run's fence, written at its start (a killed run leaves it behind)."""
    return bool((_read_record(folder) or {}).get("provisional"))


def check_place(folder: Path, field: str = "--out") -> None:
    """Where a command may write a folder (its --out, or calibrate's --install). Not the working directory or
    one holding it: a whole run swaps its folder for a new one, which the working directory would hold on to
    (and results would land among everything else). Not a symbolic link: the swap would replace the link, not
    fill the folder it points to. Not inside another command's output folder, nor holding one: the two would
    mix, and the other could no longer be rerun (an --out of results/ would refuse every default folder)."""
    folder = Path(folder)
    if ".." in folder.parts:  # r1/plots/..: its staging folder would land inside r1/plots, another run's
        raise InputError(
            str(folder), field, f"has a '..' part: give the folder's own path ({os.path.normpath(folder)})"
        )
    if folder.is_symlink():
        raise InputError(
            str(folder), field, f"is a symbolic link (to {os.readlink(folder)}): give the folder it points to"
        )
    outer = next((p for p in folder.resolve().parents if _egovsim_folder(p)), None)
    if outer is not None:
        raise InputError(
            str(folder),
            field,
            f"is inside {outer}, the output folder of `{clipped_line(_read_record(outer).get('command') or '?')}`: "
            "choose a folder outside it",
        )
    inner = next((p for p in _entries(folder) if p.is_dir() and _egovsim_folder(p)), None)
    if inner is not None:
        raise InputError(
            str(folder),
            field,
            f"holds {inner.name}, the output folder of `{clipped_line(_read_record(inner).get('command') or '?')}`: "
            "choose a folder of its own",
        )
    here = Path.cwd().resolve()
    if here == folder.resolve() or here.is_relative_to(folder.resolve()):  # a folder inside it is the usual case
        raise InputError(str(folder), field, "is the working directory (or holds it): give a folder inside it")
    if overlap(folder, PACKAGE):  # results among the code: a folder replaced or cleared takes modules with it
        raise InputError(str(folder), field, f"is inside egovsim's code or holds it ({PACKAGE}): choose another folder")


MOUNTINFO = Path("/proc/self/mountinfo")


def is_mount_point(folder: Path, mountinfo: Path = MOUNTINFO) -> bool:
    """Whether something is mounted on `folder`. os.path.ismount compares devices, so it misses a bind mount of a
    folder of the same file system (docker -v, mount --bind); Linux lists every mount in /proc/self/mountinfo,
    its fifth field the mount point (spaces and the like written as octal escapes)."""
    if os.path.ismount(folder):
        return True
    try:
        lines = mountinfo.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:  # not Linux: ismount is what there is
        return False
    target = str(Path(folder).resolve())
    unescape = lambda text: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)  # noqa: E731
    return any(len(fields) > 4 and unescape(fields[4]) == target for fields in (line.split(" ") for line in lines))


def check_replaceable(folder: Path, field: str = "--out") -> None:
    """Before any work, that `replaced` will be able to swap `folder` at the end: not a mount point (a rename
    cannot move one), and its parent folder writable (the new folder is made beside it). Found only at the swap,
    either would lose the whole run's results."""
    folder = Path(folder)
    if folder.exists() and is_mount_point(folder):
        raise InputError(
            str(folder), field, "is a mount point, which a whole run cannot replace: give a folder inside it"
        )
    parent = folder.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # replaced() makes the missing folders: the nearest existing one must take them
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}.", suffix=_STAGE)
    except OSError as exc:
        raise InputError(
            str(folder),
            field,
            f"cannot be replaced: the new folder is written beside it, in {parent}, which refuses it "
            f"({exc.strerror or exc}); give a folder in a place you can write",
        ) from None
    with contextlib.suppress(OSError):  # named like a stage: another run's clean-up may have taken it already
        os.rmdir(probe)


def _egovsim_folder(folder: Path) -> bool:
    """The folder is an egovsim command's output folder: its command.json is a record egovsim wrote (another
    tool's command.json in a home folder must not fence off everything below it)."""
    found = _read_record(folder)
    return found is not None and "kind" in found and str(found.get("command", "")).startswith("egovsim ")


def overlap(a: Path, b: Path) -> bool:
    """The two paths are one folder, or one holds the other (after resolving links and '..')."""
    a, b = Path(a).resolve(), Path(b).resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _holds_results(entry: Path) -> bool:
    """An entry of ours with results in it: not the lock, a temporary, or a store of no finished run (a
    store holds nothing but temporaries of killed writes, or nothing, until its first run is stored)."""
    if not _ours(entry.name) or entry.name == LOCK or _is_temporary(entry.name):
        return False
    if entry.name == "runs" and entry.is_dir():
        return any(TEMPORARY.fullmatch(p.name) is None for p in _entries(entry))
    return True


def _keeps_runs(folder: Path) -> bool:
    return any(_entries(folder / "runs")) or any((folder / s).exists() for s in STORES - {"runs", RECORD})


def _read_record(folder: Path) -> dict | None:
    try:
        found = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def interruption() -> str:
    """After Ctrl-C or SIGTERM: what the output folder now holds, and how to resume (one line)."""
    if not _CLAIMS:
        return "nothing half-written was left behind"
    folder, command, finished = _CLAIMS[-1]
    if finished[0]:
        return f"the results were written whole to {folder} before the interruption"
    if command is not None and command.resumes and _keeps_runs(folder):
        return f"the finished runs are kept; to resume: {resume_line(command.argv, folder)}"
    return "nothing half-written was left behind"


RESULTS = Path("results")


def default_run_folder(name: str, root: Path = RESULTS) -> Path:
    """results/<scenario>-<UTC time>; a suffix keeps two runs in the same second apart."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    safe = safe_name(name, "run")
    folder = root / f"{safe}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{safe}-{stamp}-{n}"
    return folder


_MADE: set[Path] = set()  # default folders new_folder made for this command: removed again if left empty


def new_folder(name: str) -> Path:
    """A default output folder, results/<name>-<time>, created here: two commands started in the same second
    get a folder each instead of finding the other's in use."""
    while True:
        folder = default_run_folder(name)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(parents=True)
            _MADE.add(folder)
            return folder


def remove_unused() -> None:
    """At the end of a command: the default folders it made and left empty (bad input, Ctrl-C) go again;
    the declared command and the claims are forgotten."""
    _DECLARED.clear()
    _CLAIMS.clear()
    for folder in _MADE:
        with contextlib.suppress(OSError):
            folder.rmdir()
    _MADE.clear()


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _lock(folder: Path) -> int:
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FolderInUse(
                str(folder),
                "--out",
                f"is in use by another egovsim process (pid {pid}); wait for it or choose another --out",
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)  # the file was removed or replaced while we waited for it: lock the one there now
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def replaced(folder: Path) -> Iterator[Path]:
    """A fresh folder beside `folder` to write a whole run into, swapped in for `folder` when the block
    succeeds and removed when it fails: `folder` is always entirely the old run or entirely the new one."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():  # the swap would put the file aside, out of the user's sight
        raise InputError(str(folder), "", "is a file, not a folder: give a folder for the results")
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=_STAGE))
    try:
        yield stage
        claimed_here = next(((c, done) for f, c, done in reversed(_CLAIMS) if f == folder), (None, None))
        claim, done = claimed_here
        if claim is not None:  # the record is part of the whole: swapped in with the run it describes
            written = sorted(p.name for p in stage.iterdir())  # all a whole run may later replace
            files = sorted(_files_below(stage))  # and every file in them: a file added later is the user's
            write_json(stage / RECORD, {**claim.record(folder), "entries": written, "files": files})
        gained = not_written_by_the_run(folder) if done is not None and folder.exists() else []
        if gained:  # an output folder that gained, e.g., a folder made inside it while the run ran
            raise InputError(
                str(folder),
                "--out",
                f"gained {gained[0]} while the run ran, which egovsim did not write: the new run was not swapped "
                "in; move it out and run again",
            )
        _take_permissions(stage, folder)
        if not _exchange(stage, folder):
            if folder.exists():  # no atomic exchange here: two renames, the old run kept until the new is in
                old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=_STAGE))
                os.replace(folder, old)
                os.replace(stage, folder)
                stage = old
            else:
                os.replace(stage, folder)
        if done is not None:
            done[1] = True  # swapped in: the record in the folder is now the run's own
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # the new run if it failed, the old one if it was swapped out


def _take_permissions(stage: Path, folder: Path) -> None:
    """The new folder gets the permissions (and group, where this user may set it) of the one it replaces, so a
    private or group-shared folder stays so; a new folder those of any other (mkdtemp makes 0700)."""
    try:
        old = os.stat(folder)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)
        return
    os.chmod(stage, stat.S_IMODE(old.st_mode))
    with contextlib.suppress(OSError):  # another group is not this user's to give: the mode still holds
        os.chown(stage, -1, old.st_gid)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (2, 22, 38, 95):  # ENOENT (b missing), EINVAL, ENOSYS, EOPNOTSUPP: fall back to renames
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove_stale_stages(folder: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.[a-z0-9_]{{8}}{re.escape(_STAGE)}")
    for entry in _entries(folder.parent):
        if pattern.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def fresh_outputs(folder: Path) -> None:
    """Before an experiment folder's summary files are written: remove the earlier set (provenance.json
    first, then every name egovsim writes, with their temporary files), keeping the stores and anything else."""
    folder = Path(folder)
    foreign = _foreign(folder)  # the user's entries named like ours stay
    (folder / MARKER).unlink(missing_ok=True)
    for entry in _entries(folder):
        if _is_temporary(entry.name) or (entry.name in OUTPUTS and entry.name not in foreign):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)


def _is_temporary(name: str) -> bool:
    """A file `atomic_write` was writing when its process was killed (.NAME.XXXXXXXX.tmp)."""
    return TEMPORARY.fullmatch(name) is not None and name[1:-4].rsplit(".", 1)[0] in OUTPUTS | {RECORD}


def _ours(name: str) -> bool:
    return name in OUTPUTS or name in STORES or name == LOCK or _is_temporary(name)
