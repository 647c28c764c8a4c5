"""Configuration: the files a user writes (scenarios, experiments, calibration), read and validated."""
