"""docs/parameters.md, generated from the scenario schema (the one place defaults live).

python -m egovsim.report.paramdoc > docs/parameters.md
"""

from __future__ import annotations

import dataclasses
import typing

from egovsim.config.scenario import (
    AccessParams,
    CentralConfig,
    CentralState,
    CitizenParams,
    CivilServantParams,
    CostParams,
    Event,
    EventEffects,
    LeaderInit,
    LeaderParams,
    Merger,
    MergerParams,
    NetworkParams,
    ParameterSource,
    Policy,
    PortalParams,
    ProvinceConfig,
    Scenario,
    ServiceParams,
    SupplyIndexWeights,
)
from egovsim.config.schema import has_neutral

# The title of each section; the sections themselves are every part of the schema (sections()), so a new part
# cannot be left out of docs/parameters.md: one without a title here fails the generator.
TITLES = {
    Scenario: "Scenario (top level)",
    ProvinceConfig: "Province",
    LeaderInit: "Province leader",
    Policy: "Province policy levers (provinces.<id>.policy, provinces.<id>.events)",
    Event: "Dated events (provinces.<id>.events[], central.events[])",
    NetworkParams: "Network",
    CitizenParams: "Citizens",
    CivilServantParams: "Civil servants",
    LeaderParams: "Leaders",
    ServiceParams: "Services and software",
    AccessParams: "Internet access",
    EventEffects: "Shared sizes of province events, by kind (provinces.<id>.events[].kind)",
    PortalParams: "The National Public Service Portal",
    CentralConfig: "Central government",
    CentralState: "Central government levers (central.initial, central.events)",
    SupplyIndexWeights: "Supply index weights",
    CostParams: "Lever costs (bn VND/yr; docs/ODD.md 7.9)",
    ParameterSource: "Where the parameter values come from (cannot be set by --set or a design)",
    Merger: "Mergers of provinces (mergers[]; docs/reorganisation.md)",
    MergerParams: "System migrations after a merger",
}


def sections(cls: type = Scenario, prefix: str = "") -> list[tuple[str, str, type]]:
    """(title, key prefix, class) of every part of the scenario schema, in the schema's order: each dataclass
    field, mapping of dataclasses (provinces.<id>.) and list of dataclasses (events[]) is a section of its own."""
    found = [(TITLES[cls], prefix, cls)]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            found += sections(tp, f"{prefix}{f.name}.")
        elif typing.get_origin(tp) is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
            found += sections(args[1], f"{prefix}{f.name}.<id>.")
        elif typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
            found += sections(args[0], f"{prefix}{f.name}[].")
    unique, seen = [], set()  # a class met twice (events: the provinces' and central's) is listed where first met
    for title, pre, c in found:
        if c not in seen:
            seen.add(c)
            unique.append((title, pre, c))
    return unique


def _cell(value) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{value!r}`".replace("|", "\\|")


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        made = f.default_factory()
        return "(section)" if dataclasses.is_dataclass(made) else made
    return dataclasses.MISSING


def _range(f: dataclasses.Field) -> str:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if lo is None and hi is None:
        return ""
    left = "(" if f.metadata.get("lo_open") else "["
    return f"{left}{'' if lo is None else lo}, {'' if hi is None else hi}]"


def markdown() -> str:
    lines = [
        "# Parameters",
        "",
        "Generated from `egovsim/config/scenario.py` by `python -m egovsim.report.paramdoc`: do not edit by hand.",
        "Neutral: the value that switches a behavioural rule off (all neutral = Bass model, see ODD.md).",
        "Source 'prior' marks values no source gives: starting points within stated ranges, to calibrate.",
        "",
    ]
    for title, prefix, cls in sections():
        hints = typing.get_type_hints(cls)
        lines += [
            f"## {title}",
            "",
            "| key | default | range | neutral | unit | meaning | source |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in dataclasses.fields(cls):
            default = _default(f)
            if default == "(section)":
                continue
            tp = hints[f.name]
            choices = typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else ()
            rng = " / ".join(choices) if choices else _range(f)
            neutral = _cell(f.metadata["neutral"]) if has_neutral(f) else ""
            lines.append(
                f"| `{prefix}{f.name}` | {_cell(default)} | {rng} | {neutral} | {f.metadata.get('unit', '')} "
                f"| {f.metadata.get('doc', '')} | {f.metadata.get('source', '')} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
