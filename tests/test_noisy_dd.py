"""Noisy radial DD, free energy, Gibbs fixed point, and the SGD noise convention end to end."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import mfnn
from mfnn.solvers import GibbsFixedPoint, NoisyRadialPDE, RadialGrid, polish_gibbs

D, DELTA, LAM = 5, 0.8, 0.05
GRID = dict(r_max=6.0, n_cells=120)


def problem(d=D):
    return mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=d, delta=DELTA), mfnn.GaussianInit(kappa=0.8))


@pytest.fixture(scope="module")
def long_run():
    times = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
    return mfnn.solve(problem(), NoisyRadialPDE(beta=10.0, lam=LAM, **GRID), times)


def gibbs(prob, max_iter=2000, **kw):
    """The polished self-consistent Gibbs measure after ``max_iter`` mirror steps (one save)."""
    m = GibbsFixedPoint(**kw)
    return polish_gibbs(prob, m, mfnn.solve(prob, m, [max_iter], throw=False))


def cell_centres(n_cells, r_max):
    return (np.arange(n_cells) + 0.5) * (r_max / n_cells)


def test_mass_conserved_to_roundoff_and_density_nonnegative(long_run):
    # flux form with zero wall fluxes: only summation round-off (~1e-16 per step) can change the mass
    np.testing.assert_allclose(long_run.mass, 1.0, atol=1e-11)
    assert np.all(long_run.density >= 0.0)


def test_free_energy_non_increasing(long_run):
    # SG flux J = (D/h) B(z) rho_i (1 - exp(beta dmu)) has the sign of -dmu, so dF/dt <= 0 for the
    # semi-discrete scheme; forward Euler adds O(dt^2) per step, far below 1e-10 here
    F = long_run.free_energy
    assert np.all(np.diff(F) <= 1e-10), np.diff(F)
    assert F[-1] < F[0] - 0.1  # and it actually decreases


def test_stationary_state_is_the_gibbs_fixed_point(long_run):
    g = gibbs(problem(), beta=10.0, lam=LAM, **GRID)
    assert g.stats["converged"] and g.residual[-1] < 1e-10
    h = GRID["r_max"] / GRID["n_cells"]
    l1 = np.sum(np.abs(long_run.density[-1] - g.density[-1])) * h
    # exponential convergence: by t = 128 the L1 distance is at round-off-limited level
    assert l1 < 1e-6, l1
    assert abs(long_run.free_energy[-1] - g.free_energy[-1]) < 1e-9
    # and the Gibbs measure minimizes F: any perturbation increases it
    grid = RadialGrid.build(problem(), lam=LAM, beta=10.0, **GRID)
    rng = np.random.default_rng(0)
    for _ in range(5):
        pert = g.density[-1] * np.exp(0.1 * rng.standard_normal(g.density[-1].shape))
        pert /= pert.sum() * h
        assert float(grid.free_energy(pert)) > g.free_energy[-1]


def test_gibbs_low_temperature_converges():
    g = gibbs(problem(10), beta=200.0, lam=0.01, r_max=10.0, n_cells=300)
    assert g.stats["converged"] and g.residual[-1] < 1e-9
    np.testing.assert_allclose(g.density[-1].sum() * (10.0 / 300), 1.0, atol=1e-12)


def _noisy_sgd_mean_radius(convention, beta, n=400, eps=2e-5, T=3.0, replicas=2):
    cfg = mfnn.OnlineSGD(n_neurons=n, eps=eps, lam=LAM, beta=beta, noise_convention=convention, replicas=replicas)
    tr = mfnn.solve(problem(), cfg, mfnn.SaveAt(cfg.grid_times([T]), "w_norm"), key=jax.random.PRNGKey(0))
    r = tr.w_norm[-1].ravel()
    return r.mean(), r.std() / np.sqrt(r.size)


@pytest.mark.slow
def test_noisy_sgd_matches_noisy_pde_with_pde_convention():
    """c = 2 ("pde"): noisy SGD's ||w|| law matches the noisy PDE at beta; c = sqrt(2) matches 2 beta."""
    beta, T = 5.0, 3.0
    pde = {b: mfnn.solve(problem(), NoisyRadialPDE(beta=b, lam=LAM, **GRID), [T]) for b in (beta, 2 * beta)}
    r = cell_centres(GRID["n_cells"], GRID["r_max"])
    mean_r = {b: float(np.sum(r * s.density[-1]) * (GRID["r_max"] / GRID["n_cells"])) for b, s in pde.items()}
    assert abs(mean_r[beta] - mean_r[2 * beta]) > 0.05  # the two temperatures are distinguishable
    m, se = _noisy_sgd_mean_radius("pde", beta)
    # tolerance: 4 standard errors of the neuron average (neurons are weakly dependent through yhat)
    # plus O(1/N + eps) bias, well below the 0.05 separation between the two temperatures
    assert abs(m - mean_r[beta]) < 4 * se + 0.015
    m2, se2 = _noisy_sgd_mean_radius("as_printed", beta)
    assert abs(m2 - mean_r[2 * beta]) < 4 * se2 + 0.015


@pytest.mark.slow  # 17-50 s: Langevin particles vs the PDE
def test_langevin_particles_match_noisy_radial_pde():
    """McKean-Vlasov Langevin particles (d theta = -2 xi grad Psi_lambda dt + 2 sqrt(xi/beta) dB)
    have the ||w|| law of the noisy radial PDE."""
    beta, T, M = 5.0, 2.0, 400
    pde = mfnn.solve(problem(), NoisyRadialPDE(beta=beta, lam=LAM, **GRID), [T])
    h = GRID["r_max"] / GRID["n_cells"]
    mean_pde = float(np.sum(cell_centres(GRID["n_cells"], GRID["r_max"]) * pde.density[-1]) * h)
    sol = mfnn.solve(problem(), mfnn.ParticleDD(n_particles=M, beta=beta, lam=LAM, dt=2e-3), [T], key=0)
    r = sol.w_norm[-1]
    se = r.std() / np.sqrt(M)
    # 4 standard errors plus O(dt) Euler-Maruyama and O(1/M) self-interaction bias (<~0.01 here)
    assert abs(r.mean() - mean_pde) < 4 * se + 0.01, (r.mean(), mean_pde, se)
    assert abs(sol.risk[-1] - pde.risk[-1]) < 0.05
