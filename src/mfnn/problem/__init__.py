"""Problem description: activations, units, initial laws, tasks (pure data, no loops)."""

from .anisotropic import AnisotropicGaussians
from .activations import Activation, Erf, PiecewiseLinear, Sigmoid, Tanh, get_activation, ramp, relu
from .init import GaussianInit
from .problem import Problem
from .tasks import IsotropicGaussians, Task
from .units import FunctionUnit, ProjectionUnit, Unit, sigma_w

__all__ = [
    "Activation", "Erf", "PiecewiseLinear", "Sigmoid", "Tanh", "get_activation", "ramp", "relu",
    "GaussianInit", "Problem", "IsotropicGaussians", "AnisotropicGaussians", "Task",
    "FunctionUnit", "ProjectionUnit", "Unit", "sigma_w",
]
