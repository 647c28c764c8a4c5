"""Analyses over many runs: what-if comparisons, sweeps, sensitivity, calibration."""
