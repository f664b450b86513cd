"""The one feature model of the symmetry-reduced problems (mfnn.problem.reduced)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.analysis import radial_certificates, radial_risk
from mfnn.problem.anisotropic import AnisotropicGaussians
from mfnn.problem.reduced import AnisotropicModel, RadialModel


def isotropic(delta=0.8, d=20):
    return mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=d, delta=delta), mfnn.GaussianInit(kappa=0.8))


R = jnp.linspace(0.1, 3.0, 64)


def test_numbers_are_traced_leaves_one_trace_over_delta():
    """A compiled function of the model traces once for 3 values of Delta (the taus are leaves)."""
    traces = []

    @eqx.filter_jit
    def risk(model, r):
        traces.append(1)
        return model.risk(r)

    vals = [float(risk(RadialModel.from_problem(isotropic(delta)), R)) for delta in (0.3, 0.5, 0.8)]
    assert len(traces) == 1
    # and the traced values are the right ones: each equals the eager evaluation of its own model
    for delta, v in zip((0.3, 0.5, 0.8), vals):
        assert v == pytest.approx(float(RadialModel.from_problem(isotropic(delta)).risk(R)), rel=1e-13)
    assert len(set(vals)) == 3


def test_isotropic_is_the_anisotropic_model_with_s0_equal_d():
    """s0 = d, r2 = 0, a = 1, b = 0: the anisotropic features reduce to the radial ones.

    The second block is empty (E[c2^k] = 1 for k = 0 only), so the (k, j) features are j = k with
    weights E[c1^k] and phi = chat_k(tau r1): the two models give the same v, psi and R up to rounding.
    """
    d = 12
    rad = RadialModel.from_problem(isotropic(d=d), "finite", n_hermite=10)
    unit = mfnn.ProjectionUnit(mfnn.ramp(), trained=("w",))
    ani = AnisotropicModel.from_problem(mfnn.Problem(unit, AnisotropicGaussians(d=d, s0=d, delta=0.8)),
                                        "finite", n_hermite=10)
    th = {"a": jnp.ones_like(R), "b": jnp.zeros_like(R), "r1": R, "r2": jnp.zeros_like(R)}
    np.testing.assert_allclose(float(ani.risk(th)), float(rad.risk(R)), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(ani.v(th)), np.asarray(rad.v(R)), atol=1e-14)
    g_ani, _ = ani.grad_psi(th)
    np.testing.assert_allclose(np.asarray(g_ani["r1"]), np.asarray(rad.grad_psi(R)[0]), atol=1e-12)
    assert np.all(np.asarray(g_ani["a"]) == 0) and np.all(np.asarray(g_ani["b"]) == 0)  # not trained


def test_weighted_measure_risk_matches_duplicated_particles():
    """Weights p_j = n_j / n on distinct radii equal the equal-weight measure with n_j copies."""
    model = RadialModel.from_problem(isotropic(), "finite", 12)
    r = np.array([0.4, 1.1, 2.5])
    counts = np.array([1, 3, 2])
    dup = np.repeat(r, counts)
    assert float(model.risk(jnp.asarray(r), jnp.asarray(counts / counts.sum()))) == pytest.approx(
        float(model.risk(jnp.asarray(dup))), rel=1e-13)
    assert radial_risk(model, r, counts) == pytest.approx(float(model.risk(jnp.asarray(dup))), rel=1e-13)
    # the certificates' psi is the model's psi: int psi drho = sum_j p_j psi(r_j; S)
    S = model.moments(jnp.asarray(dup))
    c = radial_certificates(model, r, counts, n_grid=101)
    assert c["psi_mean"] == pytest.approx(float(jnp.mean(model.psi(jnp.asarray(dup), S))), abs=1e-13)


# ----------------------------------------------------------------------------- compile once over numbers
# Trace events (the ``traces`` fixture of conftest.py, one per jit cache miss): the reduced methods
# take their numbers from the problem and the method as traced leaves, so a sweep traces once.
def _sweep(traces, make, values):
    counts, risks = [], []
    for v in values:
        problem, method = make(v)
        out = {}
        counts.append(traces(lambda: out.setdefault("sol", mfnn.solve(problem, method, [0.0, 0.05]))))
        risks.append(float(out["sol"].risk[-1]))
    return counts, risks


@pytest.mark.parametrize("name", ["radial_delta", "noisy_beta", "anisotropic_delta"])
def test_reduced_method_sweep_compiles_once(name, traces):
    from mfnn.solvers.anisotropic_dd import AnisotropicDD
    from mfnn.solvers.noisy_radial import NoisyRadialPDE
    from mfnn.solvers.radial_dd import RadialDD

    aniso_unit = mfnn.ProjectionUnit(mfnn.relu(), trained=("a", "w"))
    make = {
        # sizes no other test compiles, so the first solve must trace (the counter works)
        "radial_delta": lambda v: (isotropic(delta=v, d=7), RadialDD(n_particles=17, n_hermite=6)),
        "noisy_beta": lambda v: (isotropic(d=7), NoisyRadialPDE(beta=v, lam=0.05, r_max=5.0, n_cells=37, n_hermite=6)),
        "anisotropic_delta": lambda v: (
            mfnn.Problem(aniso_unit, AnisotropicGaussians(d=9, s0=3, delta=v), mfnn.GaussianInit(a_std=0.5)),
            AnisotropicDD(n_particles=19, d_interaction="finite", n_hermite=4)),
    }[name]
    values = {"radial_delta": [0.3, 0.4, 0.5, 0.6, 0.7], "noisy_beta": [2.0, 3.0, 5.0, 8.0, 13.0],
              "anisotropic_delta": [0.3, 0.4, 0.5, 0.6, 0.7]}[name]
    counts, risks = _sweep(traces, make, values)
    assert counts[0] > 0 and counts[1:] == [0, 0, 0, 0], counts
    assert len(set(risks)) == len(risks)  # the traced numbers were used: five different answers
