"""docs/parameters.md, generated from the scenario schema (the one place defaults live).

python -m egovsim.report.paramdoc > docs/parameters.md
"""

from __future__ import annotations

import dataclasses
import typing

from egovsim.config.scenario import (
    AccessParams,
    CentralState,
    CitizenParams,
    CivilServantParams,
    CostParams,
    EventEffects,
    LeaderInit,
    LeaderParams,
    NetworkParams,
    Policy,
    ProvinceConfig,
    Scenario,
    ServiceParams,
    SupplyIndexWeights,
)
from egovsim.config.schema import has_neutral

SECTIONS = (
    ("Scenario (top level)", "", Scenario),
    ("Network", "network.", NetworkParams),
    ("Citizens", "citizens.", CitizenParams),
    ("Internet access", "access.", AccessParams),
    ("Civil servants", "civil_servants.", CivilServantParams),
    ("Leaders", "leaders.", LeaderParams),
    ("Services and software", "services.", ServiceParams),
    ("Central government levers (central.initial, central.events)", "central.initial.", CentralState),
    ("Supply index weights", "supply_index.", SupplyIndexWeights),
    ("Lever costs (bn VND/yr; docs/ODD.md 7.9)", "costs.", CostParams),
    ("Province", "provinces.<id>.", ProvinceConfig),
    ("Province leader", "provinces.<id>.leader.", LeaderInit),
    ("Province policy levers (provinces.<id>.policy, provinces.<id>.events)", "provinces.<id>.policy.", Policy),
    ("Shared sizes of province events, by kind (provinces.<id>.events[].kind)", "event_effects.", EventEffects),
)


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
    for title, prefix, cls in SECTIONS:
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
