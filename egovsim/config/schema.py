"""Typed, validated configuration from plain YAML mappings.

One small mechanism serves every file a user writes (scenarios, experiments, calibration configs): the file's
structure is a tree of dataclasses; `build(cls, data, source)` checks types, ranges, unknown keys (with a
did-you-mean; a key a class lists in `MOVED_KEYS` names its new place) and missing required keys, and returns the dataclass tree or raises `InputError` naming the file
and the dotted field. Defaults, ranges and neutral values live on the dataclass fields, via `param()`, and
nowhere else. Validation goes on past the first error: `build` raises InputErrors holding every error of the
file (each field checked, a part with errors skipped whole), which reads as the first.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, field
from typing import Any, Literal, get_args, get_origin

from egovsim.errors import InputError, InputErrors, clipped

_NO_NEUTRAL = object()
# the errors of the file `build` is reading (None outside a build): each check records its error here and the
# build goes on with the next field; a part with errors is skipped whole (_Invalid), not built
_ERRORS: contextvars.ContextVar[list[InputError] | None] = contextvars.ContextVar("errors", default=None)
_SKIPPED = object()


class _Invalid(Exception):
    """A part of the file had errors, recorded already: what contains it is not built either."""


def each_checked(fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]) -> list[Any]:
    """fn(*args) for each args of `items`, every error reported, not only the first: in a build, recorded and the
    part skipped once all are tried; outside one, raised together (InputErrors)."""
    results, errors, skipped = [], [], False
    for args in items:
        try:
            value = _checked(fn, *args)
        except InputError as exc:  # outside a build: nothing records it
            errors.extend(exc.errors if isinstance(exc, InputErrors) else [exc])
            continue
        except _Invalid:  # outside a build a nested build raises InputErrors, so this cannot happen; to be sure
            skipped = True
            continue
        if value is _SKIPPED:
            skipped = True
        else:
            results.append(value)
    if errors:
        raise InputErrors(errors)
    if skipped:
        raise _Invalid
    return results


def _checked(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args); during a build, an error is recorded and _SKIPPED returned instead of raised."""
    errors = _ERRORS.get()
    if errors is None:
        return fn(*args)
    try:
        return fn(*args)
    except _Invalid:
        return _SKIPPED
    except InputError as exc:
        errors.extend(exc.errors if isinstance(exc, InputErrors) else [exc])
        return _SKIPPED


@dataclasses.dataclass(frozen=True)
class Identifier:
    """Text that names something and so ends up in folder and file names and in the browser page: it must
    match `pattern` whole, which `rule` states for the error message."""

    pattern: re.Pattern
    rule: str

    def check(self, text: str, path: str, source: str, key: bool = False) -> None:
        if not self.pattern.fullmatch(text):
            problem = f"key {clipped(text)} must be {self.rule}" if key else f"must be {self.rule}, got {clipped(text)}"
            raise InputError(source, path, problem)


# Province keys: dotted parameter paths (provinces.<key>.policy...) and CSV columns.
KEY = Identifier(
    re.compile(r"[a-z][a-z0-9_]{0,63}"), "a lower-case letter, then up to 63 lower-case letters, digits or _"
)
# Names of scenarios, experiments, studies and outcomes: folder and file names of their results.
NAME = Identifier(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"),
    "1-64 letters, digits, _, - or ., not starting with . or -",
)
# Names shown to people (provinces, mergers and their units): in plots, tables and the browser page, so printable and
# short enough for a plot's legend
# the bidirectional controls (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069): printed, they reorder the text
# around them, so a name could make a page, table or terminal show other words than it holds
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
LABEL = Identifier(
    re.compile(rf"[^\x00-\x1f\x7f-\x9f{BIDI}]{{1,120}}"), "1-120 characters, none of them a control character"
)
# any text of a file: control characters (ESC, BEL, NUL) would reach terminals, plots and pages as they are
CONTROL = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}]")

# Whole numbers beyond int64 cannot be seeds, counts or array sizes; real numbers beyond this are no rate,
# share, year or amount of the model, and overflow in arithmetic (1e308 squared).
MAX_INT = 2**63 - 1
EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # 1e-3, 2.5E4: numbers written with an exponent
MAX_REAL = 1e15


def param(
    default: Any = MISSING,
    *,
    lo: float | None = None,
    hi: float | None = None,
    neutral: Any = _NO_NEUTRAL,
    unit: str = "",
    doc: str = "",
    source: str = "",
    lo_open: bool = False,
    text: Identifier | None = None,
    keys: Identifier | None = None,
) -> Any:
    """A configuration field with its range, its neutral value (the setting that switches its rule off),
    its unit and where its default comes from. `text`: the rule a text value must follow; `keys`: the rule
    for the keys of a mapping.

    Mutable defaults (lists, dicts, dataclasses) are passed as a zero-argument callable.
    """
    meta = {"lo": lo, "hi": hi, "neutral": neutral, "unit": unit, "doc": doc, "source": source, "lo_open": lo_open}
    meta |= {"text": text, "keys": keys}
    if callable(default):  # list, dict, a dataclass or a lambda: a fresh value per instance
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def has_neutral(f: dataclasses.Field) -> bool:
    return f.metadata.get("neutral", _NO_NEUTRAL) is not _NO_NEUTRAL


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if _is_optional(tp):
        return _type_name(_strip_optional(tp)) + " or null"
    return {float: "a number", int: "a whole number", bool: "true or false", str: "text"}.get(tp, str(tp))


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType) and type(None) in get_args(tp)


def _strip_optional(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    return args[0]


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def convert(tp: Any, value: Any, path: str, source: str) -> Any:
    """Check `value` against type `tp`, converting where it is lossless (an int where a float is expected)."""

    def fail(msg: str | None = None) -> typing.NoReturn:
        raise InputError(source, path, msg or f"expected {_type_name(tp)}, got {clipped(value)}")

    if tp is Any:
        return value
    if _is_optional(tp):
        return None if value is None else convert(_strip_optional(tp), value, path, source)
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            fail(f"expected {_type_name(tp)}, got {clipped(value)}{suggest(value, map(str, choices))}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source, path)
    if origin in (list, tuple):
        if not isinstance(value, list):
            fail()
        (item_tp,) = get_args(tp)[:1]
        items = [_checked(convert, item_tp, v, f"{path}[{i}]", source) for i, v in enumerate(value)]
        if _SKIPPED in items:
            raise _Invalid
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            fail()
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise InputError(source, f"{path}", f"keys must be non-empty text, got {clipped(k)}")
            out[k] = _checked(convert, val_tp, v, f"{path}.{k}", source)
        if _SKIPPED in out.values():
            raise _Invalid
        return out
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        if isinstance(value, float) and not value.is_integer():
            fail()
        if abs(value) > MAX_INT:
            fail(f"expected a whole number between -2**63 and 2**63 - 1, got {clipped(value)}")
        return int(value)
    if tp is float:
        if isinstance(value, str) and EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 (PyYAML) reads 1e-3 as text; YAML 1.2 and every reader mean a number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        if isinstance(value, int) and abs(value) > MAX_INT:  # float() of a huge int overflows
            fail(f"expected a number between -{MAX_REAL:g} and {MAX_REAL:g}, got {clipped(value)}")
        value = float(value)
        if not math.isfinite(value):
            fail(f"expected a finite number, got {clipped(value)}")
        if abs(value) > MAX_REAL:
            fail(f"expected a number between -{MAX_REAL:g} and {MAX_REAL:g}, got {clipped(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            fail()
        if found := CONTROL.search(value):
            fail(f"contains the control character U+{ord(found.group()):04X}: remove it")
        return value
    raise TypeError(f"schema type {tp!r} at {path} is not supported")  # a bug in the schema, not input


def check_range(f: dataclasses.Field, value: Any, path: str, source: str) -> None:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if lo is not None and (value < lo or (f.metadata.get("lo_open") and value == lo)):
        bound = f"> {lo}" if f.metadata.get("lo_open") else f">= {lo}"
        raise InputError(source, path, f"must be {bound}, got {clipped(value)}" + _range_text(f))
    if hi is not None and value > hi:
        raise InputError(source, path, f"must be <= {hi:,}, got {clipped(value)}" + _range_text(f))


def check_text(f: dataclasses.Field, value: Any, path: str, source: str) -> None:
    """Identifiers: a text value, or the keys of a mapping, must follow the field's rule."""
    if f.metadata.get("text") is not None and isinstance(value, str):
        f.metadata["text"].check(value, path, source)
    if f.metadata.get("keys") is not None and isinstance(value, dict):
        for key in value:
            f.metadata["keys"].check(key, path, source, key=True)


def _range_text(f: dataclasses.Field) -> str:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if lo is not None and hi is not None:
        return f" (allowed range {'(' if f.metadata.get('lo_open') else '['}{lo}, {hi}])"
    return ""


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """typing.get_type_hints, once per class: a file may hold thousands of events."""
    return typing.get_type_hints(cls)


def build(cls: type, data: Any, source: str, path: str = "") -> Any:
    """Build dataclass `cls` from mapping `data`, validating every field; InputErrors lists every error."""
    if _ERRORS.get() is not None:  # a part of the file being built
        return _build(cls, data, source, path)
    errors: list[InputError] = []
    token = _ERRORS.set(errors)
    try:
        return _build(cls, data, source, path)
    except _Invalid:
        raise InputErrors(errors) from None
    finally:
        _ERRORS.reset(token)


def _build(cls: type, data: Any, source: str, path: str) -> Any:
    where = path or "(top level)"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(source, where, f"expected a mapping, got {type(data).__name__} {clipped(data)}")
    hints = type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    moved = getattr(cls, "MOVED_KEYS", {})
    checked = [_checked(_check_key, key, known, moved, source, path) for key in data]
    kwargs = {}
    for name, f in known.items():
        sub = _join(path, name)
        if name in data:
            kwargs[name] = value = _checked(_field_value, f, hints[name], data[name], sub, source)
        elif f.default is MISSING and f.default_factory is MISSING:
            value = _checked(_missing, source, sub)
        else:
            continue
        checked.append(value)
    if _SKIPPED in checked:
        raise _Invalid
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None and _checked(validate, source, path) is _SKIPPED:
        raise _Invalid
    return obj


def _check_key(key: Any, known: dict, moved: dict, source: str, path: str) -> None:
    if key in moved:  # a key of an older file version: name where its value lives now
        raise InputError(source, _join(path, str(key)), f"no longer a key here: use {moved[key]}")
    if key not in known:
        raise InputError(source, _join(path, str(key)), "unknown key" + suggest(key, known))


def _field_value(f: dataclasses.Field, tp: Any, raw: Any, path: str, source: str) -> Any:
    value = convert(tp, raw, path, source)
    check_range(f, value, path, source)
    check_text(f, value, path, source)
    return value


def _missing(source: str, path: str) -> typing.NoReturn:
    raise InputError(source, path, "missing required key")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def to_plain(obj: Any) -> Any:
    """Dataclass tree -> plain dicts/lists, in field order (for writing the resolved file)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def field_at(cls: type, dotted: str) -> tuple[dataclasses.Field, Any] | None:
    """The dataclass field (and its type) that a dotted path inside `cls` names, or None."""
    tp: Any = cls
    f = None
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            return None
        fields = {x.name: x for x in dataclasses.fields(tp)}
        if part not in fields:
            return None
        f = fields[part]
        tp = type_hints(tp)[part]
    return (f, tp) if f is not None else None
