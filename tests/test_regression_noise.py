"""The label-noise draw of ``Regression.sample`` (y = f(x) + noise * g, Rotskoff-Vanden-Eijnden 2018
eq. 1.2): the key split is fixed, so a statically zero noise may skip the draw without moving any
seeded result, and a traced noise (every solver run: the problem is a traced argument, so sweeps
over ``noise`` do not recompile) keeps it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mfnn.problem import Regression, SphereInputs, ThreeSpin


def _task(noise):
    return Regression(SphereInputs(5), ThreeSpin.draw(5, [0]), noise=noise)


def test_noise_draw_uses_the_second_split_key_and_static_zero_skips_it_without_moving_x():
    with jax.enable_x64(True):
        _static_paths(jax.random.PRNGKey(11), 37)


def _static_paths(key, P):
    x0, y0 = _task(0.0).sample(key, P)
    x1, y1 = _task(0.3).sample(key, P)
    # the inputs come from the first split key whatever the noise level
    np.testing.assert_array_equal(np.asarray(x0), np.asarray(x1))
    # noise = 0: y is the target itself; noise > 0: y - f(x) is exactly 0.3 g, g the normals of split(key)[1]
    f = ThreeSpin.draw(5, [0]).values(x0, 0)
    np.testing.assert_array_equal(np.asarray(y0), np.asarray(f))
    g = jax.random.normal(jax.random.split(key)[1], (P,), jnp.float64)
    np.testing.assert_allclose(np.asarray(y1 - y0), 0.3 * np.asarray(g), rtol=1e-12, atol=1e-15)


def test_traced_noise_draws_and_agrees_with_the_static_paths():
    """Under jit the noise leaf is a tracer: the draw stays in the program (inside a lax.cond: it cannot
    be skipped statically), and
    the results equal the eager ones bit for bit at noise 0 (y + 0 g = y) and to round-off at 0.3."""
    with jax.enable_x64(True):
        _traced_paths(jax.random.PRNGKey(5), 29)


def _traced_paths(key, P):
    jitted = jax.jit(lambda t: t.sample(key, P))
    for noise in (0.0, 0.3):
        xe, ye = _task(noise).sample(key, P)
        xj, yj = jitted(_task(noise))
        np.testing.assert_allclose(np.asarray(xj), np.asarray(xe), rtol=1e-14, atol=1e-15)  # jit may fuse differently
        np.testing.assert_allclose(np.asarray(yj), np.asarray(ye), rtol=1e-14, atol=1e-15)
    jaxpr = str(jax.make_jaxpr(lambda t: t.sample(key, P))(_task(0.0)))
    eager = str(jax.make_jaxpr(lambda k: _task(0.0).sample(k, P))(key))
    # normals are erf_inv of uniform bits: the traced program has one more (the P label normals) than
    # the static-zero one, whose only normals are the inputs' (SphereInputs normalizes Gaussians)
    assert jaxpr.count("erf_inv") == eager.count("erf_inv") + 1 and f"f64[{P}] = erf_inv" in jaxpr
