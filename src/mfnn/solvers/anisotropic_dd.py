"""Reduced distributional dynamics in (a, b, r1, r2) for the anisotropic Gaussian task.

Theory notes section 7.3 (PNAS 2018, Fig. 3).  Data: y = +-1, x | y ~ N(0, diag(tau_y^2 I_s0,
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

d = infinity (sec. 7.3):   u(theta, theta') = (a a'/2) sum_tau chat_0(S_tau, b) chat_0(S'_tau, b').

Finite d (exact angular average; [derived]): for independent uniform directions in each block the
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
psi(theta_i)), so dR/dt = -4 xi int |grad psi|^2 drhobar (the energy identity of sec. 2): the
saved ``dissipation`` is int |grad psi|^2, and R decreases for any xi > 0 (tested).

Scheme: M Monte Carlo particles theta_j(0) ~ rho_0 (a, b from the init law, (r1, r2) the block
norms of w ~ N(0, kappa^2/d I_d): (kappa/sqrt(d)) chi_{s0} and (kappa/sqrt(d)) chi_{d-s0}),
integrated by the compiled Dormand-Prince 5(4) of ``numerics/ode.py`` (or fixed-step RK4);
grad psi comes from the analytic chain rule through ``Activation.coeffs_with_grad`` (checked
against autodiff in the tests).  The compiled block is cached per (model, schedule, method,
tolerances), so repeated solves of one configuration compile once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import comb

from ..errors import ConfigError, DivergenceError, check, check_times
from ..numerics.hermite import sphere_cosine_moments
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.schedules import as_schedule
from ..problem.anisotropic import AnisotropicGaussians
from ..problem.problem import Problem
from ..problem.units import ProjectionUnit
from ._segments import run_segments, stack

COORDS = ("a", "b", "r1", "r2")


def _block_moments(dim: int, n_terms: int) -> np.ndarray:
    """E[c^k] for the cosine on S^{dim-1}; dim = 0 (empty block, r = 0) gives (1, 0, 0, ...)."""
    if dim == 0:
        out = np.zeros(n_terms)
        out[0] = 1.0
        return out
    return sphere_cosine_moments(dim, n_terms)


@dataclass(frozen=True)
class AnisotropicModel:
    """Features, psi, grad psi and R for particle measures in (a, b, r1, r2) (equal weights)."""

    activation: object
    taus: tuple
    ks: tuple  # Hermite order of each feature
    js: tuple  # power of p (block 1) of each feature; q gets k - j
    weights: tuple  # binom(k, j) E[c1^j] E[c2^(k-j)]
    trained: tuple  # which of a, b, (r1, r2) move

    @classmethod
    def from_problem(cls, problem: Problem, d_interaction="inf", n_hermite: int = 12):
        unit, task = problem.unit, problem.task
        if not isinstance(task, AnisotropicGaussians):
            raise ConfigError("task", "the anisotropic DD needs the AnisotropicGaussians task")
        if not isinstance(unit, ProjectionUnit):
            raise ConfigError("unit", "the anisotropic DD needs a ProjectionUnit a*sigma(<w,x>+b)")
        if problem.alpha != 1.0:
            raise ConfigError("alpha", "the anisotropic DD is the mean-field (alpha = 1) dynamics")
        if d_interaction in ("finite", None):
            finite = True
        elif d_interaction in ("inf", math.inf, "infinity"):
            finite = False
        else:
            raise ConfigError("d_interaction", f"use 'finite' or 'inf', got {d_interaction!r}")
        check(isinstance(n_hermite, int) and n_hermite >= 1, "n_hermite", f"must be an integer >= 1, got {n_hermite}")
        if finite:
            m1 = _block_moments(task.s0, n_hermite)
            m2 = _block_moments(task.d - task.s0, n_hermite)
            ks, js, ws = [], [], []
            for k in range(0, n_hermite, 2):
                for j in range(0, k + 1, 2):
                    ks.append(k)
                    js.append(j)
                    ws.append(float(comb(k, j, exact=True)) * m1[j] * m2[k - j])
        else:
            ks, js, ws = [0], [0], [1.0]
        tr = set(unit.trained)
        trained = tuple(name for name in COORDS if (name in tr) or (name in ("r1", "r2") and "w" in tr))
        return cls(unit.activation, task.taus, tuple(ks), tuple(js), tuple(ws), trained)

    @property
    def n_terms(self) -> int:
        return max(self.ks) + 1

    def _powers(self, x):
        """x^0 .. x^(K-1) by repeated products, shape (K, M)."""
        out = [jnp.ones_like(x)]
        for _ in range(self.n_terms - 1):
            out.append(out[-1] * x)
        return jnp.stack(out)

    def _class_parts(self, th, tau, grad: bool):
        """S_tau, p, q and chat_k(S_tau, b) (with d/dS, d/db when ``grad``) for one class."""
        r1, r2 = th["r1"], th["r2"]
        S = jnp.sqrt(tau * tau * r1 * r1 + r2 * r2 + 1e-300)
        p, q = tau * r1 / S, r2 / S
        if grad:
            c, cs, cb = self.activation.coeffs_with_grad(S, th["b"], self.n_terms)
        else:
            c, cs, cb = self.activation.hermite_coeffs(S, th["b"], self.n_terms), None, None
        return S, p, q, c, cs, cb

    def features(self, th):
        """phi_{tau,f}(theta) = a chat_k(S_tau, b) p^j q^(k-j), shape (2, F, M)."""
        ks, js = np.asarray(self.ks), np.asarray(self.js)
        out = []
        for tau in self.taus:
            _, p, q, c, _, _ = self._class_parts(th, tau, grad=False)
            f = th["a"][None] * c[ks]
            if self.n_terms > 1:
                f = f * self._powers(p)[js] * self._powers(q)[ks - js]
            out.append(f)
        return jnp.stack(out)

    def features_and_grads(self, th):
        """Features (2, F, M) and their partial derivatives in a, b, r1, r2 (analytic chain rule).

        S_r1 = tau p, S_r2 = q, p_r1 = tau q^2/S, p_r2 = -p q/S, q_r1 = -tau p q/S, q_r2 = p^2/S
        (p = tau r1/S, q = r2/S, p^2 + q^2 = 1).
        """
        ks, js = np.asarray(self.ks), np.asarray(self.js)
        ls = ks - js
        a = th["a"][None]
        F, dA, dB, dR1, dR2 = [], [], [], [], []
        for tau in self.taus:
            S, p, q, c, cs, cb = self._class_parts(th, tau, grad=True)
            C, Cs, Cb = c[ks], cs[ks], cb[ks]
            if self.n_terms > 1:
                pp, qp = self._powers(p), self._powers(q)
                P, Q = pp[js], qp[ls]
                # j p^(j-1) (0 for j = 0): index j-1 clipped at 0 and multiplied by j
                dP = jnp.asarray(js, dtype=float)[:, None] * pp[np.maximum(js - 1, 0)]
                dQ = jnp.asarray(ls, dtype=float)[:, None] * qp[np.maximum(ls - 1, 0)]
                PQ = P * Q
                dr1 = Cs * (tau * p) * PQ + C * (dP * Q * (tau * q * q / S) - P * dQ * (tau * p * q / S))
                dr2 = Cs * q * PQ + C * (-dP * Q * (p * q / S) + P * dQ * (p * p / S))
            else:
                PQ = 1.0
                dr1, dr2 = Cs * (tau * p), Cs * q
            F.append(a * C * PQ)
            dA.append(C * PQ)
            dB.append(a * Cb * PQ)
            dR1.append(a * dr1)
            dR2.append(a * dr2)
        return jnp.stack(F), {"a": jnp.stack(dA), "b": jnp.stack(dB), "r1": jnp.stack(dR1), "r2": jnp.stack(dR2)}

    def _dpsi_dfeatures(self, Phi):
        """d psi / d phi_{tau,f} given feature means Phi: v-part (f = 0) plus (1/2) w_f Phi."""
        w = jnp.asarray(self.weights)
        lin = jnp.zeros_like(Phi).at[0, 0].set(-0.5).at[1, 0].set(0.5)
        return lin + 0.5 * w[None] * Phi

    def risk_from_means(self, Phi):
        w = jnp.asarray(self.weights)
        return 1.0 - (Phi[0, 0] - Phi[1, 0]) + 0.5 * jnp.sum(w[None] * Phi * Phi)

    def risk(self, th):
        """R(rhobar^M) = 1 + 2 int v + int int u  for the empirical measure of the particles."""
        return self.risk_from_means(jnp.mean(self.features(th), axis=-1))

    def v(self, th):
        """v(theta) = -(a/2) [chat_0(S_+, b) - chat_0(S_-, b)] for each particle."""
        F = self.features(th)
        return -0.5 * (F[0, 0] - F[1, 0])

    def u(self, th1, th2):
        """u(theta, theta') elementwise over two equal-size particle batches (sum over classes)."""
        w = jnp.asarray(self.weights)
        return 0.5 * jnp.einsum("f,tfm,tfm->m", w, self.features(th1), self.features(th2))

    def psi(self, th, Phi):
        """psi(theta; rhobar) for each particle of ``th`` given the feature means Phi of rhobar."""
        return jnp.einsum("tf,tfm->m", self._dpsi_dfeatures(Phi), self.features(th))

    def grad_psi(self, th):
        """grad psi(theta_i; rhobar^M) for every particle (dict of (M,) arrays; untrained -> 0)."""
        F, dF = self.features_and_grads(th)
        Phi = jnp.mean(F, axis=-1)
        G = self._dpsi_dfeatures(Phi)
        return {k: (jnp.einsum("tf,tfm->m", G, dF[k]) if k in self.trained else jnp.zeros_like(th[k]))
                for k in COORDS}, Phi


@dataclass
class AnisotropicDDSolution:
    """Reduced DD at the save times: particles (time, M) per coordinate, risk and means."""

    times: np.ndarray
    particles: dict  # a, b, r1, r2: (n_times, M)
    risk: np.ndarray
    dissipation: np.ndarray  # int |grad psi|^2 drhobar; dR/dt = -4 xi * dissipation
    n_steps: np.ndarray
    diverged: bool = False

    def mean(self, name: str) -> np.ndarray:
        return self.particles[name].mean(axis=1)

    @property
    def mean_a(self):
        return self.mean("a")

    @property
    def mean_b(self):
        return self.mean("b")

    @property
    def mean_r1(self):
        return self.mean("r1")

    @property
    def mean_r2(self):
        return self.mean("r2")


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


@functools.lru_cache(maxsize=16)
def _compiled_block(model: AnisotropicModel, schedule, method: str, rtol: float, atol: float):
    """``lax.scan`` over save segments of the Dormand-Prince (or RK4) particle flow, jitted."""

    @jax.jit
    def rhs(t, y):
        g, _ = model.grad_psi(y)
        c = -2.0 * schedule(t)
        return {k: c * g[k] for k in COORDS}

    def observe(t, y):
        g, Phi = model.grad_psi(y)
        diss = jnp.mean(sum(g[k] ** 2 for k in COORDS))
        return {"p": y, "risk": model.risk_from_means(Phi), "diss": diss}

    def reflect(y):
        return dict(y, r1=jnp.abs(y["r1"]), r2=jnp.abs(y["r2"]))

    segment = make_segment_fn(rhs, observe, method=method, rtol=rtol, atol=atol, post=reflect)
    return jax.jit(lambda state, inputs: jax.lax.scan(segment, state, inputs))


def solve_anisotropic_dd(
    problem: Problem,
    times,
    *,
    n_particles: int = 4000,
    d_interaction="inf",
    n_hermite: int = 12,
    xi=1.0,
    method: str = "dopri5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    dt: float = 0.01,
    key=0,
    theta0: dict | None = None,
    progress: bool = False,
) -> AnisotropicDDSolution:
    """Solve the reduced DD of sec. 7.3 and save at ``times`` (t = 0 may be included).

    ``d_interaction``: "inf" (the paper's reduced PDE, d = infinity) or "finite" (exact angular
    average at the task's d, series truncated at ``n_hermite`` Hermite orders).
    ``xi``: schedule (number, ``Schedule`` or string; Fig. 3 uses ``PowerLaw(0.25, 1.0)``).
    ``theta0``: initial particles {a, b, r1, r2} (default: ``n_particles`` draws from the init
    law with PRNG ``key``).  ``method``: "dopri5" (adaptive, rtol/atol) or "rk4" (steps <= dt).
    """
    check(n_particles >= 1, "n_particles", f"must be >= 1, got {n_particles}")
    check(dt > 0, "dt", f"must be > 0, got {dt}")
    check(rtol > 0 and atol > 0, "rtol", "tolerances must be > 0")
    times = check_times(times)
    model = AnisotropicModel.from_problem(problem, d_interaction, n_hermite)
    schedule = as_schedule(xi)
    if theta0 is None:
        theta0 = initial_particles(problem, n_particles, key)
    y0 = {k: jnp.asarray(theta0[k], dtype=jnp.float64) for k in COORDS}
    check(len({v.shape for v in y0.values()}) == 1 and y0["a"].ndim == 1, "theta0",
          "needs a, b, r1, r2 arrays of one common shape (M,)")
    y0["r1"], y0["r2"] = jnp.abs(y0["r1"]), jnp.abs(y0["r2"])

    step_block = _compiled_block(model, schedule, method, float(rtol), float(atol))
    inputs = segment_inputs(times, dt if method == "rk4" else None)
    saved, diverged, _ = run_segments(
        step_block, (y0, jnp.asarray(0.0)), inputs, n_segments=len(times),
        finite=lambda s: np.isfinite(s["risk"]) & np.all(
            np.stack([np.all(np.isfinite(s["p"][k]), axis=-1) for k in COORDS]), axis=0),
        desc="anisotropic DD", progress=progress, work=inputs["t1"] - inputs["t0"], unit="t",
    )
    if not saved:
        raise DivergenceError("anisotropic DD diverged before the first save time")
    out = stack(saved)
    k = len(saved)
    return AnisotropicDDSolution(times[:k], {c: out["p"][c] for c in COORDS}, out["risk"], out["diss"],
                                 out["n_steps"], diverged)
