"""Linearized (kernel) dynamics on a finite dataset (COLT 2019 eqs. 17, 83; Prop. 19, Remark H.1).

With P = (1/n) sum_i delta_{x_i}, (H u)(x) = (1/n) sum_j H(x, x_j) u(x_j), so on the data

    u*_t              = exp(-H t / n) u*_0                     (eq. 17; u*_0 = y under property (I))
    fhat_t(z)         = h(z)^T H^{-1} (I - exp(-H t / n)) y   (App. H.7)
    fhat_inf(z)       = h(z)^T H^{-1} y                        (kernel interpolation, Prop. 19)
    fhat_inf^lam(z)   = h(z)^T (H + lam I)^{-1} y               (ridge lam > 0: Remark H.1's extension)

with H_ij = H_rho0(x_i, x_j), h(z)_i = H_rho0(z, x_i).  Everything goes through the
eigendecomposition H = sum_i mu_i v_i v_i^T of the symmetric Gram matrix:
H^{-1}(I - e^{-Ht/n}) = sum_i g_t(mu_i) v_i v_i^T with g_t(mu) = -expm1(-mu t/n)/mu, which tends to
t/n as mu -> 0, so finite-t predictors are stable even for a (numerically) singular H.  Only the
t -> inf limit needs H invertible; it warns when cond(H) > ``cond_warn`` and no ridge is given.
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np

from ..errors import check

COND_WARN = 1e12


class KernelFlow:
    """Eigendecomposition of a Gram matrix H (n x n) and the kernel gradient flow it defines."""

    def __init__(self, H, *, n: int | None = None):
        H = np.asarray(H, dtype=float)
        check(H.ndim == 2 and H.shape[0] == H.shape[1], "H", f"need a square matrix, got {H.shape}")
        H = 0.5 * (H + H.T)
        self.H = H
        self.n = H.shape[0] if n is None else int(n)
        mu, V = np.linalg.eigh(H)
        self.mu = np.maximum(mu, 0.0)  # H is PSD; clip rounding-level negatives
        self.V = V

    @property
    def condition_number(self) -> float:
        top = self.mu[-1]
        low = self.mu[0]
        return math.inf if low <= 0 else float(top / low)

    def _gain(self, t):
        """g_t(mu) = (1 - e^{-mu t/n}) / mu, shape (T, n); t = inf gives 1/mu."""
        t = np.atleast_1d(np.asarray(t, dtype=float))[:, None]
        mu = self.mu[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            finite = np.where(mu > 0, -np.expm1(-mu * t / self.n) / np.where(mu > 0, mu, 1.0), t / self.n)
            inf = np.where(mu > 0, 1.0 / np.where(mu > 0, mu, 1.0), np.inf)
        return np.where(np.isinf(t), inf, finite)

    def residual(self, u0, times):
        """u*_t = exp(-H t/n) u0 on the data: (T, n) (or (T, n, k) for u0 of shape (n, k))."""
        u0 = np.asarray(u0, dtype=float)
        c = self.V.T @ u0
        decay = np.exp(-np.outer(np.asarray(times, dtype=float), self.mu) / self.n)  # (T, n)
        if u0.ndim == 1:
            return (decay * c[None]) @ self.V.T
        return np.einsum("ij,tj,jk->tik", self.V, decay, c)

    def predict(self, h, y, times):
        """fhat_t(z) = h(z)^T H^{-1} (I - e^{-Ht/n}) y for each t; h: (m, n) = H(z_k, x_i). Returns (T, m)."""
        if np.any(np.isinf(np.asarray(times, dtype=float))):
            self._warn_cond(0.0)
        g = self._gain(times)  # (T, n): (1 - e^{-mu_i t/n}) / mu_i
        c = self.V.T @ np.asarray(y, dtype=float)  # (n,)
        return (g * c[None]) @ (np.asarray(h, dtype=float) @ self.V).T  # (T, m)

    def interpolant(self, h, y, ridge: float = 0.0):
        """t -> inf limit h(z)^T (H + ridge I)^{-1} y (ridge 0: kernel interpolation, Prop. 19)."""
        check(ridge >= 0, "ridge", f"must be >= 0, got {ridge}")
        self._warn_cond(ridge)
        c = self.V.T @ np.asarray(y, dtype=float)
        with np.errstate(divide="ignore"):
            coef = c / (self.mu + ridge)
        return (np.asarray(h, dtype=float) @ self.V) @ coef

    def _warn_cond(self, ridge):
        if ridge == 0.0 and not self.condition_number < COND_WARN:
            warnings.warn(
                f"kernel interpolation with cond(H) = {self.condition_number:.3g} >= {COND_WARN:g} and no "
                "ridge: the t -> inf predictor is numerically unreliable; pass ridge > 0",
                RuntimeWarning, stacklevel=3)


def linearized_residual(H, u0, times):
    """u*_t = exp(-H t/n) u0 (eq. 17 on the empirical measure of n points): (T, n)."""
    return KernelFlow(H).residual(u0, times)


def kernel_predictor(H, h, y, times):
    """fhat_t(z) = h(z)^T H^{-1}(I - e^{-Ht/n}) y: shape (T, m) for h of shape (m, n)."""
    return KernelFlow(H).predict(h, y, times)


def kernel_interpolant(H, h, y, ridge: float = 0.0):
    """h(z)^T (H + ridge I)^{-1} y (ridge = 0: Prop. 19's interpolation limit)."""
    return KernelFlow(H).interpolant(h, y, ridge)


def population_residual_norm(kernel_fn, x_samples, f_values, times):
    """||u*_t||_{L^2(P)} for the population linearized dynamics d_t u = -H_rho0 u (eq. 17).

    Discretization (the library's choice): the L^2(P) operator (Hu)(x) = E_{x'}[H(x,x') u(x')] is
    replaced by its Nystrom / Monte Carlo version on M i.i.d. samples x_1..x_M ~ P,
    (Hu)(x_i) ~ (1/M) sum_j H(x_i, x_j) u(x_j).  Its eigenvalues mu_i/M converge to those of the
    operator at rate O(M^{-1/2}) (Koltchinskii-Gine 2000); tensor-product quadrature is not used
    because Gaussian inputs in d >= 5 dimensions make it impractical.  With u*_0 = f (property
    (I)), returns sqrt((1/M) sum_i u*_t(x_i)^2) for each t.
    """
    x = jnp.asarray(x_samples)
    K = np.asarray(kernel_fn(x, x))
    u = KernelFlow(K).residual(np.asarray(f_values), times)
    return np.sqrt(np.mean(u ** 2, axis=-1))
