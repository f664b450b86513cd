"""The problem layer as pytrees: validation at construction, value hashing, initial laws,
constraints, and the population-term registry."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.problem import population


def test_numbers_are_leaves_structure_is_static():
    task = mfnn.IsotropicGaussians(d=np.int64(7), delta=0.3)
    assert task.d == 7 and isinstance(task.d, int)  # numpy ints accepted, stored as structure
    leaves = jax.tree_util.tree_leaves(mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), task))
    assert any(np.ndim(x) == 0 and float(x) == 0.3 for x in leaves)  # delta is a leaf
    assert 7 not in [x for x in leaves if isinstance(x, int)]


@pytest.mark.parametrize("make,field", [
    (lambda: mfnn.IsotropicGaussians(d=5, delta=float("nan")), "delta"),
    (lambda: mfnn.IsotropicGaussians(d=5, delta=float("inf")), "delta"),
    (lambda: mfnn.IsotropicGaussians(d=5, delta=True), "delta"),
    (lambda: mfnn.IsotropicGaussians(d=True, delta=0.5), "d"),
    (lambda: mfnn.IsotropicGaussians(d=2.5, delta=0.5), "d"),
    (lambda: mfnn.IsotropicGaussians(d=5, n_hermite=2.5), "n_hermite"),
    (lambda: mfnn.IsotropicGaussians(d=5, n_mc=0), "n_mc"),
    (lambda: mfnn.AnisotropicGaussians(d=5, s0=6), "s0"),
    (lambda: mfnn.GaussianInit(kappa=float("inf")), "init.kappa"),
    (lambda: mfnn.GaussianInit(kappa="1"), "init.kappa"),
    (lambda: mfnn.ramp(t1=float("nan")), "activation.t1"),
    (lambda: mfnn.PiecewiseLinear((0.0, float("inf")), (0.0, 1.0)), "activation.breakpoints"),
    (lambda: mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=3), alpha=-1.0), "alpha"),
    (lambda: mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=3), alpha=0.0), "alpha"),
    (lambda: mfnn.Problem(mfnn.sigma_w(), "task"), "task"),
    (lambda: mfnn.OnlineSGD(eps=float("inf")), "eps"),
    (lambda: mfnn.OnlineSGD(n_neurons=True), "n_neurons"),
    (lambda: mfnn.OnlineSGD(n_neurons=10**12), "n_neurons"),
    (lambda: mfnn.OnlineSGD(lam=float("inf")), "lam"),
    (lambda: mfnn.SphereInit(radius=-1.0), "init.radius"),
    (lambda: mfnn.Sphere(radius=0.0), "constraint.radius"),
])
def test_construction_validates(make, field):
    with pytest.raises(mfnn.ConfigError) as e:
        make()
    assert e.value.field == field


def test_value_hashing_and_replace():
    p1 = mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), mfnn.IsotropicGaussians(d=4, delta=0.5))
    p2 = mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), mfnn.IsotropicGaussians(d=4, delta=0.5))
    p3 = dataclasses.replace(p1, task=dataclasses.replace(p1.task, delta=0.6))
    assert p1 == p2 and hash(p1) == hash(p2) and p1 != p3
    with pytest.raises(mfnn.ConfigError):
        dataclasses.replace(p1.task, delta=1.5)  # replace validates too


def test_sphere_init_and_constraint_keep_norms():
    unit = mfnn.FunctionUnit(lambda th, x: th["c"] * jnp.exp(-0.5 * jnp.sum((x - th["y"]) ** 2) / 4.0),
                             lambda d: {"c": (), "y": (d,)}, trained=("c", "y"))
    task = mfnn.IsotropicGaussians(d=5, delta=0.5, n_mc=2000)
    problem = mfnn.Problem(unit, task, mfnn.SphereInit(params="y", base=mfnn.GaussianInit(a_mean=0.0)),
                           constraint=mfnn.Sphere("y"))
    theta = problem.sample_init(jax.random.PRNGKey(0), 64, jnp.float64)
    np.testing.assert_allclose(np.linalg.norm(theta["y"], axis=-1), np.sqrt(5), rtol=1e-14)
    # directions uniform: the mean of the unit vectors is O(1/sqrt(64)) per coordinate
    assert np.max(np.abs(np.mean(theta["y"] / np.sqrt(5), axis=0))) < 4 / np.sqrt(64)
    sol = mfnn.solve(problem, mfnn.OnlineSGD(n_neurons=64, eps=0.05, engine="generic"),
                     mfnn.SaveAt(times=[0.0, 1.0], observables=("risk", "params")), key=3)
    y = sol.ys["params/y"]
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.sqrt(5), rtol=1e-12)
    assert np.max(np.abs(y[-1] - y[0])) > 1e-3  # the centres moved, on the sphere
    # tangent projection removes the radial part
    g = {"y": theta["y"] * 2.0 + 1.0, "c": theta["c"]}
    t = mfnn.Sphere("y").tangent(theta, g)
    np.testing.assert_allclose(np.sum(t["y"] * theta["y"], axis=-1), 0.0, atol=1e-12)


def test_sampler_init_checks_shapes():
    law = mfnn.SamplerInit(lambda key, n, shapes, dtype: {k: jnp.ones((n,) + s, dtype) for k, s in shapes.items()})
    out = law.sample(jax.random.PRNGKey(0), 3, {"a": (), "w": (2,)})
    assert out["w"].shape == (3, 2)
    bad = mfnn.SamplerInit(lambda key, n, shapes, dtype: {"a": jnp.ones(n)})
    with pytest.raises(mfnn.ConfigError) as e:
        bad.sample(jax.random.PRNGKey(0), 3, {"a": (), "w": (2,)})
    assert e.value.field == "init.fn"


def test_population_registry_chooses_exact_terms_by_registration(rng):
    unit = mfnn.ProjectionUnit("tanh", trained=("a", "b", "w"))
    iso = mfnn.IsotropicGaussians(d=6, delta=0.4, n_hermite=24, n_mc=400000)
    aniso = mfnn.AnisotropicGaussians(d=6, s0=6, delta=0.4, n_hermite=24)
    assert population.terms_for(iso, unit) is mfnn.problem.tasks.IsotropicProjectionTerms
    assert population.terms_for(aniso, unit) is population.GaussianProjectionTerms
    fu = mfnn.FunctionUnit(lambda th, x: th["a"] * jnp.tanh(th["w"] @ x + th["b"]),
                           lambda d: {"a": (), "b": (), "w": (d,)}, trained=("w",))
    assert population.terms_for(iso, fu) is population.MonteCarloTerms
    theta = mfnn.GaussianInit(kappa=1.0, a_std=0.5, b_std=0.3).sample(jax.random.PRNGKey(1), 20, unit.param_shapes(6))
    exact_iso, exact_aniso = float(iso.risk(unit, theta)), float(aniso.risk(unit, theta))
    assert abs(exact_iso - exact_aniso) < 1e-12  # s0 = d is the isotropic task: one base, one formula
    mc = float(iso.risk(fu, theta))  # same function through the Monte Carlo terms (400k samples)
    assert abs(mc - exact_iso) < 5e-3 * exact_iso


def test_import_changes_no_global_jax_setting_and_solve_runs_in_float64():
    """In a fresh process: ``import mfnn`` leaves jax_enable_x64 off; ``solve`` still computes in
    float64 (risk dtype and agreement with the same run under a global switch) and restores it."""
    import subprocess
    import sys

    code = """
import jax, numpy as np, mfnn
assert not jax.config.jax_enable_x64
p = mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), mfnn.IsotropicGaussians(d=5, delta=0.5, n_hermite=8))
sol = mfnn.solve(p, mfnn.OnlineSGD(n_neurons=8, eps=1e-2, engine="generic"), [0.0, 0.1], key=0)
assert sol.risk.dtype == np.float64 and not jax.config.jax_enable_x64
mfnn.enable_x64()
ref = mfnn.solve(p, mfnn.OnlineSGD(n_neurons=8, eps=1e-2, engine="generic"), [0.0, 0.1], key=0)
assert np.array_equal(sol.risk, ref.risk), (sol.risk, ref.risk)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
