"""Constraints: parameters kept on a manifold (in the spirit of jax-md's ``shift_fn``).

A constraint provides ``project(theta) -> theta`` (a retraction back onto the manifold, applied
after every SGD step and at initialization) and ``tangent(theta, g) -> g`` (the projection of a
gradient or velocity onto the tangent space, used by mean-field particle flows).  ``Sphere``
keeps chosen vector parameters on the sphere of radius ``radius`` (RBF centres on S^{d-1}(sqrt d)
in Rotskoff-Vanden-Eijnden 2018); ``None`` (the default of ``Problem``) is the flat space.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import Module, is_tracer, to_real


class Constraint(Module):
    """Interface: ``project(theta)`` and ``tangent(theta, g)`` on dicts of per-neuron arrays."""

    def project(self, theta):  # pragma: no cover - interface
        raise NotImplementedError

    def tangent(self, theta, g):  # pragma: no cover - interface
        raise NotImplementedError


class Sphere(Constraint):
    """||theta[name]|| = radius for each name in ``params`` (radius None: sqrt of the dimension)."""

    params: tuple = eqx.field(static=True, default=("w",), converter=lambda p: (p,) if isinstance(p, str) else tuple(p))
    radius: float | None = eqx.field(default=None, converter=lambda r: None if r is None else to_real("constraint.radius", r))

    def __check_init__(self):
        check(len(self.params) > 0, "constraint.params", "name at least one parameter")
        check(self.radius is None or is_tracer(self.radius) or self.radius > 0, "constraint.radius",
              f"must be > 0, got {self.radius}")

    def _r(self, v):
        return jnp.sqrt(v.shape[-1] * 1.0) if self.radius is None else self.radius

    def project(self, theta):
        out = dict(theta)
        for name in self.params:
            v = theta[name]
            out[name] = (v * (self._r(v) / jnp.linalg.norm(v, axis=-1, keepdims=True))).astype(v.dtype)
        return out

    def tangent(self, theta, g):
        out = dict(g)
        for name in self.params:
            v = theta[name]
            n = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
            out[name] = g[name] - jnp.sum(g[name] * n, axis=-1, keepdims=True) * n
        return out
