"""Units sigma_*(x; theta): the function one neuron computes (PNAS 2018 eq. 1).

A unit's parameters theta are a dict pytree of per-neuron arrays; SGD and the DD solvers act on
the leaves named in ``trained`` and leave the others at their initial values.  Gradients come
from ``jax.grad`` of ``apply``, so any user unit works; the built-in ``ProjectionUnit`` also
exposes (a, b, w) so that tasks can evaluate population terms exactly.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import Module
from .activations import Activation, get_activation


class Unit(Module):
    """Interface: ``apply(theta, x) -> scalar`` for ONE neuron and ONE input x of shape (d,).

    Subclasses define the static field ``trained`` (names of the trained parameters).
    """

    def apply(self, theta, x):  # pragma: no cover - interface
        raise NotImplementedError

    def param_shapes(self, d: int) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def n_trained(self, d: int) -> int:
        """D: the number of trained coordinates of one neuron."""
        shapes = self.param_shapes(d)
        return int(sum(int(jnp.prod(jnp.array(shapes[k]))) if shapes[k] else 1 for k in self.trained))


_PARAMS = ("a", "b", "w")


class ProjectionUnit(Unit):
    """sigma_*(x; theta) = a * sigma(<w, x> + b), any subset of (a, b, w) trained.

    ``ProjectionUnit(act, trained=("w",))`` with a = 1, b = 0 at initialization is the PNAS
    isotropic unit sigma(<w, x>) (theta = w, D = d).
    """

    activation: Activation = eqx.field(converter=get_activation)
    trained: tuple = eqx.field(static=True, default=("w",), converter=lambda t: tuple(t) if not isinstance(t, str) else (t,))

    def __check_init__(self):
        check(len(self.trained) > 0, "unit.trained", "train at least one of a, b, w")
        for name in self.trained:
            check(name in _PARAMS, "unit.trained", f"unknown parameter {name!r}; choose from {_PARAMS}")

    def apply(self, theta, x):
        return theta["a"] * self.activation(jnp.dot(theta["w"], x) + theta["b"])

    def param_shapes(self, d: int) -> dict:
        return {"a": (), "b": (), "w": (d,)}


def sigma_w(activation="ramp") -> ProjectionUnit:
    """The PNAS isotropic unit sigma(<w, x>): only w is trained (a = 1, b = 0 from the init)."""
    return ProjectionUnit(activation, trained=("w",))


class FunctionUnit(Unit):
    """A user unit: ``fn(theta, x) -> scalar`` with ``shapes(d) -> {name: shape}``.

    Example: ``FunctionUnit(lambda th, x: th["c"] * jnp.exp(-jnp.sum((x - th["y"])**2)),
    lambda d: {"c": (), "y": (d,)}, trained=("c", "y"))`` (an RBF particle as in
    Rotskoff-Vanden-Eijnden).  Population terms fall back to Monte Carlo.
    """

    fn: Callable = eqx.field(static=True)
    shapes: Callable = eqx.field(static=True)
    trained: tuple = eqx.field(static=True, default=(), converter=tuple)

    def __check_init__(self):
        check(callable(self.fn), "unit.fn", "must be callable fn(theta, x) -> scalar")
        check(callable(self.shapes), "unit.shapes", "must be callable shapes(d) -> {name: shape}")

    def apply(self, theta, x):
        return self.fn(theta, x)

    def param_shapes(self, d: int) -> dict:
        return dict(self.shapes(d))
