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
only through the K moments S_{tau,k} = int chat_k(tau r) rhobar(dr).

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
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, DivergenceError, check, check_times
from ..numerics.hermite import sphere_cosine_moments
from ..numerics.schedules import as_schedule
from ..problem.problem import Problem
from ..problem.tasks import IsotropicGaussians
from ..problem.units import ProjectionUnit
from ..numerics.ode import make_segment_fn, segment_inputs
from ._segments import run_segments, stack


@dataclass(frozen=True)
class RadialModel:
    """psi, psi' and R for radial measures given by particles (equal weights)."""

    activation: object
    taus: tuple
    a: float
    b: float
    cos_moments: tuple  # E[c^k], k < K

    @classmethod
    def from_problem(cls, problem: Problem, d_interaction="finite", n_hermite: int = 24):
        unit, task = problem.unit, problem.task
        if not isinstance(task, IsotropicGaussians):
            raise ConfigError("task", "the radial DD needs the isotropic Gaussian task")
        if not isinstance(unit, ProjectionUnit) or tuple(unit.trained) != ("w",):
            raise ConfigError("unit", "the radial DD needs sigma(<w,x>+b) with only w trained")
        if problem.init.a_std or problem.init.b_std or problem.init.symmetric_a:
            raise ConfigError("init", "the radial DD needs deterministic a and b at initialization")
        if d_interaction in ("finite", None):
            d_eff = float(task.d)
        elif d_interaction in ("inf", math.inf, "infinity"):
            d_eff = math.inf
        else:
            raise ConfigError("d_interaction", f"use 'finite' or 'inf', got {d_interaction!r}")
        check(n_hermite >= 1, "n_hermite", f"must be >= 1, got {n_hermite}")
        mom = sphere_cosine_moments(d_eff, n_hermite if math.isfinite(d_eff) else 1)
        return cls(unit.activation, task.taus, float(problem.init.a_mean * problem.alpha),
                   float(problem.init.b_mean), tuple(float(m) for m in mom))

    @property
    def n_terms(self):
        return len(self.cos_moments)

    def _coeffs(self, r, grad=False):
        """[(a chat_k(tau r, b), a tau d chat_k/ds) for tau in taus], each (K, M)."""
        out = []
        for tau in self.taus:
            if grad:
                c, ds, _ = self.activation.coeffs_with_grad(tau * r, self.b, self.n_terms)
                out.append((self.a * c, self.a * tau * ds))
            else:
                out.append((self.a * self.activation.hermite_coeffs(tau * r, self.b, self.n_terms), None))
        return out

    def moments(self, r):
        """S_{tau,k} = int a chat_k(tau r) rhobar(dr), shape (2, K)."""
        return jnp.stack([jnp.mean(c, axis=-1) for c, _ in self._coeffs(r)])

    def psi(self, r, S):
        """psi(r; rhobar) = v(r) + int u(r, r') rhobar(dr'), given the moments S of rhobar."""
        (cp, _), (cm, _) = self._coeffs(r)
        w = jnp.asarray(self.cos_moments)
        return (-0.5 * (cp[0] - cm[0]) + 0.5 * jnp.einsum("k,k...->...", w * S[0], cp)
                + 0.5 * jnp.einsum("k,k...->...", w * S[1], cm))

    def dpsi(self, r, S):
        """psi'(r; rhobar) from the analytic d chat_k / ds."""
        (_, dp), (_, dm) = self._coeffs(r, grad=True)
        w = jnp.asarray(self.cos_moments)
        return (-0.5 * (dp[0] - dm[0]) + 0.5 * jnp.einsum("k,k...->...", w * S[0], dp)
                + 0.5 * jnp.einsum("k,k...->...", w * S[1], dm))

    def risk(self, r):
        """R(rhobar) = 1 + 2 int v + int int u  for the empirical measure of the particles r."""
        S = self.moments(r)
        w = jnp.asarray(self.cos_moments)
        v = -0.5 * (S[0, 0] - S[1, 0])
        return 1.0 + 2.0 * v + 0.5 * jnp.sum(w * S * S)

    def velocity(self, r):
        """-psi'(r; rhobar^M) (without the 2 xi factor); one coefficient evaluation per tau."""
        (cp, dp), (cm, dm) = self._coeffs(r, grad=True)
        S = jnp.stack([jnp.mean(cp, axis=-1), jnp.mean(cm, axis=-1)])
        w = jnp.asarray(self.cos_moments)
        return -(-0.5 * (dp[0] - dm[0]) + 0.5 * jnp.einsum("k,k...->...", w * S[0], dp)
                 + 0.5 * jnp.einsum("k,k...->...", w * S[1], dm))


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


@functools.lru_cache(maxsize=16)
def _compiled_block(model: RadialModel, schedule, method, rtol, atol):
    """Compiled scan over save intervals, cached so repeated solves (seeds, sweeps) compile once."""

    def rhs(t, r):
        return 2.0 * schedule(t) * model.velocity(r)

    def observe(t, r):
        return {"r": r, "risk": model.risk(r), "diss": jnp.mean(model.dpsi(r, model.moments(r)) ** 2)}

    segment = make_segment_fn(rhs, observe, method=method, rtol=rtol, atol=atol, post=jnp.abs)
    return jax.jit(lambda state, inputs: jax.lax.scan(segment, state, inputs))


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
    check(dt > 0, "dt", f"must be > 0, got {dt}")
    check(rtol > 0 and atol > 0, "rtol", "tolerances must be > 0")
    times = check_times(times)
    model = RadialModel.from_problem(problem, d_interaction, n_hermite)
    schedule = as_schedule(xi)
    if r0 is None:
        r0 = problem.init.radius_quantiles(problem.d, n_particles)
    r0 = jnp.asarray(np.sort(np.abs(np.asarray(r0, dtype=float))))

    step_block = _compiled_block(model, schedule, method, rtol, atol)
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
