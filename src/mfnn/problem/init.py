"""Initial laws rho_0 of one neuron's parameters (theta_i^0 i.i.d. rho_0).

The ``Init`` protocol: ``sample(key, n, shapes, dtype) -> {name: array (n, *shape)}`` draws n
neurons whose parameters have the given per-neuron shapes.  Built in: ``GaussianInit`` (the PNAS
2018 law), ``SphereInit`` (chosen parameters uniform on a sphere, the others delegated to a base
law) and ``SamplerInit`` (a user function).  Laws are pytree modules: their numbers are traced
leaves, so a sweep over kappa compiles once.
"""

from __future__ import annotations

import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ..errors import check
from ..numerics.pytree import Module, real, to_real as _to_real


def real_value(field, v):
    return _to_real(field, v)


class Init(Module):
    """Interface of initial laws: ``sample(key, n, shapes, dtype)``."""

    def sample(self, key, n: int, shapes: dict, dtype=jnp.float64):  # pragma: no cover - interface
        raise NotImplementedError


class GaussianInit(Init):
    """w ~ N(0, (kappa^2/d) I_d); a ~ a_mean + a_std N(0,1); b ~ b_mean + b_std N(0,1).

    ``kappa`` follows PNAS 2018 (rho_0 = N(0, kappa^2/d I_d); Fig. 1 uses kappa = 0.8).
    ``symmetric_a`` draws a = +-|a| with a fair sign (E a = 0: the kernel-limit property (I)).
    Parameters absent from a unit's shapes are skipped; a user unit's other leaves get N(0, 1/d).
    """

    kappa: float = real("init.kappa", 0.8)
    a_mean: float = real("init.a_mean", 1.0)
    a_std: float = real("init.a_std", 0.0)
    b_mean: float = real("init.b_mean", 0.0)
    b_std: float = real("init.b_std", 0.0)
    symmetric_a: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        check(isinstance(self.symmetric_a, bool), "init.symmetric_a", f"must be a bool, got {self.symmetric_a!r}")
        check(self.kappa >= 0, "init.kappa", f"must be >= 0, got {self.kappa}")
        check(self.a_std >= 0, "init.a_std", f"must be >= 0, got {self.a_std}")
        check(self.b_std >= 0, "init.b_std", f"must be >= 0, got {self.b_std}")

    def sample(self, key, n: int, shapes: dict, dtype=jnp.float64):
        """Draw n neurons: a dict of arrays with leading axis n."""
        out = {}
        for i, (name, shape) in enumerate(sorted(shapes.items())):
            k = jax.random.fold_in(key, i)
            d = shape[0] if shape else 1
            z = jax.random.normal(k, (n,) + tuple(shape), dtype=dtype)
            if name == "w":
                out[name] = z * (self.kappa / math.sqrt(d))
            elif name == "a":
                a = self.a_mean + self.a_std * z
                if self.symmetric_a:
                    sign = jnp.where(jax.random.bernoulli(jax.random.fold_in(k, 1), 0.5, (n,)), 1.0, -1.0)
                    a = sign.astype(dtype) * a
                out[name] = a
            elif name == "b":
                out[name] = self.b_mean + self.b_std * z
            else:
                out[name] = z / math.sqrt(d)
        # the law's numbers are float64 leaves: cast to the run's dtype
        return {k: v.astype(dtype) for k, v in out.items()}

    def radius_quantiles(self, d: int, m: int) -> np.ndarray:
        """The m midpoint quantiles of r = ||w||, which is (kappa/sqrt(d)) * chi_d."""
        u = (np.arange(m) + 0.5) / m
        return float(self.kappa) / math.sqrt(d) * stats.chi.ppf(u, d)


class SphereInit(Init):
    """The parameters named in ``params`` uniform on the sphere of radius ``radius`` in their
    space (e.g. RBF centres y_i on S^{d-1}(sqrt d), Rotskoff-Vanden-Eijnden 2018); every other
    parameter from ``base``.  ``radius=None`` means sqrt(dim), the radius of the data sphere."""

    params: tuple = eqx.field(static=True, default=("w",), converter=lambda p: (p,) if isinstance(p, str) else tuple(p))
    radius: float | None = eqx.field(default=None, converter=lambda r: None if r is None else real_value("init.radius", r))
    base: Init = eqx.field(default_factory=GaussianInit)

    def __check_init__(self):
        check(len(self.params) > 0, "init.params", "name at least one parameter to put on the sphere")
        check(self.radius is None or isinstance(self.radius, jax.core.Tracer) or self.radius > 0, "init.radius",
              f"must be > 0, got {self.radius}")

    def sample(self, key, n: int, shapes: dict, dtype=jnp.float64):
        out = self.base.sample(jax.random.fold_in(key, 7), n, shapes, dtype)
        for i, name in enumerate(self.params):
            check(name in shapes and len(shapes[name]) == 1, "init.params",
                  f"{name!r} must be a vector parameter of the unit; its parameters are {sorted(shapes)}")
            dim = shapes[name][0]
            g = jax.random.normal(jax.random.fold_in(key, 100 + i), (n, dim), dtype)
            r = math.sqrt(dim) if self.radius is None else self.radius
            out[name] = (g / jnp.linalg.norm(g, axis=-1, keepdims=True) * r).astype(dtype)
        return out


class SamplerInit(Init):
    """A user law: ``fn(key, n, shapes, dtype) -> {name: array (n, *shape)}`` (static)."""

    fn: Callable = eqx.field(static=True)

    def __check_init__(self):
        check(callable(self.fn), "init.fn", "must be callable fn(key, n, shapes, dtype) -> dict")

    def sample(self, key, n: int, shapes: dict, dtype=jnp.float64):
        out = dict(self.fn(key, n, shapes, dtype))
        for name, shape in shapes.items():
            check(name in out, "init.fn", f"the sampler returned no {name!r}")
            check(tuple(out[name].shape) == (n,) + tuple(shape), "init.fn",
                  f"{name!r} has shape {tuple(out[name].shape)}, expected {(n,) + tuple(shape)}")
        return {k: jnp.asarray(v, dtype) for k, v in out.items()}
