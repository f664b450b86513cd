"""Finite-N online SGD: the update rule, schedules, weight decay, noise, keys, replicas, divergence."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.solvers import make_step

N_SE = 4.0
D = 6


def problem_tanh(alpha=1.0):
    unit = mfnn.ProjectionUnit("tanh", trained=("a", "b", "w"))
    init = mfnn.GaussianInit(kappa=1.0, a_mean=0.3, a_std=1.0, b_std=0.5)
    return mfnn.Problem(unit, mfnn.IsotropicGaussians(d=D, delta=0.5), init, alpha=alpha)


def problem_ramp():
    return mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=D, delta=0.8), mfnn.GaussianInit(kappa=0.8))


def run_sgd(prob, method, times, key, save_params=False):
    """``mfnn.solve`` of ``method`` at ``times`` snapped to the step grid, a divergence kept; arrays (time, replica, ...)."""
    names = [n for n in ("risk", "w_norm", "a", "b") + (("params",) if save_params else ()) if n in method.available(prob)]
    sol = mfnn.solve(prob, method, mfnn.SaveAt(method.grid_times(times), names), key=key, throw=False)
    return mfnn.kept(sol)


def np_step(problem, theta, x, y, s, lam=0.0):
    """theta + (2 s / alpha) mean_b[(y_b - yhat_b) grad sigma_*(x_b; theta_i)], (1 - 2 lam s) decay, in NumPy."""
    act = problem.unit.activation
    alpha = problem.alpha
    th = {k: np.asarray(v, dtype=np.float64) for k, v in theta.items()}
    x, y = np.asarray(x), np.asarray(y)
    pre = x @ th["w"].T + th["b"][None]  # (B, N)
    if act.name == "tanh":
        sig, dsig = np.tanh(pre), 1 - np.tanh(pre) ** 2
    else:  # the ramp, written out independently
        sig = np.clip(-2.5 + 10.0 * (pre - 0.5), -2.5, 7.5)
        dsig = np.where((pre > 0.5) & (pre <= 1.5), 10.0, 0.0)
    err = y - alpha * (th["a"][None] * sig).mean(axis=1)  # (B,)
    B = x.shape[0]
    grads = {"a": sig, "b": th["a"][None] * dsig, "w": (th["a"][None] * dsig)[..., None] * x[:, None, :]}
    out = dict(th)
    for name in problem.unit.trained:
        upd = (2 * s / alpha) * np.tensordot(err, grads[name], axes=(0, 0)) / B
        out[name] = (1 - 2 * lam * s) * th[name] + upd
    return out


def init_theta(problem, n, seed=0):
    return problem.sample_init(jax.random.PRNGKey(seed), n, jnp.float64)


# ----------------------------------------------------------------------------- one step


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("batch", [1, 4])
def test_one_step_matches_numpy(alpha, batch):
    prob = problem_tanh(alpha)
    cfg = mfnn.OnlineSGD(n_neurons=7, eps=0.01, batch_size=batch, engine="generic")
    key = jax.random.PRNGKey(42)
    theta = init_theta(prob, 7)
    step = make_step(prob, cfg, key)
    for k in (0, 13):
        x, y = prob.task.sample(jax.random.fold_in(key, k), batch)
        new = step(k, theta)
        ref = np_step(prob, theta, x, y, cfg.eps)
        for name in ("a", "b", "w"):
            np.testing.assert_allclose(np.asarray(new[name]), ref[name], rtol=1e-12, atol=1e-14)
        # the step actually moved every trained leaf
        assert all(np.max(np.abs(ref[n] - np.asarray(theta[n]))) > 1e-6 for n in ("a", "b", "w"))


def test_one_step_sigma_w_trains_only_w():
    prob = problem_ramp()
    cfg = mfnn.OnlineSGD(n_neurons=20, eps=0.003, engine="generic")
    key = jax.random.PRNGKey(1)
    theta = init_theta(prob, 20, seed=3)
    new = make_step(prob, cfg, key)(5, theta)
    x, y = prob.task.sample(jax.random.fold_in(key, 5), 1)
    ref = np_step(prob, theta, x, y, cfg.eps)
    np.testing.assert_allclose(np.asarray(new["w"]), ref["w"], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(new["a"]), np.asarray(theta["a"]))
    np.testing.assert_array_equal(np.asarray(new["b"]), np.asarray(theta["b"]))


def test_schedule_step_size():
    """s_k = eps * xi(k eps) with a non-constant xi."""
    prob = problem_tanh()
    xi = mfnn.PowerLaw(p=0.5, t0=0.1, scale=1.5)
    cfg = mfnn.OnlineSGD(n_neurons=5, eps=0.02, xi=xi, engine="generic")
    key = jax.random.PRNGKey(9)
    theta = init_theta(prob, 5)
    step = make_step(prob, cfg, key)
    for k in (0, 7, 250):
        s = cfg.eps * 1.5 * (0.1 + k * cfg.eps) ** -0.5
        x, y = prob.task.sample(jax.random.fold_in(key, k), 1)
        ref = np_step(prob, theta, x, y, s)
        np.testing.assert_allclose(np.asarray(step(k, theta)["w"]), ref["w"], rtol=1e-12, atol=1e-14)


def test_weight_decay():
    prob = problem_tanh()
    cfg = mfnn.OnlineSGD(n_neurons=5, eps=0.01, lam=3.0, engine="generic")
    key = jax.random.PRNGKey(4)
    theta = init_theta(prob, 5)
    x, y = prob.task.sample(jax.random.fold_in(key, 2), 1)
    new = make_step(prob, cfg, key)(2, theta)
    ref = np_step(prob, theta, x, y, cfg.eps, lam=3.0)
    for name in ("a", "b", "w"):
        np.testing.assert_allclose(np.asarray(new[name]), ref[name], rtol=1e-12, atol=1e-14)
    # pure decay when the data term vanishes (a = 0 and only w trained: grad_w = a sigma' x = 0)
    prob0 = mfnn.Problem(mfnn.ProjectionUnit("relu", trained=("w",)), prob.task, mfnn.GaussianInit(a_mean=0.0))
    th0 = init_theta(prob0, 5)
    new0 = make_step(prob0, cfg, key)(2, th0)
    np.testing.assert_allclose(np.asarray(new0["w"]), (1 - 2 * 3.0 * 0.01) * np.asarray(th0["w"]), rtol=1e-14)


# ----------------------------------------------------------------------------- noise


def _zero_gradient_problem(d=20):
    # a = 0 and only w trained: grad_w sigma_* = a sigma'(<w,x>) x = 0, so the update is pure noise
    return mfnn.Problem(mfnn.ProjectionUnit("relu", trained=("w",)), mfnn.IsotropicGaussians(d=d, delta=0.5),
                        mfnn.GaussianInit(kappa=1.0, a_mean=0.0))


@pytest.mark.parametrize("convention,c2", [("pde", 4.0), ("as_printed", 2.0)])
def test_noise_variance_per_step(convention, c2):
    """Per-step increment variance c^2 s / beta per trained coordinate: 4 s/beta ("pde"), 2 s/beta ("as_printed")."""
    prob = _zero_gradient_problem()
    N, beta, eps = 2000, 50.0, 0.01
    cfg = mfnn.OnlineSGD(n_neurons=N, eps=eps, beta=beta, noise_convention=convention, engine="generic")
    key = jax.random.PRNGKey(8)
    theta = init_theta(prob, N)
    step = make_step(prob, cfg, key)
    th1 = step(0, theta)
    th2 = step(1, th1)
    inc1 = np.asarray(th1["w"] - theta["w"]).ravel()
    inc2 = np.asarray(th2["w"] - th1["w"]).ravel()
    n = inc1.size  # 40000 coordinates
    target = c2 * eps / beta
    # sample variance of n Gaussians: relative SE sqrt(2/n) = 0.7%; mean SE sqrt(target/n)
    for inc in (inc1, inc2):
        assert abs(inc.var() / target - 1) <= N_SE * math.sqrt(2 / n), (inc.var(), target)
        assert abs(inc.mean()) <= N_SE * math.sqrt(target / n)
        assert abs(np.mean(inc**4) / inc.var() ** 2 - 3) <= N_SE * math.sqrt(96 / n)  # Gaussian
    # fresh noise each step, independent of the current parameters
    assert abs(np.mean(inc1 * inc2)) / target <= N_SE / math.sqrt(n)
    w0 = np.asarray(theta["w"]).ravel()
    assert abs(np.corrcoef(inc1, w0)[0, 1]) <= N_SE / math.sqrt(n)
    # untrained leaves get no noise
    np.testing.assert_array_equal(np.asarray(th2["a"]), np.asarray(theta["a"]))
    np.testing.assert_array_equal(np.asarray(th2["b"]), np.asarray(theta["b"]))


def test_noise_accumulates_as_diffusion():
    """Over k steps the increment has variance c^2 sum_k s_k / beta (c^2 xi / beta per unit time)."""
    prob = _zero_gradient_problem(d=10)
    N, beta, eps = 1000, 20.0, 0.01
    xi = mfnn.PowerLaw(p=1.0, t0=0.5)
    cfg = mfnn.OnlineSGD(n_neurons=N, eps=eps, beta=beta, xi=xi, engine="generic")
    tr = run_sgd(prob, cfg, (0.0, 0.5), jax.random.PRNGKey(0), save_params=True)
    inc = (tr.ys["params/w"][1, 0] - tr.ys["params/w"][0, 0]).ravel()
    n = inc.size
    total_s = sum(eps * (0.5 + k * eps) ** -1.0 for k in range(50))
    target = 4.0 * total_s / beta
    assert abs(inc.var() / target - 1) <= N_SE * math.sqrt(2 / n)
    # the integral of xi over [0, 0.5] is log 2 = 0.693: the sum is its left Riemann sum (within eps)
    assert abs(total_s - math.log(2.0)) < 0.02


def test_noisy_step_with_weight_decay():
    prob = _zero_gradient_problem()
    N, beta, eps, lam = 2000, 10.0, 0.02, 2.0
    cfg = mfnn.OnlineSGD(n_neurons=N, eps=eps, beta=beta, lam=lam, engine="generic")
    theta = init_theta(prob, N)
    th1 = make_step(prob, cfg, jax.random.PRNGKey(1))(0, theta)
    w0 = np.asarray(theta["w"]).ravel()
    resid = np.asarray(th1["w"]).ravel() - (1 - 2 * lam * eps) * w0
    target = 4 * eps / beta
    n = resid.size
    assert abs(resid.var() / target - 1) <= N_SE * math.sqrt(2 / n)
    # the decay factor is (1 - 2 lam s): regressing th1 on w0 recovers it (SE sqrt(target / sum w0^2))
    slope = np.dot(np.asarray(th1["w"]).ravel(), w0) / np.dot(w0, w0)
    assert abs(slope - (1 - 2 * lam * eps)) <= N_SE * math.sqrt(target / np.dot(w0, w0))


# ----------------------------------------------------------------------------- solve(OnlineSGD)

TIMES = (0.0, 0.02, 0.05)


@pytest.fixture(scope="module")
def small_runs():
    prob = problem_ramp()
    cfg = mfnn.OnlineSGD(n_neurons=8, eps=1e-3, replicas=3, engine="generic")
    key = jax.random.PRNGKey(123)
    return prob, cfg, key, run_sgd(prob, cfg, TIMES, key, save_params=True)


def test_sgd_solve_shapes_and_times(small_runs):
    prob, cfg, key, tr = small_runs
    assert tr.risk.T.shape == (3, 3) and tr.w_norm.swapaxes(0, 1).shape == (3, 3, 8)
    np.testing.assert_array_equal(cfg.save_steps(tr.times), [0, 20, 50])
    np.testing.assert_allclose(tr.times, [0.0, 0.02, 0.05], rtol=1e-15)
    assert tr.result != "diverged"
    assert "a" not in tr.ys and "b" not in tr.ys  # not trained in sigma(<w,x>)
    np.testing.assert_allclose(tr.w_norm, np.linalg.norm(tr.ys["params/w"], axis=-1), rtol=1e-13)
    np.testing.assert_allclose(tr.to_xarray().risk.mean("replica").values, tr.risk.T.mean(axis=0))


def test_sgd_solve_matches_manual_steps(small_runs):
    """Replica r: init from fold_in(fold_in(key, r), 0), data of step k from fold_in(fold_in(key, r), 1) then k.

    The init is drawn in one compiled, vmapped call (OnlineSGD.init), whose fused arithmetic may
    round the last ulp differently from an eager ``sample_init`` (measured: 1 ulp); the same
    draw to 1e-15 relative, while another key would differ by O(1)."""
    prob, cfg, key, tr = small_runs
    for r in (0, 2):
        rk = jax.random.fold_in(key, r)
        theta = prob.sample_init(jax.random.fold_in(rk, 0), 8, jnp.float64)
        np.testing.assert_allclose(tr.ys["params/w"][0, r], np.asarray(theta["w"]), rtol=1e-15, atol=1e-16)
        risk = jax.jit(prob.risk)
        assert tr.risk[0, r] == pytest.approx(float(risk(theta)), rel=1e-13)
        step = make_step(prob, cfg, jax.random.fold_in(rk, 1))
        theta = jax.lax.fori_loop(0, 50, step, theta)
        np.testing.assert_allclose(tr.ys["params/w"][2, r], np.asarray(theta["w"]), rtol=1e-12, atol=1e-14)
        assert tr.risk[2, r] == pytest.approx(float(risk(theta)), rel=1e-12)


def test_determinism_and_replica_keys(small_runs):
    prob, cfg, key, tr = small_runs
    again = run_sgd(prob, cfg, TIMES, key, save_params=True)
    np.testing.assert_array_equal(again.risk, tr.risk)
    np.testing.assert_array_equal(again.ys["params/w"], tr.ys["params/w"])
    other = run_sgd(prob, cfg, TIMES, jax.random.PRNGKey(124))
    assert np.all(np.abs(other.risk - tr.risk) > 1e-8)
    # replicas are independent: different inits and data, so different risks at every save
    risk = tr.risk.T  # (replica, time)
    assert np.all(np.abs(risk[0] - risk[1]) > 1e-8) and np.all(np.abs(risk[1] - risk[2]) > 1e-8)
    # replica r depends only on fold_in(key, r): the first replicas of a 2-replica run are the same
    two = run_sgd(prob, mfnn.OnlineSGD(n_neurons=8, eps=1e-3, replicas=2, engine="generic"), TIMES, key)
    np.testing.assert_array_equal(two.risk.T, risk[:2])
    # integer seeds are PRNGKey(seed)
    np.testing.assert_array_equal(run_sgd(prob, cfg, TIMES, 123).risk, tr.risk)


def test_chunking_does_not_change_the_run(small_runs):
    prob, cfg, key, tr = small_runs
    coarse = run_sgd(prob, cfg, (0.05,), key, save_params=True)
    np.testing.assert_allclose(coarse.ys["params/w"][-1], tr.ys["params/w"][-1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(coarse.risk[-1], tr.risk[-1], rtol=1e-13)


def test_float32_run(small_runs):
    prob, cfg, key, tr = small_runs
    tr32 = run_sgd(prob, mfnn.OnlineSGD(n_neurons=8, eps=1e-3, replicas=3, engine="generic", dtype="float32"), TIMES,
                   key, save_params=True)
    # float32 draws different normals than float64 (different samplers), so only the dtype, the
    # float64 risk evaluation of the float32 state, and its consistency are checked
    assert tr32.ys["params/w"].dtype == np.float32 and tr32.risk.dtype == np.float64
    assert np.all(np.isfinite(tr32.risk))
    np.testing.assert_allclose(tr32.w_norm, np.linalg.norm(tr32.ys["params/w"].astype(np.float64), axis=-1), rtol=1e-6)


# ----------------------------------------------------------------------------- divergence


def _relu_problem():
    return mfnn.Problem(mfnn.ProjectionUnit("relu", trained=("a", "w")), mfnn.IsotropicGaussians(d=5, delta=0.5),
                        mfnn.GaussianInit(kappa=1.0))


def test_divergence_keeps_finite_saves():
    eps = 10.0
    times = tuple(eps * np.array([0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]))
    cfg = mfnn.OnlineSGD(n_neurons=10, eps=eps, engine="generic")
    tr = run_sgd(_relu_problem(), cfg, times, 0)
    assert tr.result == "diverged"
    k = len(tr.times)
    assert 1 <= k < len(times)
    np.testing.assert_allclose(tr.times, np.asarray(times[:k]))
    assert np.all(np.isfinite(tr.risk)) and np.all(np.isfinite(tr.w_norm))
    assert tr.risk.T.shape == (1, k) and tr.w_norm.swapaxes(0, 1).shape == (1, k, 10)
    assert tr.risk[-1, 0] > 10 * tr.risk[0, 0]  # it was blowing up


def test_divergence_before_first_save_raises():
    cfg = mfnn.OnlineSGD(n_neurons=10, eps=10.0, engine="generic")
    with pytest.raises(mfnn.DivergenceError):
        run_sgd(_relu_problem(), cfg, (10000.0, 20000.0), 0)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,field", [
    (dict(n_neurons=0), "n_neurons"),
    (dict(n_neurons=2.5), "n_neurons"),
    (dict(eps=0.0), "eps"),
    (dict(eps=-1e-3), "eps"),
    (dict(batch_size=0), "batch_size"),
    (dict(lam=-0.1), "lam"),
    (dict(beta=0.0), "beta"),
    (dict(noise_convention="ito"), "noise_convention"),
    (dict(replicas=0), "replicas"),
    (dict(engine="fast"), "engine"),
    (dict(dtype="float16"), "dtype"),
    (dict(xi="bogus"), "xi"),
    (dict(xi=-1.0), "xi"),
])
def test_sgd_config_validation(kwargs, field):
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.OnlineSGD(**kwargs)
    assert e.value.field == field


@pytest.mark.parametrize("times", [(1.0, 0.5), (-1.0,), ()])
def test_save_times_validation(times):
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.SaveAt(times=times)
    assert e.value.field == "saveat.times"


def test_sgd_config_derived():
    cfg = mfnn.OnlineSGD(eps=0.01)
    np.testing.assert_array_equal(cfg.save_steps([0.0, 0.1, 0.25]), [0, 10, 25])
    assert cfg.noise_c == 2.0
    assert mfnn.OnlineSGD(noise_convention="as_printed").noise_c == pytest.approx(math.sqrt(2))
    assert isinstance(cfg.xi, mfnn.Constant)
