"""mfnn: the mean-field theory of neural-network training, computable.

float64 is enabled at import: DD solvers and quadrature need it; SGD runs choose their dtype
through their config.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import analysis, kernel, numerics, problem, solvers  # noqa: E402
from .errors import ConfigError, DivergenceError  # noqa: E402
from .numerics import Constant, PowerLaw, as_schedule  # noqa: E402
from .problem import *  # noqa: E402,F401,F403
from .solvers import *  # noqa: E402,F401,F403

__version__ = "0.1.0"
