"""Radial reduction of the distributional dynamics for the isotropic Gaussian task.

For w ~ rotation-invariant rho_t and a unit sigma(<w, x>) (a, b fixed), the DD
(PNAS 2018 eq. 7)  d_t rho = 2 xi(t) div(rho grad Psi)  reduces to the law rhobar_t of r = ||w||:

    d_t rhobar = 2 xi(t) d_r[ rhobar d_r psi(r; rhobar) ],   psi(r) = v(r) + int u(r, r') rhobar(dr')
    v(r)      = -(a/2) [ m(tau_+ r) - m(tau_- r) ]
    u(r, r')  = (a^2/2) sum_tau sum_k E[c^k] chat_k(tau r) chat_k(tau r')

where chat_k are the Hermite coefficients of sigma (``Activation.hermite_coeffs``) and E[c^k] the
moments of the cosine between two independent uniform directions on S^{d-1}: this IS the exact
finite-d angular average (the cosine law (1-c^2)^{(d-3)/2} enters only through its moments);
d = inf keeps k = 0 only (u = (a^2/2) sum_tau m m').  The interaction therefore depends on rhobar
only through the K moments S_{tau,k} = int chat_k(tau r) rhobar(dr).  These formulas live in ONE
place, ``mfnn.problem.reduced.RadialModel`` (re-exported here), which the noisy radial grid, the
Gibbs solver and the radial certificates evaluate too.

Scheme: Lagrangian quantile particles.  r_j(0) are the midpoint quantiles of rhobar_0, and
dr_j/dt = -2 xi(t) psi'(r_j) is integrated with adaptive Dormand-Prince 5(4) (default; the user
sets rtol/atol) or fixed-step RK4.  A 1-D flow whose velocity is a
function of position preserves the order of particles, so r_j(t) stay the quantiles of rhobar_t:
mass is conserved exactly and the density is 1 / (d r / d u).  Errors: O(dt^4) in time and
O(1/M) in the number of particles M: the midpoint rule in the quantile variable would be
second order for a bounded law, but the quantile function of chi_d is singular at u -> 1
(unbounded support), which leaves a first-order tail error (measured order 1.0-1.1; both orders
are measured in tests/test_radial_dd.py).  psi is even in r (m is), so r = 0 is reflecting.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DivergenceError, check, check_times
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.schedules import as_schedule
from ..problem.problem import Problem
from ..problem.reduced import RadialModel
from ._segments import run_segments, stack

__all__ = ["RadialModel", "RadialDDSolution", "solve_radial_dd"]


@dataclass
class RadialDDSolution:
    """Quantile particles r (n_times, M) of rhobar_t, the risk R(rhobar_t) and the dissipation."""

    times: np.ndarray
    radii: np.ndarray
    risk: np.ndarray
    dissipation: np.ndarray  # int psi'(r)^2 rhobar(dr); dR/dt = -4 xi * dissipation
    n_steps: np.ndarray
    diverged: bool = False

    def density(self, edges):
        """Mass of rhobar_t per bin divided by bin width, shape (n_times, n_bins)."""
        edges = np.asarray(edges)
        out = np.stack([np.histogram(r, bins=edges)[0] for r in self.radii]).astype(float)
        return out / (self.radii.shape[1] * np.diff(edges))

    def mean_radius(self):
        return self.radii.mean(axis=1)


@eqx.filter_jit
def _run_block(model: RadialModel, schedule, method: str, rtol: float, atol: float, state, inputs):
    """``lax.scan`` over save intervals of the quantile-particle flow.

    ``model`` (and a pytree schedule) are arguments: their numbers are traced, so solves that differ
    only in numbers (Delta, a, b, xi) share one compilation; method and tolerances are static.
    """

    def rhs(t, r):
        return 2.0 * schedule(t) * model.velocity(r)

    def observe(t, r):
        return {"r": r, "risk": model.risk(r), "diss": jnp.mean(model.grad_psi(r)[0] ** 2)}

    segment = make_segment_fn(rhs, observe, method=method, rtol=rtol, atol=atol, post=jnp.abs)
    return jax.lax.scan(segment, state, inputs)


def solve_radial_dd(
    problem: Problem,
    times,
    *,
    n_particles: int = 4000,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    dt: float = 0.01,
    d_interaction="finite",
    n_hermite: int = 24,
    xi=1.0,
    r0=None,
    progress: bool = False,
) -> RadialDDSolution:
    """Solve the radial DD and save at ``times`` (t = 0 may be included).

    ``method``: "dopri5" (adaptive, ``rtol``/``atol``) or "rk4" (fixed steps <= ``dt``).
    ``d_interaction``: "finite" (exact angular average at the task's d) or "inf".
    ``r0``: initial radii (default: the M midpoint quantiles of ||w|| under ``problem.init``).
    """
    check(n_particles >= 2, "n_particles", f"must be >= 2, got {n_particles}")
    check(method in ("dopri5", "rk4"), "method", f"use 'dopri5' or 'rk4', got {method!r}")
    check(dt > 0, "dt", f"must be > 0, got {dt}")
    check(rtol > 0 and atol > 0, "rtol", "tolerances must be > 0")
    times = check_times(times)
    model = RadialModel.from_problem(problem, d_interaction, n_hermite)
    schedule = as_schedule(xi)
    if r0 is None:
        r0 = problem.init.radius_quantiles(problem.d, n_particles)
    r0 = jnp.asarray(np.sort(np.abs(np.asarray(r0, dtype=float))))

    step_block = functools.partial(_run_block, model, schedule, method, float(rtol), float(atol))
    inputs = segment_inputs(times, dt if method == "rk4" else None)
    saved, diverged, _ = run_segments(
        step_block, (r0, jnp.asarray(0.0)), inputs, n_segments=len(times),
        finite=lambda s: np.isfinite(s["risk"]) & np.all(np.isfinite(s["r"]), axis=-1),
        desc="radial DD", progress=progress, work=inputs["t1"] - inputs["t0"], unit="t",
    )
    if not saved:
        raise DivergenceError("radial DD diverged before the first save time")
    out = stack(saved)
    k = len(saved)
    return RadialDDSolution(times[:k], out["r"], out["risk"], out["diss"], out["n_steps"], diverged)
