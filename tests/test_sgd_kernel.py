"""The C++ SGD kernel (solvers/_sgd_kernel.py, _kernels/sgd_block.cc) against the generic step.

Both draw the data of step k from the same key (the kernel's data are drawn by JAX with the
generic step's ``draw``) and apply PNAS 2018 eq. 6; the kernel sums the dot products <w, x> and
the mean over neurons in another order (and its libm tanh/exp/erf may differ from XLA's by an
ulp), so each step differs by a few ulps and over a few hundred steps the relative difference
stays ~1e-15 (measured: at most 1.3e-15 for the cases below).  RTOL = 1e-12 keeps three orders
of margin while one step with a wrong coefficient, decay, data row or sigma' changes the
parameters by O(eps) ~ 1e-2 relative.  The kernel is compiled once per machine and cached.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.solvers import _sgd_kernel
from mfnn.solvers._sgd_projection import make_blocked_advance
from mfnn.solvers.sgd import make_step

RTOL = 1e-12

pytestmark = pytest.mark.skipif(_sgd_kernel.kernel_status() is not None,
                                reason=f"C++ kernel unavailable: {_sgd_kernel.kernel_status()}")


def _rel(x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(x))), 1e-300))


def _compare(problem, config, cases, rtol=RTOL, draw=16, fuse=None):
    """advance(theta, k0, n) of the kernel against a fori_loop of make_step; the trained
    leaves must move (the comparison is not between frozen parameters)."""
    key = jax.random.PRNGKey(3)
    dtype = jnp.dtype(config.dtype)
    theta0 = problem.sample_init(jax.random.PRNGKey(4), config.n_neurons, dtype)
    step = make_step(problem, config, key)
    generic = jax.jit(lambda th, k0, n: jax.lax.fori_loop(k0, k0 + n, step, th))
    kernel = jax.jit(_sgd_kernel.make_kernel_advance(problem, config, key, draw=draw, fuse=fuse))
    for k0, n in cases:
        k0, n = jnp.int64(k0), jnp.int64(n)
        ref, got = generic(theta0, k0, n), kernel(theta0, k0, n)
        for name in ("a", "b", "w"):
            assert got[name].dtype == dtype
            assert _rel(ref[name], got[name]) < rtol, (name, int(k0), int(n), _rel(ref[name], got[name]))
            moved = _rel(ref[name], theta0[name])
            assert (moved > 1e-3 if name in problem.unit.trained and int(n) > 0 else moved == 0.0), name


def _problem(act, trained, d=8, alpha=1.5):
    task = mfnn.IsotropicGaussians(d=d, delta=0.7, n_hermite=8)
    init = mfnn.GaussianInit(kappa=1.2, a_std=0.5, b_std=0.5)
    return mfnn.Problem(mfnn.ProjectionUnit(act, trained=trained), task, init, alpha=alpha)


def test_kernel_ramp_w():
    """PNAS ramp, w only, batch 1 (the vector tiles and a scalar tail: N = 37); runs of 0, 1
    and 50 steps (shorter and longer than a draw of 16), from k0 > 0."""
    _compare(_problem("ramp", ("w",)), mfnn.OnlineSGD(n_neurons=37, eps=3e-2), [(0, 0), (0, 1), (11, 50)])


@pytest.mark.slow
def test_kernel_full_unit_batch_decay():
    """a, b, w trained, batch 3, weight decay, a schedule; a run of exactly one draw and one of
    several."""
    config = mfnn.OnlineSGD(n_neurons=37, eps=3e-2, batch_size=3, lam=0.02, xi=mfnn.PowerLaw(p=0.5, t0=0.5))
    _compare(_problem("ramp", ("a", "b", "w")), config, [(7, 16), (7, 57)])


@pytest.mark.slow
def test_kernel_other_piecewise_linear_and_smooth_sigma():
    """A non-monotone 3-breakpoint sigma with linear tails (a, w trained, batch 2, decay) and
    tanh (b, w trained) against the generic step."""
    act = mfnn.PiecewiseLinear((-1.0, 0.2, 1.0), (0.5, -0.3, 0.8), left_slope=0.1, right_slope=-0.2)
    config = mfnn.OnlineSGD(n_neurons=21, eps=2e-2, batch_size=2, lam=0.05)
    _compare(_problem(act, ("a", "w")), config, [(3, 45)])
    _compare(_problem("tanh", ("b", "w")), mfnn.OnlineSGD(n_neurons=21, eps=3e-2), [(0, 40)])


@pytest.mark.slow
def test_kernel_solve_replicas_matches_generic():
    """mfnn.solve with engine="kernel" (two vmapped replicas: the kernel's replica threads)
    against engine="generic", 300 steps saved at step counts that are not multiples of the draw.
    (Longer runs at this step size amplify rounding: after 700 steps of eps = 1e-2 the generic
    step and the kernel differ by 1.4e-11 in W, the JAX blocked engine by 3.1e-11.)"""
    problem = _problem("ramp", ("w",), d=10, alpha=1.0)
    out = {}
    for eng in ("generic", "kernel"):
        m = mfnn.OnlineSGD(n_neurons=40, eps=5e-3, replicas=2, engine=eng)
        out[eng] = mfnn.solve(problem, m, mfnn.SaveAt(m.grid_times((0.0, 0.6, 1.5)), ("risk", "params")), key=5)
    assert _rel(out["generic"].risk, out["kernel"].risk) < RTOL
    assert _rel(out["generic"].ys["params/w"], out["kernel"].ys["params/w"]) < RTOL
    w = np.asarray(out["generic"].ys["params/w"])
    assert np.max(np.abs(w[-1] - w[0])) > 0.05 * np.max(np.abs(w[0]))


@pytest.mark.slow
def test_kernel_four_steps_per_pass():
    """Two-level blocking with 4 steps per pass (the default, 2, runs in the batch-1 tests
    above; batch > 1 or weight decay take one pass per step) against the generic step; runs
    of 1, 7 and 50 steps leave partial blocks of the 4 steps and of a draw of 16; a, b and w
    trained (the per-step a, b updates between passes, the Gram corrections of the
    pre-activations), ramp and tanh."""
    for act in ("ramp", mfnn.Tanh()):
        _compare(_problem(act, ("w", "a", "b"), d=8), mfnn.OnlineSGD(n_neurons=37, eps=1e-2),
                 [(0, 1), (2, 7), (5, 50)], fuse=4)


@pytest.mark.slow
def test_kernel_float32():
    """float32: the same path in single precision (rounding at the 1e-7 level per step)."""
    problem = mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=16, delta=0.8, n_hermite=8),
                           mfnn.GaussianInit(kappa=0.8))
    _compare(problem, mfnn.OnlineSGD(n_neurons=50, eps=1e-2, dtype="float32"), [(0, 300)], rtol=1e-4)


@pytest.fixture
def no_kernel(monkeypatch, tmp_path):
    """A fresh kernel state with no compiler and an empty cache (restored afterwards)."""
    monkeypatch.setenv("MFNN_CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("MFNN_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_sgd_kernel, "_state", {})
    monkeypatch.setattr(_sgd_kernel, "_logged", set())


def test_no_compiler_falls_back_to_the_blocked_engine(no_kernel):
    """Without a compiler "auto" runs the JAX blocked engine (bit for bit), and a forced
    engine="kernel" is a ConfigError naming the field."""
    assert "no C++ compiler" in _sgd_kernel.kernel_status()
    problem = _problem("ramp", ("w",), d=6, alpha=1.0)
    key = jax.random.PRNGKey(0)
    config = mfnn.OnlineSGD(n_neurons=12, eps=1e-2)
    theta = problem.sample_init(jax.random.PRNGKey(1), 12, jnp.float64)
    with jax.enable_x64(True):
        auto = mfnn.solvers.sgd.make_advance(problem, config, key)(theta, jnp.int64(0), jnp.int64(40))
        blocked = make_blocked_advance(problem, config, key)(theta, jnp.int64(0), jnp.int64(40))
    np.testing.assert_array_equal(np.asarray(auto["w"]), np.asarray(blocked["w"]))
    with pytest.raises(mfnn.ConfigError, match="engine"):
        mfnn.solve(problem, mfnn.OnlineSGD(n_neurons=12, eps=1e-2, engine="kernel"), (0.0, 0.1), key=0)


def test_kernel_declines_what_it_cannot_run(monkeypatch):
    """Non-CPU backends (the GPU path falls back), noisy SGD, user activations, the env switch."""
    problem = _problem("ramp", ("w",))
    assert _sgd_kernel.kernel_status(problem, mfnn.OnlineSGD(n_neurons=4, beta=10.0)).startswith("noisy")

    class Cubic(mfnn.Tanh):
        def value(self, t):
            return t ** 3

    assert "Cubic" in _sgd_kernel.kernel_status(_problem(Cubic(), ("w",)), mfnn.OnlineSGD(n_neurons=4))
    monkeypatch.setenv("MFNN_SGD_KERNEL", "0")
    assert "MFNN_SGD_KERNEL" in _sgd_kernel.kernel_status(problem)
    monkeypatch.delenv("MFNN_SGD_KERNEL")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert "CPU-only" in _sgd_kernel.kernel_status(problem)
    assert _sgd_kernel.make_kernel_advance(problem, mfnn.OnlineSGD(n_neurons=4), jax.random.PRNGKey(0)) is None


def test_build_is_cached():
    """A second build finds the cached library (same path, not rewritten)."""
    so = _sgd_kernel.build()
    mtime = so.stat().st_mtime_ns
    assert _sgd_kernel.build() == so and so.stat().st_mtime_ns == mtime
