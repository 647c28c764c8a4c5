"""The documentation that is generated from code must match the code."""

from egovsim.report.paramdoc import markdown

from .conftest import ROOT


def test_parameter_table_is_current():
    """docs/parameters.md is generated from the scenario schema; regenerate with
    `python -m egovsim.report.paramdoc > docs/parameters.md` after changing a default."""
    assert (ROOT / "docs" / "parameters.md").read_text() == markdown()


def test_odd_names_every_parameter_section():
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
