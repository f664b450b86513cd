"""A two-layer mean-field problem: unit + task + initial law (PNAS 2018 eq. 1)."""

from __future__ import annotations

import equinox as eqx

from ..errors import check
from ..numerics.pytree import Module, is_tracer, real
from .constraints import Constraint
from .init import GaussianInit
from .tasks import Task
from .units import Unit


class Problem(Module):
    """yhat(x; theta) = (alpha/N) sum_i sigma_*(x; theta_i), theta_i^0 ~ init.

    A pytree module: the numbers of the unit, task and initial law and ``alpha`` are traced
    leaves.  ``constraint`` (e.g. ``Sphere("y")``) keeps parameters on a manifold: the initial
    draw is projected onto it and SGD retracts onto it after every step.

    ``alpha`` = 1 is the mean-field scaling of PNAS 2018; alpha > 1 is the COLT 2019 kernel-limit
    scaling (eq. 13).

    Parameters
    ----------
    unit : Unit
        sigma_*(x; theta) for one neuron (e.g. ``sigma_w(ramp(...))``, ``ProjectionUnit``).
    task : Task
        the data law of (x, y) (e.g. ``IsotropicGaussians(d, delta)``).
    init : Init
        the initial law rho_0 of theta_i (default ``GaussianInit()``).
    alpha : float
        output scaling: 1 mean field, > 1 towards the kernel (lazy) limit.
    constraint : Constraint, optional
        a manifold for the parameters (e.g. ``Sphere("w")``).
    """

    unit: Unit
    task: Task
    init: GaussianInit = eqx.field(default_factory=GaussianInit)
    alpha: float = real("alpha", 1.0)
    constraint: Constraint | None = None

    def __check_init__(self):
        check(isinstance(self.unit, Unit), "unit", f"must be a Unit, got {type(self.unit).__name__}")
        check(isinstance(self.task, Task), "task", f"must be a Task, got {type(self.task).__name__}")
        check(hasattr(self.init, "sample"), "init", f"must be an initial law, got {type(self.init).__name__}")
        check(self.constraint is None or isinstance(self.constraint, Constraint), "constraint",
              f"must be a Constraint or None, got {type(self.constraint).__name__}")
        check(is_tracer(self.alpha) or self.alpha > 0, "alpha",
              f"must be > 0, got {self.alpha}")

    @property
    def d(self) -> int:
        return self.task.d

    def sample_init(self, key, n: int, dtype):
        theta = self.init.sample(key, n, self.unit.param_shapes(self.d), dtype)
        return theta if self.constraint is None else self.constraint.project(theta)

    def risk(self, theta):
        """R_N(theta) (exact where the task allows, else Monte Carlo)."""
        # alpha scales the output (COLT 2019 eq. 13); alpha = 1 multiplies a by exactly 1.
        scaled = dict(theta, a=theta["a"] * self.alpha) if "a" in theta else theta
        return self.task.risk(self.unit, scaled)
