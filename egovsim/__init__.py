"""egovsim: agent-based simulation of e-government adoption in Vietnam's provinces (Mesa 3.5).

Data flows one way: scenario file -> validated Scenario -> EGovModel -> outcomes -> experiments -> analysis.
"""

from .errors import InputError
from .model import EGovModel, simulate
from .outcomes import COLUMNS
from .scenario import Scenario, load_scenario

__all__ = ["COLUMNS", "EGovModel", "InputError", "Scenario", "load_scenario", "simulate"]
__version__ = "0.1.0"
