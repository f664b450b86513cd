"""Population terms V, U, grad Psi and R_N for a (task, unit) pair, chosen by registration.

    R_N(theta) = R_# + (2/N) sum_i V(theta_i) + (1/N^2) sum_ij U(theta_i, theta_j)
    V(theta) = -E{y sigma_*(x; theta)},   U(theta, theta') = E{sigma_*(x; theta) sigma_*(x; theta')}
    Psi(theta; rho) = V(theta) + int U(theta, theta') rho(d theta')          (PNAS 2018 eqs. 2-4, 7)

A *terms* class provides ``V(task, unit, theta)``, ``U(task, unit, theta1, theta2)`` (distinct
neurons, elementwise over two batches), ``U_self(task, unit, theta)``, ``psi_grad(task, unit,
theta)`` and ``risk(task, unit, theta)``.  ``register(task_cls, unit_cls, terms_cls)`` declares
exact terms for a pair; ``terms_for(task, unit)`` returns the most specific registration (by the
method resolution orders of the task's and the unit's types) and ``MonteCarloTerms`` otherwise,
which evaluates the same quantities on a fixed sample of ``task.n_mc`` points (the same sample
at every call, so risks are comparable along a run).  Tasks expose these as methods
(``task.V(unit, theta)``, ...), so solvers never branch on the type of a unit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_REGISTRY: dict[tuple[type, type], type] = {}


def register(task_cls: type, unit_cls: type, terms_cls: type) -> None:
    """Declare ``terms_cls`` as the exact population terms of (task_cls, unit_cls)."""
    _REGISTRY[(task_cls, unit_cls)] = terms_cls


def terms_for(task, unit):
    """The registered exact terms of the most specific matching pair, else ``MonteCarloTerms``."""
    for tc in type(task).__mro__:
        for uc in type(unit).__mro__:
            if (tc, uc) in _REGISTRY:
                return _REGISTRY[(tc, uc)]
    return MonteCarloTerms


def has_exact_terms(task, unit) -> bool:
    return terms_for(task, unit) is not MonteCarloTerms


def theta_dtype(theta):
    return jax.tree_util.tree_leaves(theta)[0].dtype


class MonteCarloTerms:
    """V, U, R_N and grad Psi on a fixed Monte Carlo sample of ``task.n_mc`` points (any unit)."""

    @staticmethod
    def _sample(task, dtype):
        return task.sample(jax.random.PRNGKey(12345), task.n_mc, dtype)

    @classmethod
    def _values(cls, task, unit, theta, x):
        return jax.vmap(lambda th: jax.vmap(lambda xx: unit.apply(th, xx))(x))(theta)  # (N, n_mc)

    @classmethod
    def risk(cls, task, unit, theta):
        x, y = cls._sample(task, theta_dtype(theta))
        yhat = jnp.mean(cls._values(task, unit, theta, x), axis=0)
        return jnp.mean((y - yhat) ** 2)

    @classmethod
    def V(cls, task, unit, theta):
        x, y = cls._sample(task, theta_dtype(theta))
        return -jnp.mean(cls._values(task, unit, theta, x) * y, axis=-1)

    @classmethod
    def U(cls, task, unit, theta1, theta2):
        x, _ = cls._sample(task, theta_dtype(theta1))
        return jnp.mean(cls._values(task, unit, theta1, x) * cls._values(task, unit, theta2, x), axis=-1)

    @classmethod
    def U_self(cls, task, unit, theta):
        return cls.U(task, unit, theta, theta)

    @classmethod
    def psi_grad(cls, task, unit, theta, chunk: int = 64):
        """grad Psi(theta_i; rho^M) = grad V(theta_i) + (1/M) sum_j grad_1 U(theta_i, theta_j) for all i.

        By autodiff, row by row (O(M^2) evaluations of U); the l = i term uses
        grad_1 U(theta, theta) = (1/2) grad U_self(theta).
        """
        one = lambda th: jax.tree_util.tree_map(lambda x: x[None], th)  # noqa: E731
        M = jax.tree_util.tree_leaves(theta)[0].shape[0]
        idx = jnp.arange(M)
        g_v = jax.vmap(jax.grad(lambda th: task.V(unit, one(th))[0]))(theta)

        def row(i):
            th_i = jax.tree_util.tree_map(lambda x: x[i], theta)

            def pair_sum(th):
                batch = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (M,) + x.shape), th)
                return jnp.sum(jnp.where(idx == i, 0.0, task.U(unit, batch, theta)))

            g_pair = jax.grad(pair_sum)(th_i)
            g_self = jax.grad(lambda th: task.U_self(unit, one(th))[0])(th_i)
            return jax.tree_util.tree_map(lambda a, b: (a + 0.5 * b) / M, g_pair, g_self)

        g_u = jax.lax.map(row, idx, batch_size=chunk)
        return jax.tree_util.tree_map(jnp.add, g_v, g_u)


def pair_series_jax(A, C):
    """sum_{i != j} sum_k A_ki A_kj C_ij^k in JAX: Horner in C, unrolled over k (one fused
    elementwise pass over the (N, N) pairs, no (N, N, K) intermediate), the diagonal masked."""
    K, n = A.shape
    acc = A[K - 1][:, None] * A[K - 1][None, :]
    for k in range(K - 2, -1, -1):
        acc = acc * C + A[k][:, None] * A[k][None, :]
    return jnp.sum(jnp.where(jnp.eye(n, dtype=bool), 0.0, acc))


def pair_series(A, C):
    """sum_{i != j} sum_k A_ki A_kj C_ij^k: the C++ kernel where it runs (CPU), else JAX.

    Derivatives (``psi_grad`` checks, gradient flows on R_N) come from the JAX form's JVP, so
    the kernel's value is differentiable in A and C."""
    from ..solvers._sgd_kernel import pair_runs  # lazy: solvers import problem

    if not pair_runs(jnp.result_type(A, C)):
        return pair_series_jax(A, C)
    return _pair_series_kernel(A, C)


@jax.custom_jvp
def _pair_series_kernel(A, C):
    from ..solvers._sgd_kernel import pair_series as kernel

    return kernel(A, C)


@_pair_series_kernel.defjvp
def _pair_series_kernel_jvp(primals, tangents):
    _, tangent = jax.jvp(pair_series_jax, primals, tangents)
    return _pair_series_kernel(*primals), tangent


def mehler_pair_sum(act, a, s, b, cos, n_terms: int):
    """sum_ij a_i a_j E[sigma(s_i G_i + b_i) sigma(s_j G_j + b_j)] for one Gaussian class.

    (G_i, G_j) have correlation ``cos[i, j]``.  Off the diagonal, Mehler's series
    sum_k chat_k chat_k cos^k truncated at ``n_terms`` (``pair_series``: one pass over the
    pairs, Horner in cos); on it, the exact second moment.
    """
    ah = a[None] * act.hermite_coeffs(s, b, n_terms)  # (K, N)
    return pair_series(ah, cos) + jnp.sum(a * a * act.second_moment(s, b))


class GaussianProjectionTerms(MonteCarloTerms):
    """Exact terms for two Gaussian classes and projection units a sigma(<w, x> + b).

    Given the class y (x-scale tau_y = 1 + y Delta on the first s0 coordinates, 1 on the rest),
    <w, x> + b = S_tau G + b with S_tau^2 = tau^2 ||w1||^2 + ||w2||^2, and two neurons are jointly
    Gaussian with correlation c_tau = (tau^2 <w1, w1'> + <w2, w2'>) / (S_tau S'_tau).  Mehler's
    formula with the orthonormal Hermite coefficients chat_k(S, b) = E[sigma(SG + b) h_k(G)] gives
        V(theta)         = -(a/2) [ chat_0(S_+, b) - chat_0(S_-, b) ]
        U(theta, theta') = (a a'/2) sum_tau sum_k chat_k(S_tau, b) chat_k(S'_tau, b') c_tau^k
    (PNAS 2018 eqs. 3-4 for the isotropic task; the anisotropic task of its Fig. 3 likewise).  The
    series is truncated at ``task.n_hermite`` terms for distinct neurons (error <= |c|^K E sigma^2);
    the diagonal of R_N uses the exact second moment.
    """

    @staticmethod
    def V(task, unit, theta):
        act, b = unit.activation, theta["b"]
        s_p, s_m = task.class_scales(theta["w"])
        m_p = act.hermite_coeffs(s_p, b, 1)[0]
        m_m = act.hermite_coeffs(s_m, b, 1)[0]
        return -0.5 * theta["a"] * (m_p - m_m)

    @staticmethod
    def U(task, unit, theta1, theta2):
        """Exact U for distinct neurons (Mehler series in c_tau; ``risk`` handles i = j exactly)."""
        act, K = unit.activation, task.n_hermite
        total = 0.0
        for tau, s1, s2 in zip(task.taus, task.class_scales(theta1["w"]), task.class_scales(theta2["w"])):
            c = task.class_inner(theta1["w"], theta2["w"], tau) / jnp.maximum(s1 * s2, 1e-300)
            powers = c[None] ** jnp.arange(K).reshape((-1,) + (1,) * c.ndim)
            h1 = act.hermite_coeffs(s1, theta1["b"], K)
            h2 = act.hermite_coeffs(s2, theta2["b"], K)
            total = total + 0.5 * jnp.sum(h1 * h2 * powers, axis=0)
        return theta1["a"] * theta2["a"] * total

    @staticmethod
    def U_self(task, unit, theta):
        """Exact U(theta, theta) = a^2 (1/2) sum_tau E sigma(S_tau G + b)^2."""
        act = unit.activation
        return theta["a"] ** 2 * 0.5 * sum(act.second_moment(s, theta["b"]) for s in task.class_scales(theta["w"]))

    @staticmethod
    def risk(task, unit, theta):
        """Exact R_N(theta) = 1 + (2/N) sum_i V + (1/N^2) sum_ij U for a batch of N neurons."""
        act, K = unit.activation, task.n_hermite
        w, a, b = theta["w"], theta["a"], theta["b"]
        n = w.shape[0]
        pair = 0.0
        for tau, s in zip(task.taus, task.class_scales(w)):
            inv = 1.0 / jnp.maximum(s, 1e-300)
            cos = task.class_gram(w, tau) * inv[:, None] * inv[None, :]
            pair = pair + 0.5 * mehler_pair_sum(act, a, s, b, cos, K)
        return task.y_second_moment + 2.0 * jnp.mean(GaussianProjectionTerms.V(task, unit, theta)) + pair / (n * n)
