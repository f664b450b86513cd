"""Noisy radial DD, free energy and the self-consistent Gibbs measure (isotropic task).

Noisy DD (PNAS 2018; COLT 2019 "diffusion-DD"), reduced to the law rhobar of r = ||w||:

    d_t rhobar = 2 xi d_r[ rhobar d_r psi_lambda ] + (2 xi / beta) d_r[ r^{d-1} d_r( rhobar / r^{d-1} ) ]
               = (2 xi / beta) d_r[ g d_r( rhobar / g ) ],     g = r^{d-1} exp(-beta psi_lambda),
    psi_lambda(r; rhobar) = psi(r; rhobar) + lambda r^2 / 2

(the noisy DD restricted to radial laws, using r^{1-d} d_r(r^{d-1} d_r) for the Laplacian of a radial density).  With Phi = psi_lambda - (d-1) log(r) / beta
the flux is J = -(2 xi / beta)(d_r rhobar + beta rhobar d_r Phi).

Scheme: finite volumes on cells of width h = r_max / n (centres r_i = (i + 1/2) h), zero flux at
r = 0 and r = r_max, Scharfetter-Gummel fluxes

    J_{i+1/2} = (D / h) [ B(z) rho_i - B(-z) rho_{i+1} ],   z = beta (Phi_{i+1} - Phi_i),  B(z) = z / (e^z - 1),

D = 2 xi / beta, and forward Euler with the step limited so that every cell keeps a non-negative
mass (dt * outflow rate <= cfl < 1).  Properties (tested): mass is conserved to round-off (flux
form); densities stay >= 0; J_{i+1/2} = (D/h) B(z) rho_i (1 - exp(beta (mu_{i+1} - mu_i))) with
mu = delta F / delta rho, so the semi-discrete free energy is non-increasing; the zero-flux
states are exactly rho_i ~ exp(-beta Phi_i), the discrete self-consistent Gibbs measure.

Free energy (COLT 2019 App. F.3, PNAS 2018):
    F(rho) = (1/2) R(rho) + (lambda/2) int ||theta||^2 drho - beta^{-1} Ent(rho),
and for a radial law Ent(rho) = -int rhobar log(rhobar / r^{d-1}) dr + const (the constant,
log |S^{d-1}|, is dropped).  Gibbs fixed point: rhobar_* ~ r^{d-1} exp(-beta psi_lambda(r; rhobar_*)),
found by damped fixed-point iteration in log space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DivergenceError, check, check_times
from ..numerics.schedules import as_schedule
from ..problem.problem import Problem
from ..problem.reduced import RadialModel
from ._segments import run_segments, stack

__all__ = ["RadialGrid", "NoisyRadialSolution", "GibbsSolution", "solve_noisy_radial", "solve_gibbs"]


def _bernoulli(z):
    """B(z) = z / (e^z - 1), with B(0) = 1, stable for all z."""
    small = jnp.abs(z) < 1e-6
    zs = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 - z / 2, zs / jnp.expm1(zs))


class RadialGrid(eqx.Module):
    """The radial feature model on a cell-centred grid: everything the PDE, F and Gibbs need.

    psi and R come from ``RadialModel`` (``mfnn.problem.reduced``) with the features evaluated at
    the cell centres once (``coeffs``) and the cell masses rho_i h as the measure's weights.
    """

    model: RadialModel
    r: np.ndarray  # cell centres
    h: np.ndarray  # cell width
    d: np.ndarray  # dimension in the Jacobian r^{d-1}
    lam: np.ndarray
    beta: np.ndarray

    @classmethod
    def build(cls, problem: Problem, *, r_max: float, n_cells: int, lam: float, beta: float,
              d_interaction="finite", n_hermite: int = 24):
        check(r_max > 0, "r_max", f"must be > 0, got {r_max}")
        check(n_cells >= 4, "n_cells", f"must be >= 4, got {n_cells}")
        check(beta > 0 and math.isfinite(beta), "beta", f"must be finite and > 0, got {beta}")
        check(lam >= 0, "lam", f"must be >= 0, got {lam}")
        model = RadialModel.from_problem(problem, d_interaction, n_hermite)
        h = r_max / n_cells
        r = (np.arange(n_cells) + 0.5) * h
        f64 = lambda x: np.asarray(x, dtype=np.float64)
        return cls(model, r, f64(h), f64(problem.d), f64(lam), f64(beta))

    @property
    def coeffs(self):
        """(2, K, n): the features a chat_k(tau r_i, b) at the cell centres."""
        return self.model.features(jnp.asarray(self.r))

    def moments(self, rho, A=None):
        """Feature moments S = sum_i phi(r_i) rho_i h of the density rho (per unit r)."""
        A = self.coeffs if A is None else A
        return self.model.moments_from_features(A, rho * self.h)

    def psi_lambda_from_moments(self, S, A=None):
        """psi_lambda(r_i) = psi(r_i; S) + lambda r_i^2 / 2 for a measure with moments S."""
        A = self.coeffs if A is None else A
        return self.model.psi_from_features(A, S) + 0.5 * self.lam * jnp.asarray(self.r) ** 2

    def psi_lambda(self, rho, A=None):
        """psi_lambda(r_i; rhobar) on the grid for a density rho (per unit r)."""
        A = self.coeffs if A is None else A
        return self.psi_lambda_from_moments(self.moments(rho, A), A)

    def risk(self, rho, A=None):
        return self.model.risk_from_moments(self.moments(rho, A))

    def free_energy(self, rho, A=None):
        """F = R/2 + (lambda/2) int r^2 rho + beta^{-1} int rho log(rho / r^{d-1})."""
        r = jnp.asarray(self.r)
        m = rho * self.h
        ent = jnp.sum(jnp.where(rho > 0, m * (jnp.log(jnp.where(rho > 0, rho, 1.0)) - (self.d - 1) * jnp.log(r)), 0.0))
        return 0.5 * self.risk(rho, A) + 0.5 * self.lam * jnp.sum(r * r * m) + ent / self.beta

    def log_gibbs_from_moments(self, S, A=None):
        """log of the normalized r^{d-1} exp(-beta psi_lambda(r; S)) on the grid (density per unit r)."""
        lg = (self.d - 1) * jnp.log(jnp.asarray(self.r)) - self.beta * self.psi_lambda_from_moments(S, A)
        return lg - jax.scipy.special.logsumexp(lg) - jnp.log(self.h)

    def log_gibbs(self, rho, A=None):
        """log of the normalized r^{d-1} exp(-beta psi_lambda(r; rho)) on the grid."""
        return self.log_gibbs_from_moments(self.moments(rho, A), A)

    def initial_density(self, problem: Problem):
        """Density of ||w|| for w ~ N(0, kappa^2/d I_d) (a scaled chi_d), normalized on the grid."""
        from scipy import stats

        d, kappa = problem.d, problem.init.kappa
        scale = kappa / math.sqrt(d)
        rho = stats.chi.pdf(self.r / scale, d) / scale
        return rho / (rho.sum() * self.h)


@dataclass
class NoisyRadialSolution:
    times: np.ndarray
    r: np.ndarray
    density: np.ndarray  # (n_times, n_cells)
    risk: np.ndarray
    free_energy: np.ndarray
    mass: np.ndarray
    n_steps: np.ndarray
    diverged: bool = False


def solve_noisy_radial(
    problem: Problem,
    times,
    *,
    beta: float,
    lam: float = 0.0,
    r_max: float = 8.0,
    n_cells: int = 400,
    xi=1.0,
    cfl: float = 0.4,
    dt_max: float = 1e-2,
    rho0=None,
    d_interaction="finite",
    n_hermite: int = 24,
    progress: bool = False,
) -> NoisyRadialSolution:
    """Integrate the noisy radial DD (Scharfetter-Gummel finite volumes, forward Euler).

    Every step uses dt = min(dt_max, cfl / max_i outflow_rate_i), so masses stay non-negative.
    """
    check(0 < cfl < 1, "cfl", f"must be in (0, 1), got {cfl}")
    check(dt_max > 0, "dt_max", f"must be > 0, got {dt_max}")
    times = check_times(times)
    grid = RadialGrid.build(problem, r_max=r_max, n_cells=n_cells, lam=lam, beta=beta,
                            d_interaction=d_interaction, n_hermite=n_hermite)
    A = grid.coeffs
    schedule = as_schedule(xi)
    h, logr = grid.h, jnp.log(jnp.asarray(grid.r))
    rho0 = grid.initial_density(problem) if rho0 is None else np.asarray(rho0, dtype=float)
    check(rho0.shape == (n_cells,) and bool(np.all(rho0 >= 0)), "rho0", f"must be {n_cells} non-negative values")

    def rates(rho, t):
        D = 2.0 * schedule(t) / beta
        phi = grid.psi_lambda(rho, A) - (grid.d - 1) / beta * logr
        z = beta * jnp.diff(phi)
        return D / h * _bernoulli(z), D / h * _bernoulli(-z)  # coefficients of rho_i and rho_{i+1}

    def step(state, t_end):
        t, rho, n = state
        bp, bm = rates(rho, t)
        outflow = (jnp.concatenate([bp, jnp.zeros(1)]) + jnp.concatenate([jnp.zeros(1), bm])) / h
        dt = jnp.minimum(jnp.minimum(dt_max, cfl / jnp.max(outflow)), t_end - t)
        J = bp * rho[:-1] - bm * rho[1:]  # flux through interior faces, zero at the walls
        div = (jnp.concatenate([J, jnp.zeros(1)]) - jnp.concatenate([jnp.zeros(1), J])) / h
        return t + dt, jnp.maximum(rho - dt * div, 0.0), n + 1

    def segment(state, inp):
        t, rho, _ = state
        t, rho, n = jax.lax.while_loop(lambda s: s[0] < inp["t1"], lambda s: step(s, inp["t1"]), (inp["t0"], rho, 0))
        saved = {"rho": rho, "risk": grid.risk(rho, A), "F": grid.free_energy(rho, A), "mass": jnp.sum(rho) * h,
                 "n_steps": n}
        return (t, rho, 0), saved

    step_block = jax.jit(lambda s, inp: jax.lax.scan(segment, s, inp))
    t0 = np.concatenate([[0.0], times[:-1]])
    inputs = {"t0": t0, "t1": times, "n": np.zeros(len(times), dtype=np.int64)}
    saved, diverged, _ = run_segments(
        step_block, (jnp.asarray(0.0), jnp.asarray(rho0), 0), inputs, n_segments=len(times),
        finite=lambda s: np.isfinite(s["F"]) & np.all(np.isfinite(s["rho"]), axis=-1),
        desc="noisy radial DD", progress=progress, work=times - t0, unit="t",
    )
    if not saved:
        raise DivergenceError("noisy radial DD diverged before the first save time")
    out = stack(saved)
    k = len(saved)
    return NoisyRadialSolution(times[:k], grid.r, out["rho"], out["risk"], out["F"], out["mass"], out["n_steps"],
                               diverged)


@dataclass
class GibbsSolution:
    r: np.ndarray
    density: np.ndarray
    risk: float
    free_energy: float
    residual: float  # sup-norm of rho - Gibbs(rho), relative to max rho
    iterations: int
    converged: bool


def solve_gibbs(
    problem: Problem,
    *,
    beta: float,
    lam: float = 0.0,
    r_max: float = 8.0,
    n_cells: int = 400,
    damping: float = 1.0,
    tol: float = 1e-11,
    max_iter: int = 2000,
    rho0=None,
    d_interaction="finite",
    n_hermite: int = 24,
) -> GibbsSolution:
    """Self-consistent Gibbs measure rhobar_* ~ r^{d-1} exp(-beta psi_lambda(r; rhobar_*)).

    Minimizes the (strictly convex) free energy by entropic mirror descent, i.e. damped fixed-point
    iteration in log space, log rho <- (1 - eta) log rho + eta log Gibbs(rho), with eta <= ``damping``
    backtracked so that F decreases.  Same grid as ``solve_noisy_radial``, whose stationary states
    are exactly these fixed points; after ``max_iter`` mirror steps, Newton-type polishing on the
    2K moments that rho_* depends on.  ``residual``: max |Gibbs(rho) - rho| / max rho.
    """
    check(0 < damping <= 1, "damping", f"must be in (0, 1], got {damping}")
    grid = RadialGrid.build(problem, r_max=r_max, n_cells=n_cells, lam=lam, beta=beta,
                            d_interaction=d_interaction, n_hermite=n_hermite)
    A = grid.coeffs
    rho = jnp.asarray(grid.initial_density(problem) if rho0 is None else rho0)

    # F is strictly convex (R convex, -Ent strictly convex), so rho_* is its unique minimizer.
    # Entropic mirror descent: log rho <- (1 - eta) log rho + eta log Gibbs(rho) (normalized) is a
    # mirror step of size eta / beta on F; eta backtracks until F decreases, then grows again.
    h = grid.h

    def normalize_log(lr):
        return lr - jax.scipy.special.logsumexp(lr) - math.log(h)

    def body(state):
        lr, F, eta, it, _ = state
        rho = jnp.exp(lr)
        lg = grid.log_gibbs(rho, A)
        res = jnp.max(jnp.abs(jnp.exp(lg) - rho)) / jnp.max(rho)
        cand = normalize_log((1 - eta) * lr + eta * lg)
        F_c = grid.free_energy(jnp.exp(cand), A)
        ok = F_c <= F + 1e-14 * jnp.maximum(1.0, jnp.abs(F))  # round-off: F is flat near rho_*
        return (jnp.where(ok, cand, lr), jnp.where(ok, F_c, F),
                jnp.where(ok, jnp.minimum(eta * 1.5, damping), eta * 0.5), it + 1, res)

    def run(rho):
        lr = normalize_log(jnp.log(jnp.maximum(rho, 1e-300)))
        F0 = grid.free_energy(jnp.exp(lr), A)
        lr, _, _, it, res = jax.lax.while_loop(lambda s: (s[4] > tol) & (s[3] < max_iter), body,
                                               (lr, F0, jnp.asarray(damping), 0, jnp.inf))
        return jnp.exp(lr), res, it

    rho, res, it = jax.jit(run)(rho)
    it = int(it)
    if not res <= tol:
        # polish: rho_* depends on rho only through its moments S = A rho h (2 x K numbers), so
        # solve S = Phi(S) = A Gibbs(S) h with Powell's hybrid method and the exact Jacobian
        from scipy.optimize import root

        def gibbs_of(S):
            return jnp.exp(grid.log_gibbs_from_moments(S, A))

        shape = (2, A.shape[1])
        fun = jax.jit(lambda x: (A @ (gibbs_of(x.reshape(shape)) * h)).ravel() - x)
        jac = jax.jit(jax.jacfwd(fun))
        sol = root(lambda x: np.asarray(fun(x)), np.asarray(A @ (rho * h)).ravel(),
                   jac=lambda x: np.asarray(jac(x)), method="hybr", options={"xtol": 1e-14})
        it += int(sol.nfev)
        cand = gibbs_of(jnp.asarray(sol.x).reshape(shape))
        new = jnp.exp(grid.log_gibbs(cand, A))
        res_c = float(jnp.max(jnp.abs(new - cand)) / jnp.max(cand))
        if res_c < res:
            rho, res = cand, res_c
    rho = np.asarray(rho)
    return GibbsSolution(grid.r, rho, float(grid.risk(rho, A)), float(grid.free_energy(rho, A)), float(res),
                         int(it), bool(res <= tol))
