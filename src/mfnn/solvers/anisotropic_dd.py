"""Reduced distributional dynamics in (a, b, r1, r2) (``COORDS``) for the anisotropic Gaussian task.

PNAS 2018 Fig. 3 (variable selection).  Data: y = +-1, x | y ~ N(0, diag(tau_y^2 I_s0,
I_{d-s0})), tau_+- = 1 +- Delta; unit a sigma(<w, x> + b).  If rho_0 is invariant under
O(s0) x O(d-s0) acting on w = (w1, w2), so is rho_t (the DD, eq. 7, commutes with the group), and
the DD  d_t rho = 2 xi(t) div(rho grad Psi)  reduces to the law of theta = (a, b, r1, r2),
r1 = ||w1||, r2 = ||w2||, whose particles follow

    d(a, b, r1, r2)/dt = -2 xi(t) grad psi(a, b, r1, r2; rhobar_t),
    psi(theta; rhobar) = v(theta) + int u(theta, theta') rhobar(dtheta')

(d r1/dt = (w1/r1) . dw1/dt and grad_{w1} Psi = d_{r1} psi w1/r1).  psi is even in r1 and r2, so
r = 0 reflects.  With S_tau^2 = tau^2 r1^2 + r2^2 and chat_k(S, b) = E[sigma(SG+b) h_k(G)]
(``Activation.hermite_coeffs``; for ReLU chat_0 = g(b, S) = b Phi(b/S) + S phi(b/S)):

    v(theta) = -(a/2) [ chat_0(S_+, b) - chat_0(S_-, b) ]

d = infinity (the reduced PDE of PNAS 2018 Fig. 3):   u(theta, theta') = (a a'/2) sum_tau chat_0(S_tau, b) chat_0(S'_tau, b').

Finite d (exact angular average, derived here): for independent uniform directions in each block the
class-conditional correlation of two neurons is c_tau = p p' c1 + q q' c2 with p = tau r1 / S_tau,
q = r2 / S_tau and c1, c2 independent cosines on S^{s0-1}, S^{d-s0-1}.  Mehler's formula and the
binomial expansion of c^k give

    u(theta, theta') = (a a'/2) sum_tau sum_k sum_j binom(k, j) E[c1^j] E[c2^(k-j)]
                        [chat_k(S_tau, b) p^j q^(k-j)] [chat_k(S'_tau, b') p'^j q'^(k-j)]

(odd j or odd k - j vanish; E[c^j] from ``sphere_cosine_moments``).  Truncation at k < K costs
about chat_k^2 (k-1)!! d^(-k/2): below 1e-10 at d = 320 for the default K = 12.

Either way u is a finite sum of products phi_f(theta) phi_f(theta') with weights w_f ("features"),
so the interaction depends on rhobar only through the feature means Phi_f = int phi_f drhobar and
each right-hand side costs O(M F) for M particles and F features (F = 1 per class at d = inf).
Population risk of the particle measure: R = 1 + 2 int v + (1/2) sum_tau sum_f w_f Phi_{tau,f}^2.
The particle system is the exact gradient flow of R(rhobar^M) (grad_{theta_i} R = (2/M) grad
psi(theta_i)), so dR/dt = -4 xi int |grad psi|^2 drhobar (the energy identity of the DD): the
saved ``dissipation`` is int |grad psi|^2, and R decreases for any xi > 0 (tested).

Scheme: M Monte Carlo particles theta_j(0) ~ rho_0 (a, b from the init law, (r1, r2) the block
norms of w ~ N(0, kappa^2/d I_d): (kappa/sqrt(d)) chi_{s0} and (kappa/sqrt(d)) chi_{d-s0}),
integrated by the compiled Dormand-Prince 5(4) of ``numerics/ode.py`` (or fixed-step RK4);
grad psi comes from the analytic chain rule through ``Activation.coeffs_with_grad`` (checked
against autodiff in the tests).  The features, psi, grad psi and R are those of the one
reduced feature model, ``mfnn.problem.reduced.AnisotropicModel`` (re-exported here).
``AnisotropicDD`` is the method of ``mfnn.solve``; the model is rebuilt from the (traced) problem
inside the compiled program, so solves differing only in numbers compile once.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.schedules import Schedule, as_schedule
from ..problem.problem import Problem
from ..problem.reduced import ANISOTROPIC_COORDS, AnisotropicModel, interaction_dimension
from ._driver import Method
from .fields import choice, finish_observe, static_int, static_positive

COORDS = ANISOTROPIC_COORDS

__all__ = ["AnisotropicDD", "AnisotropicModel", "COORDS", "initial_particles", "particles_from_params"]


def initial_particles(problem: Problem, n_particles: int, key) -> dict:
    """M i.i.d. draws of (a, b, r1, r2) from ``problem.init``: w is drawn in R^d and split."""
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    task = problem.task
    th = problem.init.sample(key, n_particles, problem.unit.param_shapes(task.d), jnp.float64)
    w = th["w"]
    return {"a": th["a"], "b": th["b"], "r1": jnp.linalg.norm(w[:, : task.s0], axis=-1),
            "r2": jnp.linalg.norm(w[:, task.s0:], axis=-1)}


def particles_from_params(theta: dict, s0: int) -> dict:
    """(a, b, r1, r2) of given network parameters (e.g. an SGD initialization)."""
    w = jnp.asarray(theta["w"])
    return {"a": jnp.asarray(theta["a"]), "b": jnp.asarray(theta["b"]),
            "r1": jnp.linalg.norm(w[:, :s0], axis=-1), "r2": jnp.linalg.norm(w[:, s0:], axis=-1)}


def _reflect(y):
    return dict(y, r1=jnp.abs(y["r1"]), r2=jnp.abs(y["r2"]))


class AnisotropicDD(Method):
    """The reduced anisotropic DD as a method of ``mfnn.solve`` (module docstring).

    Static: ``n_particles``, ``d_interaction`` ("inf": the paper's reduced PDE; "finite": exact
    angular average at the task's d), ``n_hermite``, ``solver`` ("dopri5" with ``rtol``/``atol`` or
    "rk4" with steps <= ``dt``) and the tolerances.  Traced: the problem's numbers and the schedule
    ``xi``.  ``theta0``: initial particles {a, b, r1, r2} (default: draws from the init law with the
    ``solve`` key).  Observables: ``risk``, ``dissipation`` (int |grad psi|^2; dR/dt = -4 xi x it),
    the particle coordinates ``a``, ``b``, ``r1``, ``r2`` (particle) and ``n_steps``.
    """

    n_particles: int = static_int("n_particles", 4000, minimum=1)
    d_interaction: str = eqx.field(static=True, default="inf",
                                   converter=lambda v: "inf" if math.isinf(interaction_dimension(1, v)) else "finite")
    n_hermite: int = static_int("n_hermite", 12, minimum=1, maximum=4096)
    xi: Schedule = eqx.field(default=1.0, converter=as_schedule)
    solver: str = eqx.field(static=True, default="dopri5", converter=choice("method", ("dopri5", "rk4")))
    rtol: float = static_positive("rtol", 1e-6)
    atol: float = static_positive("atol", 1e-8)
    dt: float = static_positive("dt", 0.01)
    theta0: dict | None = None

    label = "anisotropic DD"
    default_observables = ("risk", "dissipation") + COORDS + ("n_steps",)

    def dims(self, name):
        return ("particle",) if name in COORDS else ()

    def model(self, problem, validate=False) -> AnisotropicModel:
        return AnisotropicModel.from_problem(problem, self.d_interaction, self.n_hermite, validate=validate)

    def init(self, problem, times, key):
        self.model(problem, validate=True)
        th = initial_particles(problem, self.n_particles, key) if self.theta0 is None else self.theta0
        y0 = {k: jnp.asarray(th[k], dtype=jnp.float64) for k in COORDS}
        check(len({v.shape for v in y0.values()}) == 1 and y0["a"].ndim == 1, "theta0",
              "needs a, b, r1, r2 arrays of one common shape (M,)")
        inputs = segment_inputs(times, self.dt if self.solver == "rk4" else None)
        inputs["work"] = inputs["t1"] - inputs["t0"]
        return {"p": _reflect(y0), "h": jnp.asarray(0.0), "n_steps": jnp.asarray(0)}, inputs

    def segment(self, problem, state, seg):
        model = self.model(problem)

        def rhs(t, y):
            g, _ = model.grad_psi(y)
            c = -2.0 * self.xi(t)
            return {k: c * g[k] for k in COORDS}

        step = make_segment_fn(rhs, lambda t, y: {}, method=self.solver, rtol=self.rtol, atol=self.atol,
                               post=_reflect)
        (p, h), saved = step((state["p"], state["h"]), seg)
        return {"p": p, "h": h, "n_steps": saved["n_steps"]}

    def observe(self, problem, state, names, fn):
        model, y = self.model(problem), state["p"]
        out = {k: y[k] for k in COORDS if k in names}
        if "risk" in names or "dissipation" in names:
            g, S = model.grad_psi(y)
            if "risk" in names:
                out["risk"] = model.risk_from_moments(S)
            if "dissipation" in names:
                out["dissipation"] = jnp.mean(sum(g[k] ** 2 for k in COORDS))
        return finish_observe(out, problem, state, names, fn)
