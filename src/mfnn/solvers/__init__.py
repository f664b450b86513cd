"""Solvers: finite-N SGD and mean-field (DD) limits."""

from .radial_dd import RadialDDSolution, RadialModel, solve_radial_dd
from .sgd import SGDConfig, SGDTrajectory, make_step, simulate_sgd

__all__ = ["RadialDDSolution", "RadialModel", "solve_radial_dd", "SGDConfig", "SGDTrajectory",
           "make_step", "simulate_sgd"]
