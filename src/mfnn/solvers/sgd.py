"""Finite-N online SGD and noisy SGD, exactly as PNAS 2018 / COLT 2019 write them.

    theta_i^{k+1} = (1 - 2 lambda s_k) theta_i^k
                    + (2 s_k / alpha) (y_k - yhat(x_k; theta^k)) grad_theta sigma_*(x_k; theta_i^k)
                    + c sqrt(s_k / beta) g_i^k,                 g_i^k ~ N(0, I_D)
    s_k = eps * xi(k eps),   t = k eps,   yhat = (alpha/N) sum_i sigma_*(x; theta_i)

(PNAS 2018 eq. 6 and its noisy version; COLT 2019 eqs. SGD / noisy-SGD.)  No 1/N in the step:
the mean-field learning-rate scaling.  One fresh sample per step (online); ``batch_size`` B > 1
replaces (y - yhat) grad by its average over B fresh samples.  alpha = 1 is the mean-field
scaling; alpha > 1 is the COLT 2019 kernel scaling in its rescaled time (velocity (1/alpha) grad
Psi_alpha), which is why the step carries 1/alpha.

Noise convention (see ``theory/two-layer-mean-field.md`` section 3).  The library DEFINES the
temperature by the PDE  d_t rho = 2 xi div(rho grad Psi_lambda) + 2 xi beta^{-1} Laplacian rho,
whose Gibbs fixed point is rho_* ~ exp(-beta Psi_lambda).  A step adds variance c^2 s_k / beta per
coordinate, i.e. c^2 xi / beta per unit time, a Fokker-Planck coefficient c^2 xi / (2 beta); matching
2 xi / beta needs c = 2 (``noise_convention="pde"``, the default).  The papers print
sqrt(2 s_k / beta) g, c = sqrt(2) (``"as_printed"``), which samples the Gibbs measure at inverse
temperature 2 beta.  Noise and weight decay act on trained parameters only.

Implementation: the step is compiled once; ``lax.fori_loop`` runs the steps between two save
times, ``lax.scan`` runs a block of save intervals, replicas are ``vmap``ped over keys.  The data
of step k is drawn from fold_in(key, k), so results do not depend on how the run is chunked.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, DivergenceError, check, check_times
from ..numerics.random import normal as fast_normal
from ..numerics.schedules import Schedule, as_schedule
from ..problem.problem import Problem
from ._segments import run_segments, stack

NOISE_C = {"pde": 2.0, "as_printed": math.sqrt(2.0)}


@dataclass(frozen=True)
class SGDConfig:
    """Configuration of an SGD run; ``times`` are the save times t = k eps (0 allowed)."""

    n_neurons: int = 800
    eps: float = 1e-5
    times: tuple = (0.0, 1.0)
    batch_size: int = 1
    xi: Schedule | float | str = 1.0
    lam: float = 0.0
    beta: float = math.inf
    noise_convention: str = "pde"
    replicas: int = 1
    dtype: str = "float64"
    save_params: bool = False
    engine: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "xi", as_schedule(self.xi))
        object.__setattr__(self, "times", tuple(float(t) for t in check_times(np.atleast_1d(self.times))))
        check(isinstance(self.n_neurons, (int, np.integer)) and self.n_neurons >= 1, "n_neurons",
              f"must be a positive integer, got {self.n_neurons!r}")
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        check(isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1, "batch_size",
              f"must be a positive integer, got {self.batch_size!r}")
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.beta > 0, "beta", f"must be > 0 (inf = no noise), got {self.beta}")
        check(self.noise_convention in NOISE_C, "noise_convention",
              f"use one of {sorted(NOISE_C)}, got {self.noise_convention!r}")
        check(isinstance(self.replicas, (int, np.integer)) and self.replicas >= 1, "replicas",
              f"must be a positive integer, got {self.replicas!r}")
        check(self.engine in ("auto", "generic", "blocked"), "engine",
              f"use 'auto', 'generic' or 'blocked', got {self.engine!r}")
        check(self.dtype in ("float32", "float64"), "dtype", f"use float32 or float64, got {self.dtype!r}")

    @property
    def save_steps(self) -> np.ndarray:
        return np.round(np.asarray(self.times) / self.eps).astype(np.int64)

    @property
    def noise_c(self) -> float:
        return NOISE_C[self.noise_convention]


@dataclass
class SGDTrajectory:
    """Observables at the save times; leading axes (replica, time).

    ``risk``: exact population risk R_N(theta^k) where the task allows, else Monte Carlo.
    ``w_norm``: ||w_i|| per neuron (replica, time, N) when the unit has w.
    ``params``: full snapshots when ``save_params``.
    """

    times: np.ndarray
    steps: np.ndarray
    risk: np.ndarray
    w_norm: np.ndarray | None = None
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    params: dict | None = None
    diverged: bool = False

    @property
    def risk_mean(self):
        return self.risk.mean(axis=0)

    @property
    def risk_std(self):
        return self.risk.std(axis=0, ddof=1) if self.risk.shape[0] > 1 else np.zeros(self.risk.shape[1])


def make_step(problem: Problem, config: SGDConfig, key):
    """The compiled body: ``step(k, theta) -> theta`` for one replica (data key ``key``)."""
    unit, task = problem.unit, problem.task
    alpha = float(problem.alpha)
    trained = tuple(unit.trained)
    dtype = jnp.dtype(config.dtype)
    eps, xi, B = config.eps, config.xi, config.batch_size
    lam, beta, c = config.lam, config.beta, config.noise_c
    noisy = math.isfinite(beta)

    def neuron_value_grad(th, x):
        return jax.value_and_grad(unit.apply)(th, x)

    # vmap over neurons (axis 0 of theta), then over samples (axis 0 of x)
    value_grad = jax.vmap(jax.vmap(neuron_value_grad, in_axes=(0, None)), in_axes=(None, 0))

    def step(k, theta):
        kd = jax.random.fold_in(key, k)
        s = (eps * xi(k * eps)).astype(dtype)
        x, y = task.sample(kd, B, dtype)
        vals, grads = value_grad(theta, x)  # (B, N), leaves (B, N, ...)
        err = y - alpha * jnp.mean(vals, axis=1)  # (B,)
        coef = (2.0 / alpha) * s * err / B
        new = dict(theta)
        kn = jax.random.fold_in(kd, 1) if noisy else None
        for j, name in enumerate(trained):
            th = theta[name]
            upd = jnp.tensordot(coef, grads[name], axes=(0, 0))
            if lam > 0:
                th = (1.0 - 2.0 * lam * s) * th
            th = th + upd
            if noisy:
                g = fast_normal(jax.random.fold_in(kn, j), th.shape, dtype)
                th = th + c * jnp.sqrt(s / beta) * g
            new[name] = th
        return new

    return step


def make_advance(problem: Problem, config: SGDConfig, key):
    """``advance(theta, k0, n)``: run steps k0 .. k0+n-1 for one replica with data key ``key``.

    Uses the exact blocked fast path for projection units when ``config.engine`` allows it
    (see ``_sgd_projection.py``), the generic autodiff step otherwise.
    """
    if config.engine in ("auto", "blocked"):
        from ._sgd_projection import make_blocked_advance

        adv = make_blocked_advance(problem, config, key)
        if adv is not None:
            return adv
        if config.engine == "blocked":
            why = ("noisy SGD (beta < inf) adds a full-rank term every step" if math.isfinite(config.beta)
                   else "it needs a ProjectionUnit a*sigma(<w,x>+b)")
            raise ConfigError("engine", f"the blocked engine does not apply: {why}; use 'auto' or 'generic'")
    step = make_step(problem, config, key)
    return lambda theta, k0, n: jax.lax.fori_loop(k0, k0 + n, step, theta)


def _observe(problem: Problem, config: SGDConfig, theta):
    th64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), theta)
    out = {"risk": problem.risk(th64)}
    if "w" in theta:
        out["w_norm"] = jnp.linalg.norm(th64["w"], axis=-1)
    for name in ("a", "b"):
        if name in theta and name in problem.unit.trained:
            out[name] = th64[name]
    if config.save_params:
        out["params"] = theta
    return out


@functools.lru_cache(maxsize=16)
def _compiled_block(problem: Problem, config: SGDConfig):
    """Compiled ``(theta, dkeys), inputs -> scan over save intervals``, cached per (problem, config).

    Keys and save times are inputs, not constants, so new seeds and time grids reuse the compile.
    """

    def one_replica(theta, dkey, k0, n):
        theta = make_advance(problem, config, dkey)(theta, k0, n)
        return theta, _observe(problem, config, theta)

    replicas = jax.vmap(one_replica, in_axes=(0, 0, None, None))

    def segment(carry, inp):
        theta, dkeys = carry
        theta, saved = replicas(theta, dkeys, inp["k0"], inp["n"])
        return (theta, dkeys), saved

    return jax.jit(lambda carry, inputs: jax.lax.scan(segment, carry, inputs))


def simulate_sgd(problem: Problem, config: SGDConfig, key, *, progress: bool = False) -> SGDTrajectory:
    """Run ``config.replicas`` independent SGD runs and save observables at ``config.times``.

    Replica r uses fold_in(key, r): its initialization from fold_in(., 0), its data and noise
    from fold_in(., 1).  A run that produces NaN/Inf stops; the returned trajectory holds the
    saves before that point and ``diverged=True``.
    """
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    dtype = jnp.dtype(config.dtype)
    R, N = config.replicas, config.n_neurons
    rkeys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(R))
    theta0 = jax.vmap(lambda k: problem.sample_init(jax.random.fold_in(k, 0), N, dtype))(rkeys)
    dkeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(rkeys)

    step_block = _compiled_block(problem, dataclasses.replace(config, times=(0.0,)))
    steps = config.save_steps
    k0 = np.concatenate([[0], steps[:-1]])
    inputs = {"k0": k0, "n": steps - k0}
    saved, diverged, _ = run_segments(
        step_block, (theta0, dkeys), inputs, n_segments=len(steps),
        finite=lambda s: np.all(np.isfinite(s["risk"]), axis=-1)
        & np.all(np.isfinite(s["w_norm"]).reshape(s["w_norm"].shape[0], -1), axis=-1)
        if "w_norm" in s else np.all(np.isfinite(s["risk"]), axis=-1),
        desc=f"SGD N={N} x{R}", progress=progress,
    )
    if not saved:
        raise DivergenceError("SGD diverged before the first save time")
    out = stack(saved)  # leading axis: time, then replica
    swap = lambda a: None if a is None else np.swapaxes(a, 0, 1)
    k = len(saved)
    return SGDTrajectory(
        times=steps[:k] * config.eps, steps=steps[:k], risk=swap(out["risk"]),
        w_norm=swap(out.get("w_norm")), a=swap(out.get("a")), b=swap(out.get("b")),
        params=jax.tree_util.tree_map(swap, out["params"]) if "params" in out else None,
        diverged=diverged,
    )
