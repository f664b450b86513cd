"""Data laws (tasks) and their population terms V, U, R_N (PNAS 2018 eqs. 2-4).

    R_N(theta) = R_# + (2/N) sum_i V(theta_i) + (1/N^2) sum_ij U(theta_i, theta_j)
    V(theta) = -E{y sigma_*(x; theta)},   U(theta, theta') = E{sigma_*(x; theta) sigma_*(x; theta')}

Gaussian-mixture tasks evaluate these EXACTLY for ``ProjectionUnit`` through Hermite
coefficients: given the class, <w, x> + b = s G + b with s = tau ||w||, and two neurons with
cosine c give (Mehler)  E[sigma(s G + b) sigma(s' G' + b')] = sum_k chat_k(s,b) chat_k(s',b') c^k.
The series is truncated at ``n_hermite`` terms for i != j (error <= |c|^K E sigma^2, far below
1e-8 for the cosines of random directions at d >= 10); the diagonal i = j uses the exact
second moment.  Other units fall back to Monte Carlo with ``n_mc`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.random import normal as fast_normal
from .units import ProjectionUnit, Unit


class Task:
    """A data law P(x, y): ``sample(key, n) -> (x (n,d), y (n,))`` and population terms."""

    d: int
    n_mc: int = 20000  # Monte Carlo sample size for units without exact terms

    def sample(self, key, n: int, dtype=jnp.float64):  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def y_second_moment(self) -> float:  # R_# = E y^2
        raise NotImplementedError

    def has_exact_terms(self, unit: Unit) -> bool:
        return False

    # Monte Carlo fallbacks (fixed key: the same sample every call, so risks are comparable).
    def _mc_sample(self, dtype=jnp.float64):
        return self.sample(jax.random.PRNGKey(12345), self.n_mc, dtype)

    def risk(self, unit: Unit, theta):
        """R_N(theta) for a batch of N neurons (dict of arrays with leading axis N)."""
        x, y = self._mc_sample(theta_dtype(theta))
        yhat = jnp.mean(jax.vmap(lambda th: jax.vmap(lambda xx: unit.apply(th, xx))(x))(theta), axis=0)
        return jnp.mean((y - yhat) ** 2)

    def V(self, unit: Unit, theta):
        """V(theta) for a batch of neurons."""
        x, y = self._mc_sample(theta_dtype(theta))
        vals = jax.vmap(lambda th: jax.vmap(lambda xx: unit.apply(th, xx))(x))(theta)
        return -jnp.mean(vals * y, axis=-1)

    def U_self(self, unit: Unit, theta):
        """U(theta, theta) = E sigma_*(x; theta)^2 for a batch of neurons."""
        return self.U(unit, theta, theta)

    def psi_grad(self, unit: Unit, theta, chunk: int = 64):
        """grad Psi(theta_i; rho^M) = grad V(theta_i) + (1/M) sum_j grad_1 U(theta_i, theta_j) for all i.

        Generic version by autodiff, row by row (O(M^2) evaluations of U); the l = i term uses
        grad_1 U(theta, theta) = (1/2) grad U_self(theta).  Tasks override it with faster exact forms.
        """
        one = lambda th: jax.tree_util.tree_map(lambda x: x[None], th)
        M = jax.tree_util.tree_leaves(theta)[0].shape[0]
        idx = jnp.arange(M)
        g_v = jax.vmap(jax.grad(lambda th: self.V(unit, one(th))[0]))(theta)

        def row(i):
            th_i = jax.tree_util.tree_map(lambda x: x[i], theta)

            def pair_sum(th):
                batch = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (M,) + x.shape), th)
                return jnp.sum(jnp.where(idx == i, 0.0, self.U(unit, batch, theta)))

            g_pair = jax.grad(pair_sum)(th_i)
            g_self = jax.grad(lambda th: self.U_self(unit, one(th))[0])(th_i)
            return jax.tree_util.tree_map(lambda a, b: (a + 0.5 * b) / M, g_pair, g_self)

        g_u = jax.lax.map(row, idx, batch_size=chunk)
        return jax.tree_util.tree_map(jnp.add, g_v, g_u)

    def U(self, unit: Unit, theta1, theta2):
        """U(theta1, theta2) elementwise over two batches of neurons of equal size."""
        x, _ = self._mc_sample(theta_dtype(theta1))
        f = lambda th: jax.vmap(lambda xx: unit.apply(th, xx))(x)
        return jnp.mean(jax.vmap(f)(theta1) * jax.vmap(f)(theta2), axis=-1)


def mehler_pair_sum(act, a, s, b, cos, n_terms: int):
    """sum_ij a_i a_j E[sigma(s_i G_i + b_i) sigma(s_j G_j + b_j)] for one Gaussian class.

    (G_i, G_j) have correlation ``cos[i, j]``.  Off the diagonal, Mehler's series
    sum_k chat_k chat_k cos^k truncated at ``n_terms``; on it, the exact second moment.
    """
    n = cos.shape[0]
    cos = cos.at[jnp.diag_indices(n)].set(1.0)
    ah = a[None] * act.hermite_coeffs(s, b, n_terms)  # (K, N)

    def body(power, ah_k):
        return power * cos, ah_k @ power @ ah_k

    _, quad = jax.lax.scan(body, jnp.ones_like(cos), ah)
    series = jnp.sum(quad) - jnp.sum(ah * ah)  # drop the truncated i = j terms ...
    return series + jnp.sum(a * a * act.second_moment(s, b))  # ... and add them exactly


def theta_dtype(theta):
    return jax.tree_util.tree_leaves(theta)[0].dtype


@dataclass(frozen=True)
class IsotropicGaussians(Task):
    """y = +-1 equiprobable, x | y ~ N(0, (1 + y Delta)^2 I_d)  (PNAS 2018 section on Fig. 1).

    R_# = 1.  Exact population terms for ``ProjectionUnit``.
    """

    d: int
    delta: float = 0.8
    n_hermite: int = 64
    n_mc: int = 20000

    def __post_init__(self):
        check(isinstance(self.d, int) and self.d >= 1, "d", f"must be a positive integer, got {self.d!r}")
        check(0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
        check(self.n_hermite >= 2, "n_hermite", f"must be >= 2, got {self.n_hermite}")

    @property
    def taus(self):
        return (1.0 + self.delta, 1.0 - self.delta)

    @property
    def y_second_moment(self) -> float:
        return 1.0

    def sample(self, key, n: int, dtype=jnp.float64):
        ky, kx = jax.random.split(key)
        y = jnp.where(jax.random.bernoulli(ky, 0.5, (n,)), 1.0, -1.0).astype(dtype)
        x = fast_normal(kx, (n, self.d), dtype) * (1.0 + self.delta * y)[:, None]
        return x, y

    def has_exact_terms(self, unit: Unit) -> bool:
        return isinstance(unit, ProjectionUnit)

    # --- exact terms for ProjectionUnit -------------------------------------------------
    def V(self, unit, theta):
        if not self.has_exact_terms(unit):
            return super().V(unit, theta)
        r = jnp.linalg.norm(theta["w"], axis=-1)
        act, b = unit.activation, theta["b"]
        tp, tm = self.taus
        m_p = act.hermite_coeffs(tp * r, b, 1)[0]
        m_m = act.hermite_coeffs(tm * r, b, 1)[0]
        # y = +1 with x-scale tau_+, y = -1 with tau_-:  V = -(a/2) [m(tau_+ r) - m(tau_- r)]
        return -0.5 * theta["a"] * (m_p - m_m)

    def U(self, unit, theta1, theta2):
        """Exact U for distinct neurons (series in the cosine; use ``risk`` for i = j terms)."""
        if not self.has_exact_terms(unit):
            return super().U(unit, theta1, theta2)
        act, K = unit.activation, self.n_hermite
        r1 = jnp.linalg.norm(theta1["w"], axis=-1)
        r2 = jnp.linalg.norm(theta2["w"], axis=-1)
        c = jnp.sum(theta1["w"] * theta2["w"], axis=-1) / jnp.maximum(r1 * r2, 1e-300)
        powers = c[None] ** jnp.arange(K)[:, None]
        total = 0.0
        for tau in self.taus:
            h1 = act.hermite_coeffs(tau * r1, theta1["b"], K)
            h2 = act.hermite_coeffs(tau * r2, theta2["b"], K)
            total = total + 0.5 * jnp.sum(h1 * h2 * powers, axis=0)
        return theta1["a"] * theta2["a"] * total

    def U_self(self, unit, theta):
        """Exact U(theta, theta) = a^2 (1/2) sum_tau E sigma(tau r G + b)^2."""
        if not self.has_exact_terms(unit):
            return super().U_self(unit, theta)
        r = jnp.linalg.norm(theta["w"], axis=-1)
        act = unit.activation
        return theta["a"] ** 2 * 0.5 * sum(act.second_moment(tau * r, theta["b"]) for tau in self.taus)

    def psi_grad(self, unit, theta, chunk: int = 64):
        """Exact grad Psi(theta_i; rho^M) for all i in O(M^2 (K + d)), analytically.

        With A_ki = a_i chat_k(tau r_i, b_i), cosines C_ij and the pair kernel
        U^tau_ij = (1/2) sum_k A_ki A_kj C_ij^k (i != j):
          d/dr_i : (1/2) sum_k tau a_i dchat_k/ds T_ki,   T_ki = sum_{j != i} C_ij^k A_kj
          d/db_i : (1/2) sum_k a_i dchat_k/db T_ki;        d/da_i : (1/2) sum_k chat_ki T_ki
          d/dn_i : (1/2) sum_j G_ij n_j,  G_ij = sum_k k A_ki A_kj C_ij^{k-1},
        and grad_w = (d/dr) n + (I - n n^T)(d/dn) / r.  The self term is (1/2) grad U_self.
        """
        if not self.has_exact_terms(unit):
            return super().psi_grad(unit, theta, chunk)
        act, K = unit.activation, self.n_hermite
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
        for tau in self.taus:
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
        g_self = jax.vmap(jax.grad(lambda th: self.U_self(unit, one(th))[0]))(theta)
        g_v = jax.vmap(jax.grad(lambda th: self.V(unit, one(th))[0]))(theta)
        pair = {"w": g_w, "a": g_a, "b": g_b}
        return {k: g_v[k] + (pair[k] + 0.5 * g_self[k]) / M for k in ("a", "b", "w")}

    def risk(self, unit, theta):
        """Exact R_N(theta) = 1 + (2/N) sum V + (1/N^2) sum U  for a batch of N neurons."""
        if not self.has_exact_terms(unit):
            return super().risk(unit, theta)
        act, K = unit.activation, self.n_hermite
        w, a, b = theta["w"], theta["a"], theta["b"]
        n = w.shape[0]
        r = jnp.linalg.norm(w, axis=-1)
        unit_w = w / jnp.maximum(r, 1e-300)[:, None]
        cos = unit_w @ unit_w.T
        pair = sum(0.5 * mehler_pair_sum(act, a, tau * r, b, cos, K) for tau in self.taus)
        return 1.0 + 2.0 * jnp.mean(self.V(unit, theta)) + pair / (n * n)
