"""The Mehler pair sum of the exact population risk (problem/population.py) in its three forms.

R_N's pair term is sum_{i != j} sum_k A_ki A_kj C_ij^k (PNAS 2018 eqs. 3-4 with Mehler's
formula).  The reference here is the direct formula: the K Hadamard powers of C and the K
quadratic forms A_k^T C^k A_k with the diagonal removed.  The C++ kernel (Horner, upper
triangle, fixed row groups) and the JAX fallback (Horner, unrolled, fused) only reorder the
same sums: with |C_ij| < 1 and the coefficients decaying in k, the relative difference of
the pair term is a few ulps times the condition number sum|terms| / |sum| (measured ~1e-15
at N = 800, d = 40); RTOL = 1e-12 keeps three orders of margin while a dropped term, a
wrong power or a counted diagonal changes the sum by >= 1e-3 relative.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.problem import population
from mfnn.solvers import _sgd_kernel

RTOL = 1e-12
needs_kernel = pytest.mark.skipif(_sgd_kernel.kernel_status() is not None,
                                  reason=f"C++ kernel unavailable: {_sgd_kernel.kernel_status()}")


def _reference(A, C):
    """sum_k A_k^T (C^k off the diagonal) A_k, by explicit powers (float64; NumPy or traced)."""
    A, C = jnp.asarray(A, jnp.float64), jnp.asarray(C, jnp.float64)
    off = 1.0 - jnp.eye(C.shape[0])
    power, total = off, 0.0
    for k in range(A.shape[0]):
        total = total + A[k] @ power @ A[k]
        power = power * C * off
    return total


def _case(n, K, seed, d=12):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    C = w @ w.T
    A = rng.standard_normal((K, n)) * 0.8 ** np.arange(K)[:, None]
    return A, C


@needs_kernel
@pytest.mark.parametrize("n,K", [(37, 9), (130, 64), (1, 5), (2, 1)])
def test_kernel_pair_series_matches_the_direct_sum(n, K):
    """Vector chains, the vector and scalar row tails (n = 37, 130), and the degenerate n = 1
    (no pair: 0) and K = 1 (only the constant term); one and three threads agree bit for bit."""
    A, C = _case(n, K, seed=n)
    with jax.enable_x64(True):
        ref = float(_reference(A, C))
        got = float(_sgd_kernel.pair_series(jnp.asarray(A), jnp.asarray(C), threads=1))
        got3 = float(_sgd_kernel.pair_series(jnp.asarray(A), jnp.asarray(C), threads=3))
        jx = float(population.pair_series_jax(jnp.asarray(A), jnp.asarray(C)))
    scale = max(abs(ref), np.sum(np.abs(A)) ** 2 * 1e-3, 1e-300)
    assert abs(got - ref) / scale < RTOL and abs(jx - ref) / scale < RTOL, (got, jx, ref)
    assert got == got3


@needs_kernel
def test_kernel_pair_series_vmapped_replicas_and_float32():
    """A vmap over replicas is one kernel call (each replica its own sum); float32 agrees to
    float32 rounding (1e-5 relative at n = 90, K = 16)."""
    cases = [_case(90, 16, seed=s) for s in range(3)]
    A = np.stack([c[0] for c in cases])
    C = np.stack([c[1] for c in cases])
    with jax.enable_x64(True):
        got = jax.jit(jax.vmap(_sgd_kernel.pair_series))(jnp.asarray(A), jnp.asarray(C))
        for r in range(3):
            ref = float(_reference(A[r], C[r]))
            assert abs(float(got[r]) - ref) < RTOL * abs(ref)
        g32 = _sgd_kernel.pair_series(jnp.asarray(A[0], jnp.float32), jnp.asarray(C[0], jnp.float32))
        assert g32.dtype == jnp.float32
        ref0 = float(_reference(A[0], C[0]))
        assert abs(float(g32) - ref0) < 1e-5 * abs(ref0)


@pytest.mark.parametrize("task", [mfnn.IsotropicGaussians(d=10, delta=0.6, n_hermite=12),
                                  pytest.param(mfnn.AnisotropicGaussians(d=10, s0=3, delta=0.6, n_hermite=12),
                                               marks=pytest.mark.slow)])  # same code path, ~10 s
def test_risk_kernel_and_jax_paths_match_the_direct_sum(task, monkeypatch):
    """R_N of a replica batch (vmap), isotropic and anisotropic tasks: the kernel path and the
    JAX path (MFNN_SGD_KERNEL=0) against R_N with the direct pair sum."""
    problem = mfnn.Problem(mfnn.ProjectionUnit(mfnn.ramp(), trained=("w", "a", "b")), task,
                           mfnn.GaussianInit(kappa=1.0, a_std=0.5, b_std=0.5))
    with jax.enable_x64(True):
        thetas = jax.vmap(lambda k: problem.sample_init(k, 40, jnp.float64))(jax.random.split(jax.random.PRNGKey(0), 2))
        fast = np.asarray(jax.jit(jax.vmap(problem.risk))(thetas))
        monkeypatch.setenv("MFNN_SGD_KERNEL", "0")
        jx = np.asarray(jax.jit(jax.vmap(problem.risk))(thetas))
        monkeypatch.setattr(population, "pair_series", _reference)
        ref = np.asarray(jax.jit(jax.vmap(problem.risk))(thetas))
    assert np.all(np.abs(fast - ref) < RTOL * np.abs(ref)) and np.all(np.abs(jx - ref) < RTOL * np.abs(ref)), (fast, jx, ref)
    assert np.ptp(ref) > 1e-3  # the two replicas differ: a mixed-up replica would fail
