"""Reading the YAML files users write: one-line errors for missing, unreadable or malformed files, a key
given twice, merge keys with one meaning on every PyYAML version, bounded size, nesting and alias expansion,
and `extends:` (a file builds on others, mapping by mapping)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from egovsim.errors import InputError, clipped

MERGE_TAG = "tag:yaml.org,2002:merge"

# What any YAML file the tool reads may hold. A scenario, an experiment or the observations take a few
# kilobytes and a few levels; without bounds, a 54 MB file parses for minutes and a 365-byte tree of aliases
# stands for billions of items.
MAX_FILE_BYTES = 1_000_000

MAX_DEPTH = 50  # levels of nesting, aliases expanded (PyYAML's composer recurses once per level)

MAX_ALIASED_NODES = 100_000  # nodes that aliases (*name, << merges) add when expanded

MAX_DIGITS = 1000  # of a whole number: enough for the schema to name the field; int() of 4300 digits fails


class YAMLTooLarge(yaml.MarkedYAMLError):
    """A YAML document beyond the limits above (not malformed, so reported in its own words)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects a key given twice in one mapping, gives merge keys one meaning, and bounds
    what a document may expand to.

    A key given twice: plain YAML keeps the last silently, so a lever set twice (say, once by mistake further
    down the file) would hide the first value. Checked on the composed nodes, before merge keys (`<<: *anchor`)
    are flattened, so a mapping may still override what it merges; keys compare by resolved tag and text
    (2021 and "2021" differ).

    Merge keys follow the YAML 1.1 merge rule (https://yaml.org/type/merge.html), whatever PyYAML's version
    does (6.0.4 keeps the first of two merged values for a key, 6.0.3 the last): the mapping's own keys win
    over merged ones; of a list of merged mappings, the first listed wins; a merged mapping's own merges are
    resolved first, so nested merges compose.

    Bounds (checked on the composed node graph, before anything is built): nesting depth, and the number of
    nodes aliases add when expanded (MAX_DEPTH, MAX_ALIASED_NODES)."""

    def construct_yaml_timestamp(self, node):
        """A date that does not exist (2024-13-01) was a ValueError from datetime and a traceback: a YAML error,
        with its place in the file, like any malformed value."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"not a date: {node.value!r} ({exc})", node.start_mark
            ) from None

    def construct_yaml_int(self, node):
        """YAML 1.1 reads 33:30 as the base-60 number 2010 and 017 as octal 15: no one writing a scenario means
        either, so each is a YAML error with its place (a date or an event time silently became another year)."""
        if sum(c.isdigit() for c in node.value) > MAX_DIGITS:
            raise YAMLTooLarge(None, None, f"a whole number with more than {MAX_DIGITS} digits", node.start_mark)
        self._refuse_surprising_number(node)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        self._refuse_surprising_number(node)
        return super().construct_yaml_float(node)

    @staticmethod
    def _refuse_surprising_number(node) -> None:
        text = str(node.value).replace("_", "")
        if ":" in text:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{node.value!r} reads as a base-60 number in YAML 1.1: quote it, or write the number",
                node.start_mark,
            )
        digits = text.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits.isdigit():
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{node.value!r} reads as an octal number in YAML 1.1: write it without the leading 0",
                node.start_mark,
            )

    def compose_node(self, parent, index):
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:  # checked while composing: the composer itself recurses per level
            raise YAMLTooLarge(None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.composer.ComposerError(
                    None, None, f"duplicate key {clipped(key_node.value)} in one mapping", key_node.start_mark
                )
            seen.add(key)
        return node

    def flatten_mapping(self, node):
        node.value = self._merged_pairs(node, ())

    def _merged_pairs(self, node: yaml.MappingNode, stack: tuple[int, ...]) -> list:
        if id(node) in stack:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping merges itself (<< refers to an enclosing anchor)", node.start_mark
            )
        merged, own = [], []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in reversed(sources):  # applied last to first, so the first listed wins
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "<< takes a mapping or a list of mappings", source.start_mark
                    )
                merged.extend(self._merged_pairs(source, (*stack, id(node))))
        return _last_of_each_key(merged + own)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def _check_expansion(root: yaml.Node) -> None:
    """Reject a document whose aliases, expanded, add more than MAX_ALIASED_NODES nodes or nest deeper than
    MAX_DEPTH, or refer to themselves. Each node is measured once (sizes are memoised), so the check costs
    the size of the file, not of the expansion."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes when expanded, capped; levels)
    on_path: set[int] = set()
    aliased = 0

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        nonlocal aliased
        key = id(node)
        if key in measured:  # a node met again is an alias: it adds its whole expansion
            size, height = measured[key]
            aliased = min(aliased + size, MAX_ALIASED_NODES + 1)
        else:
            if key in on_path:
                raise YAMLTooLarge(None, None, "an alias refers to a node that contains it", node.start_mark)
            on_path.add(key)
            size, height = 1, 1
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            for child in children:
                child_size, child_height = measure(child, depth + 1)
                size, height = min(size + child_size, MAX_ALIASED_NODES + 1), max(height, child_height + 1)
            on_path.discard(key)
            measured[key] = (size, height)
        if depth + height - 1 > MAX_DEPTH:
            raise YAMLTooLarge(None, None, f"nested deeper than {MAX_DEPTH} levels (aliases expanded)", node.start_mark)
        if aliased > MAX_ALIASED_NODES:
            raise YAMLTooLarge(None, None, f"aliases expand to more than {MAX_ALIASED_NODES:,} nodes", node.start_mark)
        return size, height

    measure(root, 1)


def _last_of_each_key(pairs: list) -> list:
    """Keep the last pair of each scalar key, in first-seen order: what constructing the mapping would keep,
    without letting repeated merges of the same anchors grow the list."""
    index: dict = {}
    out: list = []
    for key_node, value_node in pairs:
        key = (key_node.tag, key_node.value) if isinstance(key_node, yaml.ScalarNode) else id(key_node)
        if key in index:
            out[index[key]] = (key_node, value_node)
        else:
            index[key] = len(out)
            out.append((key_node, value_node))
    return out


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _UniqueKeyLoader.construct_yaml_float)


def load_yaml_text(text: str) -> Any:
    """yaml.safe_load, but a key given twice in one mapping is an error, and so is a document beyond the
    limits above (all yaml.YAMLError)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def read_yaml(path: Path) -> Any:
    """Read a YAML file (load_yaml_text) with one-line errors for a missing, unreadable, oversized or
    malformed file."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError
        if path.exists() and not path.is_file():  # a device or a pipe (/dev/zero, a FIFO) may never end
            raise InputError(str(path), "", "not a regular file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InputError(
                str(path), "", f"larger than {MAX_FILE_BYTES // 1_000_000} MB, the limit for an input file"
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "", "file not found") from None
    except IsADirectoryError:
        raise InputError(str(path), "", "is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "", f"cannot be read ({exc.__class__.__name__})") from None
    try:
        return load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise InputError(str(path), *_yaml_problem(exc)) from None


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(where, what) of a YAML error, for one line."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow (a NUL, say)
        return f"character {exc.position + 1}", f"malformed YAML: character #x{exc.character:04x} is not allowed"
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or "malformed YAML"
    return where, problem if isinstance(exc, YAMLTooLarge) else f"malformed YAML: {problem}"


def referenced_file(source: str | Path, field: str, name: str, folder: Path | None = None) -> Path:
    """The file that field `field` of file `source` names (relative to `folder`, by default that file's
    folder), which must exist and be a file: a problem with it is reported against the field that names it."""
    path = (Path(source).parent if folder is None else Path(folder)) / name
    if path.is_dir():
        raise InputError(str(source), field, f"{path}: is a folder, not a file")
    if not path.exists():
        raise InputError(str(source), field, f"{path}: file not found")
    if not path.is_file():
        raise InputError(str(source), field, f"{path}: not a regular file")
    return path


def read_with_extends(
    path: Path, seen: tuple[Path, ...], relative_paths: tuple[str, ...] = (), done: dict | None = None
) -> dict:
    """The file's mapping merged over the files it extends. `relative_paths`: dotted keys whose values name a
    file or folder relative to the file that sets them, made absolute here so a file that extends it from
    elsewhere still finds it. `done`: the files already resolved in this reading, each read once however often
    the chain names it (a file naming another ten times, ten deep, would otherwise be read 10^10 times)."""
    done = {} if done is None else done
    resolved = path.resolve()
    if resolved in seen:
        raise InputError(str(path), "extends", "circular extends: " + " -> ".join(str(p) for p in seen + (path,)))
    if resolved in done:
        return copy.deepcopy(done[resolved])
    merged = _read_one(path, resolved, seen, relative_paths, done)
    done[resolved] = merged
    return copy.deepcopy(merged)


def _read_one(path: Path, resolved: Path, seen: tuple[Path, ...], relative_paths: tuple[str, ...], done: dict) -> dict:
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(str(path), "(top level)", f"expected a mapping of keys, got {type(data).__name__}")
    for dotted in relative_paths:
        _make_absolute(data, dotted.split("."), path.parent)
    bases = data.pop("extends", None)
    if bases is None:
        return data
    return deep_merge(_merged_bases(path, bases, seen + (resolved,), relative_paths, done), data)


def _make_absolute(data: dict, keys: list[str], folder: Path) -> None:
    node: Any = data
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(keys[-1]), str) and node[keys[-1]]:
        node[keys[-1]] = str((folder / node[keys[-1]]).resolve())


def _merged_bases(
    path: Path, bases: Any, seen: tuple[Path, ...], relative_paths: tuple[str, ...] = (), done: dict | None = None
) -> dict:
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise InputError(str(path), "extends", f"expected a file name or a list of them, got {clipped(bases)}")
    merged: dict = {}
    for base in bases:  # later files override earlier ones, the extending file overrides them all
        base_path = referenced_file(path, "extends", base)
        merged = deep_merge(merged, read_with_extends(base_path, seen, relative_paths, done))
    return merged


def read_bases(path: Path) -> dict:
    """What the files `path` extends give, merged, without `path`'s own keys ({} if it extends nothing): the
    baseline of a what-if file."""
    data = read_yaml(path)
    bases = data.get("extends") if isinstance(data, dict) else None
    return {} if bases is None else _merged_bases(Path(path), bases, (Path(path).resolve(),))


def deep_merge(base: dict, override: dict) -> dict:
    """Mappings merge key by key; anything else in `override` replaces what `base` had."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
