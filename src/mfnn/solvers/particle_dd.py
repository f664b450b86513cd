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
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, DivergenceError, check, check_times
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.random import normal as fast_normal
from ..numerics.schedules import as_schedule
from ..problem.problem import Problem
from ._segments import run_segments, stack

_tm = jax.tree_util.tree_map


@dataclass
class ParticleDDSolution:
    times: np.ndarray
    risk: np.ndarray  # R(rho^M_t): exact, or with the sample interaction when interaction="sample"
    w_norm: np.ndarray | None  # (n_times, M)
    params: dict | None  # snapshots of all parameters, (n_times, M, ...)
    interaction: str
    n_steps: np.ndarray
    diverged: bool = False

    def mean(self, name):
        return self.params[name].mean(axis=1)


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


@functools.lru_cache(maxsize=16)
def _compiled_block(problem, interaction, n_samples, sample_seed, chunk, schedule, lam, beta, method, rtol, atol,
                    h0, save_params):
    """Compiled scan over save intervals; state = (theta, h) (ODE) or (theta, noise key) (SDE).

    The whole parameter dict is the state (untrained leaves have zero drift), so initial
    conditions and keys are inputs and repeated solves compile once.
    """
    trained = tuple(problem.unit.trained)
    psi_grad, risk = make_interaction(problem, interaction, n_samples, sample_seed, chunk)

    def drift(t, th):
        g = psi_grad(th)
        return {k: (-2.0 * schedule(t) * (g[k] + lam * th[k]) if k in trained else jnp.zeros_like(th[k]))
                for k in th}

    def observe(t, th):
        out = {"risk": risk(th)}
        if "w" in th:
            out["w_norm"] = jnp.linalg.norm(th["w"], axis=-1)
        if save_params:
            out["params"] = th
        return out

    if math.isfinite(beta):
        def segment(carry, inp):
            th, nkey = carry

            def body(i, th):
                t = inp["t0"] + i * inp["dt"]
                kk = jax.random.fold_in(nkey, inp["k0"] + i)
                dr = drift(t, th)
                amp = 2.0 * jnp.sqrt(schedule(t) * inp["dt"] / beta)
                return {k: th[k] + inp["dt"] * dr[k]
                        + (amp * fast_normal(jax.random.fold_in(kk, j), th[k].shape) if k in trained else 0.0)
                        for j, k in enumerate(sorted(th))}

            th = jax.lax.fori_loop(0, inp["n"], body, th)
            return (th, nkey), dict(observe(inp["t1"], th), n_steps=inp["n"], n_rejected=0 * inp["n"])
    else:
        segment = make_segment_fn(drift, observe, method=method, rtol=rtol, atol=atol, h0=h0)
    return jax.jit(lambda state, inp: jax.lax.scan(segment, state, inp))


def solve_particle_dd(
    problem: Problem,
    times,
    *,
    n_particles: int = 1000,
    key=0,
    theta0=None,
    interaction: str = "auto",
    n_samples: int = 4096,
    sample_seed: int = 1,
    method: str = "dopri5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    dt: float = 1e-2,
    xi=1.0,
    lam: float = 0.0,
    beta: float = math.inf,
    chunk: int = 256,
    save_params: bool = True,
    progress: bool = False,
) -> ParticleDDSolution:
    """Integrate the particle DD (noiseless: ODE; ``beta < inf``: Langevin SDE) and save at ``times``."""
    check(problem.alpha == 1.0, "alpha", "the particle DD uses alpha = 1 (the kernel module handles alpha-scaled flows)")
    check(n_particles >= 1, "n_particles", f"must be >= 1, got {n_particles}")
    check(lam >= 0, "lam", f"must be >= 0, got {lam}")
    check(beta > 0, "beta", f"must be > 0 (inf = noiseless), got {beta}")
    times = check_times(times)
    unit, task = problem.unit, problem.task
    if interaction == "auto":
        interaction = "exact" if task.has_exact_terms(unit) and n_particles <= 4096 else "sample"
    schedule = as_schedule(xi)
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    if theta0 is None:
        theta0 = problem.sample_init(jax.random.fold_in(key, 0), n_particles, jnp.float64)
    theta0 = {k: jnp.asarray(v) for k, v in theta0.items()}
    noisy = math.isfinite(beta)
    step_block = _compiled_block(problem, interaction, n_samples, sample_seed, chunk, schedule, float(lam),
                                 float(beta), method, rtol, atol, min(dt, 1e-2), save_params)
    if noisy:
        inputs = segment_inputs(times, dt)
        inputs["k0"] = np.concatenate([[0], np.cumsum(inputs["n"])[:-1]])
        state = (theta0, jax.random.fold_in(key, 1))
    else:
        inputs = segment_inputs(times, dt if method == "rk4" else None)
        state = (theta0, jnp.asarray(0.0))

    t0 = np.concatenate([[0.0], times[:-1]])
    saved, diverged, _ = run_segments(
        step_block, state, inputs, n_segments=len(times),
        finite=lambda s: np.isfinite(s["risk"]), desc=f"particle DD M={n_particles}", progress=progress,
        work=times - t0, unit="t",
    )
    if not saved:
        raise DivergenceError("particle DD diverged before the first save time")
    out = stack(saved)
    k = len(saved)
    return ParticleDDSolution(times[:k], out["risk"], out.get("w_norm"), out.get("params"), interaction,
                              out["n_steps"], diverged)
