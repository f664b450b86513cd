"""The fast RV SGD step (benchmarks/rv_step.py) computes what the plain formulas compute.

The step was reorganized for XLA:CPU (sigmoid units evaluated particle-major, the 3-spin contraction
as minor-axis reductions, Langevin normals drawn only when T > 0); these tests hold the new paths
to the per-unit definitions (RV 2018 eq. 1.1, eq. 4.1) and to the App. A noise, to round-off."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import mfnn
from mfnn.problem import ChargeUnit, GaussianInit, Problem, Regression, SigmoidUnit, SphereInputs, ThreeSpin
from mfnn.problem.regression import network_values
from mfnn.solvers import ParticleFlow, Phase


def _generic_sigmoid():
    """The same unit through the generic per-unit vmap of ``ChargeUnit.batch_apply``."""
    return ChargeUnit(lambda th, x: jax.nn.sigmoid(jnp.dot(th["w"], x) + th["b"]), lambda d: {"w": (d,), "b": ()},
                      trained=("c", "w", "b"))


def test_sigmoid_batch_values_and_gradients_match_the_per_unit_definition():
    d, n, P = 5, 9, 13
    prob = Problem(SigmoidUnit(), Regression(SphereInputs(d), ThreeSpin.draw(d, [0])), init=GaussianInit(kappa=1.0, b_std=1.0))
    x, y = prob.task.sample(jax.random.PRNGKey(1), P, jnp.float64)
    fast, slow = prob.unit, _generic_sigmoid()
    for dtype, rtol in ((jnp.float64, 1e-13), (jnp.float32, 2e-6)):  # a few ulps: reassociated sums over n and P
        th = prob.sample_init(jax.random.PRNGKey(2), n, dtype)
        xx, yy = x.astype(dtype), y.astype(dtype)
        np.testing.assert_allclose(fast.batch_apply(th, xx), slow.batch_apply(th, xx), rtol=rtol, atol=rtol)
        loss = lambda u: jax.jit(jax.grad(lambda t: 0.5 * jnp.mean((yy - network_values(u, t, xx)[1]) ** 2)))  # noqa: E731
        gf, gs = loss(fast)(th), loss(slow)(th)
        for k in ("c", "w", "b"):
            assert gf[k].dtype == dtype
            scale = float(jnp.max(jnp.abs(gs[k])))
            np.testing.assert_allclose(gf[k], gs[k], rtol=rtol, atol=rtol * scale, err_msg=k)


def test_three_spin_batch_values_in_float32_and_float64():
    """The minor-axis contraction equals the per-point einsum (RV eq. 4.1) in both dtypes."""
    f = ThreeSpin.draw(7, [0, 1])
    x = SphereInputs(7).sample(jax.random.PRNGKey(3), 11)
    want = jax.vmap(lambda z: f.value(z, 1))(x)
    np.testing.assert_allclose(f.values(x, 1), want, rtol=1e-12)
    got32 = f.values(x.astype(jnp.float32), 1)
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(got32, want, rtol=0, atol=2e-5 * float(jnp.max(jnp.abs(want))))


def test_langevin_noise_is_drawn_only_at_positive_temperature():
    """One step at T > 0 minus the same step at T = 0 is sqrt(2 T dt) g - dt T lambda c e_c (RV App. A),
    with g the normals of the documented keys; at T = 0 the step is the plain SGD step (no noise)."""
    d, n, P, dt, T, lam = 4, 6, 5, 0.05, 0.3, 2.0
    prob = Problem(SigmoidUnit(), Regression(SphereInputs(d), ThreeSpin.draw(d, [0])), init=GaussianInit(kappa=1.0, b_std=1.0))
    out = {}
    for temp in (0.0, T):
        m = ParticleFlow(n_particles=n, phases=(Phase(1, dt, P, temp),), mode="sgd", n_test=4, confine=lam)
        out[temp] = mfnn.solve(prob, m, mfnn.SaveAt([0.0, dt], observables=("params",)), key=5).ys
    k = jax.random.fold_in(jax.random.PRNGKey(5), 0)
    kn = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(k, 1), 0), 7)
    c0 = out[0.0]["params/c"][0, 0]
    for j, name in enumerate(SigmoidUnit().trained):
        g = np.asarray(jax.random.normal(jax.random.fold_in(kn, j), c0.shape if name != "w" else (n, d), jnp.float64))
        want = np.sqrt(2 * T * dt) * g - (dt * T * lam * c0 if name == "c" else 0.0)
        np.testing.assert_allclose(out[T][f"params/{name}"][1, 0] - out[0.0][f"params/{name}"][1, 0], want,
                                   rtol=1e-9, atol=1e-13, err_msg=name)


def test_sigmoid_mean_apply_hand_vjp_matches_autodiff_of_the_per_unit_definition():
    """``SigmoidUnit.mean_apply`` (one sigmoid pass, hand-written reverse mode) against reverse-mode
    autodiff of the generic per-unit f_n (RV 2018 eq. 1.1): values and the gradients in c, w, b and x,
    to round-off in both dtypes (a few ulps: the sums over n and P are reassociated)."""
    d, n, P = 6, 11, 17
    prob = Problem(SigmoidUnit(), Regression(SphereInputs(d), ThreeSpin.draw(d, [0])), init=GaussianInit(kappa=1.0, b_std=1.0))
    x, y = prob.task.sample(jax.random.PRNGKey(4), P, jnp.float64)
    fast, slow = prob.unit, _generic_sigmoid()
    for dtype, rtol in ((jnp.float64, 1e-13), (jnp.float32, 3e-6)):
        th = prob.sample_init(jax.random.PRNGKey(5), n, dtype)
        xx, yy = x.astype(dtype), y.astype(dtype)
        np.testing.assert_allclose(fast.mean_apply(th, xx), network_values(slow, th, xx)[1], rtol=rtol, atol=rtol)
        loss_fast = lambda t, z: 0.5 * jnp.mean((yy - fast.mean_apply(t, z)) ** 2)  # noqa: E731
        loss_slow = lambda t, z: 0.5 * jnp.mean((yy - network_values(slow, t, z)[1]) ** 2)  # noqa: E731
        (gf, gxf), (gs, gxs) = (jax.jit(jax.grad(f, argnums=(0, 1)))(th, xx) for f in (loss_fast, loss_slow))
        for k, a, b in [(k, gf[k], gs[k]) for k in ("c", "w", "b")] + [("x", gxf, gxs)]:
            assert a.dtype == dtype, k
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(b))), err_msg=k)


def test_sgd_draw_equals_task_sample_with_traced_noise():
    """The step's draw (label noise drawn only when nonzero, ``Regression.labels``' lax.cond, and x
    drawn ahead by ``sample_inputs``) gives the always-draw numbers y = f(x) + noise g,
    g = normal(split(key)[1]), at zero and nonzero noise, with the noise traced as inside ``mfnn.solve``."""
    d, P = 5, 7
    for noise in (0.0, 0.3):
        task = Regression(SphereInputs(d), ThreeSpin.draw(d, [0, 1]), noise=noise)
        key = jax.random.PRNGKey(9)
        with jax.enable_x64(True):
            got = jax.jit(lambda t: (lambda x, k: (x, t.labels(x, k, 1)))(*t.sample_inputs(key, P, jnp.float32)))(task)
            g = jax.random.normal(jax.random.split(key)[1], (P,), jnp.float32)
            want = task.target.values(got[0], 1).astype(jnp.float32) + jnp.float32(noise) * g
        # jit may contract the 3-spin sum and f + noise g differently from eager: a few float32 ulps
        # (a wrong key, or noise added at zero, would be O(0.1))
        np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want), rtol=5e-7, atol=1e-6)
    assert not np.array_equal(np.asarray(got[1]), np.asarray(task.target.values(got[0], 1)))  # the noise is there
