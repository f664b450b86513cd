"""Problem description: activations, units, initial laws, tasks (pure data, no loops)."""

from .anisotropic import AnisotropicGaussians
from .activations import Activation, Erf, PiecewiseLinear, Sigmoid, Tanh, get_activation, ramp, relu
from .constraints import Constraint, Sphere
from .init import GaussianInit, Init, SamplerInit, SphereInit
from .problem import Problem
from . import population
from .tasks import GaussianClasses, IsotropicGaussians, Task
from .units import FunctionUnit, ProjectionUnit, Unit, sigma_w

__all__ = [
    "Activation", "Erf", "PiecewiseLinear", "Sigmoid", "Tanh", "get_activation", "ramp", "relu",
    "Constraint", "Sphere", "GaussianInit", "Init", "SamplerInit", "SphereInit", "Problem", "GaussianClasses", "IsotropicGaussians", "population", "AnisotropicGaussians", "Task",
    "FunctionUnit", "ProjectionUnit", "Unit", "sigma_w",
]
