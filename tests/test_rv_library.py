"""Rotskoff-Vanden-Eijnden 2018 library pieces: 3-spin target, Monte Carlo F and K, particle flows,
SGD step and temperature, the batch schedule, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.errors import ConfigError
from mfnn.problem import (FunctionTarget, GaussianInit, Problem, RBFUnit, Regression, SigmoidUnit, Sphere, SphereInit,
                          SphereInputs, ThreeSpin, population_terms)
from mfnn.solvers import OnlineSGD, ParticleFlow, Phase, quench


def rbf_problem(d=3, target=None, sign="gaussian"):
    target = ThreeSpin.draw(d, [0]) if target is None else target
    return Problem(RBFUnit(alpha=1.0, rbf_sign=sign), Regression(SphereInputs(d), target, n_mc=500),
                   init=SphereInit("y", base=GaussianInit()), constraint=Sphere("y", radius=np.sqrt(d)))


def sigmoid_problem(d=4, seeds=(0,)):
    return Problem(SigmoidUnit(), Regression(SphereInputs(d), ThreeSpin.draw(d, seeds), n_mc=500),
                   init=GaussianInit(kappa=1.0, b_std=1.0))


def test_three_spin_gradient_matches_finite_differences():
    f = ThreeSpin.draw(6, [3])
    x = np.random.default_rng(1).standard_normal(6)
    g = np.asarray(f.grad(jnp.asarray(x)))
    h = 1e-6
    fd = [(f.value(jnp.asarray(x + h * e)) - f.value(jnp.asarray(x - h * e))) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(g, np.asarray(fd), rtol=1e-7, atol=1e-8)  # central differences: O(h^2) + round-off
    np.testing.assert_allclose(g, np.asarray(jax.grad(f.value)(jnp.asarray(x))), rtol=1e-12)


def test_three_spin_second_moment_over_realizations():
    """E_a f(x)^2 = |x|^6/d^2 = d on the sphere of radius sqrt(d), over 2000 draws of a (within 4 s.e.)."""
    d = 5
    f = ThreeSpin.draw(d, range(2000))
    x = jnp.asarray(np.sqrt(d) * np.ones(d) / np.sqrt(d))
    v = np.asarray(jax.vmap(lambda r: f.value(x, r))(jnp.arange(2000))) ** 2
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert abs(v.mean() - d) < 4 * se, (v.mean(), se)
    # batch evaluation (one GEMM) equals the per-point einsum
    xs = SphereInputs(d).sample(jax.random.PRNGKey(0), 7)
    np.testing.assert_allclose(f.values(xs, 3), jax.vmap(lambda z: f.value(z, 3))(xs), rtol=1e-12)


def _closed_forms(d, alpha, beta, u, y):
    """RBF on S^2(sqrt 3): E exp(v.x) = sinh(R|v|)/(R|v|); phi = e^{-alpha d} e^{alpha x.y}; f = e^{beta u.x}."""
    R = np.sqrt(d)
    m = lambda v: np.sinh(R * np.linalg.norm(v, axis=-1)) / (R * np.linalg.norm(v, axis=-1))  # noqa: E731
    K = np.exp(-2 * alpha * d) * m(alpha * (y[:, None] + y[None]))
    F = np.exp(-alpha * d) * m(alpha * y + beta * u)
    return 0.5 * m(2 * beta * u[None])[0], F, K


def test_monte_carlo_F_and_K_match_closed_forms_at_the_mc_rate():
    d, alpha, beta = 3, 1.0, 0.5
    u = np.array([0.6, 0.0, 0.8])
    target = FunctionTarget(lambda x: jnp.exp(beta * jnp.dot(jnp.asarray(u, x.dtype), x)), d=d)
    prob = rbf_problem(d, target)
    theta = prob.sample_init(jax.random.PRNGKey(4), 5, jnp.float64)
    C, F, K = _closed_forms(d, alpha, beta, u, np.asarray(theta["y"]))
    errs = {}
    for M in (400, 6400):
        e = []
        for rep in range(24):
            t = population_terms(prob.task, prob.unit, theta, M, jax.random.PRNGKey(100 * M + rep))
            e.append(np.concatenate([[float(t["C_f"]) - C], np.asarray(t["F"]) - F, (np.asarray(t["K"]) - K).ravel()]))
        errs[M] = np.sqrt(np.mean(np.square(e)))
        assert abs(np.mean(e)) < 4 * errs[M] / np.sqrt(24 * len(e[0])) * 3  # unbiased (loose: errors correlated)
    # RMS error ~ M^{-1/2}: 16x the sample, 4x smaller (24 replicates: +-30% on the ratio)
    assert 2.8 < errs[400] / errs[6400] < 5.5, errs


def test_rbf_flow_keeps_the_sphere_and_gradient_flow_decreases_the_energy():
    prob = rbf_problem(3)
    for mode, phase in (("direct", Phase(300, 2e-2)), ("fixed", Phase(300, 5e-2))):
        m = ParticleFlow(n_particles=16, phases=(phase,), mode=mode, n_mc=400, n_test=500, replicas=2)
        sol = mfnn.solve(prob, m, mfnn.SaveAt(m.times_at(np.arange(0, 301, 30)), observables=("energy", "sphere_error")))
        assert np.max(sol.sphere_error) < 1e-12  # |y_i| = sqrt(d) to round-off over the whole run
        dE = np.diff(sol.energy, axis=0)
        assert np.all(dE <= 1e-12 * np.abs(sol.energy[:-1])), (mode, dE)
        assert np.all(sol.energy[-1] < sol.energy[0] - 1e-3)


def test_one_sgd_step_matches_numpy_and_online_sgd():
    """RV eq. 3.1 by hand: c_i += dt/P sum_p e_p h_i(x_p), w_i += dt/P sum_p e_p c_i h'_i x_p, b likewise
    (e = f - f_n); equal to OnlineSGD with eps = dt/2, batch_size = P (PNAS eq. 6)."""
    prob, n, P, dt = sigmoid_problem(4), 6, 5, 0.3
    m = ParticleFlow(n_particles=n, phases=(Phase(1, dt, P),), mode="sgd", n_test=10)
    sol = mfnn.solve(prob, m, mfnn.SaveAt([0.0, dt], observables=("params", "temperature")), key=11)
    k = jax.random.fold_in(jax.random.PRNGKey(11), 0)
    th = {kk: np.asarray(v) for kk, v in prob.sample_init(jax.random.fold_in(k, 0), n, jnp.float64).items()}
    x, y = (np.asarray(a) for a in prob.task.sample(jax.random.fold_in(jax.random.fold_in(k, 1), 0), P, jnp.float64))
    h = 1 / (1 + np.exp(-(x @ th["w"].T + th["b"])))  # (P, n)
    e = y - h @ th["c"] / n
    hp = h * (1 - h) * th["c"]
    want = {"c": th["c"] + dt / P * h.T @ e, "w": th["w"] + dt / P * (hp * e[:, None]).T @ x,
            "b": th["b"] + dt / P * hp.T @ e}
    for name in want:
        np.testing.assert_allclose(sol.ys[f"params/{name}"][0, 0], th[name], rtol=1e-14)
        np.testing.assert_allclose(sol.ys[f"params/{name}"][1, 0], want[name], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sol.temperature, dt / P, rtol=1e-15)
    o = mfnn.solve(prob, OnlineSGD(n_neurons=n, eps=dt / 2, batch_size=P, engine="generic"),
                   mfnn.SaveAt([0.0, dt / 2], observables=("params",)), key=11)
    for name in want:
        np.testing.assert_allclose(o.ys[f"params/{name}"][1, 0], want[name], rtol=1e-11, atol=1e-13)


def test_quench_schedule_switches_at_the_requested_step_and_reports_temperature():
    n, dt = 20, 0.01
    phases = quench(n, 7, 5, dt)
    assert [p.batch for p in phases] == [4, 16]
    m = ParticleFlow(n_particles=n, phases=phases, n_test=10, replicas=2)
    steps = np.array([0, 6, 7, 8, 12])
    sol = mfnn.solve(sigmoid_problem(3, seeds=(0, 1)), m,
                     mfnn.SaveAt(m.times_at(steps), observables=("temperature", "step", "loss")), key=0)
    np.testing.assert_array_equal(sol.step, steps)
    np.testing.assert_allclose(sol.temperature, [dt / 4, dt / 4, dt / 4, dt / 16, dt / 16], rtol=1e-15)
    assert [r["temperature"] for r in m.schedule()] == [dt / 4, dt / 16]
    assert sol.loss[0, 0] != sol.loss[0, 1]  # two realizations of a_pqr, one per replica


def test_user_phi_by_autodiff_matches_the_builtin_rbf():
    from mfnn.problem import ChargeUnit
    from mfnn.problem.regression import network_values

    user = ChargeUnit(lambda th, x: jnp.exp(-0.5 * jnp.sum((x - th["y"]) ** 2)))
    prob = rbf_problem(4)
    theta = prob.sample_init(jax.random.PRNGKey(2), 7, jnp.float64)
    x = prob.task.inputs.sample(jax.random.PRNGKey(3), 11)
    np.testing.assert_allclose(network_values(user, theta, x)[1], network_values(prob.unit, theta, x)[1], rtol=1e-14)
    g = jax.grad(lambda th: jnp.sum(network_values(user, th, x)[1]))(theta)
    g0 = jax.grad(lambda th: jnp.sum(network_values(prob.unit, th, x)[1]))(theta)
    for k in ("c", "y"):
        np.testing.assert_allclose(g[k], g0[k], rtol=1e-12)


def test_bad_input_names_the_field():
    with pytest.raises(ConfigError, match="n_particles"):
        ParticleFlow(n_particles=0)
    with pytest.raises(ConfigError, match="phase.batch"):
        Phase(10, 1e-3, 0)
    with pytest.raises(ConfigError, match="phase.dt"):
        Phase(10, -1e-3, 1)
    with pytest.raises(ConfigError, match="target"):
        FunctionTarget(lambda x: x * 2.0, d=3)  # returns a vector, not a scalar
    with pytest.raises(ConfigError, match="target"):
        Regression(SphereInputs(4), ThreeSpin.draw(3))
    with pytest.raises(ConfigError, match="target.a"):
        ThreeSpin(np.zeros((2, 3, 3)))
    with pytest.raises(ConfigError, match="radius"):
        SphereInputs(3, radius=0.0)
    with pytest.raises(ConfigError, match="constraint.radius"):
        Sphere("y", radius=-1.0)
    with pytest.raises(ConfigError, match="unit.rbf_sign"):
        RBFUnit(rbf_sign="minus")
    with pytest.raises(ConfigError, match="saveat.times"):
        m = ParticleFlow(n_particles=2, phases=(Phase(3, 0.1, 1),))
        mfnn.solve(sigmoid_problem(3), m, [0.0, 1.0])
