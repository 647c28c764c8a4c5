"""The vocabulary every analysis file shares (sweep experiments, sensitivity studies, calibration configs).

- `AnalysisHead`: the keys that name what is analysed: the base `scenario` (relative to the file), `set`
  overrides, `scale`, `replicates`, the master `seed`, `name` and `description`. A file's own dataclass
  inherits them; `base_scenario` loads the scenario they describe.
- `ParameterRange`: the range of one parameter (dotted key): `bounds`, `dist`, `source`.
- `OutcomeStat`: one number per province (or for one province) from a run: an outcome at a year, its mean over
  a period, its final value, or the time until it first reaches a level (from below or, direction: down, from
  above). `parse_outcome` reads the mapping form or the short form `outcome@year` / `outcome@end`; `evaluate`
  computes it from a run's records.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from egovsim.config.outcomes import COL, COLUMNS, DERIVED, outcome_range
from egovsim.config.scenario import (
    KEEP,
    NATIONAL,
    BudgetHold,
    Policy,
    Scenario,
    apply_values,
    expand_wildcards,
    load_scenario,
    refuse_undone_at_start,
    resolve_kinds,
    row_of_year,
    years,
)
from egovsim.config.schema import MAX_INT, NAME, build, each_checked, param, suggest, type_hints
from egovsim.config.yamlfile import referenced_file
from egovsim.errors import InputError, InputErrors, clipped
from egovsim.files import safe_name

# ---- the head of every analysis file ----------------------------------------------------------------------


@dataclass(kw_only=True)
class AnalysisHead:
    """What an analysis file analyses: its base scenario with overrides and scale, how many replicates per
    setting and the master seed they are spawned from. Files name these keys the same way everywhere."""

    scenario: str = param(doc="base scenario file, relative to the analysis file")
    name: str = param("", text=NAME, doc="default: the file name; names the results")
    description: str = param("")
    set: list[str] = param(list, doc="overrides of the base scenario, key.path=value as with --set")
    scale: float | None = param(None, lo=0.0, hi=1.0, lo_open=True, doc="scale of every province")
    replicates: int = param(1, lo=1, hi=100_000, doc="runs per setting (common random numbers across settings)")
    seed: int = param(0, lo=0, hi=MAX_INT, doc="master seed: sampling and replicate seeds are spawned from it")

    def named(self, path: str | Path, fallback: str) -> None:
        """Default the name to the file's name (made safe for a folder name)."""
        if not self.name:
            self.name = safe_name(Path(path).stem, fallback)

    def levers_in_play(self, base: Scenario, varied: Mapping[str, str], source: str) -> list[str]:
        """The file's `set:` levers and its varied ones (key: the field that varies it) that the base scenario's
        own dated events set again: refused if an event replaces one before the first step (its value would
        never act); otherwise one line each for the report, saying until when the value holds."""
        keys = {item.partition("=")[0].strip(): "set" for item in self.set} | dict(varied)
        return [f"`{u.key}`: {u.words()}" for u in refuse_undone_at_start(base, keys, source)]

    def base_scenario(self, path: str | Path) -> Scenario:
        """The base scenario the file at `path` names, with its overrides and scale (errors name the file's
        `scenario` field when the scenario file cannot be read)."""
        scenario_path = referenced_file(Path(path), "scenario", self.scenario)
        scenario = load_scenario(scenario_path, self.set, self.scale, set_in=str(path))
        for key, prov in scenario.provinces.items():
            if isinstance(prov.budget, BudgetHold):  # resolved against a baseline file by run and compare only
                raise InputError(
                    str(scenario_path),
                    f"provinces.{key}.budget",
                    "a budget hold is resolved by `egovsim run` and `egovsim compare`; analyse its baseline instead",
                )
        return scenario


# the key that tells each kind of analysis file apart (a scenario file has none of them, nor `scenario:`)
KIND_KEYS = {
    "targets": "calibration",
    "design": "experiment",
    "method": "study",
    "case": "discovery",
    "objectives": "optimisation",
}


def file_kind(data: Any, source: str) -> str:
    """What a file read by `egovsim validate` is: scenario, experiment, study, calibration or observations (by its
    keys)."""
    if not isinstance(data, dict):
        return "scenario"  # its schema reports what is wrong
    if "targets" in data and "scenario" not in data and isinstance(data.get("provinces"), dict):
        return "observations"  # calibration/observations.yaml: sourced figures a calibration reads, not a config
    kinds = [kind for key, kind in KIND_KEYS.items() if key in data]
    if len(kinds) > 1:
        raise InputError(source, "(top level)", f"has the keys of more than one kind of file ({', '.join(kinds)})")
    if kinds:
        return kinds[0]
    if "scenario" in data:
        raise InputError(
            source,
            "(top level)",
            "names a base scenario but has no design (experiment), method (study), targets (calibration), case "
            "(discovery) or objectives (optimisation)",
        )
    return "scenario"


# ---- a parameter's range ----------------------------------------------------------------------------------


@dataclass
class ParameterRange:
    """The range of one parameter: a search box (calibration), a sampling distribution (sensitivity) or the
    box of a Latin hypercube (sweep, uniform only)."""

    bounds: list[float] = param(doc="unif: [low, high]; norm: [mean, sd]; triang: [low, high, peak share]")
    dist: Literal["unif", "norm", "triang", "lognorm"] = param("unif")
    source: str = param("", doc="where the range comes from")

    def validate(self, source: str, path: str) -> None:
        if self.dist == "unif" and (len(self.bounds) != 2 or not self.bounds[0] < self.bounds[1]):
            raise InputError(
                source, f"{path}.bounds", f"expected [low, high] with low < high, got {clipped(self.bounds)}"
            )
        if self.dist in ("unif", "triang") and len(self.bounds) >= 2:
            refuse_too_narrow(self.bounds[0], self.bounds[1], source, f"{path}.bounds")

    @property
    def ends(self) -> tuple[float | None, float | None]:
        """The lowest and highest value a draw can take (None: unbounded, as for norm and lognorm)."""
        return (self.bounds[0], self.bounds[1]) if self.dist in ("unif", "triang") else (None, None)

    @property
    def reach(self) -> tuple[float, float]:
        """The values a draw reaches in practice: the ends of a bounded range; 6 sd either side of a normal's mean
        (of the log for lognorm; a draw beyond them has chance 2e-9). A design is checked at these, so a normal
        range over a parameter that must stay >= 0 is refused before any run, not in a third of its runs."""
        if self.dist in ("unif", "triang"):
            return float(self.bounds[0]), float(self.bounds[1])
        mean, sd = float(self.bounds[0]), float(self.bounds[1])
        low, high = mean - 6 * sd, mean + 6 * sd
        return (math.exp(low), math.exp(min(high, 700.0))) if self.dist == "lognorm" else (low, high)


# ---- an outcome statistic ---------------------------------------------------------------------------------

SHORT_RE = re.compile(r"^(?P<outcome>[A-Za-z0-9_]+)@(?P<when>\d{4}|end)$")


@dataclass
class OutcomeStat:
    """One number per province from a run: the value at a year (default: the scenario's end year), the mean
    over a period, the final value, or the time in years after the start until the outcome first reaches a
    level, from below (direction up) or from above (down) (nan, censored, if it never does). With `province`,
    the number of that province only (`national`: the population-weighted mean of the provinces)."""

    outcome: str = param(doc="an outcome column (or a derived outcome where the file allows one)")
    stat: Literal["at", "mean", "final", "time_to"] = param("at")
    year: int | None = param(None, doc="for stat: at (default: the scenario's end year)")
    period: list[int] = param(list, doc="[first year, last year] for stat: mean")
    level: float | None = param(None, doc="for stat: time_to")
    direction: Literal["up", "down"] = param(
        "up",
        doc="for stat: time_to: up, until the outcome is first at or above level; down, at or below (counted from "
        "its first recorded value)",
    )
    province: str | None = param(None, doc="one province key, or 'national'; default: every province")
    name: str = param("", text=NAME, doc="names its results (default: its short form)")
    short: str = field(default="", init=False, repr=False, compare=False)  # the short form it was written as

    def validate(self, source: str, path: str) -> None:
        """Checks of its fields together; `parse_outcome` checks the outcome's name (the names allowed depend
        on the file)."""
        unused = {
            "year": self.year is not None,
            "period": bool(self.period),
            "level": self.level is not None,
            "direction": self.direction != "up",
        }
        used = {"at": ("year",), "mean": ("period",), "final": (), "time_to": ("level", "direction")}[self.stat]
        stray = next((k for k, given in unused.items() if given and k not in used), None)
        if stray is not None:  # it would be silently ignored, and a name like "mean_2006_2008" mislabel the value
            raise InputError(source, f"{path}.{stray}", f"stat '{self.stat}' does not use {stray}")
        need = {"at": True, "mean": len(self.period) == 2, "final": True, "time_to": self.level is not None}
        if not need[self.stat]:
            what = {"mean": "period: [first, last]", "time_to": "level"}[self.stat]
            raise InputError(source, f"{path}.{what.split(':')[0]}", f"stat '{self.stat}' needs {what}")
        if self.stat == "mean" and self.period[0] > self.period[1]:
            raise InputError(source, f"{path}.period", f"first year after last: {clipped(self.period)}")
        bounds = outcome_range(self.outcome) if self.outcome in COL else None
        if self.stat == "time_to" and bounds and not bounds[0] <= self.level <= bounds[1]:
            raise InputError(
                source,
                f"{path}.level",
                f"{self.outcome} lies in [{bounds[0]}, {bounds[1]}], so it never reaches {self.level}",
            )

    @property
    def label(self) -> str:
        """Its name, else the short form it was written in, else a short form built from its fields."""
        if self.name or self.short:
            return self.name or self.short
        when = {
            "at": str(self.year) if self.year is not None else "end",
            "final": "final",
            "mean": f"mean{self.period[0]}-{self.period[1]}" if len(self.period) == 2 else "mean",
            "time_to": (
                f"time_{'down_' * (self.direction == 'down')}to{self.level:g}" if self.level is not None else "time_to"
            ),
        }[self.stat]
        return f"{self.outcome}@{when}" + (f".{self.province}" if self.province else "")

    def years_used(self) -> list[int]:
        return [y for y in (self.year, *self.period) if y is not None]

    def check(self, scenario: Scenario, source: str, path: str) -> None:
        """The years it reads lie in the scenario, and its province is one of the scenario's."""
        for y in self.years_used():
            if not scenario.start_year <= y <= scenario.end_year:
                raise InputError(
                    source, path, f"year {y} is outside the scenario's {scenario.start_year}-{scenario.end_year}"
                )
        if self.province is not None and self.province != NATIONAL and self.province not in scenario.provinces:
            raise InputError(
                source,
                f"{path}.province",
                f"unknown province {clipped(self.province)}" + suggest(self.province, scenario.provinces),
            )


def refuse_overlaps(scenario: Scenario, keys: Mapping[str, str], source: str) -> None:
    """No two keys a design varies may set the same value (`provinces.*.policy.training` and
    `provinces.hue.policy.training`): one would silently override the other, and its effect be labelled with
    the wrong key. `keys`: dotted key -> the field to blame."""
    first: dict[str, str] = {}
    for key, where in keys.items():
        for one in expand_wildcards(scenario, {key: 0.0}):
            if one in first:
                raise InputError(source, where, f"sets {one}, which {first[one]} sets too: vary each value once")
            first[one] = key


def refuse_set_and_varied(scenario: Scenario, head: AnalysisHead, keys: Mapping[str, str], source: str) -> None:
    """A `set:` the file gives may not be wholly overridden by what it varies: every run would use the varied
    values while the report and scenario.yaml record the `set:` one (`set: provinces.*.x=0` with Hue's x varied
    still fixes the other provinces: fine). `keys`: varied dotted key -> the field to blame."""
    varied = {one: where for key, where in keys.items() for one in expand_wildcards(scenario, {key: 0.0})}
    for item in head.set:
        fixed = expand_wildcards(scenario, {item.split("=", 1)[0].strip(): 0.0})
        if fixed and all(one in varied for one in fixed):
            raise InputError(
                source, varied[next(iter(fixed))], f"varies every value `set: {item}` fixes: give it in one place"
            )


def refuse_repeats(labels: list[str], source: str, key: str) -> None:
    """A list of outcomes names each once: two of one name would label each other's results (key: e.g.
    "outcomes", the list's key in the file)."""
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise InputError(source, f"{key}[{i}]", f"{clipped(label)} is listed twice")


def check_stats(stats: Mapping[str, OutcomeStat], scenario: Scenario, source: str) -> None:
    """Every outcome statistic (path in the file -> statistic) checked against the scenario; every one that fails
    is reported (InputErrors: a command says the first, validate lists them all)."""
    errors = []
    for path, stat in stats.items():
        try:
            stat.check(scenario, source, path)
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise InputErrors(errors)


def parse_outcomes(
    items: Iterable[tuple[str, Any]], source: str, derived: Mapping[str, Any] | None = None
) -> list[OutcomeStat]:
    """parse_outcome of each (path in the file, value), every one that fails reported (a command says the first,
    validate lists them all)."""
    return each_checked(parse_outcome, ((value, source, path, derived) for path, value in items))


def parse_outcome(value: Any, source: str, path: str, derived: Mapping[str, Any] | None = None) -> OutcomeStat:
    """An OutcomeStat from a file: a mapping of its fields, or the short form `outcome@year` / `outcome@end`
    (the value at mid-year / at the scenario's end year, every province). The outcome must be a recorded
    column or one of `derived`. Errors name `path`."""
    known = (*COLUMNS, *(derived or {}))
    if isinstance(value, str):
        m = SHORT_RE.match(value)
        if not m:
            raise InputError(source, path, f"expected outcome@year or outcome@end, got {clipped(value)}")
        if m["outcome"] not in known:
            raise InputError(source, path, f"unknown outcome {clipped(m['outcome'])}" + suggest(m["outcome"], known))
        stat = OutcomeStat(m["outcome"], year=None if m["when"] == "end" else int(m["when"]))
        stat.short = value
        return stat
    if not isinstance(value, dict):
        raise InputError(source, path, f"expected outcome@year, outcome@end or a mapping, got {clipped(value)}")
    stat = build(OutcomeStat, value, source, path)
    if stat.outcome not in known:
        raise InputError(
            source, f"{path}.outcome", f"unknown outcome {clipped(stat.outcome)}" + suggest(stat.outcome, known)
        )
    return stat


# what `evaluate` reads of a scenario: its horizon (rows of years) and its provinces' order and populations
# (national means); tests/test_calibration.py measures with a scenario that has nothing else
MEASURED_FIELDS = re.compile(r"start_year|end_year|steps_per_year|provinces(\.[^.]+(\.population)?)?")


def measuring_scenario(base: Scenario, values: Mapping[str, Any], source: str = "<run>") -> Scenario:
    """The scenario a run of `base` with `values` set is measured on (evaluate): `base` itself when the values
    leave what evaluate reads alone (a behavioural parameter, a lever), else `base` with them set. Validating a
    scenario took 3.4 ms, once per run of a calibration in the command's process."""
    if not any(MEASURED_FIELDS.fullmatch(key) for key in values):
        return base
    return apply_values(base, values, source)


def national_mean(values: np.ndarray, scenario: Scenario, axis: int) -> np.ndarray:
    """The provinces' population-weighted mean along the provinces' `axis`: what a national figure is compared
    with (the provinces modelled stand in for the country)."""
    weights = np.array([p.population for p in scenario.provinces.values()], dtype=float)
    return np.average(values, axis=axis, weights=weights)


def evaluate(
    stat: OutcomeStat,
    records: np.ndarray,
    scenario: Scenario,
    derived: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> np.ndarray | float:
    """The statistic from one run's records (steps + 1, provinces, columns): an array over the provinces,
    or a float with `stat.province`. time_to is nan (censored) where the level is never reached: the caller
    decides how to count those."""
    n = records.shape[0]
    if derived and stat.outcome in derived:
        series = np.asarray(derived[stat.outcome](records), dtype=float)
    else:
        series = records[:, :, COL[stat.outcome]]
    if stat.province == NATIONAL:
        series = national_mean(series, scenario, axis=1)[:, None]
    elif stat.province is not None:
        series = series[:, [list(scenario.provinces).index(stat.province)]]
    if stat.stat == "at":
        value = series[row_of_year(scenario, n, scenario.end_year if stat.year is None else stat.year)]
    elif stat.stat == "final":
        value = series[-1]
    elif stat.stat == "mean":
        first = row_of_year(scenario, n, stat.period[0]) - scenario.steps_per_year // 2
        last = row_of_year(scenario, n, stat.period[1]) + scenario.steps_per_year // 2
        value = np.nanmean(series[max(first, 0) : last + 1], axis=0)
    else:
        t = years(scenario, n) - scenario.start_year
        reached = series >= stat.level if stat.direction == "up" else series <= stat.level
        value = np.where(reached.any(axis=0), t[np.argmax(reached, axis=0)], np.nan)
    return float(value[0]) if stat.province is not None else value


# ---- levers, rules and the files of scenario discovery and policy search ----------------------------------

RULE_RE = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[-+0-9.eE]+)\s*$")
OPS: dict[str, Callable[[Any, float], Any]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Condition:
    """One clause of a rule: a named outcome compared with a number."""

    name: str
    op: str
    value: float

    def holds(self, values: Mapping[str, Any]) -> Any:
        return OPS[self.op](np.asarray(values[self.name], dtype=float), self.value)

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.value:g}"


def parse_rule(text: Any, names: Any, source: str, path: str) -> list[Condition]:
    """`rural_use_2030 >= 0.25 and gap_2030 <= 0.05`: clauses on the file's named outcomes, all of which must
    hold."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(source, path, f"expected a rule such as 'use_2030 >= 0.25', got {clipped(text)}")
    rule = []
    for clause in re.split(r"\s+and\s+", text.strip()):
        m = RULE_RE.match(clause)
        if not m:
            raise InputError(source, path, f"expected 'outcome >= number' (or <=, >, <), got {clipped(clause)}")
        if m["name"] not in names:
            raise InputError(
                source, path, f"{clipped(m['name'])} is not one of the file's outcomes" + suggest(m["name"], names)
            )
        try:
            value = float(m["value"])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):  # 1e999 reads as inf
            raise InputError(source, path, f"{clipped(m['value'])} is not a finite number")
        condition = Condition(m["name"], m["op"], value)
        vacuous = _vacuous(condition, names[m["name"]]) if isinstance(names, Mapping) else None
        if vacuous:  # a target no mix can meet, or one every run meets, says nothing about the levers
            raise InputError(source, path, f"{clipped(clause)}: {vacuous}")
        rule.append(condition)
    if contradiction := _contradiction(rule):  # each clause may hold, but not all at once
        raise InputError(source, path, contradiction)
    return rule


def _contradiction(rule: list[Condition]) -> str | None:
    """Why clauses on one outcome can never hold together (u >= 0.3 and u <= 0.2), or None."""
    for name in dict.fromkeys(c.name for c in rule):
        clauses = [c for c in rule if c.name == name]
        above = [c for c in clauses if c.op in (">=", ">")]
        below = [c for c in clauses if c.op in ("<=", "<")]
        if not above or not below:
            continue
        low = max(above, key=lambda c: (c.value, c.op == ">"))
        high = min(below, key=lambda c: (c.value, c.op == "<="))
        if low.value > high.value or (low.value == high.value and (low.op == ">" or high.op == "<")):
            return f"'{low}' and '{high}' never hold together"
    return None


def _vacuous(condition: Condition, stat: Any) -> str | None:
    """Why a clause on an outcome of known range can never hold, or always holds; None if it may go either way."""
    bounds = outcome_range(stat.outcome) if isinstance(stat, OutcomeStat) and stat.outcome in COL else None
    if bounds is None or stat.stat == "time_to":  # a time's range is the horizon's: not checked here
        return None
    lo, hi = bounds
    above = condition.op in (">=", ">")
    never = (
        condition.value > hi or (condition.value == hi and condition.op == ">")
        if above
        else (condition.value < lo or (condition.value == lo and condition.op == "<"))
    )
    always = (
        condition.value <= lo and (condition.op == ">=" or condition.value < lo)
        if above
        else (condition.value >= hi and (condition.op == "<=" or condition.value > hi))
    )
    if never or always:
        return f"{stat.outcome} lies in [{lo:g}, {hi:g}], so this {'never' if never else 'always'} holds"
    return None


def holds(rule: list[Condition], values: Mapping[str, Any]) -> np.ndarray:
    """Where every clause of the rule holds (nan compares false)."""
    return np.logical_and.reduce([c.holds(values) for c in rule])


@dataclass(kw_only=True)
class LeverHead(AnalysisHead):
    """What discovery and policy-search files share: one province whose levers they set (from a year), their
    outcomes by name, and an optional calibration posterior the calibrated parameters are drawn from."""

    province: str = param(doc="the province whose levers are set (a key of the scenario's provinces)")
    levers_from: float | None = param(None, lo=1900.0, hi=2200.0, doc="the levers take their values at this date")
    levers: dict[str, list[float]] = param(dict, doc="lever: [low, high], levers of the province's policy")
    posterior: str | None = param(None, doc="calibration folder (with posterior.csv), relative to the file")
    outcomes: dict[str, Any] = param(doc="name: outcome statistic (outcome@year or a mapping), in the province")
    stats: dict[str, OutcomeStat] = field(default_factory=dict, init=False, repr=False)

    def validate(self, source: str, path: str) -> None:
        for name, bounds in self.levers.items():
            check_lever(name, bounds, source, f"levers.{name}")
        if not self.outcomes:
            raise InputError(source, "outcomes", "at least one outcome is needed")
        taken = {*self.levers, *getattr(self, "parameters", {}), *RESERVED_COLUMNS}
        for name in self.outcomes:
            if not NAME_RE.match(name):
                raise InputError(source, f"outcomes.{name}", "a name of letters, digits and underscores")
            if name in taken:  # two columns of one name in sample.csv / candidates.csv
                raise InputError(source, f"outcomes.{name}", "names a lever, a parameter or a column egovsim writes")
        stats = parse_outcomes(((f"outcomes.{n}", v) for n, v in self.outcomes.items()), source, DERIVED)
        for name, stat in zip(self.outcomes, stats):
            stat.name = name
            self.stats[name] = stat

    def check_scenario(self, base: Scenario, source: str) -> None:
        """The province and the years the file names are the base scenario's."""
        if self.province not in base.provinces:
            raise InputError(
                source,
                "province",
                f"unknown province {clipped(self.province)}" + suggest(self.province, base.provinces),
            )
        if self.levers_from is not None and not base.start_year <= self.levers_from <= base.end_year:
            raise InputError(
                source,
                "levers_from",
                f"{self.levers_from:g} is outside the scenario's {base.start_year}-{base.end_year}",
            )
        self.check_not_merged_away(base, source)
        self.check_not_undone(base, source)
        self.levers_in_play(base, self.varied_fields(base), source)
        for name, stat in self.stats.items():
            if stat.province not in (None, self.province):
                raise InputError(source, f"outcomes.{name}.province", f"the file's province is {self.province}")
            stat.province = self.province
        check_stats({f"outcomes.{name}": stat for name, stat in self.stats.items()}, base, source)

    def varied_fields(self, base: Scenario) -> dict[str, str]:
        """The scenario keys the file varies as such, each with its field: its parameters. (Its levers come by an
        event of their own, after the province's events of the same date; check_not_undone refuses later ones.)"""
        return {name: f"parameters.{name}" for name in getattr(self, "parameters", {})}

    def check_not_merged_away(self, base: Scenario, source: str) -> None:
        """The levers take effect: a province merged into a unit that takes another member's policy has its
        own later events lapse at the merger (docs/reorganisation.md), the mix's event among them."""
        start = self.levers_from if self.levers_from is not None else base.start_year
        for i, merger in enumerate(base.mergers):
            takes_other = self.province in merger.members and merger.policy not in (KEEP, self.province)
            if self.levers and takes_other and start >= merger.date:
                raise InputError(
                    source,
                    "levers_from" if self.levers_from is not None else "province",
                    f"{self.province}'s own levers lapse from {merger.date:g}, when it takes "
                    f"{merger.policy}'s policy (the scenario's mergers[{i}]): set its levers before then, "
                    f"or choose province {merger.policy}",
                )

    def check_not_undone(self, base: Scenario, source: str) -> None:
        """No later event of the province changes a lever of the mix: it would undo the mix from its date on, while
        the mix's cost is counted for every year."""
        start = self.levers_from if self.levers_from is not None else base.start_year
        province = base.provinces[self.province]
        for event in resolve_kinds(province.events, base.event_effects):
            changed = sorted((set(event.set) | set(event.add)) & set(self.levers))
            if changed and event.date > start:
                raise InputError(
                    source,
                    f"levers.{changed[0]}",
                    f"the scenario's event {clipped(event.name)} ({event.date:g}) changes {changed[0]} after the "
                    f"levers take their values ({start:g}): it would undo the mix; set levers_from after it",
                )

    def posterior_folder(self, path: str | Path) -> Path | None:
        if self.posterior is None:
            return None
        folder = Path(path).parent / self.posterior
        if not (folder / "posterior.csv").is_file():
            raise InputError(
                str(path), "posterior", f"{folder}: no posterior.csv there (egovsim calibrate --method abc)"
            )
        return folder


NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# sample.csv's, candidates.csv's and pareto.csv's own columns (an outcome `target` would make target_share twice)
RESERVED_COLUMNS = ("point", "case", "candidate", "generation", "draws", "target", "target_share", "failed_runs")


# a range narrower than this share of its values varies nothing a run can tell apart (float64 keeps 16 digits)
NARROWEST = 1e-6


def spans(lo: float, hi: float) -> bool:
    """Whether [lo, hi] is wide enough to vary anything: more than NARROWEST of the values' own size."""
    return hi - lo > NARROWEST * max(1.0, abs(lo), abs(hi))


def refuse_too_narrow(lo: float, hi: float, source: str, path: str) -> None:
    """A varied input whose range is next to nothing: a Latin hypercube or PRIM would report conditions on noise."""
    if lo < hi and not spans(lo, hi):
        raise InputError(
            source, path, f"[{lo!r}, {hi!r}] is too narrow to vary anything: fix the value with `set:` instead"
        )


def check_lever(name: str, bounds: Any, source: str, path: str) -> None:
    """A numeric lever of a province's policy, with [low, high] inside the lever's own range."""
    fields = {f.name: f for f in dataclasses.fields(Policy)}
    if name not in fields or type_hints(Policy)[name] is not float:
        numeric = [n for n in fields if type_hints(Policy)[n] is float]
        raise InputError(source, path, f"unknown lever {clipped(name)}" + suggest(name, numeric))
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise InputError(source, path, f"expected [low, high] with low < high, got {clipped(bounds)}")
    refuse_too_narrow(bounds[0], bounds[1], source, path)
    lo, hi = fields[name].metadata.get("lo"), fields[name].metadata.get("hi")
    if (lo is not None and bounds[0] < lo) or (hi is not None and bounds[1] > hi):
        raise InputError(source, path, f"{clipped(bounds)} leaves the lever's range [{lo}, {hi}]")


@dataclass(kw_only=True)
class DiscoveryFile(LeverHead):
    """`egovsim discover`: a Latin hypercube over levers and uncertain parameters (and posterior draws), the
    case of interest as a rule on outcomes, and PRIM's settings."""

    n: int = param(lo=10, hi=1_000_000, doc="sample points (Latin hypercube)")
    parameters: dict[str, ParameterRange] = param(dict, doc="uncertain parameters (dotted keys) and their ranges")
    case: str = param(doc="the case of interest: a rule on the named outcomes, e.g. 'rural_use_2030 >= 0.25'")
    min_density: float = param(
        0.8,
        lo=0.0,
        hi=1.0,
        doc="the chosen box: the widest with at least this density (of equal coverage, the densest)",
    )
    peel_alpha: float = param(0.05, lo=0.01, hi=0.5, lo_open=False, doc="PRIM: share peeled at each step")
    mass_min: float = param(0.05, lo=0.0, hi=1.0, lo_open=True, doc="PRIM and CART: the smallest box (share)")
    resamples: int = param(10, lo=0, hi=1000, doc="PRIM runs on half samples for the stability of the limits")
    rule: list[Condition] = field(default_factory=list, init=False, repr=False)

    def validate(self, source: str, path: str) -> None:
        super().validate(source, path)
        if not self.levers and not self.parameters and not self.posterior:
            raise InputError(source, "levers", "nothing varies: give levers, parameters or a posterior")
        for name, rng in self.parameters.items():
            if rng.dist != "unif":
                raise InputError(source, f"parameters.{name}.dist", "a Latin hypercube takes unif ranges")
        self.rule = parse_rule(self.case, self.stats, source, "case")


@dataclass
class Objective:
    """One objective of a policy search: a named outcome (or `cost`, bn VND/yr) to maximise or minimise, as a
    robust statistic over the draws: `mean`, a percentile `p20`, or `share` (the share of draws meeting the
    file's target)."""

    outcome: str = param(doc="a name of the file's outcomes, or cost")
    sense: Literal["max", "min"] = param()
    statistic: str = param("mean", doc="mean, pNN (a percentile, e.g. p20) or share (of draws meeting the target)")

    def validate(self, source: str, path: str) -> None:
        if not re.fullmatch(r"mean|share|p(100|[1-9]?[0-9])", self.statistic):
            raise InputError(
                source, f"{path}.statistic", f"expected mean, share or p0-p100, got {clipped(self.statistic)}"
            )


COST = "cost"


@dataclass(kw_only=True)
class OptimisationFile(LeverHead):
    """`egovsim optimize`: levers with bounds, a budget on the province's yearly spending, objectives over the
    draws (replicates, or posterior draws) and a target whose share of draws defines a robust mix."""

    budget: float | None = param(None, lo=0.0, hi=1e6, doc="bn VND/yr: the province's lever spending at most this")
    objectives: list[Objective] = param(doc="two or more; `cost` is an objective like the others")
    target: str = param(doc="the rule a robust mix must meet, e.g. 'use_2030 >= 0.5'")
    success_share: float = param(0.8, lo=0.0, hi=1.0, doc="a robust mix meets the target in this share of draws")
    population: int = param(16, lo=4, hi=10_000, doc="NSGA-II population")
    generations: int = param(8, lo=1, hi=10_000, doc="NSGA-II generations")
    recheck: int = param(30, lo=2, hi=100_000, doc="draws for re-evaluating the Pareto set and the status quo")
    rule: list[Condition] = field(default_factory=list, init=False, repr=False)

    def validate(self, source: str, path: str) -> None:
        super().validate(source, path)
        if not self.levers:
            raise InputError(source, "levers", "at least one lever is needed")
        if len(self.objectives) < 2:
            raise InputError(source, "objectives", "at least two objectives are needed (e.g. an outcome and cost)")
        if COST in self.stats:  # the name of the spending objective: an outcome so named would be taken for it
            raise InputError(source, f"outcomes.{COST}", f"{COST} names the levers' spending (bn VND/yr): rename it")
        names = {*self.stats, COST}
        for i, obj in enumerate(self.objectives):
            if obj.outcome not in names:
                raise InputError(
                    source,
                    f"objectives[{i}].outcome",
                    f"{clipped(obj.outcome)} is not one of the file's outcomes or cost" + suggest(obj.outcome, names),
                )
            if obj.outcome == COST and obj.statistic != "mean":
                raise InputError(source, f"objectives[{i}].statistic", "cost is the same in every draw: use mean")
        self.rule = parse_rule(self.target, self.stats, source, "target")
        in_target = {c.name for c in self.rule}
        for i, obj in enumerate(self.objectives):
            if (
                obj.statistic == "share" and obj.outcome not in in_target
            ):  # the column <outcome>_share would be mislabelled
                raise InputError(
                    source,
                    f"objectives[{i}].statistic",
                    f"share counts the draws that meet the target ({self.target}): give it with an outcome the "
                    "target names",
                )
