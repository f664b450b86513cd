"""Charged particles: units sigma_*(x; theta) = c phi(x, y), theta = (c, y) (Rotskoff-Vanden-Eijnden 2018 eq. 1.1).

f_n(x) = (1/n) sum_i c_i phi(x, y_i) is the two-layer mean-field network ``Problem(unit, task,
alpha=1)`` with this unit: the charge c is the output weight, the position y the unit's other
parameters.  ``ChargeUnit(phi, position_shapes)`` takes any user phi(theta, x) (gradients by
autodiff); ``RBFUnit`` and ``SigmoidUnit`` are the two units of RV 2018 section 4.  ``RBF_SIGNS``
lists the accepted ``RBFUnit.rbf_sign`` conventions.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import is_tracer, real
from .units import Unit

__all__ = ["ChargeUnit", "RBFUnit", "SigmoidUnit", "RBF_SIGNS"]

RBF_SIGNS = ("gaussian", "as_printed")


def _names(t):
    return (t,) if isinstance(t, str) else tuple(t)


class ChargeUnit(Unit):
    """sigma_*(x; theta) = theta["c"] * phi(theta, x) with a user ``phi(theta, x) -> scalar``.

    ``position_shapes(d) -> {name: shape}`` names the position parameters y (default {"y": (d,)});
    ``trained`` defaults to the charge and every position parameter.
    """

    phi_fn: Callable | None = eqx.field(static=True, default=None)
    position_shapes_fn: Callable | None = eqx.field(static=True, default=None)
    trained: tuple = eqx.field(static=True, default=("c", "y"), converter=_names)

    def __check_init__(self):
        check(type(self) is not ChargeUnit or callable(self.phi_fn), "unit.phi", "must be callable phi(theta, x) -> scalar")
        check(len(self.trained) > 0, "unit.trained", "train at least one parameter")

    def phi(self, theta, x):
        return self.phi_fn(theta, x)

    def position_shapes(self, d: int) -> dict:
        return {"y": (d,)} if self.position_shapes_fn is None else dict(self.position_shapes_fn(d))

    def param_shapes(self, d: int) -> dict:
        return {"c": (), **self.position_shapes(d)}

    def apply(self, theta, x):
        return theta["c"] * self.phi(theta, x)

    def batch_apply(self, theta, x):
        """sigma_*(x_p; theta_i) for a batch x (P, d) and all particles: (P, n)."""
        return jax.vmap(jax.vmap(self.apply, in_axes=(0, None)), in_axes=(None, 0))(theta, x)


class RBFUnit(ChargeUnit):
    """phi(x, y) = exp(-(alpha/2)|x - y|^2) (``rbf_sign="gaussian"``, RV 2018 section 4.1), or the
    printed e^{-alpha x.y} (``"as_printed"``; on the sphere the Gaussian equals e^{-alpha d} e^{+alpha x.y},
    so the printed sign is a typo).  f_n and the loss always use the same phi."""

    alpha: float = real("unit.alpha", 1.0)
    rbf_sign: str = eqx.field(static=True, default="gaussian")

    def __check_init__(self):
        check(self.rbf_sign in RBF_SIGNS, "unit.rbf_sign", f"use one of {list(RBF_SIGNS)}, got {self.rbf_sign!r}")
        check(is_tracer(self.alpha) or self.alpha > 0, "unit.alpha", f"must be > 0, got {self.alpha}")

    def phi(self, theta, x):
        y = theta["y"]
        if self.rbf_sign == "gaussian":
            return jnp.exp(-0.5 * self.alpha * jnp.sum((x - y) ** 2))
        return jnp.exp(-self.alpha * jnp.dot(x, y))


class SigmoidUnit(ChargeUnit):
    """phi(x, (w, b)) = h(w.x + b), h(z) = 1/(1 + e^{-z}) (RV 2018 section 4.2; b is a scalar,
    the printed "b in R^d" is a typo).  The position is y = (w, b) in R^{d+1}."""

    trained: tuple = eqx.field(static=True, default=("c", "w", "b"), converter=_names)

    def phi(self, theta, x):
        return jax.nn.sigmoid(jnp.dot(theta["w"], x) + theta["b"])

    def batch_apply(self, theta, x):
        """sigma_*(x_p; theta_i) (P, n) as one GEMM, in the orientation XLA:CPU (jax 0.10) runs fastest.

        float32: particle-major, z^T = w x^T (n, P).  Reverse mode then takes the weight gradient as
        the plain GEMM (n, P) x (P, d) and the charge/bias gradients as minor-axis reductions; from
        ``x @ w.T`` (P, n) the weight gradient is a GEMM contracting the leading axes of both
        operands, which XLA:CPU does not hand to its fast float32 kernels (the step: about 20%
        slower, the GEMM alone 5x).  float64: batch-major ``x @ w.T``, measured 2x faster there.
        Both are the same sums to round-off; timings from ``benchmarks/rv_step.py``.
        """
        if x.dtype == jnp.float32:
            z = theta["w"] @ x.T + theta["b"][:, None]
            return (jax.nn.sigmoid(z) * theta["c"][:, None]).T
        return jax.nn.sigmoid(x @ theta["w"].T + theta["b"]) * theta["c"]

    def position_shapes(self, d: int) -> dict:
        return {"w": (d,), "b": ()}

    def mean_apply(self, theta, x):
        """f_n(x_p) = (1/n) sum_i c_i h(w_i.x_p + b_i) (RV 2018 eq. 1.1) for a batch x (P, d): (P,).

        Same values as ``network_values(self, theta, x)[1]`` (to round-off), with a hand-written
        reverse mode (``jax.custom_vjp``): the sigmoid is evaluated once, h' = h (1 - h) is taken
        from the saved h, and the weight gradient is one GEMM (n, P) x (P, d).  Reverse-mode
        autodiff of ``batch_apply`` makes more passes over the (n, P) activations (measured on the
        SGD step at n = 1024, d = 25, P = 200, float32, one thread: 479 -> 316 us for the gradient).
        Forward-mode (``jax.jvp``) is not defined through it; use ``batch_apply`` for that.
        """
        return _sigmoid_mean(theta["c"], theta["w"], theta["b"], x)


@jax.custom_vjp
def _sigmoid_mean(c, w, b, x):
    return _sigmoid_mean_fwd(c, w, b, x)[0]


def _sigmoid_mean_fwd(c, w, b, x):
    if x.dtype == jnp.float32:
        h = jax.nn.sigmoid(w @ x.T + b[:, None])  # (n, P), particle-major (see SigmoidUnit.batch_apply)
        return (c @ h) / c.shape[0], (c, w, x, h)
    h = jax.nn.sigmoid(x @ w.T + b)  # (P, n)
    return (h @ c) / c.shape[0], (c, w, x, h)


def _sigmoid_mean_bwd(res, g):
    c, w, x, h = res
    g = g / c.shape[0]
    if x.dtype == jnp.float32:
        dz = h * (1 - h) * (c[:, None] * g[None, :])  # d(f_n . g)/d z_ip
        return h @ g, dz @ x, jnp.sum(dz, axis=1), dz.T @ w
    dz = h * (1 - h) * (g[:, None] * c[None, :])  # d(f_n . g)/d z_pi
    return g @ h, dz.T @ x, jnp.sum(dz, axis=0), dz @ w


_sigmoid_mean.defvjp(_sigmoid_mean_fwd, _sigmoid_mean_bwd)
