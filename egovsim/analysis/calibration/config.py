"""The calibration file: its schema (free parameters, targets, the two methods' settings), the outcomes a
target may name, and loading it with the observations file it refers to."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from egovsim.config.analysis import AnalysisHead, ParameterRange
from egovsim.config.outcomes import DERIVED
from egovsim.config.schema import MAX_INT, NAME, build, param, suggest
from egovsim.config.yamlfile import read_yaml, referenced_file
from egovsim.errors import InputError, clipped
from egovsim.model.outcomes import COLUMNS

OUTCOMES = (*COLUMNS, *DERIVED)


# ---- the configuration file ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str = param(text=NAME)
    type: Literal["value", "range", "at_least", "order"] = param()
    outcome: str = param(doc="an outcome column or a derived outcome (calibration.DERIVED)")
    provinces: list[str] = param(list, doc="province ids, or 'national' (population-weighted mean)")
    years: list[int] = param(list)
    year: int | None = param(None, doc="shorthand for years: [year]")
    observation: str = param("", doc="id of an entry in observations.yaml (targets or citizen_targets)")
    path: list[Any] = param(lambda: ["values"], doc="keys into that entry leading to the values")
    observed: float | None = param(None, doc="an observed value given here (synthetic tests)")
    sd: float = param(
        0.05, lo=0.0, lo_open=True, doc="the source's own uncertainty (sampling, rounding), in outcome units"
    )
    discrepancy: float = param(
        0.0, lo=0.0, doc="model discrepancy: how far the model's quantity may differ from the published one (sd)"
    )
    weight: float = param(1.0, lo=0.0)
    minus: str = param("", doc="at_least: subtract this outcome of the same province")
    minus_province: str = param("", doc="at_least: subtract the same outcome of this province")
    threshold: float = param(0.0)
    range: list[float] = param(list, doc="range: [low, high]")
    scale: float = param(1.0, doc="model outcome x scale is compared (e.g. 10 for a 0-10 index)")
    source: str = param("")

    @property
    def total_sd(self) -> float:
        """The sd of the observation's error: the source's and the model discrepancy's, independent."""
        return math.hypot(self.sd, self.discrepancy)

    def validate(self, source: str, path: str) -> None:
        if self.outcome not in OUTCOMES:
            raise InputError(
                source, f"{path}.outcome", f"unknown outcome {clipped(self.outcome)}" + suggest(self.outcome, OUTCOMES)
            )
        if self.minus and self.minus not in OUTCOMES:
            raise InputError(source, f"{path}.minus", f"unknown outcome {clipped(self.minus)}")
        if self.year is not None:
            self.years = [self.year]
        if not self.years:
            raise InputError(source, f"{path}.years", "give year or years")
        if self.type == "range" and (len(self.range) != 2 or self.range[0] > self.range[1]):
            raise InputError(source, f"{path}.range", "expected [low, high]")
        if self.type in ("value", "order") and not self.observation and self.observed is None:
            raise InputError(source, f"{path}.observation", "a value or order target needs an observation")
        for name in ("provinces", "years"):
            listed = getattr(self, name) or []
            if twice := next((x for x in listed if listed.count(x) > 1), None):
                raise InputError(
                    source, f"{path}.{name}", f"{clipped(twice)} is listed twice (its term would count twice)"
                )
        for j, key in enumerate(self.path):  # keys of mappings in the observations file
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise InputError(
                    source, f"{path}.path[{j}]", f"expected a key (text or a whole number), got {clipped(repr(key))}"
                )


PRIOR_RE = re.compile(r"\s*normal\(\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)\s*")
PRIOR_FORM = "normal(mean, sd) with sd > 0, e.g. normal(0, 1)"


@dataclass
class FreeParameter(ParameterRange):
    """A free parameter of a calibration: its box (bounds) and, optionally, a normal prior inside it
    (`prior: normal(0, 1)`): a penalty in the optimiser's loss, the normal truncated to the bounds in ABC.
    Without `prior:` the prior is uniform over the bounds."""

    prior: str = param("", doc=f"{PRIOR_FORM}; default: uniform over the bounds")
    normal: tuple[float, float] | None = field(default=None, init=False, repr=False, compare=False)

    def validate(self, source: str, path: str) -> None:
        super().validate(source, path)
        if self.prior:
            self.normal = parse_prior(self.prior, source, f"{path}.prior")


def parse_prior(text: str, source: str, path: str) -> tuple[float, float]:
    """(mean, sd) of `normal(mean, sd)`."""
    match = PRIOR_RE.fullmatch(text)
    try:
        mean, sd = (float(match.group(1)), float(match.group(2))) if match else (math.nan, math.nan)
    except ValueError:
        mean, sd = math.nan, math.nan
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise InputError(source, path, f"expected {PRIOR_FORM}, got {clipped(text)}")
    return mean, sd


@dataclass
class ABCSettings:
    sampler: Literal["smc", "pyabc"] = param(
        "smc",
        doc="smc: tempered SMC with random-walk moves (smc.py); pyabc: pyabc's ABC-SMC with a stochastic acceptor "
        "(abcsmc.py), slower, kept to cross-check (give it population_size and max_populations, e.g. 80 and 4)",
    )
    population_size: int = param(2000, lo=5, hi=100_000, doc="particles per population")
    chain_length: int = param(
        20, lo=2, hi=10_000, doc="smc: states per chain; population_size // chain_length chains (at least 2)"
    )
    max_populations: int = param(
        30,
        lo=1,
        hi=1000,
        doc="pyabc: populations from the prior to the posterior, the last at temperature 1; smc: at most this many "
        "(it stops at temperature 1; stopped earlier, the result is a tempered posterior and says so)",
    )
    replicates: int = param(
        1,
        lo=1,
        hi=100,
        doc="runs per particle, each with its own seed (smc: the likelihood is the mean of their likelihoods; "
        "pyabc: the likelihood of their mean statistics)",
    )
    temperature: float = param(
        1.0,
        lo=1.0,
        hi=100.0,
        doc="the posterior of the likelihood ** (1 / temperature): every term's error variance times it "
        "(1: the stated errors; more: wider, cheaper to sample)",
    )
    predictive_draws: int = param(
        50, lo=0, hi=100_000, doc="posterior draws run for the posterior predictive of every target (0: none)"
    )

    def check_chains(self, source: str) -> None:
        """The smc sampler needs at least two chains: with one there is no spread between chains to measure its
        error by (the chain ESS, the bootstrap over chains)."""
        if self.sampler == "smc" and self.population_size // self.chain_length < 2:
            raise InputError(
                source,
                "abc.population_size",
                f"{self.population_size} particles make fewer than 2 chains of {self.chain_length} "
                "(abc.chain_length): give at least twice the chain length",
            )


@dataclass
class OptimizeSettings:
    popsize: int = param(8, lo=4, hi=1000, doc="population = popsize x number of parameters")
    max_generations: int = param(25, lo=1, hi=100_000)
    tol: float = param(0.01, lo=0.0)


@dataclass(kw_only=True)
class CalibrationConfig(AnalysisHead):
    """A calibration of one base scenario (the head keys: AnalysisHead; `name` defaults to the file's): free
    parameters (uniform ranges: the search box / prior), targets, and the two methods' settings."""

    parameters: dict[str, FreeParameter] = param(
        doc="range per free parameter (dotted key), dist: unif, with an optional prior: normal(mean, sd)"
    )
    targets: list[Target] = param()
    observations: str = param("observations.yaml", doc="relative to this config file")
    end_year: int | None = param(None, doc="last simulated year while fitting (the data end in 2024)")
    replicates: int = param(3, lo=1, hi=1000, doc="runs per parameter vector, common random numbers")
    seed: int = param(2024, lo=0, hi=MAX_INT, doc="master seed: the search and replicate seeds are spawned from it")
    fit_until: int | None = param(None, doc="only targets up to this year enter the loss (out-of-sample test)")
    optimize: OptimizeSettings = param(OptimizeSettings)
    abc: ABCSettings = param(ABCSettings)

    def validate(self, source: str, path: str) -> None:
        if not self.parameters:
            raise InputError(source, "parameters", "at least one free parameter is required")
        for key, rng in self.parameters.items():  # a search box / uniform prior, as a sweep's hypercube
            if rng.dist != "unif":
                raise InputError(
                    source,
                    f"parameters.{key}.dist",
                    f"calibration searches a uniform box: expected unif, got {rng.dist}",
                )
        if not self.targets:
            raise InputError(source, "targets", "at least one target is required")
        names = [t.name for t in self.targets]
        for i, name in enumerate(names):  # a target's rows and fit.json's terms are labelled by its name
            if name in names[:i]:
                raise InputError(source, f"targets[{i}].name", f"{clipped(name)} names an earlier target too")
        self.abc.check_chains(source)


def load_config(path: str | Path) -> tuple[CalibrationConfig, Path]:
    path = Path(path)
    config = build(CalibrationConfig, read_yaml(path), str(path))
    config.named(path, "calibration")
    return config, path.parent


def read_observations(source: str, name: str, folder: Path) -> dict:
    """The observations file a calibration config names: a mapping whose `targets` and `citizen_targets`
    are lists of mappings (entries with an id)."""
    path = referenced_file(source, "observations", name, folder)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(str(path), "(top level)", f"expected a mapping of observations, got {type(data).__name__}")
    ids: dict[str, str] = {}
    for section in ("targets", "citizen_targets"):
        entries = data.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InputError(str(path), section, "expected a list of mappings (entries with an id)")
        for i, entry in enumerate(entries):  # a target names its observation by id: two would be a silent pick
            ident = entry.get("id")
            if isinstance(ident, str) and ident in ids:
                raise InputError(str(path), f"{section}[{i}].id", f"{clipped(ident)} is also the id of {ids[ident]}")
            ids[str(ident)] = f"{section}[{i}]"
    _refuse_non_finite(data, str(path), "")
    return data


def _refuse_non_finite(node: Any, source: str, where: str) -> None:
    """An observed figure is a finite number or absent: .nan or .inf would enter the fit as a target of no value."""
    if isinstance(node, float) and not math.isfinite(node):
        raise InputError(source, where or "(top level)", f"is {node}: give a finite number, or leave the figure out")
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        _refuse_non_finite(value, source, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
