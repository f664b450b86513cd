"""Certificates (theory notes section 4) and the convex radial global minimum (section 7.1)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.spatial import ConvexHull

import mfnn  # noqa: F401  (float64)
from mfnn.analysis import particle_certificates, radial_certificates, radial_global_min, radial_risk
from mfnn.problem.shapes import HALF_BREAKPOINTS, HALF_VALUES, even_piecewise_linear
from mfnn.problem import GaussianInit, IsotropicGaussians, Problem, ramp, sigma_w
from mfnn.solvers import RadialModel


def failure_problem(d=320):
    act = even_piecewise_linear(HALF_BREAKPOINTS, HALF_VALUES)
    return Problem(sigma_w(act), IsotropicGaussians(d=d, delta=0.5), GaussianInit(kappa=0.1))


def ramp_problem(delta, d=40):
    return Problem(sigma_w(ramp()), IsotropicGaussians(d=d, delta=delta), GaussianInit(kappa=0.8))


def hull_distance_risk(points, target):
    """(1/2) squared distance from target to conv(points), computed independently with Qhull."""
    hull = ConvexHull(points)
    eq = hull.equations  # a . x + b <= 0 inside
    if np.all(eq[:, :2] @ target + eq[:, 2] <= 1e-12):
        return 0.0
    best = np.inf
    for i, j in hull.simplices:
        a, b = points[i], points[j]
        t = np.clip(np.dot(target - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        best = min(best, float(np.sum((a + t * (b - a) - target) ** 2)))
    return 0.5 * best


@pytest.mark.parametrize("name,problem", [("ramp Delta=0.3", ramp_problem(0.3)),
                                          ("failure sigma", failure_problem())])
def test_global_min_d_inf_equals_convex_hull_distance(name, problem):
    # Same r-grid for both: the QP optimum equals the hull distance exactly, up to the solver's
    # duality gap (fw_gap >= R(p) - R*), so the tolerance is fw_gap + rounding.
    grid = np.linspace(0.0, 12.0, 200)
    g = radial_global_min(problem, "inf", r_grid=grid)
    act, (tp, tm) = problem.unit.activation, problem.task.taus
    pts = np.stack([np.asarray(act.hermite_coeffs(tp * grid, 0.0, 1)[0]),
                    np.asarray(act.hermite_coeffs(tm * grid, 0.0, 1)[0])], axis=1)
    ref = hull_distance_risk(pts, np.array([1.0, -1.0]))
    assert g["fw_gap"] <= 1e-10
    assert g["risk"] >= ref - 1e-12
    assert g["risk"] <= ref + g["fw_gap"] + 1e-10
    # the returned weights reproduce the returned risk through an independent evaluation
    assert radial_risk(problem, g["support_r"], g["support_w"], d_interaction="inf") == pytest.approx(
        g["risk"], abs=1e-12)


def test_global_minimizer_has_zero_gap():
    # R = 0 at the optimum (ramp, Delta = 0.8): then psi = 0 identically, so gap = 0 to rounding.
    g = radial_global_min(ramp_problem(0.8), "inf")
    assert g["risk"] < 1e-12
    c = radial_certificates(ramp_problem(0.8), g["support_r"], g["support_w"], d_interaction="inf")
    assert c["gap"] < 1e-10 and c["stationarity"] < 1e-5
    # R* > 0 (failure sigma, finite d): gap of the grid optimum = grid duality gap / 2 plus the
    # off-grid improvement, which a 0.01 grid spacing keeps below 1e-4 (|psi''| r-spacing^2 scale).
    p = failure_problem()
    g = radial_global_min(p, "finite", r_grid=np.linspace(0.0, 4.0, 401), n_hermite=8)
    c = radial_certificates(p, g["support_r"], g["support_w"], n_hermite=8)
    assert c["risk"] == pytest.approx(g["risk"], abs=1e-12)
    assert c["gap"] <= 0.5 * g["fw_gap"] + 1e-4
    assert g["lower_bound"] <= g["risk"] and g["risk"] - g["lower_bound"] < 2e-4


def _dpsi_at(model, r):
    S = model.moments(jnp.asarray([r]))
    return float(model.dpsi(jnp.asarray([r]), S)[0])


@pytest.mark.parametrize("d_interaction", ["inf", "finite"])
def test_bad_fixed_point_is_stationary_with_positive_gap(d_interaction):
    model = RadialModel.from_problem(failure_problem(), d_interaction, n_hermite=8)
    r_star = brentq(lambda r: _dpsi_at(model, r), 0.02, 0.1, xtol=1e-14)
    c = radial_certificates(model, [r_star])
    assert c["stationarity"] < 1e-9  # root-finding accuracy times |psi''|
    assert c["gap"] > 0.5  # psi is ~1 lower near r ~ 2.5: delta_{r*} is a fixed point, not a minimizer
    assert c["support_gap"] == pytest.approx(c["gap"])  # one support point
    assert c["r_argmin"] > 1.0 and not c["argmin_at_r_max"]
    # 2 psi'(r; delta_r) = d/dr R(delta_r): the fixed point is a critical point of the point-mass risk
    h = 1e-6
    dR = (radial_risk(model, [r_star + h]) - radial_risk(model, [r_star - h])) / (2 * h)
    assert abs(dR) < 1e-6


@pytest.mark.parametrize("d_interaction", ["inf", "finite"])
def test_excess_risk_bounded_by_twice_gap_on_random_measures(d_interaction):
    rng = np.random.default_rng(0)
    problem = failure_problem(d=20) if d_interaction == "finite" else ramp_problem(0.5, d=20)
    for _once in (0,):
        g = radial_global_min(problem, d_interaction, n_hermite=12, n_grid=200)
        model = RadialModel.from_problem(problem, d_interaction, 12)
        for _ in range(5):
            n = int(rng.integers(1, 8))
            r = rng.uniform(0.0, 4.0, n)
            w = rng.uniform(0.1, 1.0, n)
            c = radial_certificates(model, r, w)
            assert c["gap"] >= 0 and c["support_gap"] >= 0
            # R(rho) - inf R <= 2 gap with inf R <= grid global min (convexity, section 4)
            assert c["risk"] - 2 * c["gap"] <= g["risk"] + 1e-10
            assert c["risk"] >= g["lower_bound"] - 1e-10


def test_certificates_match_radial_model_for_equal_weights():
    model = RadialModel.from_problem(failure_problem(d=40), "finite", 10)
    r = np.linspace(0.3, 1.7, 25)
    c = radial_certificates(model, r)
    assert c["risk"] == pytest.approx(float(model.risk(jnp.asarray(r))), abs=1e-13)
    dpsi = np.asarray(model.dpsi(jnp.asarray(r), model.moments(jnp.asarray(r))))
    assert c["stationarity"] == pytest.approx(np.max(np.abs(dpsi)), abs=1e-13)


def test_particle_certificates_agree_with_radial():
    # psi(theta; rho) for theta = r in R^1 via RadialModel (jax-traceable): the multi-start descent
    # must find the same infimum as the radial grid search (to the descent's accuracy).
    model = RadialModel.from_problem(failure_problem(), "inf")
    for r in ([0.0512], [1.3, 1.4]):
        S = model.moments(jnp.asarray(r))
        psi_fn = lambda th: model.psi(jnp.abs(th[0])[None], S)[0]
        pc = particle_certificates(psi_fn, np.asarray(r)[:, None], n_restarts=16, restart_scale=10.0,
                                   steps=1000, lr=0.05)
        rc = radial_certificates(model, r)
        assert pc["stationarity"] == pytest.approx(rc["stationarity"], rel=1e-8, abs=1e-12)
        assert pc["psi_mean"] == pytest.approx(rc["psi_mean"], abs=1e-12)
        assert pc["gap"] == pytest.approx(rc["gap"], abs=1e-6)
