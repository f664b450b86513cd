"""Hermite functions, Gaussian quadrature and moments of the angle between random directions.

Conventions: G ~ N(0, 1); He_k are the probabilists' Hermite polynomials and
h_k = He_k / sqrt(k!) the orthonormal ones, E[h_j(G) h_k(G)] = delta_jk.  For two standard
Gaussians with correlation c (Mehler): E[f(Z1) g(Z2)] = sum_k f_k g_k c^k with
f_k = E[f(G) h_k(G)].  This identity is how mfnn evaluates U(theta, theta') exactly.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr
from scipy import special as sps

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def normal_pdf(x):
    """Standard normal density phi(x)."""
    return jnp.exp(-0.5 * x * x) / _SQRT_2PI


def normal_cdf(x):
    """Standard normal distribution function Phi(x)."""
    return ndtr(x)


def hermite_functions(x, n_terms: int):
    """Orthonormal Hermite polynomials h_0..h_{n_terms-1} at ``x``; shape ``(n_terms,) + x.shape``.

    Three-term recurrence h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k+1), stable in float64 for
    the |x| <= 40, k <= 200 used here.
    """
    x = jnp.asarray(x)
    if n_terms <= 2:
        return jnp.stack([jnp.ones_like(x), x][:n_terms])
    # lax.scan keeps the compiled graph O(1) in n_terms (an unrolled loop made K = 64 slow to compile)
    ks = jnp.arange(1, n_terms - 1, dtype=x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else float)

    def body(carry, k):
        h_prev, h = carry
        h_next = (x * h - jnp.sqrt(k) * h_prev) / jnp.sqrt(k + 1)
        return (h, h_next), h_next

    _, rest = jax.lax.scan(body, (jnp.ones_like(x), x), ks)
    return jnp.concatenate([jnp.ones_like(x)[None], x[None], rest])


def gauss_hermite(n: int):
    """Nodes and weights of n-point Gauss-Hermite quadrature for E[f(G)], G ~ N(0,1)."""
    x, w = sps.roots_hermitenorm(n)
    return x, w / _SQRT_2PI


def sphere_cosine_moments(d: float, n_terms: int) -> np.ndarray:
    """E[c^k], k < n_terms, for c = <n1, n2> with n1, n2 independent uniform on S^{d-1}.

    c has density proportional to (1 - c^2)^{(d-3)/2} on [-1, 1]; odd moments vanish and
    E c^{2j} = prod_{i<j} (2i+1)/(d+2i)  (so E c^2 = 1/d, E c^4 = 3/(d(d+2))).
    ``d = inf`` gives c = 0 almost surely: (1, 0, 0, ...).
    """
    mom = np.zeros(n_terms)
    mom[0] = 1.0
    if math.isinf(d):
        return mom
    for k in range(2, n_terms, 2):
        mom[k] = mom[k - 2] * (k - 1) / (d + k - 2)
    return mom


def gauss_jacobi_cosine(d: int, n: int):
    """n-point quadrature for E[f(c)] under the density of <n1, n2> on S^{d-1} (d >= 2).

    Gauss-Jacobi with alpha = beta = (d-3)/2, weights normalized to sum to one.  Used as an
    independent check of :func:`sphere_cosine_moments`.
    """
    a = (d - 3) / 2.0
    x, w = sps.roots_jacobi(n, a, a)
    return x, w / w.sum()
