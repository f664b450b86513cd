"""Named, configurable, reproducible experiments (``mfnn list``)."""

from .base import Experiment, ExperimentConfig, REGISTRY, all_experiments, get, register, run_experiment

__all__ = ["Experiment", "ExperimentConfig", "REGISTRY", "all_experiments", "get", "register", "run_experiment"]
