"""egovsim: agent-based simulation of e-government adoption in Vietnam's provinces (Mesa 3.5).

Data flows one way: scenario file -> validated Scenario -> EGovModel -> outcomes -> experiments -> analysis.

The names below load on first use (PEP 562), so `egovsim --help`, `--version` and `validate` do not pay for
Mesa, numba and matplotlib.
"""

from importlib import import_module

__all__ = ["COLUMNS", "EGovModel", "InputError", "Scenario", "load_scenario", "simulate"]
__version__ = "0.1.0"

_WHERE = {
    "COLUMNS": "egovsim.model.outcomes",
    "EGovModel": "egovsim.model.model",
    "InputError": "egovsim.errors",
    "Scenario": "egovsim.config.scenario",
    "load_scenario": "egovsim.config.scenario",
    "simulate": "egovsim.model.model",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'egovsim' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
