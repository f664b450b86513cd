"""General DD solver by mean-field particles (PNAS 2018 eq. 7; COLT 2019 App. B "PD").

    d theta_j/dt = -2 xi(t) [ grad V(theta_j) + (1/M) sum_l grad_1 U(theta_j, theta_l) + lambda theta_j ]

for M particles theta_j(0) ~ rho_0 i.i.d., acting on the unit's trained parameters; rho_t is
approximated by (1/M) sum_j delta_{theta_j(t)}.  Deterministic: no SGD sampling noise.  This is
the reference "infinite-N" curve for problems without a symmetry reduction (error O(M^{-1/2})
from the initial sample, plus the O(1/M) self-interaction l = j, which is kept: the system is
exactly gradient flow of R on the empirical measure).

Interaction (``interaction``):

* ``"exact"``: pairwise U from the task's exact population terms (Mehler series for projection
  units on Gaussian tasks), O(M^2 K) per evaluation, computed in row chunks.  The l = j term uses
  grad_1 U(theta, theta) = (1/2) grad U_self(theta).
* ``"sample"``: U through a fixed sample x_1..x_Q of the data law (``n_samples``, drawn once with
  ``sample_seed``): grad_1 U(theta, .) averaged over rho becomes (1/Q) sum_q yhat(x_q) grad sigma_*(x_q;
  theta), O(M Q) per evaluation, for M up to 1e5 and more.  V (and grad V) stay exact when the task
  has exact terms.  The stated sample size is a Monte Carlo approximation of the population
  interaction with relative error ~ Q^{-1/2}.
* ``"auto"``: exact if the task has exact terms and M <= 4096, else sample.

Time stepping: adaptive Dormand-Prince 5(4) (``rtol``, ``atol``) or RK4 (``dt``).  With
``beta < inf`` the McKean-Vlasov Langevin system (noisy DD, library convention)

    d theta = -2 xi grad Psi_lambda dt + 2 sqrt(xi / beta) dB     (Fokker-Planck: 2 xi beta^{-1} Laplacian)

is integrated by Euler-Maruyama with step ``dt`` (strong order 1/2, weak order 1).

``ParticleDD`` is the method of ``mfnn.solve``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.pytree import is_tracer, real
from ..numerics.random import normal as fast_normal
from ..numerics.schedules import Schedule, as_schedule
from ..problem.problem import Problem
from ._driver import Method
from .fields import choice, finish_observe, static_int, static_positive

__all__ = ["ParticleDD", "make_interaction"]

_tm = jax.tree_util.tree_map


def _one(theta):
    return _tm(lambda x: x[None], theta)


def make_interaction(problem: Problem, interaction: str, n_samples: int, sample_seed: int, chunk: int):
    """Return (psi_grad(theta) -> dict of grad Psi(theta_j; rho^M) on trained leaves, risk(theta))."""
    unit, task = problem.unit, problem.task
    trained = tuple(unit.trained)
    exact = task.has_exact_terms(unit)

    def restrict(g):
        return {k: g[k] for k in trained}

    def grad_V(theta):
        if exact:
            return jax.vmap(jax.grad(lambda th: task.V(unit, _one(th))[0]))(theta)
        return None

    if interaction == "exact":
        if not exact:
            raise ConfigError("interaction", "'exact' needs a task with exact population terms for this unit")

        def psi_grad(theta):
            return restrict(task.psi_grad(unit, theta, chunk))

        def risk(theta):
            return task.risk(unit, theta)

        return psi_grad, risk

    if interaction != "sample":
        raise ConfigError("interaction", f"use 'exact', 'sample' or 'auto', got {interaction!r}")
    check(n_samples >= 1, "n_samples", f"must be >= 1, got {n_samples}")
    x, y = task.sample(jax.random.PRNGKey(sample_seed), n_samples)

    def values(theta):  # (M, Q)
        return jax.lax.map(lambda th: jax.vmap(lambda xx: unit.apply(th, xx))(x), theta, batch_size=chunk)

    def psi_grad(theta):
        yhat = jnp.mean(values(theta), axis=0)  # (Q,)
        target = yhat if exact else yhat - y  # exact V handled separately

        def g(th):
            return jnp.mean(target * jax.vmap(lambda xx: unit.apply(th, xx))(x))

        gs = jax.lax.map(jax.grad(g), theta, batch_size=chunk)
        if exact:
            gs = _tm(jnp.add, gs, grad_V(theta))
        return restrict(gs)

    def risk(theta):
        yhat = jnp.mean(values(theta), axis=0)
        if exact:  # R = R_# + 2 mean V + E_sample[yhat^2]
            return task.y_second_moment + 2.0 * jnp.mean(task.V(unit, theta)) + jnp.mean(yhat * yhat)
        return jnp.mean((y - yhat) ** 2)

    return psi_grad, risk


class ParticleDD(Method):
    """The general DD by M mean-field particles, as a method of ``mfnn.solve`` (module docstring).

    ``beta = inf``: the noiseless ODE (``solver`` "dopri5" with ``rtol``/``atol``, or "rk4" with
    steps <= ``dt``); ``beta < inf``: the Langevin SDE by Euler-Maruyama with step ``dt`` (noise
    from the ``solve`` key).  Traced: ``lam``, ``beta``, the schedule ``xi`` and the problem's
    numbers.  Static: ``n_particles``, ``interaction`` ("exact" | "sample" | "auto": exact when the
    task has exact terms and M <= 4096), ``n_samples``, ``sample_seed``, ``chunk``, the solver and
    its tolerances/step, and the derived flag ``noisy``.  ``theta0``: initial parameters (default:
    M draws from the init with fold_in(key, 0)).  Observables: ``risk`` R(rho^M_t), ``w_norm``
    (particle), ``params/<name>`` (particle, ...) and ``n_steps``.
    """

    n_particles: int = static_int("n_particles", 1000, minimum=1)
    interaction: str = eqx.field(static=True, default="auto", converter=choice("interaction", ("auto", "exact", "sample")))
    n_samples: int = static_int("n_samples", 4096, minimum=1)
    sample_seed: int = static_int("sample_seed", 1, minimum=0, maximum=2**32 - 1)
    solver: str = eqx.field(static=True, default="dopri5", converter=choice("method", ("dopri5", "rk4")))
    rtol: float = static_positive("rtol", 1e-6)
    atol: float = static_positive("atol", 1e-8)
    dt: float = static_positive("dt", 1e-2)
    xi: Schedule = eqx.field(default=1.0, converter=as_schedule)
    lam: float = real("lam", 0.0)
    beta: float = real("beta", math.inf, allow_inf=True)
    chunk: int = static_int("chunk", 256, minimum=1)
    theta0: dict | None = None
    noisy: bool = eqx.field(static=True, init=False)

    label = "particle DD"

    def __post_init__(self):
        # static flag from the concrete beta (a malformed beta is reported by its converter)
        try:
            self.noisy = math.isfinite(float(self.beta))
        except (TypeError, ValueError):
            self.noisy = False

    def __check_init__(self):
        if is_tracer(self.beta):
            return
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.beta > 0, "beta", f"must be > 0 (inf = noiseless), got {self.beta}")

    def resolved_interaction(self, problem) -> str:
        if self.interaction != "auto":
            return self.interaction
        return "exact" if problem.task.has_exact_terms(problem.unit) and self.n_particles <= 4096 else "sample"

    def available(self, problem):
        shapes = problem.unit.param_shapes(problem.d)
        return ("risk",) + (("w_norm",) if "w" in shapes else ()) + ("n_steps",) + tuple(
            f"params/{k}" for k in sorted(shapes))

    @property
    def default_observables(self):
        return ("risk", "w_norm", "n_steps")

    def dims(self, name):
        if name == "w_norm":
            return ("particle",)
        if name.startswith("params/"):
            return ("particle", f"{name[7:]}_dim")
        return ()

    def _terms(self, problem):
        return make_interaction(problem, self.resolved_interaction(problem), self.n_samples, self.sample_seed, self.chunk)

    def init(self, problem, times, key):
        check(float(problem.alpha) == 1.0, "alpha",
              "the particle DD uses alpha = 1 (the kernel module handles alpha-scaled flows)")
        if self.resolved_interaction(problem) == "exact" and not problem.task.has_exact_terms(problem.unit):
            raise ConfigError("interaction", "'exact' needs a task with exact population terms for this unit")
        theta0 = self.theta0
        if theta0 is None:
            theta0 = problem.sample_init(jax.random.fold_in(key, 0), self.n_particles, jnp.float64)
        theta0 = {k: jnp.asarray(v) for k, v in theta0.items()}
        if self.noisy:
            inputs = segment_inputs(times, self.dt)
            inputs["k0"] = np.concatenate([[0], np.cumsum(inputs["n"])[:-1]])
            aux = jax.random.fold_in(key, 1)
        else:
            inputs = segment_inputs(times, self.dt if self.solver == "rk4" else None)
            aux = jnp.asarray(0.0)  # the adaptive step size carried between intervals
        inputs["work"] = inputs["t1"] - inputs["t0"]
        return {"theta": theta0, "aux": aux, "n_steps": jnp.asarray(0)}, inputs

    def _drift(self, problem):
        trained = tuple(problem.unit.trained)
        psi_grad, _ = self._terms(problem)

        def drift(t, th):
            g = psi_grad(th)
            return {k: (-2.0 * self.xi(t) * (g[k] + self.lam * th[k]) if k in trained else jnp.zeros_like(th[k]))
                    for k in th}

        return drift, trained

    def segment(self, problem, state, seg):
        drift, trained = self._drift(problem)
        th = state["theta"]
        if self.noisy:
            nkey = state["aux"]

            def body(i, th):
                t = seg["t0"] + i * seg["dt"]
                kk = jax.random.fold_in(nkey, seg["k0"] + i)
                dr = drift(t, th)
                amp = 2.0 * jnp.sqrt(self.xi(t) * seg["dt"] / self.beta)
                return {k: th[k] + seg["dt"] * dr[k]
                        + (amp * fast_normal(jax.random.fold_in(kk, j), th[k].shape) if k in trained else 0.0)
                        for j, k in enumerate(sorted(th))}

            th = jax.lax.fori_loop(0, seg["n"], body, th)
            return {"theta": th, "aux": nkey, "n_steps": seg["n"]}
        step = make_segment_fn(drift, lambda t, y: {}, method=self.solver, rtol=self.rtol, atol=self.atol,
                               h0=min(self.dt, 1e-2))
        (th, h), saved = step((th, state["aux"]), seg)
        return {"theta": th, "aux": h, "n_steps": saved["n_steps"]}

    def observe(self, problem, state, names, fn):
        th = state["theta"]
        out = {}
        if "risk" in names:
            out["risk"] = self._terms(problem)[1](th)
        if "w_norm" in names and "w" in th:
            out["w_norm"] = jnp.linalg.norm(th["w"], axis=-1)
        return finish_observe(out, problem, state, names, fn, th)
