"""A two-layer mean-field problem: unit + task + initial law (PNAS 2018 eq. 1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .init import GaussianInit
from .tasks import Task
from .units import Unit


@dataclass(frozen=True)
class Problem:
    """yhat(x; theta) = (alpha/N) sum_i sigma_*(x; theta_i), theta_i^0 ~ init.

    ``alpha`` = 1 is the mean-field scaling of PNAS 2018; alpha > 1 is the COLT 2019 kernel-limit
    scaling (eq. 13).
    """

    unit: Unit
    task: Task
    init: GaussianInit = field(default_factory=GaussianInit)
    alpha: float = 1.0

    @property
    def d(self) -> int:
        return self.task.d

    def sample_init(self, key, n: int, dtype):
        return self.init.sample(key, n, self.unit.param_shapes(self.d), dtype)

    def risk(self, theta):
        """R_N(theta) (exact where the task allows, else Monte Carlo)."""
        if self.alpha == 1.0:
            return self.task.risk(self.unit, theta)
        scaled = dict(theta, a=theta["a"] * self.alpha) if "a" in theta else theta
        return self.task.risk(self.unit, scaled)
