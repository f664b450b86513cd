"""Isotropic Gaussian task: sampler, exact V / U / R_N versus Monte Carlo, MC fallback, validation.

Monte Carlo references use an independent NumPy sampler of the data law (y = +-1 equiprobable,
x | y ~ N(0, (1 + y Delta)^2 I_d)) and a 4-standard-error tolerance, the standard error being the
sample standard deviation of the averaged quantity over sqrt(n).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn

N_SE = 4.0
N_MC = 1_000_000
D = 8
DELTA = 0.6


def np_sample(rng, n, d=D, delta=DELTA):
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    x = rng.standard_normal((n, d)) * (1.0 + delta * y)[:, None]
    return x, y


def np_unit_values(unit, theta, x):
    """sigma_*(x; theta_i) for all neurons: (n, N)."""
    pre = x @ np.asarray(theta["w"]).T + np.asarray(theta["b"])[None]
    return np.asarray(theta["a"])[None] * np.asarray(unit.activation.value(jnp.asarray(pre)))


def jrisk(task, unit, theta):
    """task.risk under one jit (much cheaper to compile than eager op-by-op execution)."""
    return float(jax.jit(lambda th: task.risk(unit, th))(theta))


def units_and_params():
    """(unit, theta) cases: the PNAS unit sigma(<w,x>) and a*sigma(<w,x>+b) with relu / tanh."""
    key = jax.random.PRNGKey(7)
    cases = []
    u = mfnn.sigma_w()
    th = mfnn.GaussianInit(kappa=0.8).sample(key, 5, u.param_shapes(D))
    cases.append(("sigma_w_ramp", u, th))
    for name in ("relu", "tanh"):
        u = mfnn.ProjectionUnit(name, trained=("a", "b", "w"))
        th = mfnn.GaussianInit(kappa=1.0, a_mean=0.5, a_std=1.0, b_std=0.5).sample(jax.random.fold_in(key, 1), 5,
                                                                                   u.param_shapes(D))
        cases.append((name, u, th))
    return cases


CASES = units_and_params()
IDS = [c[0] for c in CASES]


@pytest.fixture(scope="module")
def mc_data():
    return np_sample(np.random.default_rng(11), N_MC)


@pytest.fixture(scope="module")
def task():
    return mfnn.IsotropicGaussians(d=D, delta=DELTA)


# ----------------------------------------------------------------------------- sampler


def test_sampler_class_conditional_moments(task):
    n = 400_000
    x, y = (np.asarray(a) for a in task.sample(jax.random.PRNGKey(0), n))
    assert x.shape == (n, D) and y.shape == (n,) and x.dtype == np.float64
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert abs(np.mean(y == 1) - 0.5) <= N_SE * math.sqrt(0.25 / n)
    for label, tau in ((1.0, 1 + DELTA), (-1.0, 1 - DELTA)):
        xc = x[y == label]
        m = xc.shape[0]
        # mean 0 (SE tau / sqrt(m)), per-coordinate variance tau^2 (SE tau^2 sqrt(2/m)),
        # off-diagonal covariance 0 (SE tau^2 / sqrt(m)), Gaussian kurtosis 3 (SE sqrt(24/m))
        assert np.all(np.abs(xc.mean(axis=0)) <= N_SE * tau / math.sqrt(m))
        assert np.all(np.abs(xc.var(axis=0) - tau**2) <= N_SE * tau**2 * math.sqrt(2 / m))
        cov = np.cov(xc.T)
        off = cov[~np.eye(D, dtype=bool)]
        # max of 56 correlated entries: 4 SE per entry plus a union-bound margin (4.9 SE)
        assert np.all(np.abs(off) <= 4.9 * tau**2 / math.sqrt(m))
        z = xc[:, 0] / tau
        assert abs(np.mean(z**4) - 3) <= N_SE * math.sqrt(96 / m)  # Var(Z^4) = 105 - 9 = 96


def test_sampler_reproducible_and_dtype(task):
    k = jax.random.PRNGKey(5)
    x1, y1 = task.sample(k, 100)
    x2, y2 = task.sample(k, 100)
    np.testing.assert_array_equal(np.asarray(x1), np.asarray(x2))
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    x3, _ = task.sample(jax.random.PRNGKey(6), 100)
    assert not np.allclose(np.asarray(x1), np.asarray(x3))
    x32, y32 = task.sample(k, 100, jnp.float32)
    assert x32.dtype == jnp.float32 and y32.dtype == jnp.float32
    assert task.y_second_moment == 1.0 and task.taus == (1 + DELTA, 1 - DELTA)


# ----------------------------------------------------------------------------- exact V, U, R_N


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_V_exact_vs_monte_carlo(case, task, mc_data):
    _, unit, theta = case
    x, y = mc_data
    vals = -y[:, None] * np_unit_values(unit, theta, x)  # (n, N)
    mc, se = vals.mean(axis=0), vals.std(axis=0, ddof=1) / math.sqrt(N_MC)
    exact = np.asarray(task.V(unit, theta))
    assert exact.shape == (5,)
    assert np.all(np.abs(exact - mc) <= N_SE * se), (exact, mc, se)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_U_exact_distinct_neurons_vs_monte_carlo(case, task, mc_data):
    _, unit, theta = case
    x, _ = mc_data
    f = np_unit_values(unit, theta, x)
    i, j = np.triu_indices(5, k=1)
    prod = f[:, i] * f[:, j]
    mc, se = prod.mean(axis=0), prod.std(axis=0, ddof=1) / math.sqrt(N_MC)
    th1 = jax.tree_util.tree_map(lambda a: a[i], theta)
    th2 = jax.tree_util.tree_map(lambda a: a[j], theta)
    exact = np.asarray(task.U(unit, th1, th2))
    assert np.all(np.abs(exact - mc) <= N_SE * se), (exact, mc, se)
    # symmetric
    np.testing.assert_allclose(np.asarray(task.U(unit, th2, th1)), exact, rtol=1e-13, atol=1e-15)


def test_U_nearly_parallel_neurons(task, mc_data):
    """A pair with cosine 0.8: the Mehler series still converges (|c|^64 ~ 6e-7 truncation)."""
    unit = mfnn.sigma_w()
    e1, e2 = np.eye(D)[0], np.eye(D)[1]
    w1, w2 = 0.9 * e1, 1.1 * (0.8 * e1 + 0.6 * e2)
    th1 = {"a": jnp.ones(1), "b": jnp.zeros(1), "w": jnp.asarray(w1[None])}
    th2 = {"a": jnp.ones(1), "b": jnp.zeros(1), "w": jnp.asarray(w2[None])}
    x, _ = mc_data
    prod = np.asarray(unit.activation.value(jnp.asarray(x @ w1))) * np.asarray(unit.activation.value(jnp.asarray(x @ w2)))
    se = prod.std(ddof=1) / math.sqrt(N_MC)
    assert abs(float(task.U(unit, th1, th2)[0]) - prod.mean()) <= N_SE * se


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_risk_exact_vs_monte_carlo(case, task, mc_data):
    _, unit, theta = case
    x, y = mc_data
    loss = (y - np_unit_values(unit, theta, x).mean(axis=1)) ** 2
    mc, se = loss.mean(), loss.std(ddof=1) / math.sqrt(N_MC)
    exact = jrisk(task, unit, theta)
    assert abs(exact - mc) <= N_SE * se, (exact, mc, se)
    # Problem.risk is the task's risk at alpha = 1
    prob = mfnn.Problem(unit, task, mfnn.GaussianInit())
    assert float(jax.jit(prob.risk)(theta)) == pytest.approx(exact, rel=1e-14)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_risk_decomposition_identity(case, task):
    """R_N = 1 + (2/N) sum_i V_i + (1/N^2) sum_ij U_ij, with U_ii = E sigma_*^2 (exact second moment)."""
    _, unit, theta = case
    n = theta["w"].shape[0]
    i, j = (a.ravel() for a in np.indices((n, n)))
    off = i != j
    U = np.zeros(n * n)
    U[off] = np.asarray(task.U(unit, jax.tree_util.tree_map(lambda a: a[i[off]], theta),
                               jax.tree_util.tree_map(lambda a: a[j[off]], theta)))
    r = np.linalg.norm(np.asarray(theta["w"]), axis=1)
    a, b = np.asarray(theta["a"]), np.asarray(theta["b"])
    diag = a**2 * sum(0.5 * np.asarray(unit.activation.second_moment(tau * r, b)) for tau in task.taus)
    U[~off] = diag
    V = np.asarray(task.V(unit, theta))
    rhs = 1 + 2 * V.mean() + U.sum() / n**2
    assert jrisk(task, unit, theta) == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_risk_of_single_neuron_and_zero_network(task):
    unit = mfnn.sigma_w()
    # a = 0: yhat = 0 and R = E y^2 = 1 exactly
    th = {"a": jnp.zeros(3), "b": jnp.zeros(3), "w": jnp.ones((3, D))}
    assert jrisk(task, unit, th) == pytest.approx(1.0, abs=1e-15)
    # N = 1: R = 1 + 2 V + E sigma^2
    th1 = {"a": jnp.ones(1), "b": jnp.zeros(1), "w": jnp.full((1, D), 0.3)}
    r = math.sqrt(D) * 0.3
    m2 = sum(0.5 * float(unit.activation.second_moment(tau * r, 0.0)) for tau in task.taus)
    assert jrisk(task, unit, th1) == pytest.approx(1 + 2 * float(task.V(unit, th1)[0]) + m2, rel=1e-13)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_psi_grad_is_the_risk_gradient(case, task):
    """grad_{theta_i} R_N(theta) = (2/N) grad Psi(theta_i; rhohat_N)  (theory section 1)."""
    _, unit, theta = case
    n = theta["w"].shape[0]
    g = jax.jit(jax.grad(lambda th: task.risk(unit, th)))(theta)
    pg = jax.jit(lambda th: task.psi_grad(unit, th))(theta)
    for name in ("a", "b", "w"):
        # same truncated Mehler series on both sides: equal up to rounding
        np.testing.assert_allclose(np.asarray(g[name]), 2 / n * np.asarray(pg[name]), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- MC fallback


def _function_unit_like(unit):
    act = unit.activation
    return mfnn.FunctionUnit(lambda th, x: th["a"] * act(jnp.dot(th["w"], x) + th["b"]),
                             lambda d: {"a": (), "b": (), "w": (d,)}, trained=("a", "b", "w"))


@pytest.mark.parametrize("case", CASES[:2], ids=IDS[:2])
def test_mc_fallback_risk_vs_exact(case):
    _, unit, theta = case
    task = mfnn.IsotropicGaussians(d=D, delta=DELTA, n_mc=100_000)
    fu = _function_unit_like(unit)
    assert task.has_exact_terms(unit) and not task.has_exact_terms(fu)
    exact = jrisk(task, unit, theta)
    mc = jrisk(task, fu, theta)
    assert mc == jrisk(task, fu, theta)  # fixed Monte Carlo sample: deterministic
    # SE of the fallback's n_mc-sample average, estimated on an independent sample of the loss
    x, y = np_sample(np.random.default_rng(3), task.n_mc)
    se = ((y - np_unit_values(unit, theta, x).mean(axis=1)) ** 2).std(ddof=1) / math.sqrt(task.n_mc)
    assert abs(mc - exact) <= N_SE * se, (mc, exact, se)
    assert abs(mc - exact) > 0  # it really is a Monte Carlo estimate
    # V fallback vs exact, same standard-error logic
    vals = -y[:, None] * np_unit_values(unit, theta, x)
    se_v = vals.std(axis=0, ddof=1) / math.sqrt(task.n_mc)
    assert np.all(np.abs(np.asarray(task.V(fu, theta)) - np.asarray(task.V(unit, theta))) <= N_SE * se_v)


def test_mc_fallback_decomposition_is_exact_on_its_sample():
    """On the fallback's fixed sample, y^2 = 1, so R = 1 + 2 mean V + mean U holds to rounding."""
    _, unit, theta = CASES[2]
    task = mfnn.IsotropicGaussians(d=D, delta=DELTA, n_mc=5000)
    fu = _function_unit_like(unit)
    n = 5
    i, j = (a.ravel() for a in np.indices((n, n)))
    U = np.asarray(task.U(fu, jax.tree_util.tree_map(lambda a: a[i], theta), jax.tree_util.tree_map(lambda a: a[j], theta)))
    rhs = 1 + 2 * np.mean(np.asarray(task.V(fu, theta))) + U.sum() / n**2
    assert jrisk(task, fu, theta) == pytest.approx(rhs, rel=1e-12)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,field", [
    (dict(d=10, delta=0.0), "delta"),
    (dict(d=10, delta=1.0), "delta"),
    (dict(d=10, delta=-0.2), "delta"),
    (dict(d=10, delta=1.5), "delta"),
    (dict(d=0), "d"),
    (dict(d=-3), "d"),
    (dict(d=2.5), "d"),
    (dict(d=10, n_hermite=1), "n_hermite"),
])
def test_task_validation(kwargs, field):
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.IsotropicGaussians(**kwargs)
    assert e.value.field == field
    assert field in str(e.value)


@pytest.mark.parametrize("make,field", [
    (lambda: mfnn.GaussianInit(kappa=-1.0), "init.kappa"),
    (lambda: mfnn.GaussianInit(a_std=-1.0), "init.a_std"),
    (lambda: mfnn.GaussianInit(b_std=-1.0), "init.b_std"),
    (lambda: mfnn.ProjectionUnit("relu", trained=()), "unit.trained"),
    (lambda: mfnn.ProjectionUnit("relu", trained=("v",)), "unit.trained"),
])
def test_init_and_unit_validation(make, field):
    with pytest.raises(mfnn.ConfigError) as e:
        make()
    assert e.value.field == field


def test_gaussian_init_law(rng):
    """w ~ N(0, kappa^2/d I), a = a_mean + a_std G, b = b_mean + b_std G; radius quantiles of kappa chi_d / sqrt(d)."""
    init = mfnn.GaussianInit(kappa=0.8, a_mean=0.5, a_std=2.0, b_mean=-1.0, b_std=0.3)
    n, d = 20_000, 10
    th = init.sample(jax.random.PRNGKey(1), n, {"a": (), "b": (), "w": (d,)})
    w = np.asarray(th["w"])
    assert abs(w.var() - 0.64 / d) <= N_SE * (0.64 / d) * math.sqrt(2 / w.size)
    a, b = np.asarray(th["a"]), np.asarray(th["b"])
    assert abs(a.mean() - 0.5) <= N_SE * 2.0 / math.sqrt(n) and abs(a.var() - 4.0) <= N_SE * 4.0 * math.sqrt(2 / n)
    assert abs(b.mean() + 1.0) <= N_SE * 0.3 / math.sqrt(n)
    q = init.radius_quantiles(d, 1000)
    assert np.all(np.diff(q) > 0)
    # midpoint quantiles: E r^2 = kappa^2 up to the O(1/M) quantile-rule error (|err| < 2e-4 here)
    assert abs(np.mean(q**2) - 0.64) < 2e-4
    # and they are the quantiles of the sampled radii (KS distance < 1.95/sqrt(n) at the 0.1% level)
    r = np.sort(np.linalg.norm(w, axis=1))
    emp = np.searchsorted(r, q) / n
    assert np.max(np.abs(emp - (np.arange(1000) + 0.5) / 1000)) < 1.95 / math.sqrt(n)
    sym = mfnn.GaussianInit(symmetric_a=True).sample(jax.random.PRNGKey(2), n, {"a": (), "b": (), "w": (d,)})
    sa = np.asarray(sym["a"])
    assert set(np.unique(sa)) == {-1.0, 1.0} and abs(sa.mean()) <= N_SE / math.sqrt(n)
