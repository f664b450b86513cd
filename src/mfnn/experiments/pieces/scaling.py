"""Pieces of the scaling experiments (pnas-error-scaling, mmm-dimension-free): the isotropic
problem as flat point parameters, SGD replicas, and the compute of one gap-sweep point.
``PROBLEM_KEYS`` names the point parameters that define the problem."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import check
from ...problem import GaussianInit, IsotropicGaussians, Problem, ramp, sigma_w
from .checks import check_finite
from .fields import RampFields
from ..base import unit_field

__all__ = ["IsotropicFields", "PROBLEM_KEYS", "ReplicaFields", "gap_point", "isotropic_problem", "pop_isotropic_problem"]


@dataclass(frozen=True)
class IsotropicFields(RampFields):
    """PNAS 2018 isotropic Gaussians y = +-1, x | y ~ N(0, (1 + y delta)^2 I_d), unit sigma(<w, x>)
    with only w trained, w^0 ~ N(0, kappa^2/d I_d)."""

    delta: float = unit_field(0.8, None)
    kappa: float = unit_field(0.8, None)
    n_hermite: int = unit_field(24, "Hermite terms")

    def problem_params(self, d: int, n_hermite: int | None = None) -> dict:
        """The flat parameters of :func:`isotropic_problem` (what a ``Point`` stores)."""
        return {"d": int(d), "delta": self.delta, "kappa": self.kappa, "t1": self.t1, "t2": self.t2,
                "s1": self.s1, "s2": self.s2, "n_hermite": int(self.n_hermite if n_hermite is None else n_hermite)}

    def validate_isotropic(self) -> None:
        self.validate_ramp()
        check_finite(self, ("delta", "kappa"))
        check(0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
        check(self.kappa > 0, "kappa", f"must be > 0, got {self.kappa}")
        check(4 <= self.n_hermite <= 256, "n_hermite", f"must be in [4, 256], got {self.n_hermite}")


def isotropic_problem(d, delta, kappa, t1, t2, s1, s2, n_hermite) -> Problem:
    """The problem of :class:`IsotropicFields` from its flat parameters."""
    return Problem(sigma_w(ramp(t1, t2, s1, s2)), IsotropicGaussians(d=int(d), delta=delta, n_hermite=int(n_hermite)),
                   GaussianInit(kappa=kappa))


PROBLEM_KEYS = ("d", "delta", "kappa", "t1", "t2", "s1", "s2", "n_hermite")


def pop_isotropic_problem(params: dict) -> tuple:
    """(problem, the other parameters) from a point's params holding :data:`PROBLEM_KEYS`."""
    rest = dict(params)
    return isotropic_problem(**{k: rest.pop(k) for k in PROBLEM_KEYS}), rest


@dataclass(frozen=True)
class ReplicaFields:
    """Replicas of an online SGD run and the engine of ``OnlineSGD`` (scaling experiments; the
    number of neurons and the step are their sweep fields)."""

    replicas: int = unit_field(8, "replicas")
    engine: str = unit_field("auto", None)

    def validate_sgd(self) -> None:
        check(2 <= self.replicas <= 4096, "replicas", f"must be in [2, 4096] (fluctuations), got {self.replicas}")
        check(self.engine in ("auto", "generic", "blocked"), "engine",
              f"use auto, generic or blocked, got {self.engine!r}")


def gap_point(point, progress: bool = False):
    """The dataset of one point of an SGD -> DD gap sweep: the DD reference risk (``kind`` "dd")
    or the replicas of one SGD run (``kind`` "sgd"), keyed by the point's own seed."""
    import jax

    from ...analysis.gap_points import dd_risk_point, sgd_risk_point

    problem, p = pop_isotropic_problem(point.params)
    kind, times = p.pop("kind"), p.pop("times")
    if kind == "dd":
        return dd_risk_point(problem, times, n_particles=p["dd_particles"], rtol=p["dd_rtol"], progress=progress)
    return sgd_risk_point(problem, times, key=jax.random.PRNGKey(point.seed), progress=progress, **p)
