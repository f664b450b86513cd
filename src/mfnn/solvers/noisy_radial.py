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

``NoisyRadialPDE`` (this module) is the time evolution and ``GibbsFixedPoint`` (``gibbs.py``) the
fixed-point iteration, both methods of ``mfnn.solve`` on the grid of ``radial_grid.py``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import is_tracer, real
from ..numerics.schedules import Schedule, as_schedule
from .fields import finish_observe
from .radial_grid import GridMethod, RadialGrid

__all__ = ["NoisyRadialPDE", "RadialGrid"]


def _bernoulli(z):
    """B(z) = z / (e^z - 1), with B(0) = 1, stable for all z."""
    small = jnp.abs(z) < 1e-6
    zs = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 - z / 2, zs / jnp.expm1(zs))


class NoisyRadialPDE(GridMethod):
    """The noisy radial DD as a method of ``mfnn.solve`` (Scharfetter-Gummel finite volumes,
    forward Euler with dt = min(dt_max, cfl / max outflow rate), module docstring).

    Traced: ``beta``, ``lam``, ``r_max``, ``cfl``, ``dt_max``, the schedule ``xi`` and the problem's
    numbers.  Static: ``n_cells``, ``d_interaction``, ``n_hermite``.  ``rho0``: initial density on
    the cells (default: the law of ||w|| under the init).  Observables: ``density`` (cell),
    ``risk``, ``free_energy``, ``mass`` and ``n_steps``.
    """

    xi: Schedule = eqx.field(default=1.0, converter=as_schedule)
    cfl: float = real("cfl", 0.4)
    dt_max: float = real("dt_max", 1e-2)

    label = "noisy radial DD"
    default_observables = ("density", "risk", "free_energy", "mass", "n_steps")

    def __check_init__(self):
        if is_tracer(self.cfl):
            return
        check(0 < self.cfl < 1, "cfl", f"must be in (0, 1), got {self.cfl}")
        check(self.dt_max > 0, "dt_max", f"must be > 0, got {self.dt_max}")

    def init(self, problem, times, key):
        _, rho0, inputs = self.initial(problem, times)
        return {"rho": jnp.asarray(rho0), "n_steps": jnp.asarray(0)}, inputs

    def segment(self, problem, state, seg):
        grid = self.grid(problem)
        A, h, beta = grid.coeffs, grid.h, self.beta
        logr = jnp.log(jnp.asarray(grid.r))

        def rates(rho, t):
            D = 2.0 * self.xi(t) / beta
            phi = grid.psi_lambda(rho, A) - (grid.d - 1) / beta * logr
            z = beta * jnp.diff(phi)
            return D / h * _bernoulli(z), D / h * _bernoulli(-z)  # coefficients of rho_i and rho_{i+1}

        def step(st):
            t, rho, n = st
            bp, bm = rates(rho, t)
            outflow = (jnp.concatenate([bp, jnp.zeros(1)]) + jnp.concatenate([jnp.zeros(1), bm])) / h
            dt = jnp.minimum(jnp.minimum(self.dt_max, self.cfl / jnp.max(outflow)), seg["t1"] - t)
            J = bp * rho[:-1] - bm * rho[1:]  # flux through interior faces, zero at the walls
            div = (jnp.concatenate([J, jnp.zeros(1)]) - jnp.concatenate([jnp.zeros(1), J])) / h
            return t + dt, jnp.maximum(rho - dt * div, 0.0), n + 1

        _, rho, n = jax.lax.while_loop(lambda st: st[0] < seg["t1"], step, (seg["t0"], state["rho"], 0))
        return {"rho": rho, "n_steps": n}

    def observe(self, problem, state, names, fn):
        grid, rho = self.grid(problem), state["rho"]
        A = grid.coeffs
        out = {}
        if "density" in names:
            out["density"] = rho
        if "risk" in names:
            out["risk"] = grid.risk(rho, A)
        if "free_energy" in names:
            out["free_energy"] = grid.free_energy(rho, A)
        if "mass" in names:
            out["mass"] = jnp.sum(rho) * grid.h
        return finish_observe(out, problem, state, names, fn)
