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
Gibbs solver and the radial certificates evaluate too.  ``RadialDD`` is the method of
``mfnn.solve``.

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

import math
import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.schedules import Schedule, as_schedule
from ..problem.reduced import RadialModel, interaction_dimension
from ._driver import Method
from .fields import choice, finish_observe, static_int, static_positive

__all__ = ["RadialDD", "RadialModel"]


class RadialDD(Method):
    """The radial DD as a method of ``mfnn.solve``: quantile particles of rhobar_t (module docstring).

    Numbers that are physics (the problem's Delta, a, b; the schedule ``xi``) are traced leaves, so a
    sweep over them compiles once.  Static: ``n_particles``, ``solver`` ("dopri5" adaptive with
    ``rtol``/``atol``, or "rk4" with steps <= ``dt``), the tolerances (the stepper checks them on
    the host), ``d_interaction`` ("finite": exact angular average at the task's d; "inf") and
    ``n_hermite``.  ``r0``: initial radii (default: the midpoint quantiles of ||w|| under the init).
    Observables: ``risk`` R(rhobar_t), ``radii`` (particle), ``dissipation`` int psi'^2 drhobar
    (dR/dt = -4 xi x dissipation), ``n_steps`` (accepted steps per save interval).
    """

    n_particles: int = static_int("n_particles", 4000, minimum=2)
    solver: str = eqx.field(static=True, default="dopri5", converter=choice("method", ("dopri5", "rk4")))
    rtol: float = static_positive("rtol", 1e-7)
    atol: float = static_positive("atol", 1e-9)
    dt: float = static_positive("dt", 0.01)
    d_interaction: str = eqx.field(static=True, default="finite",
                                   converter=lambda v: "inf" if math.isinf(interaction_dimension(1, v)) else "finite")
    n_hermite: int = static_int("n_hermite", 24, minimum=1, maximum=4096)
    xi: Schedule = eqx.field(default=1.0, converter=as_schedule)
    r0: np.ndarray | None = None

    label = "radial DD"
    default_observables = ("risk", "radii", "dissipation", "n_steps")

    def dims(self, name):
        return ("particle",) if name == "radii" else ()

    def model(self, problem, validate=False) -> RadialModel:
        return RadialModel.from_problem(problem, self.d_interaction, self.n_hermite, validate=validate)

    def init(self, problem, times, key):
        self.model(problem, validate=True)
        if self.r0 is None:
            r0 = problem.init.radius_quantiles(problem.d, self.n_particles)
        else:
            r0 = np.asarray(self.r0, dtype=float)
            check(r0.ndim == 1 and r0.size >= 2, "r0", "needs a 1-d array of at least 2 radii")
        r0 = np.sort(np.abs(r0))
        inputs = segment_inputs(times, self.dt if self.solver == "rk4" else None)
        inputs["work"] = inputs["t1"] - inputs["t0"]
        return {"r": jnp.asarray(r0), "h": jnp.asarray(0.0), "n_steps": jnp.asarray(0)}, inputs

    def segment(self, problem, state, seg):
        model = self.model(problem)
        rhs = lambda t, r: 2.0 * self.xi(t) * model.velocity(r)  # noqa: E731
        step = make_segment_fn(rhs, lambda t, r: {}, method=self.solver, rtol=self.rtol, atol=self.atol,
                               post=jnp.abs)
        (r, h), saved = step((state["r"], state["h"]), seg)
        return {"r": r, "h": h, "n_steps": saved["n_steps"]}

    def observe(self, problem, state, names, fn):
        model, r = self.model(problem), state["r"]
        out = {}
        if "risk" in names:
            out["risk"] = model.risk(r)
        if "radii" in names:
            out["radii"] = r
        if "dissipation" in names:
            out["dissipation"] = jnp.mean(model.grad_psi(r)[0] ** 2)
        return finish_observe(out, problem, state, names, fn)
