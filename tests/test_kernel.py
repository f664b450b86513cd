"""Tests of mfnn.kernel (COLT 2019 section 4: eqs. 13, 16, 17, Prop. 19)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import mfnn
from mfnn.kernel import (AlphaFlow, KernelFlow, antithetic_init, empirical_kernel, erf_kernel,
                         gaussian_kernel, mc_kernel, network_output, relu_kernel)

D = 4
X = jax.random.normal(jax.random.PRNGKey(1), (12, D))
INIT = mfnn.GaussianInit(kappa=1.0, a_mean=1.0, symmetric_a=True)


def alpha_flow(unit, theta0, x, y, alpha, times, **kw):
    return mfnn.solve(unit, AlphaFlow(x=x, y=y, theta0=theta0, alpha=np.float64(alpha), **kw), times)


@pytest.mark.parametrize("act", ["erf", "relu"])
@pytest.mark.parametrize("trained", [("a", "w"), ("w",)])
def test_mc_kernel_converges_to_closed_form_at_mc_rate(act, trained):
    """Relative Frobenius error of the N-neuron estimate vs the closed form, 3 seeds averaged.

    The estimate is a mean of N i.i.d. terms, so the error is ~ c N^{-1/2}: from N = 500 to 8000
    (16x) it should shrink ~4x.  We require the fitted slope in [-0.75, -0.3] (3-seed averages
    of a Monte Carlo error have ~20% scatter per point) and the N = 8000 error < 2%.
    """
    unit = mfnn.ProjectionUnit(act, trained=trained)
    Hc = np.asarray(gaussian_kernel(unit, INIT, X))
    Ns = [500, 2000, 8000]
    errs = []
    for N in Ns:
        e = [np.linalg.norm(np.asarray(mc_kernel(unit, INIT, X, n_neurons=N, key=s)) - Hc) / np.linalg.norm(Hc)
             for s in range(3)]
        errs.append(np.mean(e))
    slope = np.polyfit(np.log(Ns), np.log(errs), 1)[0]
    assert -0.75 < slope < -0.3, (errs, slope)
    assert errs[-1] < 0.02


def test_closed_forms_structure():
    """General = a-term + w-term; w-term alone for fixed coefficients; symmetric PSD Gram matrices."""
    s = 0.5
    for fn in (erf_kernel, relu_kernel):
        full = np.asarray(fn(X, s=s, sigma_a2=2.0, trained=("a", "w")))
        a_only = np.asarray(fn(X, s=s, sigma_a2=2.0, trained=("a",)))
        w_only = np.asarray(fn(X, s=s, sigma_a2=2.0, trained=("w",)))
        np.testing.assert_allclose(full, a_only + w_only, rtol=1e-12)
        np.testing.assert_allclose(full, full.T, atol=1e-12)
        assert np.linalg.eigvalsh(full).min() > -1e-10
    # ReLU diagonal: a-term s^2 |x|^2 / 2, w-term sigma_a^2 |x|^2 / 2
    n2 = np.sum(np.asarray(X) ** 2, axis=1)
    np.testing.assert_allclose(np.diag(np.asarray(relu_kernel(X, s=s, sigma_a2=2.0))), (s * s + 2.0) * n2 / 2,
                               rtol=1e-7)  # arccos near cos = 1 loses ~half the digits


def test_empirical_kernel_chunked_matches_unchunked():
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    th = INIT.sample(jax.random.PRNGKey(0), 400, unit.param_shapes(D))
    H1 = empirical_kernel(unit, th, X)
    H2 = empirical_kernel(unit, th, X, chunk=100)
    np.testing.assert_allclose(H1, H2, rtol=1e-12)


def test_linearized_residual_matches_ode_integration():
    """u*_t = exp(-Ht/n) y vs scipy's RK45 on du/dt = -H u / n at rtol 1e-10."""
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    H = np.asarray(gaussian_kernel(unit, INIT, X))
    y = np.sin(np.asarray(X)[:, 0])
    n = len(y)
    times = np.array([0.0, 0.5, 2.0, 10.0])
    u = KernelFlow(H).residual(y, times)
    sol = solve_ivp(lambda t, u: -H @ u / n, (0, times[-1]), y, t_eval=times, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(u, sol.y.T, atol=1e-8)
    # the predictor on the training points is y - u*_t (fhat_t(x_i) = f(x_i) - u*_t(x_i))
    pred = KernelFlow(H).predict(H, y, times)
    np.testing.assert_allclose(pred, y[None] - u, atol=1e-9)


def test_interpolation_and_ridge():
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    H = np.asarray(gaussian_kernel(unit, INIT, X))
    y = np.cos(np.asarray(X)[:, 1])
    flow = KernelFlow(H)
    np.testing.assert_allclose(flow.interpolant(H, y), y, atol=1e-8 * flow.condition_number)
    # t -> inf of the finite-t predictor approaches the interpolant
    np.testing.assert_allclose(flow.predict(H, y, [1e9])[0], y, atol=1e-6)
    # ridge: h^T (H + lam I)^{-1} y
    lam = 0.3
    np.testing.assert_allclose(flow.interpolant(H, y, ridge=lam), H @ np.linalg.solve(H + lam * np.eye(len(y)), y),
                               rtol=1e-10)


def test_interpolation_warns_on_singular_kernel():
    xr = jnp.concatenate([X, X[:1]])  # duplicated point: singular Gram matrix
    H = np.asarray(relu_kernel(xr, s=0.5, trained=("w",)))
    flow = KernelFlow(H)
    with pytest.warns(RuntimeWarning, match="ridge"):
        flow.interpolant(H, np.ones(len(xr)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flow.interpolant(H, np.ones(len(xr)), ridge=1e-3)
        out = flow.predict(H, np.ones(len(xr)), [1.0, 5.0])  # finite t: stable, no warning
    assert np.all(np.isfinite(out))


def test_antithetic_init_zero_output():
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    th = antithetic_init(unit, INIT, jax.random.PRNGKey(2), 64, D)
    np.testing.assert_allclose(network_output(unit, th, X, 1e3), 0.0, atol=1e-12)


def test_alpha_flow_approaches_kernel_predictor():
    """Test-point predictions of the alpha-scaled flow vs the kernel predictor with the kernel at
    initialization: the gap must shrink at least like 1/alpha (Thm 4 bound; with antithetic
    a-symmetric init and smooth sigma it is ~alpha^-2, see mmm_kernel_limit).  Slope fitted over
    alpha = 4, 16, 64 must be <= -0.9; the alpha = 64 gap must be < 1e-3 of the prediction scale."""
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    x = jax.random.normal(jax.random.PRNGKey(3), (16, D))
    y = jnp.tanh(x[:, 0] - x[:, 1])
    xt = jax.random.normal(jax.random.PRNGKey(4), (8, D))
    th = antithetic_init(unit, INIT, jax.random.PRNGKey(5), 200, D)
    times = np.array([0.0, 1.0, 2.0])
    flow = KernelFlow(np.asarray(empirical_kernel(unit, th, x)))
    fstar = flow.predict(np.asarray(empirical_kernel(unit, th, xt, x)), np.asarray(y), times)
    alphas = [4.0, 16.0, 64.0]
    gaps = []
    for a in alphas:
        r = alpha_flow(unit, th, x, y, a, times, x_test=xt, dt=0.02)
        gaps.append(np.sqrt(np.mean((r.pred_test[-1] - fstar[-1]) ** 2)))
        assert r.w2_bound[0] == 0.0
    slope = np.polyfit(np.log(alphas), np.log(gaps), 1)[0]
    assert slope <= -0.9, (gaps, slope)
    assert gaps[-1] < 1e-3 * np.sqrt(np.mean(fstar[-1] ** 2))


def test_alpha_flow_rk4_matches_dopri5():
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    x = jax.random.normal(jax.random.PRNGKey(3), (10, D))
    y = jnp.tanh(x[:, 0])
    th = antithetic_init(unit, INIT, jax.random.PRNGKey(5), 100, D)
    r1 = alpha_flow(unit, th, x, y, 2.0, [0.0, 1.0], dt=0.01)
    r2 = alpha_flow(unit, th, x, y, 2.0, [0.0, 1.0], solver="dopri5", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r1.residual, r2.residual, atol=1e-8)


def test_population_residual_norm_decreases():
    unit = mfnn.ProjectionUnit("erf", trained=("a", "w"))
    xs = jax.random.normal(jax.random.PRNGKey(7), (300, D))
    f = np.tanh(np.asarray(xs)[:, 0])
    norms = mfnn.kernel.population_residual_norm(lambda a, b: gaussian_kernel(unit, INIT, a, b), xs, f,
                                                 [0.0, 1.0, 10.0])
    np.testing.assert_allclose(norms[0], np.sqrt(np.mean(f ** 2)), rtol=1e-12)
    assert norms[0] > norms[1] > norms[2]
