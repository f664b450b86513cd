"""Numerical building blocks: sphere-cosine moments, Hermite functions, schedules, RNG, ODE."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import mfnn
from mfnn.numerics import (
    gauss_hermite,
    gauss_jacobi_cosine,
    hermite_functions,
    normal_cdf,
    normal_pdf,
    sphere_cosine_moments,
)
from mfnn.numerics.ode import make_segment_fn, segment_inputs, step
from mfnn.numerics.random import normal as fast_normal

N_SE = 4.0  # Monte Carlo tolerance in standard errors (two-sided false-alarm rate 6e-5)


# ----------------------------------------------------------------------------- sphere cosines


@pytest.mark.parametrize("d", [2, 3, 5, 10, 40, 320])
def test_sphere_cosine_moments_vs_gauss_jacobi(d):
    K = 24
    mom = sphere_cosine_moments(d, K)
    x, w = gauss_jacobi_cosine(d, 16)  # exact for polynomials of degree <= 31 > K - 1
    quad = np.array([np.sum(w * x**k) for k in range(K)])
    np.testing.assert_allclose(mom, quad, rtol=1e-11, atol=1e-15)
    assert abs(mom[2] - 1 / d) < 1e-15 and abs(mom[4] - 3 / (d * (d + 2))) < 1e-15
    assert np.all(mom[1::2] == 0)


def test_sphere_cosine_moments_limits():
    np.testing.assert_array_equal(sphere_cosine_moments(math.inf, 6), [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(sphere_cosine_moments(1, 6), [1, 0, 1, 0, 1, 0])  # c = +-1 on S^0
    # the Jacobi weights are a probability measure on [-1, 1]
    x, w = gauss_jacobi_cosine(7, 12)
    assert abs(w.sum() - 1) < 1e-14 and np.all(np.abs(x) < 1) and np.all(w > 0)


@pytest.mark.parametrize("d", [3, 8])
def test_sphere_cosine_moments_vs_monte_carlo(d, rng):
    n = 400_000
    g1, g2 = rng.standard_normal((2, n, d))
    c = np.sum(g1 * g2, axis=1) / (np.linalg.norm(g1, axis=1) * np.linalg.norm(g2, axis=1))
    mom = sphere_cosine_moments(d, 8)
    for k in range(1, 8):
        ck = c**k
        se = ck.std(ddof=1) / math.sqrt(n)
        assert abs(ck.mean() - mom[k]) <= N_SE * se, (k, ck.mean(), mom[k], se)


# ----------------------------------------------------------------------------- Hermite


@pytest.mark.parametrize("K,n", [(10, 5), (30, 15), (60, 40)])
def test_hermite_functions_orthonormal_under_gauss_hermite(K, n):
    # n-point Gauss-Hermite integrates degree <= 2n - 1 exactly: the Gram block j + k <= 2n - 1 is
    # the identity up to rounding (the recurrence is stable: errors stay ~1e-13 for k <= 60)
    g, w = gauss_hermite(n)
    h = np.asarray(hermite_functions(jnp.asarray(g), K))
    gram = (h * w) @ h.T
    j, k = np.indices(gram.shape)
    exact = j + k <= 2 * n - 1
    np.testing.assert_allclose(gram[exact], np.eye(K)[exact], atol=1e-11)
    assert abs(w.sum() - 1) < 1e-14
    # and the polynomials are He_k / sqrt(k!)
    x = np.linspace(-3, 3, 7)
    for kk in (0, 1, 2, 5, 9):
        e = np.zeros(kk + 1)
        e[kk] = 1
        ref = np.polynomial.hermite_e.hermeval(x, e) / math.sqrt(math.factorial(kk))
        np.testing.assert_allclose(np.asarray(hermite_functions(jnp.asarray(x), 10))[kk], ref, rtol=1e-12, atol=1e-12)


def test_normal_pdf_cdf():
    x = np.linspace(-8, 8, 33)
    np.testing.assert_allclose(np.asarray(normal_pdf(jnp.asarray(x))), stats.norm.pdf(x), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(normal_cdf(jnp.asarray(x))), special.ndtr(x), rtol=1e-13, atol=1e-300)


# ----------------------------------------------------------------------------- schedules


def test_schedules_values():
    t = np.array([0.0, 0.5, 3.0])
    np.testing.assert_array_equal(np.asarray(mfnn.Constant(0.5)(t)), [0.5, 0.5, 0.5])
    pl = mfnn.PowerLaw(p=0.25, t0=1.0, scale=2.0)
    np.testing.assert_allclose(np.asarray(pl(t)), 2.0 * (1.0 + t) ** -0.25, rtol=1e-15)
    assert float(mfnn.Constant()(1.0)) == 1.0
    # traceable under jit
    np.testing.assert_allclose(np.asarray(jax.jit(pl)(jnp.asarray(t))), 2.0 * (1.0 + t) ** -0.25, rtol=1e-15)


@pytest.mark.parametrize("spec,expected", [
    (2, mfnn.Constant(2.0)),
    (0.5, mfnn.Constant(0.5)),
    ("1", mfnn.Constant(1.0)),
    ("0.25", mfnn.Constant(0.25)),
    ("constant", mfnn.Constant(1.0)),
    ("constant:0.5", mfnn.Constant(0.5)),
    ("power:0.25", mfnn.PowerLaw(p=0.25, t0=1.0)),
    ("power:0.5:2.0", mfnn.PowerLaw(p=0.5, t0=2.0)),
])
def test_as_schedule_specs(spec, expected):
    assert mfnn.as_schedule(spec) == expected


def test_as_schedule_passthrough_and_callable():
    s = mfnn.PowerLaw(p=0.1)
    assert mfnn.as_schedule(s) is s
    f = mfnn.as_schedule(lambda t: 1.0 / (1.0 + t))
    np.testing.assert_allclose(np.asarray(f(jnp.asarray([0.0, 1.0]))), [1.0, 0.5])


@pytest.mark.parametrize("spec", ["bogus", "power:x", "constant:-1", "0", "-2", "power:-1", None, [1.0]])
def test_as_schedule_bad_input(spec):
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.as_schedule(spec)
    assert e.value.field.startswith("xi")


@pytest.mark.parametrize("make,field", [
    (lambda: mfnn.Constant(0.0), "xi"),
    (lambda: mfnn.PowerLaw(p=-0.5), "xi.p"),
    (lambda: mfnn.PowerLaw(t0=0.0), "xi.t0"),
    (lambda: mfnn.PowerLaw(scale=-1.0), "xi.scale"),
])
def test_schedule_validation(make, field):
    with pytest.raises(mfnn.ConfigError) as e:
        make()
    assert e.value.field == field


# ----------------------------------------------------------------------------- random


def test_fast_normal_float64_moments():
    n = 2_000_001  # odd: exercises the Box-Muller pairing remainder
    z = np.asarray(fast_normal(jax.random.PRNGKey(3), (n,), jnp.float64))
    assert z.dtype == np.float64 and z.shape == (n,) and np.all(np.isfinite(z))
    # standard errors for N(0,1): mean 1/sqrt(n), variance sqrt(2/n), skewness sqrt(6/n),
    # excess kurtosis sqrt(24/n)
    assert abs(z.mean()) <= N_SE / math.sqrt(n)
    assert abs(z.var() - 1) <= N_SE * math.sqrt(2 / n)
    assert abs(stats.skew(z)) <= N_SE * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) <= N_SE * math.sqrt(24 / n)
    # distribution: Kolmogorov-Smirnov at the 0.1% level (critical value 1.95 / sqrt(n))
    assert stats.kstest(z[:200_000], "norm").statistic < 1.95 / math.sqrt(200_000)
    # the two halves of each Box-Muller pair are uncorrelated (cos/sin halves)
    m = (n + 1) // 2
    a, b = z[: m - 1], z[m:]
    assert abs(np.mean(a * b)) <= N_SE / math.sqrt(m)
    assert abs(np.mean(a * a * b * b) - 1) <= N_SE * math.sqrt(8 / m)  # independence, not just zero correlation


def test_fast_normal_shapes_keys_and_float32():
    k = jax.random.PRNGKey(0)
    z = fast_normal(k, (3, 5, 7))
    assert z.shape == (3, 5, 7) and z.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(z), np.asarray(fast_normal(k, (3, 5, 7))))
    assert not np.allclose(np.asarray(z), np.asarray(fast_normal(jax.random.PRNGKey(1), (3, 5, 7))))
    z32 = np.asarray(fast_normal(k, (100_000,), jnp.float32))
    assert z32.dtype == np.float32
    assert abs(z32.mean()) <= N_SE / math.sqrt(1e5) and abs(z32.var() - 1) <= N_SE * math.sqrt(2e-5)


# ----------------------------------------------------------------------------- ODE


def _integrate(rhs, y0, times, **kw):
    """Drive the library integrator the way the solvers do: lax.scan over save segments."""
    dt = kw.pop("dt", None)
    seg = make_segment_fn(rhs, lambda t, y: {"y": y}, **kw)
    inp = {k: jnp.asarray(v) for k, v in segment_inputs(times, dt).items()}
    _, saved = jax.jit(lambda s, i: jax.lax.scan(seg, s, i))((y0, jnp.asarray(0.0)), inp)
    return jax.device_get(saved)


def _osc(t, y):
    return {"q": y["p"], "p": -y["q"]}


def _osc_err(saved, times):
    return max(np.max(np.abs(saved["y"]["q"] - np.cos(times))), np.max(np.abs(saved["y"]["p"] + np.sin(times))))


def test_dopri5_decay_error_shrinks_with_rtol():
    times = np.linspace(0.0, 4.0, 9)
    y0 = jnp.asarray([1.0, -2.0])
    errs, steps = [], []
    for rtol in (1e-4, 1e-6, 1e-8, 1e-10):
        s = _integrate(lambda t, y: -y, y0, times, rtol=rtol, atol=rtol * 1e-3)
        errs.append(np.max(np.abs(s["y"] - np.exp(-times)[:, None] * np.array([1.0, -2.0]))))
        steps.append(int(np.sum(s["n_steps"])))
        # error control is relative to |y| <= 2: the global error stays within a few rtol
        assert errs[-1] <= 10 * rtol * 2, (rtol, errs[-1])
    # 100x tighter tolerance -> >= 30x smaller error (observed ~100x), and more steps
    assert all(a / b > 30 for a, b in zip(errs, errs[1:])), errs
    assert all(b > a for a, b in zip(steps, steps[1:])), steps
    # steps per 100x in rtol grow like 100^(1/5) = 2.5 for a 5th-order method
    assert 1.7 < (steps[-1] / steps[0]) ** (1 / 3) < 3.5, steps


def test_dopri5_harmonic_oscillator_pytree():
    times = np.linspace(0.0, 2 * np.pi, 5)
    y0 = {"q": jnp.asarray(1.0), "p": jnp.asarray(0.0)}
    errs = []
    for rtol in (1e-5, 1e-7, 1e-9):
        errs.append(_osc_err(_integrate(_osc, y0, times, rtol=rtol, atol=rtol), times))
        assert errs[-1] <= 10 * rtol
    assert errs[0] / errs[1] > 30 and errs[1] / errs[2] > 30, errs


def test_dopri5_rejects_too_large_steps_and_stays_accurate():
    times = np.array([0.0, 2.0])
    s = _integrate(_osc, {"q": jnp.asarray(1.0), "p": jnp.asarray(0.0)}, times, rtol=1e-8, atol=1e-8, h0=10.0)
    assert int(np.sum(s["n_rejected"])) > 0
    assert _osc_err(s, times) <= 1e-7


def test_dopri5_post_projection_restarts_from_the_projected_state():
    # rotation field started at radius 2, every accepted step projected onto the unit circle: the
    # exact result is (cos t, -sin t).  Dormand-Prince reuses f(t1, y1) as the next first stage
    # (FSAL); reused at the unprojected y1 it is twice too long, the angle error ~0.09 h per step
    # makes the error control reject steps and the final error grows to ~1.5e-7 (measured) from
    # ~6e-10 with the recomputed stage.
    times = np.linspace(0.0, 2 * np.pi, 5)
    s = _integrate(lambda t, y: jnp.stack([y[1], -y[0]]), jnp.asarray([2.0, 0.0]), times, rtol=1e-9, atol=1e-9,
                   post=lambda y: y / jnp.linalg.norm(y))
    exact = np.stack([np.cos(times), -np.sin(times)], axis=1)
    assert np.max(np.abs(s["y"][1:] - exact[1:])) <= 1e-8


def test_dopri5_step_local_orders():
    # one step on y' = cos(t) y: the 5th-order solution has local error O(h^6) (ratio 64 per
    # halving) and the embedded error estimate is O(h^5) (ratio 32)
    f = lambda t, y: jnp.cos(t) * y
    errs, ests = [], []
    for h in (0.2, 0.1, 0.05):
        y5, e = step("dopri5", f, 0.3, jnp.asarray(1.0), h)
        errs.append(abs(float(y5) - math.exp(math.sin(0.3 + h) - math.sin(0.3))))
        ests.append(abs(float(e)))
    for a, b in zip(errs, errs[1:]):
        assert 50 < a / b < 80, errs
    for a, b in zip(ests, ests[1:]):
        assert 25 < a / b < 40, ests


def test_rk4_global_error_ratio_16():
    times = np.array([0.0, 0.8, 1.6, 3.2])  # gaps divisible by every dt below
    y0 = {"q": jnp.asarray(1.0), "p": jnp.asarray(0.0)}
    errs = []
    for dt in (0.2, 0.1, 0.05, 0.025):
        s = _integrate(_osc, y0, times, method="rk4", dt=dt)
        np.testing.assert_array_equal(s["n_steps"], np.round(np.diff(times, prepend=0.0) / dt).astype(int))
        errs.append(_osc_err(s, times))
    ratios = [a / b for a, b in zip(errs, errs[1:])]
    # global error C dt^4 (1 + O(dt)): ratio 16 within ~10%
    assert all(14.5 < r < 17.5 for r in ratios), ratios


def test_rk4_step_exact_for_cubic_time_dependence():
    # RK4 integrates y' = p(t) exactly for polynomials of degree <= 3 (Simpson's rule)
    f = lambda t, y: 1.0 + 2.0 * t - 3.0 * t**2 + 4.0 * t**3
    y1 = float(step("rk4", f, 0.5, jnp.asarray(0.0), 0.7)[0])
    F = lambda t: t + t**2 - t**3 + t**4
    assert abs(y1 - (F(1.2) - F(0.5))) < 1e-14


def test_segment_fn_rejects_unknown_method():
    with pytest.raises(mfnn.ConfigError) as e:
        make_segment_fn(lambda t, y: y, lambda t, y: {}, method="euler")
    assert e.value.field == "method"


def test_fixed_step_budget_refused_before_running():
    """RK4 step counts that could not finish (or would overflow a save interval's step limit) are
    refused with a ConfigError naming dt, before anything is compiled."""
    from mfnn.numerics.ode import MAX_STEPS, segment_inputs

    inp = segment_inputs([0.0, 1.0, 2.0], 0.25)
    assert list(inp["n"]) == [0, 4, 4]
    for times, dt in (([0.0, 1.0], 1e-12), ([0.0, 2.0 * MAX_STEPS], 1.0)):
        with pytest.raises(mfnn.ConfigError) as e:
            segment_inputs(times, dt)
        assert e.value.field == "dt"
