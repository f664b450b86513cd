"""Problem description: activations, units, initial laws, tasks (pure data, no loops)."""

from .anisotropic import AnisotropicGaussians
from .activations import Activation, Erf, PiecewiseLinear, Sigmoid, Tanh, get_activation, ramp, relu
from .constraints import Constraint, Sphere
from .init import GaussianInit, Init, SamplerInit, SphereInit
from .problem import Problem
from . import population
from .tasks import GaussianClasses, IsotropicGaussians, Task
from .units import FunctionUnit, ProjectionUnit, Unit, sigma_w
from .multilayer import (Identity, MultilayerNetwork, MultilayerProblem, TwoLayerInit, from_two_layer, multilayer,
                         params_from_two_layer)
from .embeddings import CorrelatedEmbedding, Embedding, IIDEmbedding, bidirectional_diversity
from .teachers import TeacherNetwork
from .datasets import FiniteDataset, digits_task

__all__ = [
    "Activation", "Erf", "PiecewiseLinear", "Sigmoid", "Tanh", "get_activation", "ramp", "relu",
    "Constraint", "Sphere", "GaussianInit", "Init", "SamplerInit", "SphereInit", "Problem", "GaussianClasses", "IsotropicGaussians", "population", "AnisotropicGaussians", "Task",
    "FunctionUnit", "ProjectionUnit", "Unit", "sigma_w",
    "Identity", "MultilayerNetwork", "MultilayerProblem", "TwoLayerInit", "from_two_layer", "multilayer",
    "params_from_two_layer", "CorrelatedEmbedding", "Embedding", "IIDEmbedding", "bidirectional_diversity",
    "TeacherNetwork", "FiniteDataset", "digits_task",
]
from .inputs import GaussianInputs, InputLaw, SamplerInputs, SphereInputs
from .particle_units import RBF_SIGNS, ChargeUnit, RBFUnit, SigmoidUnit
from .regression import Regression, population_terms, test_loss
from .targets import FunctionTarget, Target, ThreeSpin

__all__ += ["GaussianInputs", "InputLaw", "SamplerInputs", "SphereInputs", "ChargeUnit", "RBFUnit", "SigmoidUnit",
            "Regression", "population_terms", "test_loss", "FunctionTarget", "Target", "ThreeSpin"]
