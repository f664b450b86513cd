"""Anisotropic Gaussians (PNAS Fig. 3): exact population terms, the reduced DD in (a, b, r1, r2),
and the pnas-anisotropic experiment end to end.

Tolerances: Monte Carlo comparisons allow 4 standard errors (a false failure has probability
< 1e-4 per comparison); closed-form identities are checked to 1e-10 (float64 rounding of sums of
O(1) terms).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
import mfnn.experiments
from mfnn.errors import ConfigError
from mfnn.problem.anisotropic import AnisotropicGaussians
from mfnn.solvers.anisotropic_dd import (
    COORDS,
    AnisotropicModel,
    initial_particles,
)

UNIT = mfnn.ProjectionUnit(mfnn.relu(), trained=("a", "b", "w"))


def _params(key, n, d, kappa=1.0):
    return mfnn.GaussianInit(kappa=kappa, a_mean=0.3, a_std=1.0, b_mean=0.1, b_std=0.5).sample(
        jax.random.PRNGKey(key), n, UNIT.param_shapes(d))


def test_validation_names_field():
    for kwargs, field in [(dict(d=10, s0=0), "s0"), (dict(d=10, s0=11), "s0"), (dict(d=10, s0=3, delta=1.0), "delta"),
                          (dict(d=0, s0=1), "d")]:
        with pytest.raises(ConfigError) as e:
            AnisotropicGaussians(**kwargs)
        assert e.value.field == field


def test_sample_covariance():
    """Per-class second moments: (1 +- Delta)^2 on the first s0 coordinates, 1 elsewhere."""
    task = AnisotropicGaussians(d=8, s0=3, delta=0.5)
    x, y = task.sample(jax.random.PRNGKey(0), 200_000)
    x, y = np.asarray(x), np.asarray(y)
    for label, tau in ((1.0, 1.5), (-1.0, 0.5)):
        xs = x[y == label]
        expect = np.array([tau ** 2] * 3 + [1.0] * 5)
        m2 = (xs ** 2).mean(0)
        se = (xs ** 2).std(0) / np.sqrt(len(xs))
        assert np.all(np.abs(m2 - expect) < 4 * se)
    assert abs(y.mean()) < 4 / np.sqrt(len(y))


def test_isotropic_special_case():
    """s0 = d is the isotropic task: V, U, R_N agree with IsotropicGaussians to rounding."""
    d = 9
    th = _params(1, 6, d)
    iso = mfnn.IsotropicGaussians(d=d, delta=0.4, n_hermite=24)
    an = AnisotropicGaussians(d=d, s0=d, delta=0.4, n_hermite=24)

    @jax.jit
    def terms(th):
        t1 = jax.tree_util.tree_map(lambda a: a[:3], th)
        t2 = jax.tree_util.tree_map(lambda a: a[3:], th)
        return [(task.risk(UNIT, th), task.V(UNIT, th), task.U(UNIT, t1, t2)) for task in (iso, an)]

    (r_i, v_i, u_i), (r_a, v_a, u_a) = terms(th)
    assert abs(float(r_i - r_a)) < 1e-10
    np.testing.assert_allclose(v_a, v_i, atol=1e-12)
    np.testing.assert_allclose(u_a, u_i, atol=1e-12)


def test_population_terms_vs_monte_carlo():
    """Exact V, U (distinct neurons) and R_N against sample means over 400k draws (4 SE)."""
    d, s0, n = 12, 4, 7
    task = AnisotropicGaussians(d=d, s0=s0, delta=0.5)
    th = _params(2, n, d)
    x, y = task.sample(jax.random.PRNGKey(3), 400_000)
    f = np.asarray(th["a"][:, None] * jax.nn.relu(th["w"] @ x.T + th["b"][:, None]))  # (n, samples)
    y = np.asarray(y)
    m = f.shape[1]

    def close(exact, samples):
        samples = np.atleast_2d(samples)
        err = np.abs(np.asarray(exact) - samples.mean(-1))
        se = samples.std(-1) / np.sqrt(m)
        assert np.all(err < 4 * se), (err, se)

    i, j = np.array([0, 1, 2, 3]), np.array([4, 5, 6, 0])
    sub = lambda idx: jax.tree_util.tree_map(lambda a: a[idx], th)
    V, U, R = jax.jit(lambda th: (task.V(UNIT, th), task.U(UNIT, sub(i), sub(j)), task.risk(UNIT, th)))(th)
    close(V, -f * y)
    close(U, f[i] * f[j])
    close(R, (y - f.mean(0)) ** 2)


def test_grad_psi_analytic_matches_autodiff():
    """The hand-written chain rule of grad psi equals jax.grad of psi (both interactions)."""
    problem = mfnn.Problem(UNIT, AnisotropicGaussians(d=20, s0=5, delta=0.5),
                           mfnn.GaussianInit(kappa=1.0, a_std=1.0, b_std=0.5))
    th = initial_particles(problem, 40, 0)
    for di in ("inf", "finite"):
        model = AnisotropicModel.from_problem(problem, di, n_hermite=10)
        g, Phi = jax.jit(model.grad_psi)(th)
        ga = jax.jit(jax.grad(lambda t: jnp.sum(model.psi(t, Phi))))(th)
        for k in COORDS:
            np.testing.assert_allclose(g[k], ga[k], atol=1e-12, rtol=1e-10)


def test_finite_d_interaction_is_the_rotation_average():
    """u(theta, theta') at finite d = E over independent block rotations of the exact U.

    Directions n1, n1' uniform on S^{s0-1}, n2, n2' on S^{d-s0-1}; 40k draws, 4 SE.  The d = inf
    interaction (k = 0 term only) must be rejected by the same test at d = 12 (it misses the
    E c^2 ~ 1/s0 terms), which shows the check has power.
    """
    d, s0 = 12, 4
    task = AnisotropicGaussians(d=d, s0=s0, delta=0.5, n_hermite=48)
    problem = mfnn.Problem(UNIT, task)
    fin = AnisotropicModel.from_problem(problem, "finite", n_hermite=32)
    inf = AnisotropicModel.from_problem(problem, "inf")
    p1 = {"a": jnp.array([1.0]), "b": jnp.array([-0.5]), "r1": jnp.array([1.3]), "r2": jnp.array([0.6])}
    p2 = {"a": jnp.array([-0.7]), "b": jnp.array([0.2]), "r1": jnp.array([0.9]), "r2": jnp.array([1.1])}
    n = 40_000
    keys = jax.random.split(jax.random.PRNGKey(4), 4)

    def directions(key, dim):
        z = jax.random.normal(key, (n, dim))
        return z / jnp.linalg.norm(z, axis=1, keepdims=True)

    def neuron(p, k1, k2):
        w = jnp.concatenate([p["r1"] * directions(k1, s0), p["r2"] * directions(k2, d - s0)], axis=1)
        return {"a": jnp.full((n,), p["a"][0]), "b": jnp.full((n,), p["b"][0]), "w": w}

    samples = np.asarray(jax.jit(lambda n1, n2: task.U(UNIT, n1, n2))(neuron(p1, *keys[:2]), neuron(p2, *keys[2:])))
    mean, se = samples.mean(), samples.std() / np.sqrt(n)
    u_fin, u_inf = float(fin.u(p1, p2)[0]), float(inf.u(p1, p2)[0])
    assert abs(u_fin - mean) < 4 * se, (u_fin, mean, se)
    assert abs(u_inf - mean) > 10 * se, (u_inf, mean, se)
    # v does not depend on the interaction and equals the exact V of any neuron with these norms
    assert abs(float(fin.v(p1)[0]) - float(task.V(UNIT, jax.tree_util.tree_map(lambda a: a[:1], neuron(p1, *keys[:2])))[0])) < 1e-12


# One model / schedule / particle count shared by the solver tests: the compiled block is cached.
_SMALL = dict(d=20, s0=5, delta=0.5)
_INIT = mfnn.GaussianInit(kappa=1.0, a_mean=0.5, a_std=0.5)
_DD = dict(n_particles=2000, d_interaction="finite", n_hermite=16, xi=1.0, rtol=1e-7, atol=1e-9)


def _small_problem():
    return mfnn.Problem(UNIT, AnisotropicGaussians(**_SMALL), _INIT)


def test_energy_identity_and_monotone_risk():
    """Constant xi: R(rho_t) is non-increasing and dR/dt = -4 xi int |grad psi|^2 (sec. 2).

    The trapezoid rule on 30 intervals of length 0.1 integrates the dissipation with relative
    error O(h^2 R''/R') ~ 1e-3; the ODE tolerance (rtol 1e-7) is far below.
    """
    times = np.linspace(0.0, 3.0, 31)
    sol = mfnn.solve(_small_problem(), mfnn.AnisotropicDD(**_DD), times)
    dR = np.diff(sol.risk)
    assert np.all(dR < 0)
    predicted = -4.0 * 0.5 * (sol.dissipation[1:] + sol.dissipation[:-1]) * np.diff(times)
    assert np.max(np.abs(dR - predicted)) < 5e-3 * np.max(np.abs(dR))
    total = sol.risk[-1] - sol.risk[0]
    assert abs(total - predicted.sum()) < 1e-3 * abs(total)
    assert total < -0.1  # the run actually moves
    assert np.all(sol.r1 >= 0) and np.all(sol.r2 >= 0)


def test_sgd_tracks_reduced_dd_better_with_more_neurons():
    """SGD risk (mean of 4 replicas, eps = 1e-3) vs the finite-d reduced DD on t in [0, 3].

    The gap is a finite-N bias (the i = j terms of R_N, O(1/N)) plus O(N^-1/2) fluctuations.
    Measured: max gap 0.034 at N = 25 and 0.0016 at N = 400; we require a 4x improvement and an
    absolute gap below 0.01 at N = 400 (the risk itself falls from 0.99 to 0.78).
    """
    problem = _small_problem()
    times = np.linspace(0.0, 3.0, 7)
    dd = mfnn.solve(problem, mfnn.AnisotropicDD(**_DD), times)
    gaps = {}
    for n in (25, 400):
        m = mfnn.OnlineSGD(n_neurons=n, eps=1e-3, replicas=4, engine="generic")
        tr = mfnn.solve(problem, m, mfnn.SaveAt(m.grid_times(times), "risk"), key=jax.random.PRNGKey(0))
        gaps[n] = float(np.max(np.abs(tr.risk.T.mean(0) - dd.risk)))
    assert dd.risk[-1] < dd.risk[0] - 0.15
    assert gaps[400] < 0.01
    assert gaps[400] < gaps[25] / 4


def test_pnas_anisotropic_quick(tmp_path):
    run = mfnn.experiments.run_experiment("pnas-anisotropic", out=tmp_path / "a", quick=True, progress=False)
    s = json.loads((run / "summary.json").read_text())
    table = s["table"]
    assert len(table) >= 6 and table[0]["t"] == 0.0
    assert {"t", "sgd_risk", "sgd_risk_std", "dd_risk"} <= set(table[0])
    assert set(s["final_means"]["sgd"]) == {"a", "b", "r1", "r2"}
    assert not s["sgd_diverged"] and not s["dd_diverged"]
    # both curves fall well below the initial R ~ 1; early times (t <= 2) agree to 0.01
    assert table[-1]["sgd_risk"] < 0.6 and table[-1]["dd_risk"] < 0.6
    early = [r for r in table if r["t"] <= 2.0]
    assert max(abs(r["sgd_risk"] - r["dd_risk"]) for r in early) < 0.01
    for name in ("risk.png", "means.png", "sgd.nc", "dd.nc"):
        assert (run / name).stat().st_size > 0
