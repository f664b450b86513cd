"""Radial distributional dynamics on the PNAS isotropic problem (theory sections 2 and 7.1).

Each ``mfnn.solve(problem, RadialDD(...), times)`` call compiles its integrator (10-20 s), so the solutions are module
fixtures shared by several tests, and the particle-number study runs every M inside one array
shape (see ``_repeated``) so that the persistent compilation cache (tests/conftest.py) serves it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mfnn
from mfnn.solvers.radial_dd import RadialModel

D = 20
KAPPA = 0.8
N_SE = 4.0


def isotropic(d=D, delta=0.8, kappa=KAPPA):
    return mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=d, delta=delta), mfnn.GaussianInit(kappa=kappa))


XI = mfnn.PowerLaw(p=0.5, t0=0.25)  # xi(0) = 2, xi(1) = 0.89: exercises the xi factor of the DD
T_FINE = np.linspace(0.0, 1.0, 101)
M_MAIN = 1000


def radial_dd(prob, times, **kw):
    return mfnn.solve(prob, mfnn.RadialDD(**kw), times)


def density(radii, edges):
    """Mass of the quantile particles per bin divided by bin width, shape (n_times, n_bins)."""
    out = np.stack([np.histogram(r, bins=edges)[0] for r in radii]).astype(float)
    return out / (radii.shape[1] * np.diff(edges))


@pytest.fixture(scope="module")
def main_sol():
    return radial_dd(isotropic(), T_FINE, n_particles=M_MAIN, rtol=1e-10, atol=1e-12, xi=XI)


@pytest.fixture(scope="module")
def model():
    return RadialModel.from_problem(isotropic())


# ----------------------------------------------------------------------------- model identities


def test_radial_model_gradient_identities(model):
    """dR/dr_j = (2/M) psi'(r_j) (delta R / delta rho = 2 psi) and velocity = -psi'."""
    r = jnp.asarray(isotropic().init.radius_quantiles(D, 200)) * jnp.linspace(0.7, 1.6, 200)
    # (jit: one compile is much cheaper than eager op-by-op dispatch of the Hermite scans)
    g = jax.jit(jax.grad(model.risk))(r)
    S = jax.jit(model.moments)(r)
    dpsi = jax.jit(model.dpsi)(r, S)
    np.testing.assert_allclose(np.asarray(g), 2 / 200 * np.asarray(dpsi), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(jax.jit(model.velocity)(r)), -np.asarray(dpsi), rtol=1e-12, atol=1e-14)
    # psi' is the r-derivative of psi at frozen moments (central FD, error ~h^2 psi^(3) ~ 1e-9)
    h = 1e-5
    psi = jax.jit(model.psi)
    fd = (np.asarray(psi(r + h, S)) - np.asarray(psi(r - h, S))) / (2 * h)
    np.testing.assert_allclose(np.asarray(dpsi), fd, atol=1e-7)


def test_radial_model_d_inf_closed_form():
    """d = inf: R = (1/2)(1 - M_+)^2 + (1/2)(1 + M_-)^2 with M_+- = int m(tau_+- r) (theory 7.1)."""
    prob = isotropic()
    mi = RadialModel.from_problem(prob, "inf")
    r = jnp.asarray(prob.init.radius_quantiles(D, 300))
    act = prob.unit.activation
    Mp = float(jnp.mean(act.hermite_coeffs(1.8 * r, 0.0, 1)[0]))
    Mm = float(jnp.mean(act.hermite_coeffs(0.2 * r, 0.0, 1)[0]))
    assert float(mi.risk(r)) == pytest.approx(0.5 * (1 - Mp) ** 2 + 0.5 * (1 + Mm) ** 2, rel=1e-13)


# ----------------------------------------------------------------------------- mass, order, density


def test_mass_conservation_and_quantile_order(main_sol):
    sol = main_sol
    assert sol.radii.shape == (len(T_FINE), M_MAIN) and sol.result != "diverged"
    np.testing.assert_allclose(sol.times, T_FINE)
    # a 1-D flow with a position-dependent velocity preserves order: the particles stay sorted
    assert np.all(np.diff(sol.radii, axis=1) >= 0)
    assert np.all(sol.radii > 0) and np.all(np.isfinite(sol.radii))
    # the dynamics moved them (so the checks above are not vacuous)
    assert np.max(np.abs(sol.radii[-1] - sol.radii[0])) > 0.1
    # the density integrates to one over bins covering all particles, at every time
    edges = np.linspace(0.0, 1.05 * sol.radii.max(), 61)
    dens = density(sol.radii, edges)
    np.testing.assert_allclose((dens * np.diff(edges)).sum(axis=1), 1.0, rtol=1e-14)


def test_initial_density_is_the_chi_law(main_sol):
    """rho_0 is (kappa/sqrt(d)) chi_d; midpoint quantiles put each bin's mass within 1/M of the truth."""
    edges = np.linspace(0.4, 1.3, 19)
    mass = density(main_sol.radii, edges)[0] * np.diff(edges)
    cdf = stats.chi.cdf(edges * math.sqrt(D) / KAPPA, D)
    assert np.max(np.abs(mass - np.diff(cdf))) <= 1.0 / M_MAIN + 1e-12


def _fd_relative_error(values, pred, stride):
    """max relative error of central differences with step stride*h against pred, on t in [0.2, 0.9].

    The same interior points (every 4th grid point) are used for every stride, so errors at
    strides 1 and 2 can be compared: a consistent derivative gives the ratio 4 (order 2).
    """
    h = stride * (T_FINE[1] - T_FINE[0])
    j = np.arange(20, 91, 4)
    fd = (values[j + stride] - values[j - stride]) / (2 * h)
    return np.max(np.abs(fd - pred[j]) / np.abs(pred[j]))


def test_weak_form_mean_radius(main_sol, model):
    """d/dt int r drho_t = -2 xi(t) int psi'(r) drho_t (weak form of the DD with f(r) = r)."""
    sol = main_sol
    r = jnp.asarray(sol.radii)
    dpsi_mean = np.asarray(jax.jit(jax.vmap(lambda x: jnp.mean(model.dpsi(x, model.moments(x)))))(r))
    pred = -2 * np.asarray(XI(T_FINE)) * dpsi_mean
    mean_r = sol.radii.mean(axis=1)
    e1, e2 = _fd_relative_error(mean_r, pred, 1), _fd_relative_error(mean_r, pred, 2)
    # FD error h^2 |f^(3)| / (6 |f'|) ~ 1e-3 at h = 0.01; a wrong factor in the velocity would leave
    # an O(1) error that does not shrink with h
    assert e1 < 3e-3, e1
    assert 3.5 < e2 / e1 < 4.5, (e1, e2)


# ----------------------------------------------------------------------------- energy


def test_risk_non_increasing(main_sol):
    R = main_sol.risk
    # steepest descent of R: monotone up to the integrator's error (rtol 1e-10)
    assert np.all(np.diff(R) <= 1e-10)
    assert R[-1] < R[0] - 0.3  # and it decreases substantially over [0, 1]
    assert np.all(main_sol.dissipation >= 0)


def test_energy_identity(main_sol):
    """dR/dt = -4 xi(t) int psi'^2 drho_t: central differences of sol.risk converge to it at order 2."""
    sol = main_sol
    pred = -4 * np.asarray(XI(sol.times)) * sol.dissipation
    e1, e2 = _fd_relative_error(sol.risk, pred, 1), _fd_relative_error(sol.risk, pred, 2)
    # relative FD error h^2 |R^(3)| / (6 |R'|) ~ 1.6e-3 at h = 0.01 (t >= 0.2); the integrator's error
    # (rtol 1e-10) divided by h is ~1e-8, negligible
    assert e1 < 3e-3, e1
    # if the dissipation were off by any factor the FD error would not shrink; order 2 -> ratio 4
    assert 3.5 < e2 / e1 < 4.5, (e1, e2)


# ----------------------------------------------------------------------------- convergence in M


M_LEVELS = (250, 500, 1000, 2000, 4000)
T_CONV = (0.0, 0.5, 1.0)


def _repeated(prob, m, m_max=M_LEVELS[-1]):
    """The M midpoint quantiles each repeated m_max / M times.

    Identical particles have identical velocities, so they move together: the run IS the M-particle
    solution (to rounding; see test_repeated_particles_are_the_m_particle_solution), but every M
    shares one array shape and therefore one compiled integrator.
    """
    return np.repeat(prob.init.radius_quantiles(D, m), m_max // m)


@pytest.fixture(scope="module")
def m_study():
    prob = isotropic()
    return {m: radial_dd(prob, T_CONV, r0=_repeated(prob, m), rtol=1e-11, atol=1e-13).risk
            for m in M_LEVELS}


def test_repeated_particles_are_the_m_particle_solution(model):
    prob = isotropic()
    q = jnp.asarray(prob.init.radius_quantiles(D, 250))
    rep = jnp.asarray(_repeated(prob, 250))
    risk, vel = jax.jit(model.risk), jax.jit(model.velocity)
    assert float(risk(rep)) == pytest.approx(float(risk(q)), rel=1e-14)
    np.testing.assert_allclose(np.asarray(vel(rep)), np.repeat(np.asarray(vel(q)), 16),
                               rtol=1e-13, atol=1e-15)


def _observed_orders(m_study, j):
    R = np.array([m_study[m][j] for m in M_LEVELS])
    diffs = np.abs(np.diff(R))  # |R_M - R_2M| ~ C M^-p (1 - 2^-p): no reference solution needed
    return diffs, np.log2(diffs[:-1] / diffs[1:])


def test_particle_number_convergence(m_study):
    """Risk at t = 0, 0.5, 1 converges in M (successive differences shrink geometrically)."""
    for j in range(len(T_CONV)):
        diffs, orders = _observed_orders(m_study, j)
        assert diffs[-1] < 1e-5, diffs  # |R_2000 - R_4000|
        assert np.all(orders > 0.85), (T_CONV[j], diffs, orders)


def test_particle_number_convergence_is_first_order(m_study):
    """The documented order in M is 1: midpoint quantiles of the unbounded chi_d law carry an O(1/M)
    tail error (measured mean r^2 error -2.7e-5 at M = 1000, halving per doubling), so successive
    risk differences halve per doubling: orders within [0.85, 1.5] at t = 0, 0.5, 1."""
    for j in range(len(T_CONV)):
        _, orders = _observed_orders(m_study, j)
        assert np.all((orders > 0.85) & (orders < 1.5)), (T_CONV[j], orders)


# ----------------------------------------------------------------------------- convergence in time


@pytest.mark.slow  # 12-16 s: RK4 order under step refinement
def test_rk4_time_convergence():
    prob = isotropic()
    dts = (0.02, 0.01, 0.005, 0.0025)
    final = [radial_dd(prob, [0.0, 0.2, 0.4], n_particles=400, solver="rk4", dt=dt) for dt in dts]
    for sol, dt in zip(final, dts):
        np.testing.assert_array_equal(sol.n_steps, [0, round(0.2 / dt), round(0.2 / dt)])
    r = np.array([s.radii[-1] for s in final])
    R = np.array([s.risk[-1] for s in final])
    dr = np.max(np.abs(np.diff(r, axis=0)), axis=1)
    dR = np.abs(np.diff(R))
    order_r = np.log2(dr[:-1] / dr[1:])
    order_R = np.log2(dR[:-1] / dR[1:])
    # fixed-step RK4: global error C dt^4 (1 + O(dt)); observed orders 3.86-4.35 at these dt
    assert np.all(order_r > 3.5) and np.all(order_r < 4.7), (dr, order_r)
    assert np.all(order_R > 3.5) and np.all(order_R < 4.7), (dR, order_R)


# ----------------------------------------------------------------------------- finite d vs d = inf


def test_finite_d_risk_at_t0_matches_exact_finite_n_risk(main_sol, model):
    """R(rho_0) at finite d (sol.risk[0]) equals the unbiased U-statistic built from the exact R_N.

    For N i.i.d. neurons, R_N = 1 + (2/N) sum V + (1/N^2) sum_ij U has bias (1/N)(E U(th,th) - int int U);
    removing the diagonal gives 1 + (2/N) sum V + (1/(N(N-1))) sum_{i != j} U, unbiased for R(rho_0),
    with standard error 2 sd(psi(theta; rho_0)) / sqrt(N) (Hoeffding projection).
    """
    prob = isotropic()
    N = 1500  # SE ~0.01; the d = inf value is ~6 SE away
    th = prob.sample_init(jax.random.PRNGKey(2024), N, jnp.float64)
    RN = float(jax.jit(prob.risk)(th))
    r = jnp.linalg.norm(th["w"], axis=1)
    V = np.asarray(prob.task.V(prob.unit, th))
    diag = sum(0.5 * np.asarray(prob.unit.activation.second_moment(tau * r, 0.0)) for tau in prob.task.taus)
    off = N * N * (RN - 1 - 2 * V.mean()) - diag.sum()
    ustat = 1 + 2 * V.mean() + off / (N * (N - 1))
    q = jnp.asarray(prob.init.radius_quantiles(D, M_MAIN))
    se = 2 * float(jnp.std(jax.jit(model.psi)(r, model.moments(q)))) / math.sqrt(N)
    R0 = float(main_sol.risk[0])
    assert R0 == pytest.approx(float(model.risk(q)), rel=1e-14)
    assert abs(ustat - R0) <= N_SE * se, (ustat, R0, se)
    # the finite-d interaction matters at this precision: the d = inf value is excluded
    R0_inf = float(RadialModel.from_problem(prob, "inf").risk(q))
    assert abs(ustat - R0_inf) > N_SE * se, (ustat, R0_inf, se)


def test_finite_d_minus_d_inf_is_order_one_over_d():
    diffs = []
    for d in (20, 40, 80):
        prob = isotropic(d=d)
        q = jnp.asarray(prob.init.radius_quantiles(d, 1000))
        rf = float(RadialModel.from_problem(prob, "finite").risk(q))
        ri = float(RadialModel.from_problem(prob, "inf").risk(q))
        diffs.append(rf - ri)
    diffs = np.array(diffs)
    assert np.all(diffs > 0)  # the k >= 2 angular terms add E c^k S_k^2 >= 0 (E c^odd = 0)
    ratios = diffs[:-1] / diffs[1:]
    # leading term (1/2d) sum_tau S_{tau,2}^2 with S depending on d only at O(1/d): ratio 2 (1 + O(1/d))
    assert np.all((ratios > 1.9) & (ratios < 2.2)), ratios
    # d * diff converges: its increments shrink (O(1/d^2) remainder)
    dd = diffs * np.array([20, 40, 80])
    assert abs(dd[2] - dd[1]) < abs(dd[1] - dd[0])


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,field", [
    (dict(n_particles=1), "n_particles"),
    (dict(dt=0.0), "dt"),
    (dict(rtol=0.0), "rtol"),
    (dict(d_interaction="bogus"), "d_interaction"),
    (dict(solver="euler"), "method"),
])
def test_radial_dd_validation(kwargs, field):
    with pytest.raises(mfnn.ConfigError) as e:
        radial_dd(isotropic(), [0.0, 0.1], **kwargs)
    assert e.value.field == field


def test_radial_dd_rejects_bad_times_and_problems():
    with pytest.raises(mfnn.ConfigError) as e:
        radial_dd(isotropic(), [0.5, 0.1])
    assert e.value.field == "saveat.times"
    bad_unit = mfnn.Problem(mfnn.ProjectionUnit("ramp", trained=("a", "w")), mfnn.IsotropicGaussians(d=D), mfnn.GaussianInit())
    with pytest.raises(mfnn.ConfigError) as e:
        radial_dd(bad_unit, [0.0])
    assert e.value.field == "unit"
    bad_init = mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=D), mfnn.GaussianInit(b_std=0.1))
    with pytest.raises(mfnn.ConfigError) as e:
        radial_dd(bad_init, [0.0])
    assert e.value.field == "init"
