"""Target functions f(x) of a regression task (Rotskoff-Vanden-Eijnden 2018 section 4).

A target is a pytree module: ``value(x, r)`` for ONE input x (d,) and realization index r,
``values(x, r)`` for a batch (n, d) -> (n,), ``grad(x, r)`` (autodiff unless overridden) and
``n_realizations``.  ``ThreeSpin`` is the spherical 3-spin model (RV eq. 4.1) with several
seeded realizations of a_pqr stacked on a leading axis, so one compiled run serves them all
(the realization index is traced); ``FunctionTarget`` wraps any JAX function of x.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check
from ..numerics.pytree import Module, is_tracer, to_int

__all__ = ["Target", "ThreeSpin", "FunctionTarget"]


class Target(Module):
    """Interface: ``d``, ``n_realizations``, ``value(x, r)``; ``values`` and ``grad`` by default."""

    n_realizations = 1

    def value(self, x, r=0):  # pragma: no cover - interface
        raise NotImplementedError

    def values(self, x, r=0):
        return jax.vmap(lambda xx: self.value(xx, r))(x)

    def grad(self, x, r=0):
        return jax.grad(lambda xx: self.value(xx, r))(x)


class ThreeSpin(Target):
    """f(x) = (1/d) sum_pqr a_pqr x_p x_q x_r, a_pqr i.i.d. N(0, 1) over the d^3 ordered triples
    (RV 2018 eq. 4.1, no symmetrization); ``a`` has shape (K, d, d, d): K realizations.

    On the sphere |x| = sqrt(d): E_a f(x)^2 = |x|^6/d^2 = d.  ``ThreeSpin.draw(d, seeds)``: one
    seeded draw per seed (NumPy PCG64, so a realization does not depend on the others).
    """

    a: np.ndarray = eqx.field(converter=lambda a: a if is_tracer(a) else np.asarray(a, np.float64))

    def __check_init__(self):
        if is_tracer(self.a):
            return
        s = self.a.shape
        check(self.a.ndim == 4 and s[1] == s[2] == s[3] and s[0] >= 1, "target.a",
              f"must have shape (realizations, d, d, d), got {s}")
        check(bool(np.all(np.isfinite(self.a))), "target.a", "must be finite")

    @classmethod
    def draw(cls, d: int, seeds=(0,)) -> "ThreeSpin":
        d = to_int("d", d, minimum=1, maximum=200)
        seeds = [to_int("seeds", s, minimum=0, maximum=2**32 - 1) for s in np.atleast_1d(seeds).tolist()]
        check(len(seeds) >= 1, "seeds", "give at least one seed")
        return cls(np.stack([np.random.default_rng(s).standard_normal((d, d, d)) for s in seeds]))

    @property
    def d(self) -> int:
        return int(self.a.shape[-1])

    @property
    def n_realizations(self) -> int:
        return int(self.a.shape[0])

    def _a(self, r, dtype):
        return jnp.asarray(self.a, dtype)[r]

    def value(self, x, r=0):
        return jnp.einsum("pqr,p,q,r->", self._a(r, x.dtype), x, x, x) / self.d

    def values(self, x, r=0):
        """Batch evaluation as one GEMM (n, d) x (d, d^2) then two contractions: n d^3 flops.

        t[m, q, r] = sum_p x_mp a_pqr, then u[m, q] = sum_r t[m, q, r] x_mr and f = sum_q u[m, q] x_mq / d.
        XLA:CPU (jax 0.10) is fastest with u as one batched matrix-vector product in float32 and as an
        elementwise product reduced over the minor axis in float64 (each ~1.1x and ~1.3x faster
        than the other form in the SGD step at d = 25, P = 200; ``benchmarks/rv_step.py``).
        """
        d = self.d
        t = (x @ self._a(r, x.dtype).reshape(d, d * d)).reshape(x.shape[0], d, d)
        u = jnp.einsum("mqr,mr->mq", t, x) if x.dtype == jnp.float32 else jnp.sum(t * x[:, None, :], axis=2)
        return jnp.sum(u * x, axis=1) / d

    def grad(self, x, r=0):
        """RV 2018 eq. 4.6: df/dx_p = (1/d) sum_qr (a_pqr + a_rpq + a_qrp) x_q x_r."""
        a = self._a(r, x.dtype)
        s = a + jnp.transpose(a, (2, 0, 1)) + jnp.transpose(a, (1, 2, 0))
        return jnp.einsum("pqr,q,r->p", s, x, x) / self.d


class FunctionTarget(Target):
    """Any JAX function ``fn(x) -> scalar`` of one input x (d,); checked at construction."""

    fn: Callable = eqx.field(static=True)
    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1, maximum=10**6))

    def __check_init__(self):
        check(callable(self.fn), "target", "must be callable fn(x) -> scalar")
        try:
            out = jax.eval_shape(self.fn, jax.ShapeDtypeStruct((self.d,), jnp.float32))
        except Exception as e:  # a function that cannot take one (d,) input
            raise ConfigError("target", f"cannot evaluate fn on one input of shape ({self.d},): "
                                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        check(hasattr(out, "shape") and tuple(out.shape) == (), "target",
              f"fn(x) must return a scalar for x of shape ({self.d},), got shape {getattr(out, 'shape', type(out))}")

    def value(self, x, r=0):
        return self.fn(x)
