"""Solvers: finite-N SGD and mean-field (DD) limits."""

from ._driver import Method, SaveAt, Solution, solve
from .anisotropic_dd import AnisotropicDD, AnisotropicDDSolution, AnisotropicModel, solve_anisotropic_dd
from .noisy_radial import (GibbsFixedPoint, GibbsSolution, NoisyRadialPDE, NoisyRadialSolution, RadialGrid,
                           solve_gibbs, solve_noisy_radial)
from .particle_dd import ParticleDD, ParticleDDSolution, solve_particle_dd
from .radial_dd import RadialDD, RadialDDSolution, RadialModel, solve_radial_dd
from .multilayer_sgd import MultilayerSGD
from .sgd import OnlineSGD, SGDConfig, SGDTrajectory, make_step, simulate_sgd

__all__ = [
    "Method", "SaveAt", "Solution", "solve", "OnlineSGD", "MultilayerSGD",
    "RadialDD", "ParticleDD", "NoisyRadialPDE", "GibbsFixedPoint", "AnisotropicDD",
    "AnisotropicDDSolution", "AnisotropicModel", "solve_anisotropic_dd",
    "GibbsSolution", "NoisyRadialSolution", "RadialGrid", "solve_gibbs", "solve_noisy_radial",
    "ParticleDDSolution", "solve_particle_dd",
    "RadialDDSolution", "RadialModel", "solve_radial_dd",
    "SGDConfig", "SGDTrajectory", "make_step", "simulate_sgd",
]
from .particle_flow import ParticleFlow, Phase, langevin_temperature, quench

__all__ += ["ParticleFlow", "Phase", "langevin_temperature", "quench"]
