"""Input laws mu of a regression task (Rotskoff-Vanden-Eijnden 2018 eq. 1.2: l = (1/2) int |f - f_n|^2 dmu).

An input law samples x: ``sample(key, n, dtype) -> (n, d)``.  Built in: ``SphereInputs`` (uniform
on the sphere S^{d-1} of radius sqrt(d), the law of RV 2018 section 4), ``GaussianInputs``
(N(0, I_d)) and ``SamplerInputs`` (a user function).  ``d`` is structure (static), the radius a
traced leaf.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import Module, is_tracer, to_int, to_real

__all__ = ["InputLaw", "SphereInputs", "GaussianInputs", "SamplerInputs"]


class InputLaw(Module):
    """Interface: field ``d`` and ``sample(key, n, dtype) -> x (n, d)``."""

    def sample(self, key, n: int, dtype=jnp.float64):  # pragma: no cover - interface
        raise NotImplementedError


class SphereInputs(InputLaw):
    """x uniform on the sphere of radius ``radius`` (None: sqrt(d)); x = r g/|g|, g ~ N(0, I_d)."""

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1, maximum=10**6))
    radius: float | None = eqx.field(default=None, converter=lambda r: None if r is None else to_real("radius", r))

    def __check_init__(self):
        check(self.radius is None or is_tracer(self.radius) or self.radius > 0, "radius",
              f"must be > 0, got {self.radius}")

    @property
    def r(self):
        return jnp.sqrt(float(self.d)) if self.radius is None else self.radius

    def sample(self, key, n: int, dtype=jnp.float64):
        g = jax.random.normal(key, (n, self.d), dtype)
        return (g * (self.r / jnp.linalg.norm(g, axis=-1, keepdims=True))).astype(dtype)


class GaussianInputs(InputLaw):
    """x ~ N(0, I_d)."""

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1, maximum=10**6))

    def sample(self, key, n: int, dtype=jnp.float64):
        return jax.random.normal(key, (n, self.d), dtype)


class SamplerInputs(InputLaw):
    """A user law: ``fn(key, n, dtype) -> (n, d)`` (static callable; checked on a probe draw)."""

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1, maximum=10**6))
    fn: Callable = eqx.field(static=True)

    def __check_init__(self):
        check(callable(self.fn), "inputs.fn", "must be callable fn(key, n, dtype) -> (n, d)")
        shape = jax.eval_shape(lambda k: self.fn(k, 3, jnp.float32), jax.random.PRNGKey(0)).shape
        check(tuple(shape) == (3, self.d), "inputs.fn", f"a draw of 3 points has shape {tuple(shape)}, expected (3, {self.d})")

    def sample(self, key, n: int, dtype=jnp.float64):
        return jnp.asarray(self.fn(key, n, dtype), dtype)
