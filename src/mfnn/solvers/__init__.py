"""Solvers: finite-N SGD and mean-field (DD) limits, all run by ``solve(problem, method, saveat)``."""

from ._driver import Method, SaveAt, Solution, solve
from .anisotropic_dd import AnisotropicDD, AnisotropicModel
from .fields import kept
from .gibbs import GibbsFixedPoint, polish_gibbs
from .multilayer_sgd import MultilayerSGD
from .noisy_radial import NoisyRadialPDE
from .particle_dd import ParticleDD
from .particle_flow import ParticleFlow, Phase, langevin_temperature, quench
from .radial_dd import RadialDD, RadialModel
from .radial_grid import RadialGrid
from .seeds import split_replicas, stack_keys
from .sgd import OnlineSGD, make_step

__all__ = [
    "Method", "SaveAt", "Solution", "solve", "kept", "OnlineSGD", "MultilayerSGD",
    "RadialDD", "ParticleDD", "NoisyRadialPDE", "GibbsFixedPoint", "AnisotropicDD",
    "AnisotropicModel", "RadialGrid", "RadialModel", "make_step", "polish_gibbs",
    "ParticleFlow", "Phase", "langevin_temperature", "quench", "split_replicas", "stack_keys",
]
