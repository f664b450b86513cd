"""Activations: values, derivatives, Hermite coefficients, second moments, Mehler identity.

Monte Carlo checks use an independent NumPy generator with 10^6 samples and a 4-standard-error
tolerance (two-sided 4 sigma: false-alarm probability 6e-5 per comparison, < 1% over all of them;
the seeds are fixed, so the outcome is reproducible).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
import mfnn.problem.activations as act_mod
from mfnn.problem.activations import Activation

N_MC = 1_000_000
N_SE = 4.0

NONMONO = dict(breakpoints=(-1.0, 0.0, 1.0, 2.0), values=(0.0, 2.0, -1.0, 0.5), left_slope=0.3, right_slope=-0.2)


def make(name):
    return {
        "ramp": mfnn.ramp,
        "relu": mfnn.relu,
        "tanh": mfnn.Tanh,
        "sigmoid": mfnn.Sigmoid,
        "erf": mfnn.Erf,
        "nonmonotone": lambda: mfnn.PiecewiseLinear(**NONMONO),
    }[name]()


ALL = ["ramp", "relu", "tanh", "sigmoid", "erf", "nonmonotone"]
PIECEWISE = ["ramp", "relu", "nonmonotone"]
SMOOTH = ["tanh", "sigmoid", "erf"]
# (s, b) cases: moderate scales (tau * ||w|| at the PNAS initialization is ~ 0.2 .. 1.8)
SB = [(0.7, 0.2), (1.8, -0.5)]


def kinks(act):
    return np.asarray(getattr(act, "breakpoints", ()), dtype=float)


# ----------------------------------------------------------------------------- values / derivatives


def test_ramp_and_relu_values():
    r = mfnn.ramp()  # t1, t2, s1, s2 = 0.5, 1.5, -2.5, 7.5
    t = jnp.array([-3.0, 0.5, 1.0, 1.5, 9.0, 0.75])
    np.testing.assert_allclose(r.value(t), [-2.5, -2.5, 2.5, 7.5, 7.5, 0.0], atol=1e-14)
    np.testing.assert_allclose(r.deriv(jnp.array([0.0, 1.0, 2.0])), [0.0, 10.0, 0.0], atol=0)
    relu = mfnn.relu()
    np.testing.assert_allclose(relu.value(jnp.array([-2.0, 0.0, 3.5])), [0.0, 0.0, 3.5], atol=0)


def test_nonmonotone_interpolates_and_tails():
    act = make("nonmonotone")
    bp, vs = NONMONO["breakpoints"], NONMONO["values"]
    np.testing.assert_allclose(act.value(jnp.asarray(bp)), vs, atol=1e-14)
    # linear tails with the given slopes
    np.testing.assert_allclose(act.value(jnp.array([-4.0])), [0.0 + 0.3 * (-3.0)], atol=1e-14)
    np.testing.assert_allclose(act.value(jnp.array([5.0])), [0.5 - 0.2 * 3.0], atol=1e-14)
    # non-monotone: the derivative changes sign
    d = np.asarray(act.deriv(jnp.array([-0.5, 0.5, 1.5])))
    np.testing.assert_allclose(d, [2.0, -3.0, 1.5], atol=1e-14)


@pytest.mark.parametrize("name", ALL)
def test_deriv_matches_finite_differences(name):
    act = make(name)
    t = np.linspace(-4.0, 4.0, 401)
    if kinks(act).size:  # FD is only valid away from kinks
        t = t[np.min(np.abs(t[:, None] - kinks(act)[None]), axis=1) > 1e-3]
    h = 1e-6
    fd = (np.asarray(act.value(jnp.asarray(t + h))) - np.asarray(act.value(jnp.asarray(t - h)))) / (2 * h)
    # central FD error: h^2/6 |sigma'''| (<= 1e-11 here) + rounding eps |sigma| / h (<= 1e-9)
    np.testing.assert_allclose(np.asarray(act.deriv(jnp.asarray(t))), fd, atol=2e-8, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_autodiff_uses_custom_derivative(name):
    act = make(name)
    t = np.concatenate([np.linspace(-3.0, 3.0, 61), kinks(act)])  # kinks included: grad must equal deriv
    g = jax.vmap(jax.grad(lambda u: act(u)))(jnp.asarray(t))
    np.testing.assert_array_equal(np.asarray(g), np.asarray(act.deriv(jnp.asarray(t))))
    # and the primal is the value
    np.testing.assert_array_equal(np.asarray(act(jnp.asarray(t))), np.asarray(act.value(jnp.asarray(t))))


def test_piecewise_derivative_at_kink_is_left_derivative():
    # documented convention (t > lo) & (t <= hi): at a breakpoint the slope of the piece to its left
    r = mfnn.ramp()
    assert float(jax.grad(lambda u: r(u))(0.5)) == 0.0
    assert float(jax.grad(lambda u: r(u))(1.5)) == 10.0


# ----------------------------------------------------------------------------- Gaussian expectations


def _mc_coeffs(act, s, b, K, rng):
    g = rng.standard_normal(N_MC)
    f = np.asarray(act.value(jnp.asarray(s * g + b)))
    terms = f[None] * _np_hermite(g, K)
    return terms.mean(axis=1), terms.std(axis=1, ddof=1) / math.sqrt(N_MC), f


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("s,b", SB)
def test_hermite_coeffs_and_second_moment_vs_monte_carlo(name, s, b, rng):
    act = make(name)
    K = 6
    mean, se, f = _mc_coeffs(act, s, b, K, rng)
    c = np.asarray(act.hermite_coeffs(s, b, K))
    assert c.shape == (K,)
    assert np.all(np.abs(c - mean) <= N_SE * se + 1e-12), (c, mean, se)
    m2 = float(act.second_moment(s, b))
    se2 = (f * f).std(ddof=1) / math.sqrt(N_MC)
    assert abs(m2 - np.mean(f * f)) <= N_SE * se2, (m2, np.mean(f * f), se2)
    # Parseval: sum_k chat_k^2 <= E sigma^2 (Bessel), with equality in the limit K -> inf.  For a
    # kinked sigma chat_k ~ C k^(-5/4) (Stein + Hermite-function asymptotics), so the deficit at
    # K = 400 is ~ C^2 K^(-3/2) / 1.5 ~ 1e-3 E sigma^2 for C ~ slope * s ~ 3.
    # For analytic sigma, chat_k ~ exp(-y0 sqrt(2k)) with y0 >= pi/(2*1.8) the distance of the nearest
    # pole of sigma(s g + b) to the real axis: K = 40 (well inside what 160-node Gauss-Hermite
    # integrates) also leaves a tail below 2e-3 E sigma^2.
    K_big = 400 if name in PIECEWISE else 40
    c_many = np.asarray(act.hermite_coeffs(s, b, K_big))
    assert np.sum(c_many**2) <= m2 * (1 + 1e-12)
    assert np.sum(c_many**2) >= m2 * (1 - 2e-3)


def _np_value(act):
    """Independent NumPy implementation of sigma (reference for the quadratures below)."""
    if isinstance(act, mfnn.PiecewiseLinear):
        bp, vs = np.asarray(act.breakpoints), np.asarray(act.values)

        def f(t):
            out = np.interp(t, bp, vs)
            out = out + act.left_slope * np.minimum(t - bp[0], 0.0) + act.right_slope * np.maximum(t - bp[-1], 0.0)
            return out
        return f
    from scipy import special
    return {"tanh": np.tanh, "sigmoid": special.expit, "erf": special.erf}[act.name]


def _np_hermite(g, K):
    """Orthonormal Hermite polynomials from NumPy's HermiteE basis (independent of the library)."""
    out = np.empty((K,) + np.shape(g))
    for k in range(K):
        e = np.zeros(k + 1)
        e[k] = 1.0
        out[k] = np.polynomial.hermite_e.hermeval(g, e) / math.sqrt(math.factorial(k))
    return out


def _gauss_expect(fn, s, b, breaks=()):
    """E[fn(G)] by composite 40-point Gauss-Legendre on [-40, 40], split at the standardized kinks
    (b' - b)/s and into cells of length <= 0.25: on each cell the integrand is analytic (for tanh
    at s <= 8 the nearest pole is >= pi/16 away), so each cell is exact to ~1e-15."""
    cuts = [(p - b) / s for p in breaks if abs((p - b) / s) < 40]
    edges = np.unique(np.concatenate([np.linspace(-40.0, 40.0, 321), cuts]))
    x, w = np.polynomial.legendre.leggauss(40)
    lo, hi = edges[:-1, None], edges[1:, None]
    g = (0.5 * (hi - lo) * x[None] + 0.5 * (hi + lo)).ravel()
    wts = (0.5 * (hi - lo) * w[None]).ravel() * np.exp(-0.5 * g * g) / math.sqrt(2 * math.pi)
    return np.tensordot(fn(g), wts, axes=(-1, 0))


def _quad_ref(act, s, b, K):
    """(chat_0..chat_{K-1}, E sigma^2) of sigma(s G + b) by the quadrature above."""
    f = _np_value(act)
    brk = tuple(kinks(act))
    coeffs = _gauss_expect(lambda g: f(s * g + b)[None] * _np_hermite(g, K), s, b, brk)
    m2 = _gauss_expect(lambda g: f(s * g + b) ** 2, s, b, brk)
    return coeffs, float(m2)


def test_reference_quadrature_is_accurate():
    # sanity of the reference itself: E h_j h_k = delta_jk and E relu(G) = 1/sqrt(2 pi)
    gram = _gauss_expect(lambda g: _np_hermite(g, 8)[:, None] * _np_hermite(g, 8)[None], 1.0, 0.0)
    np.testing.assert_allclose(gram, np.eye(8), atol=1e-13)
    assert abs(_gauss_expect(lambda g: np.maximum(g, 0), 1.0, 0.0, (0.0,)) - 1 / math.sqrt(2 * math.pi)) < 1e-15


@pytest.mark.parametrize("name", PIECEWISE)
@pytest.mark.parametrize("s,b", SB + [(0.05, 1.0), (25.0, 0.3)])
def test_piecewise_closed_forms_vs_quadrature(name, s, b):
    act = make(name)
    K = 8
    ref, m2 = _quad_ref(act, s, b, K)
    # closed forms are exact: only rounding (~1e-15 relative to the O(1) .. O(s) terms) remains
    np.testing.assert_allclose(np.asarray(act.hermite_coeffs(s, b, K)), ref, atol=1e-12 * max(1, s))
    assert abs(float(act.second_moment(s, b)) - m2) <= 1e-12 * max(1, m2)


@pytest.mark.parametrize("name", PIECEWISE)
def test_piecewise_closed_forms_vs_base_class_quadrature(name, monkeypatch):
    """The base-class quadrature path (``Activation.hermite_coeffs``) converges to the closed forms.

    The composite Gauss-Legendre rule integrates each panel exactly for polynomials; a kink inside a
    panel of width h leaves an O(J h^2) error (J = slope jump times the Gaussian factor), so 4x
    more panels must shrink the gap ~16x per step, 256x over two; the kink's position within its
    panel changes between refinements (measured: 5x then 21x for the non-monotone shape), so we
    require a decrease at each step and 50x overall.
    """
    act = make(name)
    gaps = {}
    for panels in (30, 120, 480):
        monkeypatch.setattr(act_mod, "_QUAD_PANELS", panels)
        gaps[panels] = max(float(np.max(np.abs(np.asarray(act.hermite_coeffs(s, b, 6))
                                               - np.asarray(Activation.hermite_coeffs(act, s, b, 6))))) for s, b in SB)
    assert gaps[120] < gaps[30] and gaps[480] < gaps[120] and gaps[480] < gaps[30] / 50, gaps
    assert gaps[480] < 1e-4, gaps


@pytest.mark.parametrize("name", SMOOTH)
@pytest.mark.parametrize("s,b,tol", [(0.7, 0.2, 1e-11), (1.8, -0.5, 1e-7)])
def test_smooth_quadrature_vs_adaptive_quadrature(name, s, b, tol):
    # composite Gauss-Legendre for an analytic sigma: far below these tolerances (kept from the
    # former Gauss-Hermite rule, whose error was < 1e-12 at s = 0.7 and ~1e-8 at s = 1.8)
    act = make(name)
    ref, m2 = _quad_ref(act, s, b, 6)
    np.testing.assert_allclose(np.asarray(act.hermite_coeffs(s, b, 6)), ref, atol=tol)
    assert abs(float(act.second_moment(s, b)) - m2) <= 10 * tol


@pytest.mark.parametrize("name", ["tanh", "erf"])
@pytest.mark.parametrize("s", [4.0, 8.0, 16.0])
def test_smooth_quadrature_at_large_scale(name, s):
    # composite Gauss-Legendre (activations._smooth_rule) resolves sigma(sG + b) at large s, where
    # the former 160-node Gauss-Hermite rule lost 6e-5 (s = 4) to 1e-2 (s = 8)
    act = make(name)
    b = 0.3
    ref, m2 = _quad_ref(act, s, b, 4)
    np.testing.assert_allclose(np.asarray(act.hermite_coeffs(s, b, 4)), ref, atol=1e-8)
    assert abs(float(act.second_moment(s, b)) - m2) <= 1e-8


@pytest.mark.parametrize("name", ALL)
def test_coeffs_with_grad_vs_finite_differences(name):
    act = make(name)
    K, h = 6, 1e-5
    for s, b in [(1.3, 0.2), (0.6, -0.4)]:
        c, dc_ds, dc_db = (np.asarray(x) for x in act.coeffs_with_grad(s, b, K))
        np.testing.assert_allclose(c, np.asarray(act.hermite_coeffs(s, b, K)), atol=1e-13)
        fd_s = (np.asarray(act.hermite_coeffs(s + h, b, K)) - np.asarray(act.hermite_coeffs(s - h, b, K))) / (2 * h)
        fd_b = (np.asarray(act.hermite_coeffs(s, b + h, K)) - np.asarray(act.hermite_coeffs(s, b - h, K))) / (2 * h)
        # chat_k(s, b) is smooth (C^inf for s > 0): FD error h^2/6 |d^3 chat| ~ 1e-10, rounding ~1e-11
        np.testing.assert_allclose(dc_ds, fd_s, atol=1e-7)
        np.testing.assert_allclose(dc_db, fd_b, atol=1e-7)


def test_ramp_stein_identities():
    """m'(s) = E[sigma'(sG) G] and c_2 = s m'(s) (theory section 7.1), ramp closed form."""
    r = mfnn.ramp()
    t1, t2, s1, s2 = 0.5, 1.5, -2.5, 7.5
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    for s in (0.3, 1.0, 2.5):
        c, dc_ds, _ = (np.asarray(x) for x in r.coeffs_with_grad(s, 0.0, 3))
        mprime = (s2 - s1) / (t2 - t1) * (phi(t1 / s) - phi(t2 / s))
        assert abs(dc_ds[0] - mprime) < 1e-12
        # chat_2 = E[sigma (G^2 - 1)] / sqrt(2) = s m'(s) / sqrt(2)
        assert abs(c[2] - s * mprime / math.sqrt(2)) < 1e-12


# ----------------------------------------------------------------------------- Mehler identity


@pytest.mark.parametrize("name", ["ramp", "tanh", "nonmonotone"])
@pytest.mark.parametrize("corr", [0.3, -0.6, 0.9])
def test_mehler_identity(name, corr, rng):
    """E[sigma(a Z1 + b1) sigma(b Z2 + b2)] = sum_k chat_k(a, b1) chat_k(b, b2) corr^k."""
    act = make(name)
    (a, b1), (bb, b2) = (1.2, 0.1), (0.8, -0.3)
    z1 = rng.standard_normal(N_MC)
    z2 = corr * z1 + math.sqrt(1 - corr**2) * rng.standard_normal(N_MC)
    prod = np.asarray(act.value(jnp.asarray(a * z1 + b1))) * np.asarray(act.value(jnp.asarray(bb * z2 + b2)))
    K = 200
    series = float(np.sum(np.asarray(act.hermite_coeffs(a, b1, K)) * np.asarray(act.hermite_coeffs(bb, b2, K))
                          * corr ** np.arange(K)))
    # truncation: |sum_{k>=K}| <= |corr|^K sqrt(E sigma_1^2 E sigma_2^2) (Cauchy-Schwarz + Bessel)
    trunc = abs(corr) ** K * math.sqrt(float(act.second_moment(a, b1)) * float(act.second_moment(bb, b2)))
    se = prod.std(ddof=1) / math.sqrt(N_MC)
    assert abs(series - prod.mean()) <= N_SE * se + trunc, (series, prod.mean(), se)


def test_get_activation_names_and_errors():
    assert mfnn.get_activation("tanh").name == "tanh"
    assert isinstance(mfnn.get_activation("ramp"), mfnn.PiecewiseLinear)
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.get_activation("softplus")
    assert e.value.field == "activation"
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.PiecewiseLinear((1.0, 0.0), (0.0, 1.0))
    assert e.value.field == "activation.breakpoints"
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.PiecewiseLinear((0.0, 1.0), (0.0,))
    assert e.value.field == "activation.values"
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.ramp(t1=1.0, t2=1.0)
    assert e.value.field == "activation.t2"
