"""Named, configurable, reproducible experiments (``mfnn list``): the contract in ``base``, config
parsing and validation in ``config``, the runner in ``runner``."""

from .base import REGISTRY, Experiment, ExperimentConfig, Point, all_experiments, field_units, get, register, unit_field
from .runner import RunFailed, run_experiment

__all__ = ["Experiment", "ExperimentConfig", "Point", "REGISTRY", "RunFailed", "all_experiments", "get", "register",
           "run_experiment", "field_units", "unit_field"]
