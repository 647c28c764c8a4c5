"""Calibration: fit the model's uncertain parameters to the sourced observations, and say how sure we are.

    config file -> CalibrationConfig -> Terms (one per observed number, ordering or pattern)
    parameter vectors -> RunSpecs -> run_many (stored, failure-isolated) -> statistics -> loss terms -> loss

Two methods share everything but the search: `optimize` (scipy's differential evolution, a point estimate) and
`abc` (a posterior: tempered SMC with random-walk moves, or pyabc's ABC-SMC with `abc.sampler: pyabc`). Both evaluate parameter vectors through the experiment runner on any
executor (a local process pool, a Dask cluster, serial), so runs are stored and reused by a rerun, a failing
run costs only its own terms, and parameter names take `provinces.*.` like a sweep's.

- config.py    the calibration file: schema, the outcomes a target may name, loading
- terms.py     observed targets -> loss terms; the problem; the objective through the runner (Evaluation)
- fit.py       differential evolution (the point estimate) and its checkpoint
- smc.py       the posterior by tempered, waste-free SMC with pseudo-marginal random-walk moves (the default)
- abcsmc.py    ABC-SMC (pyabc) and the seeded sampler that maps its particle tasks on an executor
- report.py    fit.json, observed_vs_simulated.csv, posterior.csv, calibrated scenario files, the table
- pipeline.py  plan_calibration (check the inputs) and calibrate (fit, then write the output folder)
"""

from egovsim.analysis.calibration.abcsmc import abc, seeded_particle, seeded_sampler
from egovsim.analysis.calibration.config import (
    DERIVED,
    OUTCOMES,
    ABCSettings,
    CalibrationConfig,
    OptimizeSettings,
    Target,
    load_config,
    read_observations,
)
from egovsim.analysis.calibration.fit import Fit, optimize, read_checkpoint
from egovsim.analysis.calibration.pipeline import METHODS, Calibration, calibrate, plan_calibration
from egovsim.analysis.calibration.posterior import weighted_quantile
from egovsim.analysis.calibration.report import (
    calibrated_scenarios,
    check_install,
    install_files,
    print_terms,
    term_table,
    write_outputs,
)
from egovsim.analysis.calibration.terms import (
    Evaluation,
    FitProblem,
    Term,
    build_terms,
    make_problem,
    measure_quantities,
    run_vectors,
    term_values,
)
from egovsim.config.analysis import NATIONAL, OutcomeStat, ParameterRange

__all__ = [
    "DERIVED",
    "METHODS",
    "NATIONAL",
    "OUTCOMES",
    "ABCSettings",
    "Calibration",
    "CalibrationConfig",
    "Evaluation",
    "Fit",
    "FitProblem",
    "OptimizeSettings",
    "OutcomeStat",
    "ParameterRange",
    "Target",
    "Term",
    "abc",
    "build_terms",
    "calibrate",
    "calibrated_scenarios",
    "check_install",
    "install_files",
    "load_config",
    "make_problem",
    "measure_quantities",
    "optimize",
    "plan_calibration",
    "print_terms",
    "read_checkpoint",
    "read_observations",
    "run_vectors",
    "seeded_particle",
    "seeded_sampler",
    "term_table",
    "term_values",
    "weighted_quantile",
    "write_outputs",
]
