"""Which implementation of the model's rules runs (tests/test_kernels.py checks they agree):

  numba  population.Citizens, CivilService and measure: compiled loops (kernels.py), the default
  plain  reference.PlainCitizens, PlainCivilService and measure: the rules written the direct way, every agent
         every step, every outcome a full count

Chosen per model (EGovModel(..., engine=)) or for a whole process with the environment variable EGOVSIM_ENGINE.
A configuration value, read here without importing the model, so the command line checks it at once.
"""

from __future__ import annotations

import os

from egovsim.errors import InputError, clipped

ENGINES = ("numba", "plain")


def default_engine() -> str:
    engine = os.environ.get("EGOVSIM_ENGINE", "").strip().lower()
    if engine in ENGINES:
        return engine
    if engine:
        raise InputError(
            "EGOVSIM_ENGINE", "", f"unknown engine {clipped(engine)}: expected one of {', '.join(ENGINES)}"
        )
    return "numba"


def engine_mark() -> dict[str, str]:
    """What names the engine in a run's key and a folder's settings: nothing for numba, the default (so keys made
    before the engine was marked mean numba's runs), {"engine": "plain"} otherwise: the plain engine's results
    agree with numba's in distribution, not in the last bits, so one's runs are never handed back for the other's."""
    engine = default_engine()
    return {} if engine == "numba" else {"engine": engine}
