"""The exact blocked SGD engine (solvers/_sgd_projection.py) against the generic autodiff step.

Both engines draw the data of step k from the same key and apply the same update; the blocked
engine only reassociates the arithmetic (z = P (X W0^T + sum G Ct) + b instead of W_k x, and one
rank-(K B) update of W per block).  In float64 each step then differs by a few ulps (~1e-16
relative), and over the few thousand steps below these differences accumulate (and are mildly
amplified by the dynamics) to the observed ~1e-14.  A tolerance of 1e-9 leaves five orders of
magnitude of margin while any real discrepancy -- one step with the wrong data, step size, decay
or coefficient -- changes the parameters by O(eps) ~ 1e-3 relative and is caught.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.solvers._sgd_projection import make_blocked_advance
from mfnn.solvers.sgd import make_step

RTOL = 1e-9


def _rel(x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(x))), 1e-300))


def _run_both(problem, **kw):
    times = kw.pop("times", (0.0, 1.0))
    out = {}
    for eng in ("generic", "blocked"):
        m = mfnn.OnlineSGD(engine=eng, **kw)
        names = [n for n in ("risk", "w_norm", "a", "b", "params") if n in m.available(problem)]
        out[eng] = mfnn.kept(mfnn.solve(problem, m, mfnn.SaveAt(m.grid_times(times), names), key=7, throw=False))
    return out["generic"], out["blocked"]


def _assert_same(gen, blk):
    np.testing.assert_array_equal(gen.times, blk.times)
    assert gen.result != "diverged" and blk.result != "diverged"
    assert _rel(gen.risk, blk.risk) < RTOL
    if "w_norm" in gen.ys:
        assert _rel(gen.w_norm, blk.w_norm) < RTOL
    for name in ("a", "b"):
        if name in gen.ys:
            assert _rel(gen.ys[name], blk.ys[name]) < RTOL
    for name in gen.ys:
        if name.startswith("params/"):
            assert _rel(gen.ys[name], blk.ys[name]) < RTOL, name


def test_blocked_matches_generic_pnas_ramp():
    """sigma(<w, x>) with the PNAS ramp, batch 1; segments of 500, 837, 663 steps (not multiples
    of the block size, one shorter than a draw)."""
    task = mfnn.IsotropicGaussians(d=20, delta=0.8, n_hermite=24)
    problem = mfnn.Problem(mfnn.sigma_w(), task, mfnn.GaussianInit(kappa=0.8))
    gen, blk = _run_both(problem, n_neurons=100, eps=1e-2, times=(0.0, 5.0, 13.37, 20.0), replicas=2)
    _assert_same(gen, blk)
    # the run moves: the comparison is not between two frozen initializations
    w = np.asarray(gen.ys["params/w"]).swapaxes(0, 1)  # (replica, time, ...)
    assert np.max(np.abs(w[:, -1] - w[:, 0])) > 0.1 * np.max(np.abs(w[:, 0]))
    assert gen.risk[-1, 0] < gen.risk[0, 0]


def test_blocked_matches_generic_full_projection_unit():
    """a tanh(<w, x> + b) with a, b, w trained, batch 4, weight decay, a power-law schedule,
    alpha = 2; 1777 steps in segments of 300, 1111 and 366."""
    task = mfnn.IsotropicGaussians(d=12, delta=0.6, n_hermite=24)
    unit = mfnn.ProjectionUnit("tanh", trained=("a", "b", "w"))
    init = mfnn.GaussianInit(kappa=1.0, a_std=0.5, b_std=0.3)
    problem = mfnn.Problem(unit, task, init, alpha=2.0)
    gen, blk = _run_both(problem, n_neurons=60, eps=1e-2, times=(0.0, 3.0, 14.11, 17.77),
                         batch_size=4, lam=0.05, xi=mfnn.PowerLaw(p=0.25, t0=1.0))
    _assert_same(gen, blk)
    for name in ("a", "b"):
        v = np.asarray(gen.ys[f"params/{name}"]).swapaxes(0, 1)
        assert np.max(np.abs(v[:, -1] - v[:, 0])) > 1e-2


def _compare_advance(problem, config, cases, rtol=RTOL, **sizes):
    """advance(theta, k0, n) of the blocked engine against a fori_loop of make_step."""
    key = jax.random.PRNGKey(3)
    dtype = jnp.dtype(config.dtype)
    theta0 = problem.sample_init(jax.random.PRNGKey(4), config.n_neurons, dtype)
    step = make_step(problem, config, key)
    generic = jax.jit(lambda th, k0, n: jax.lax.fori_loop(k0, k0 + n, step, th))
    blocked = jax.jit(make_blocked_advance(problem, config, key, **sizes))
    for k0, n in cases:
        k0, n = jnp.int64(k0), jnp.int64(n)
        ref, got = generic(theta0, k0, n), blocked(theta0, k0, n)
        for name in ("a", "b", "w"):
            assert got[name].dtype == dtype
            assert _rel(ref[name], got[name]) < rtol, (name, int(k0), int(n))
    return theta0, ref


@pytest.mark.parametrize("block,sub,draw", [(4, 2, 8), (5, 5, 15), (6, 3, 12), (None, None, None)])
def test_blocked_advance_matches_make_step(block, sub, draw):
    """The advance function itself (no risk evaluation), for several block / sub-block / draw
    sizes (None: the defaults), from k0 > 0 and for n above and below the draw size; batch 2,
    a, b, w trained, weight decay, a schedule."""
    task = mfnn.IsotropicGaussians(d=8, delta=0.7, n_hermite=8)
    unit = mfnn.ProjectionUnit("ramp", trained=("a", "b", "w"))
    init = mfnn.GaussianInit(kappa=1.2, a_std=0.5, b_std=0.5)
    problem = mfnn.Problem(unit, task, init, alpha=1.5)
    config = mfnn.OnlineSGD(n_neurons=30, eps=3e-2, batch_size=2, lam=0.02,
                       xi=mfnn.PowerLaw(p=0.5, t0=0.5))
    L = draw or 64
    _compare_advance(problem, config, [(0, 0), (0, 1), (11, 3 * L + 2), (100, block or 32), (7, 57)],
                     block=block, sub=sub, draw=draw)


@pytest.mark.parametrize("trained", [("a",), ("b",), ("a", "w"), ("b", "w")])
def test_blocked_advance_trained_subsets(trained):
    """Untrained w (no Gram matrix), untrained a or b; weight decay on the trained ones."""
    task = mfnn.IsotropicGaussians(d=10, delta=0.5, n_hermite=8)
    unit = mfnn.ProjectionUnit("tanh", trained=trained)
    init = mfnn.GaussianInit(kappa=1.0, a_std=0.5, b_std=0.3)
    config = mfnn.OnlineSGD(n_neurons=40, eps=2e-2, lam=0.01)
    theta0, ref = _compare_advance(mfnn.Problem(unit, task, init), config, [(5, 300)])
    for name in ("a", "b", "w"):  # trained leaves moved, the others did not
        moved = _rel(ref[name], theta0[name])
        assert moved > 1e-3 if name in trained else moved == 0.0, name


def test_blocked_advance_float32():
    """float32 takes the same path; the rounding differs at the 1e-7 level per step."""
    task = mfnn.IsotropicGaussians(d=16, delta=0.8, n_hermite=8)
    problem = mfnn.Problem(mfnn.sigma_w(), task, mfnn.GaussianInit(kappa=0.8))
    config = mfnn.OnlineSGD(n_neurons=50, eps=1e-2, dtype="float32")
    _compare_advance(problem, config, [(0, 500)], rtol=1e-4)


def test_blocked_rejects_noisy_runs():
    task = mfnn.IsotropicGaussians(d=8, delta=0.5, n_hermite=8)
    problem = mfnn.Problem(mfnn.sigma_w(), task, mfnn.GaussianInit(kappa=0.8))
    config = mfnn.OnlineSGD(n_neurons=10, eps=1e-2, beta=10.0, engine="blocked")
    with pytest.raises(mfnn.ConfigError):
        mfnn.solve(problem, config, (0.0, 0.1), key=0)
    assert make_blocked_advance(problem, config, jax.random.PRNGKey(0)) is None


def test_blocked_not_applicable_to_function_units():
    unit = mfnn.FunctionUnit(lambda th, x: jnp.tanh(jnp.dot(th["w"], x)), lambda d: {"w": (d,)},
                             trained=("w",))
    problem = mfnn.Problem(unit, mfnn.IsotropicGaussians(d=4, delta=0.5), mfnn.GaussianInit())
    assert make_blocked_advance(problem, mfnn.OnlineSGD(n_neurons=4), jax.random.PRNGKey(0)) is None
