"""The documentation that is generated from code must match the code."""

import dataclasses
import re

from egovsim.config.scenario import Event, Merger, ParameterSource, Policy, ProvinceConfig, Scenario
from egovsim.report.paramdoc import markdown, sections

from .conftest import ROOT


def test_parameter_table_is_current():
    """docs/parameters.md is generated from the scenario schema; regenerate with
    `python -m egovsim.report.paramdoc > docs/parameters.md` after changing a default."""
    assert (ROOT / "docs" / "parameters.md").read_text() == markdown()


def test_odd_names_every_parameter_section():
    """docs/ODD.md follows the ODD protocol's seven elements and names every section of the scenario's
    parameters (network., citizens., portal., merger., ...) where it describes what they do."""
    odd = (ROOT / "docs" / "ODD.md").read_text()
    for heading in (
        "Purpose",
        "Entities",
        "Process overview",
        "Design concepts",
        "Initialisation",
        "Input data",
        "Submodels",
    ):
        assert heading in odd
    roots = {prefix.split(".")[0].split("[")[0] for _, prefix, _ in sections() if prefix}
    assert {"network", "citizens", "civil_servants", "portal", "merger", "central", "provinces"} <= roots
    missing = [root for root in sorted(roots) if f"{root}." not in odd and f"`{root}`" not in odd]
    assert not missing, missing


# sections whose numbers are settings or levers, not behaviour: the run's own settings, the sourced structure of
# a province (its scenario file's `sources:`), the levers at their reference values, what an event or merger sets
NOT_BEHAVIOUR = {Scenario, ProvinceConfig, Policy, Event, Merger, ParameterSource}


def test_every_behavioural_number_has_a_source_or_a_prior_range():
    """Every number of the model's behaviour in the schema has a source, or is marked a prior with its range
    (the brief's rule: no arbitrary number an analyst could quote)."""
    missing = []
    for _, prefix, cls in sections():
        if cls in NOT_BEHAVIOUR:
            continue
        for f in dataclasses.fields(cls):
            default = f.default
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                continue
            source = f.metadata.get("source", "")
            if not source or ("prior" in source and not re.search(r"prior (\[[^]]+\]|N\()", source)):
                missing.append(f"{prefix}{f.name}")
    assert not missing, missing
