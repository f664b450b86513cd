"""Anisotropic Gaussians / variable selection (PNAS 2018 section 7.3 of the theory notes, Fig. 3).

    y = +-1 equiprobable,   x | y ~ N(0, Sigma_y),   Sigma_+- = diag((1 +- Delta)^2 I_s0, I_{d-s0})

Only the first s0 coordinates carry signal (COLT 2019 Thm 3 takes O = I; so do we).  R_# = 1.

Exact population terms for ``ProjectionUnit`` units a sigma(<w, x> + b)  (theory notes sec. 1
for V, U, R_N; sec. 7.3 for the reduction).  Write w = (w1, w2) with w1 the first s0
coordinates, tau_+- = 1 +- Delta.  Given the class,

    <w, x> + b = S_tau G + b,       S_tau^2 = tau^2 ||w1||^2 + ||w2||^2,

and two neurons are jointly Gaussian with correlation

    c_tau = (tau^2 <w1, w1'> + <w2, w2'>) / (S_tau S'_tau).

Mehler's formula with the orthonormal Hermite coefficients chat_k(S, b) = E[sigma(SG+b) h_k(G)]
(``Activation.hermite_coeffs``) gives

    V(theta)         = -(a/2) [ chat_0(S_+, b) - chat_0(S_-, b) ]
    U(theta, theta') = (a a'/2) sum_tau sum_k chat_k(S_tau, b) chat_k(S'_tau, b') c_tau^k.

The series is truncated at ``n_hermite`` terms for distinct neurons (error <= |c|^K E sigma^2 per
class, negligible for the cosines of distinct neurons); the diagonal i = j of R_N uses the exact
second moment ``Activation.second_moment`` (c = 1 there, where truncation would be worst).
s0 = d is the isotropic task of ``IsotropicGaussians`` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.random import normal as fast_normal
from .tasks import Task, mehler_pair_sum
from .units import ProjectionUnit, Unit


@dataclass(frozen=True)
class AnisotropicGaussians(Task):
    """y = +-1, x | y ~ N(0, diag((1 + y Delta)^2 I_s0, I_{d-s0})): the PNAS Fig. 3 data law.

    ``d`` dimension, ``s0`` number of relevant coordinates (1 <= s0 <= d), ``delta`` in (0, 1).
    Exact V, U, R_N for ``ProjectionUnit`` (module docstring); Monte Carlo for other units.
    """

    d: int
    s0: int
    delta: float = 0.5
    n_hermite: int = 64
    n_mc: int = 20000

    def __post_init__(self):
        check(isinstance(self.d, int) and self.d >= 1, "d", f"must be a positive integer, got {self.d!r}")
        check(isinstance(self.s0, int) and 1 <= self.s0 <= self.d, "s0",
              f"must be an integer in [1, d={self.d}], got {self.s0!r}")
        check(0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
        check(isinstance(self.n_hermite, int) and self.n_hermite >= 2, "n_hermite",
              f"must be an integer >= 2, got {self.n_hermite!r}")

    @property
    def taus(self):
        return (1.0 + self.delta, 1.0 - self.delta)

    @property
    def y_second_moment(self) -> float:
        return 1.0

    def scales(self, y):
        """Per-coordinate standard deviations (n, d) of x given the labels y (n,)."""
        rel = (jnp.arange(self.d) < self.s0).astype(y.dtype)
        return 1.0 + self.delta * y[:, None] * rel[None, :]

    def sample(self, key, n: int, dtype=jnp.float64):
        ky, kx = jax.random.split(key)
        y = jnp.where(jax.random.bernoulli(ky, 0.5, (n,)), 1.0, -1.0).astype(dtype)
        x = fast_normal(kx, (n, self.d), dtype) * self.scales(y)
        return x, y

    def has_exact_terms(self, unit: Unit) -> bool:
        return isinstance(unit, ProjectionUnit)

    # --- exact terms for ProjectionUnit -------------------------------------------------
    def _split(self, w):
        return w[..., : self.s0], w[..., self.s0:]

    def class_scales(self, w):
        """(S_+, S_-) with S_tau = sqrt(tau^2 ||w1||^2 + ||w2||^2), each of shape w.shape[:-1]."""
        w1, w2 = self._split(w)
        q1, q2 = jnp.sum(w1 * w1, axis=-1), jnp.sum(w2 * w2, axis=-1)
        return tuple(jnp.sqrt(tau * tau * q1 + q2) for tau in self.taus)

    def V(self, unit, theta):
        if not self.has_exact_terms(unit):
            return super().V(unit, theta)
        act, b = unit.activation, theta["b"]
        s_p, s_m = self.class_scales(theta["w"])
        m_p = act.hermite_coeffs(s_p, b, 1)[0]
        m_m = act.hermite_coeffs(s_m, b, 1)[0]
        return -0.5 * theta["a"] * (m_p - m_m)

    def U(self, unit, theta1, theta2):
        """Exact U for distinct neurons (Mehler series in c_tau; ``risk`` handles i = j exactly)."""
        if not self.has_exact_terms(unit):
            return super().U(unit, theta1, theta2)
        act, K = unit.activation, self.n_hermite
        u1, v1 = self._split(theta1["w"])
        u2, v2 = self._split(theta2["w"])
        g1, g2 = jnp.sum(u1 * u2, axis=-1), jnp.sum(v1 * v2, axis=-1)
        total = 0.0
        for tau, s1, s2 in zip(self.taus, self.class_scales(theta1["w"]), self.class_scales(theta2["w"])):
            c = (tau * tau * g1 + g2) / jnp.maximum(s1 * s2, 1e-300)
            powers = c[None] ** jnp.arange(K).reshape((-1,) + (1,) * c.ndim)
            h1 = act.hermite_coeffs(s1, theta1["b"], K)
            h2 = act.hermite_coeffs(s2, theta2["b"], K)
            total = total + 0.5 * jnp.sum(h1 * h2 * powers, axis=0)
        return theta1["a"] * theta2["a"] * total

    def risk(self, unit, theta):
        """Exact R_N(theta) = 1 + (2/N) sum_i V + (1/N^2) sum_ij U for a batch of N neurons."""
        if not self.has_exact_terms(unit):
            return super().risk(unit, theta)
        act, K = unit.activation, self.n_hermite
        w, a, b = theta["w"], theta["a"], theta["b"]
        n = w.shape[0]
        w1, w2 = self._split(w)
        G1, G2 = w1 @ w1.T, w2 @ w2.T
        pair = 0.0
        for tau, s in zip(self.taus, self.class_scales(w)):
            inv = 1.0 / jnp.maximum(s, 1e-300)
            cos = (tau * tau * G1 + G2) * inv[:, None] * inv[None, :]
            pair = pair + 0.5 * mehler_pair_sum(act, a, s, b, cos, K)
        return 1.0 + 2.0 * jnp.mean(self.V(unit, theta)) + pair / (n * n)
