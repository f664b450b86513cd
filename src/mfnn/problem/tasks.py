"""Data laws (tasks): sampling and the population terms V, U, R_N (PNAS 2018 eqs. 2-4).

A task is a pytree module (``d`` and sample sizes are structure, ``delta`` a traced leaf).  Its
population-term methods (``V``, ``U``, ``U_self``, ``psi_grad``, ``risk``) dispatch to the terms
registered for the (task, unit) pair in ``mfnn.problem.population``: exact for the two-class
Gaussian tasks with projection units, Monte Carlo with ``n_mc`` samples otherwise.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.random import normal as fast_normal
from . import population
from ..numerics.pytree import Module, is_tracer, real, to_int
from .population import GaussianProjectionTerms
from .units import ProjectionUnit, Unit


class Task(Module):
    """A data law P(x, y): ``sample(key, n) -> (x (n,d), y (n,))`` and population terms.

    Subclasses define the fields ``d`` (dimension) and ``n_mc`` (Monte Carlo sample size for
    units without exact terms) and ``y_second_moment`` (R_# = E y^2).
    """

    def sample(self, key, n: int, dtype=jnp.float64):  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def y_second_moment(self) -> float:
        raise NotImplementedError

    def has_exact_terms(self, unit: Unit) -> bool:
        return population.has_exact_terms(self, unit)

    def risk(self, unit: Unit, theta):
        """R_N(theta) for a batch of N neurons (dict of arrays with leading axis N)."""
        return population.terms_for(self, unit).risk(self, unit, theta)

    def V(self, unit: Unit, theta):
        """V(theta) for a batch of neurons."""
        return population.terms_for(self, unit).V(self, unit, theta)

    def U(self, unit: Unit, theta1, theta2):
        """U(theta1, theta2) elementwise over two batches of neurons of equal size (distinct neurons)."""
        return population.terms_for(self, unit).U(self, unit, theta1, theta2)

    def U_self(self, unit: Unit, theta):
        """U(theta, theta) = E sigma_*(x; theta)^2 for a batch of neurons."""
        return population.terms_for(self, unit).U_self(self, unit, theta)

    def psi_grad(self, unit: Unit, theta, chunk: int = 64):
        """grad Psi(theta_i; rho^M) for all i (PNAS 2018 eq. 7 with rho^M the empirical measure)."""
        return population.terms_for(self, unit).psi_grad(self, unit, theta, chunk)


class GaussianClasses(Task):
    """y = +-1 equiprobable, x | y ~ N(0, diag(tau_y^2 I_s0, I_{d - s0})), tau_+- = 1 +- Delta.

    The common base of the isotropic (s0 = d) and anisotropic (variable selection) tasks of PNAS
    2018; R_# = 1.  Subclasses define the fields ``d``, ``delta``, ``n_hermite``, ``n_mc`` and
    ``s0`` (field or property).
    """

    @property
    def taus(self):
        d = self.delta
        if is_tracer(d):
            return (1.0 + d, 1.0 - d)
        return (1.0 + float(d), 1.0 - float(d))

    @property
    def y_second_moment(self) -> float:
        return 1.0

    def scales(self, y):
        """Per-coordinate standard deviations (n, d) of x given the labels y (n,)."""
        rel = (jnp.arange(self.d) < self.s0).astype(y.dtype)
        return (1.0 + self.delta * y[:, None] * rel[None, :]).astype(y.dtype)

    def sample(self, key, n: int, dtype=jnp.float64):
        ky, kx = jax.random.split(key)
        y = jnp.where(jax.random.bernoulli(ky, 0.5, (n,)), 1.0, -1.0).astype(dtype)
        x = fast_normal(kx, (n, self.d), dtype) * self.scales(y)
        return x, y

    def _split(self, w):
        return w[..., : self.s0], w[..., self.s0:]

    def class_scales(self, w):
        """(S_+, S_-) with S_tau = sqrt(tau^2 ||w1||^2 + ||w2||^2), each of shape w.shape[:-1]."""
        w1, w2 = self._split(w)
        q1, q2 = jnp.sum(w1 * w1, axis=-1), jnp.sum(w2 * w2, axis=-1)
        return tuple(jnp.sqrt(tau * tau * q1 + q2) for tau in self.taus)

    def class_inner(self, w1, w2, tau):
        """tau^2 <w1_rel, w2_rel> + <w1_irr, w2_irr> (elementwise over leading axes)."""
        u1, v1 = self._split(w1)
        u2, v2 = self._split(w2)
        return tau * tau * jnp.sum(u1 * u2, axis=-1) + jnp.sum(v1 * v2, axis=-1)

    def class_gram(self, w, tau):
        """The matrix of ``class_inner`` over all pairs of rows of w, by two GEMMs."""
        u, v = self._split(w)
        return tau * tau * (u @ u.T) + v @ v.T


class IsotropicGaussians(GaussianClasses):
    """y = +-1 equiprobable, x | y ~ N(0, (1 + y Delta)^2 I_d)  (PNAS 2018 section on Fig. 1).

    R_# = 1.  Exact population terms for ``ProjectionUnit`` (and an analytic grad Psi).
    """

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1))
    delta: float = real("delta", 0.8)
    n_hermite: int = eqx.field(static=True, default=64, converter=lambda v: to_int("n_hermite", v, minimum=2, maximum=4096))
    n_mc: int = eqx.field(static=True, default=20000, converter=lambda v: to_int("n_mc", v, minimum=1, maximum=10**8))

    def __check_init__(self):
        check(is_tracer(self.delta) or 0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")

    @property
    def s0(self) -> int:
        return self.d

    def scales(self, y):
        return (1.0 + self.delta * y)[:, None].astype(y.dtype)


class IsotropicProjectionTerms(GaussianProjectionTerms):
    """The exact terms of ``GaussianProjectionTerms`` with an analytic grad Psi (isotropic task)."""

    @staticmethod
    def psi_grad(task, unit, theta, chunk: int = 64):
        """Exact grad Psi(theta_i; rho^M) for all i in O(M^2 (K + d)), analytically.

        With A_ki = a_i chat_k(tau r_i, b_i), cosines C_ij and the pair kernel
        U^tau_ij = (1/2) sum_k A_ki A_kj C_ij^k (i != j):
          d/dr_i : (1/2) sum_k tau a_i dchat_k/ds T_ki,   T_ki = sum_{j != i} C_ij^k A_kj
          d/db_i : (1/2) sum_k a_i dchat_k/db T_ki;        d/da_i : (1/2) sum_k chat_ki T_ki
          d/dn_i : (1/2) sum_j G_ij n_j,  G_ij = sum_k k A_ki A_kj C_ij^{k-1},
        and grad_w = (d/dr) n + (I - n n^T)(d/dn) / r.  The self term is (1/2) grad U_self.
        """
        act, K = unit.activation, task.n_hermite
        w, a, b = theta["w"], theta["a"], theta["b"]
        M = w.shape[0]
        r = jnp.linalg.norm(w, axis=-1)
        n = w / jnp.maximum(r, 1e-300)[:, None]
        off = 1.0 - jnp.eye(M, dtype=w.dtype)
        cos = (n @ n.T) * off
        g_r = jnp.zeros_like(r)
        g_b = jnp.zeros_like(r)
        g_a = jnp.zeros_like(r)
        g_n = jnp.zeros_like(w)
        for tau in task.taus:
            c, ds, db = act.coeffs_with_grad(tau * r, b, K)  # (K, M)
            A = a[None] * c

            def body(carry, inp):
                power_prev, G_acc = carry  # power_prev = C^{k-1} (off-diagonal)
                k, A_k = inp
                power = power_prev * cos
                T_k = power @ A_k
                G_acc = G_acc + k * (A_k[:, None] * A_k[None, :]) * power_prev
                return (power, G_acc), T_k

            ks = jnp.arange(K, dtype=w.dtype)
            # k = 0: C^0 = 1 off the diagonal
            T0 = off @ A[0]
            (_, G), T_rest = jax.lax.scan(body, (off, jnp.zeros_like(cos)), (ks[1:], A[1:]))
            T = jnp.concatenate([T0[None], T_rest])  # (K, M)
            g_r = g_r + 0.5 * jnp.sum(tau * a[None] * ds * T, axis=0)
            g_b = g_b + 0.5 * jnp.sum(a[None] * db * T, axis=0)
            g_a = g_a + 0.5 * jnp.sum(c * T, axis=0)
            g_n = g_n + 0.5 * (G @ n)
        tangent = g_n - jnp.sum(g_n * n, axis=-1, keepdims=True) * n
        g_w = g_r[:, None] * n + tangent / jnp.maximum(r, 1e-300)[:, None]
        one = lambda th: jax.tree_util.tree_map(lambda x: x[None], th)
        g_self = jax.vmap(jax.grad(lambda th: task.U_self(unit, one(th))[0]))(theta)
        g_v = jax.vmap(jax.grad(lambda th: task.V(unit, one(th))[0]))(theta)
        pair = {"w": g_w, "a": g_a, "b": g_b}
        return {k: g_v[k] + (pair[k] + 0.5 * g_self[k]) / M for k in ("a", "b", "w")}


population.register(GaussianClasses, ProjectionUnit, GaussianProjectionTerms)
population.register(IsotropicGaussians, ProjectionUnit, IsotropicProjectionTerms)
