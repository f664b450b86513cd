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

Noise convention (PNAS 2018 eq. 12 and its Gibbs measure; ``NOISE_C`` maps each convention to c).  The library DEFINES the
temperature by the PDE  d_t rho = 2 xi div(rho grad Psi_lambda) + 2 xi beta^{-1} Laplacian rho,
whose Gibbs fixed point is rho_* ~ exp(-beta Psi_lambda).  A step adds variance c^2 s_k / beta per
coordinate, i.e. c^2 xi / beta per unit time, a Fokker-Planck coefficient c^2 xi / (2 beta); matching
2 xi / beta needs c = 2 (``noise_convention="pde"``, the default).  The papers print
sqrt(2 s_k / beta) g, c = sqrt(2) (``"as_printed"``), which samples the Gibbs measure at inverse
temperature 2 beta.  Noise and weight decay act on trained parameters only.

Implementation: ``OnlineSGD`` is a method of ``mfnn.solve`` (``solvers/_driver.py``): the driver
compiles one ``lax.scan`` over save intervals per problem *structure* (eps, lambda, beta, the
schedule's numbers and the problem's numbers are traced), ``lax.fori_loop`` runs the steps between
two save times and replicas are ``vmap``ped over keys.  The data of step k is drawn from
fold_in(key, k), so results do not depend on how the run is chunked.  Replica r uses
fold_in(key, r): its initialization from fold_in(., 0), its data and noise from fold_in(., 1).
Run it as ``mfnn.solve(problem, OnlineSGD(...), SaveAt(method.grid_times(times)))``.

Seeds in one call: ``key`` may be a stack of S keys (``mfnn.solvers.seeds.stack_keys``); the S runs
are vmapped as S*R replicas, seed-major (replica s*R + r is replica r of the run with key s, the
same numbers as that run alone), and ``mfnn.solvers.seeds.split_replicas`` cuts the solution back
into S solutions.  The driver's NaN check then covers all S runs at once.

For projection units and noiseless SGD, ``engine="auto"`` runs the steps in a C++ kernel on CPU
(``_sgd_kernel.py``), else the exact blocked JAX engine (``_sgd_projection.py``); both agree with
the generic step to rounding.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check
from ..numerics.random import normal as fast_normal
from ..numerics.schedules import Schedule, as_schedule
from ..numerics.pytree import is_tracer, real, to_int
from ..problem.problem import Problem
from ._driver import Method
from ._sgd_projection import draw_step
from .fields import choice

__all__ = ["NOISE_C", "OnlineSGD", "make_advance", "make_step", "seed_batch_size"]

NOISE_C = {"pde": 2.0, "as_printed": math.sqrt(2.0)}
ENGINES = ("auto", "generic", "blocked", "kernel")
_MAX_STEPS = 2**62  # step counters are int64


class OnlineSGD(Method):
    """Online (or mini-batch) SGD on N neurons, the finite-N side of PNAS 2018 / COLT 2019.

    Numbers (``eps``, ``lam``, ``beta``, the schedule ``xi``) are traced leaves: a sweep over them
    compiles once.  Static: ``n_neurons``, ``batch_size``, ``replicas``, ``dtype``, ``engine``,
    ``noise_convention`` and the derived flags ``noisy`` (beta < inf) and ``decay`` (lam > 0).
    Observables: ``risk`` (exact population risk R_N where the task allows, else Monte Carlo;
    dims replica), ``w_norm`` (||w_i||; replica, neuron), ``a``, ``b`` (trained ones; replica,
    neuron), ``params`` (full snapshots ``params/<name>``; replica, neuron, ...).
    """

    n_neurons: int = eqx.field(static=True, default=800,
                               converter=lambda v: to_int("n_neurons", v, minimum=1, maximum=2**26))
    eps: float = real("eps", 1e-5)
    batch_size: int = eqx.field(static=True, default=1,
                                converter=lambda v: to_int("batch_size", v, minimum=1, maximum=2**20))
    xi: Schedule = eqx.field(default=1.0, converter=as_schedule)
    lam: float = real("lam", 0.0)
    beta: float = real("beta", math.inf, allow_inf=True)
    noise_convention: str = eqx.field(static=True, default="pde", converter=choice("noise_convention", tuple(NOISE_C)))
    replicas: int = eqx.field(static=True, default=1, converter=lambda v: to_int("replicas", v, minimum=1, maximum=2**16))
    dtype: str = eqx.field(static=True, default="float64", converter=choice("dtype", ("float32", "float64")))
    engine: str = eqx.field(static=True, default="auto", converter=choice("engine", ENGINES))
    noisy: bool = eqx.field(static=True, init=False)
    decay: bool = eqx.field(static=True, init=False)

    @property
    def label(self) -> str:
        return f"SGD N={self.n_neurons} x{self.replicas}"

    def __post_init__(self):
        # static flags from the concrete values (the converters report malformed ones)
        self.noisy = not math.isinf(_concrete(self.beta, 1.0))
        self.decay = _concrete(self.lam, 1.0) != 0.0

    def __check_init__(self):
        if is_tracer(self.eps):
            return
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.beta > 0, "beta", f"must be > 0 (inf = no noise), got {self.beta}")

    @property
    def noise_c(self) -> float:
        return NOISE_C[self.noise_convention]

    def save_steps(self, times) -> np.ndarray:
        """Step indices k = round(t / eps) of the save times (checked against int64 overflow)."""
        with np.errstate(over="ignore"):  # an overflow is reported just below
            steps = np.round(np.asarray(times, dtype=float) / float(self.eps))
        check(bool(np.all(steps < _MAX_STEPS)), "eps", f"t / eps = {steps.max():.3g} steps overflows the step counter")
        return steps.astype(np.int64)

    def grid_times(self, times) -> np.ndarray:
        """The save times snapped to the step grid, k eps (what the run reaches)."""
        return self.save_steps(times) * float(self.eps)

    # --- method protocol -----------------------------------------------------------------
    def available(self, problem) -> tuple:
        shapes = problem.unit.param_shapes(problem.d)
        out = ["risk"] + (["w_norm"] if "w" in shapes else [])
        out += [n for n in ("a", "b") if n in shapes and n in problem.unit.trained]
        return tuple(out) + ("params",)

    @property
    def default_observables(self):
        return ("risk", "w_norm", "a", "b")

    def dims(self, name):
        if name == "risk":
            return ("replica",)
        if name.startswith("params/"):
            return ("replica", "neuron", f"{name[7:]}_dim")
        return ("replica", "neuron")

    def init(self, problem, times, key):
        theta0, dkeys = _initial_state(problem, key, self.replicas, self.n_neurons, self.dtype)
        steps = self.save_steps(times)
        k0 = np.concatenate([[0], steps[:-1]])
        return (theta0, dkeys), {"k0": k0, "n": steps - k0, "work": (steps - k0).astype(float)}

    def segment(self, problem, state, seg):
        theta, dkeys = state
        adv = lambda th, dk: make_advance(problem, self, dk)(th, seg["k0"], seg["n"])  # noqa: E731
        return jax.vmap(adv)(theta, dkeys), dkeys

    def observe(self, problem, state, names, fn):
        theta, _ = state
        rest = tuple(n for n in names if n != "risk")
        one = lambda th: _observe(problem, th, rest)  # noqa: E731
        out = jax.vmap(one)(theta)
        if "risk" in names:  # replica by replica: a vmapped R_N batches its (N, N) Gram products
            # and (K, R, N) Hermite arrays out of cache (measured 16 replicas, N = 800: 299 vs 219 ms)
            f64 = lambda th: jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), th)  # noqa: E731
            out = {"risk": jax.lax.map(lambda th: problem.risk(f64(th)), theta), **out}
        if fn is not None:
            out.update(jax.vmap(lambda th: fn(problem, th))(theta))
        return out


@eqx.filter_jit
def _initial_state(problem, key, R: int, N: int, dtype: str):
    """(theta0, data keys) of R replicas of N neurons, as one compiled call (eager, the dozen
    small ops cost ~5 ms of dispatch per solve)."""
    dtype = jnp.dtype(dtype)
    per_key = lambda k: jax.vmap(lambda r: jax.random.fold_in(k, r))(jnp.arange(R))  # noqa: E731
    if seed_batch_size(key):  # S independent runs: replica s*R + r is replica r of the run with key s
        rkeys = jax.vmap(per_key)(key)
        rkeys = rkeys.reshape((-1,) + rkeys.shape[2:])
    else:
        rkeys = per_key(key)
    theta0 = jax.vmap(lambda k: problem.sample_init(jax.random.fold_in(k, 0), N, dtype))(rkeys)
    dkeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(rkeys)
    return theta0, dkeys


def seed_batch_size(key) -> int:
    """0 for one PRNG key; S for a stack of S keys (raw uint32 keys of shape (S, 2), or typed keys of
    shape (S,)), which ``OnlineSGD`` runs as S independent runs in one compiled call."""
    shape = tuple(np.shape(key))
    typed = jax.dtypes.issubdtype(getattr(key, "dtype", np.uint32), jax.dtypes.prng_key)
    batched = len(shape) == (1 if typed else 2)
    return int(shape[0]) if batched else 0


def _concrete(value, fallback: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return fallback


def _observe(problem, theta, names):
    th64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), theta)
    out = {}
    if "risk" in names:
        out["risk"] = problem.risk(th64)
    if "w_norm" in names and "w" in theta:
        out["w_norm"] = jnp.linalg.norm(th64["w"], axis=-1)
    for name in ("a", "b"):
        if name in names and name in theta and name in problem.unit.trained:
            out[name] = th64[name]
    if "params" in names:
        out.update({f"params/{k}": v for k, v in theta.items()})
    return out


def make_step(problem: Problem, m: OnlineSGD, key):
    """The step body ``step(k, theta) -> theta`` for one replica (data key ``key``); PNAS 2018
    eq. 6 (noisy: with weight decay and Gaussian noise, module docstring)."""
    unit, task = problem.unit, problem.task
    trained = tuple(unit.trained)
    dtype = jnp.dtype(m.dtype)
    alpha = jnp.asarray(problem.alpha, dtype)  # leaves are float64; a float32 run computes in float32
    eps, xi, B = m.eps, m.xi, m.batch_size
    lam, beta, c = m.lam, m.beta, m.noise_c

    def neuron_value_grad(th, x):
        return jax.value_and_grad(unit.apply)(th, x)

    # vmap over neurons (axis 0 of theta), then over samples (axis 0 of x)
    value_grad = jax.vmap(jax.vmap(neuron_value_grad, in_axes=(0, None)), in_axes=(None, 0))

    def step(k, theta):
        x, y, s = draw_step(task, key, k, eps, xi, B, dtype)
        vals, grads = value_grad(theta, x)  # (B, N), leaves (B, N, ...)
        err = y - alpha * jnp.mean(vals, axis=1)  # (B,)
        coef = (2.0 / alpha) * s * err / B
        new = dict(theta)
        kn = jax.random.fold_in(jax.random.fold_in(key, k), 1) if m.noisy else None  # noise: forked from step k's key
        for j, name in enumerate(trained):
            th = theta[name]
            upd = jnp.tensordot(coef, grads[name], axes=(0, 0)).astype(dtype)
            if m.decay:
                th = (1.0 - 2.0 * lam * s) * th
            th = th + upd
            if m.noisy:
                g = fast_normal(jax.random.fold_in(kn, j), th.shape, dtype)
                th = th + (c * jnp.sqrt(s / beta)).astype(dtype) * g
            new[name] = th.astype(dtype)
        return new if problem.constraint is None else problem.constraint.project(new)

    return step


def make_advance(problem: Problem, m: OnlineSGD, key):
    """``advance(theta, k0, n)``: run steps k0 .. k0+n-1 for one replica with data key ``key``.

    ``engine``: "kernel" is the C++ kernel (``_sgd_kernel.py``; CPU, projection units, noiseless
    SGD), "blocked" the exact blocked JAX engine (``_sgd_projection.py``; projection units,
    noiseless SGD), "generic" the autodiff step; "auto" takes the first of these that applies
    (the kernel falls back to the blocked engine, logged once, where it cannot be built or run).
    A forced engine that does not apply raises ``ConfigError("engine", ...)``.
    """
    if m.engine in ("auto", "kernel"):
        from . import _sgd_kernel

        adv = _sgd_kernel.make_kernel_advance(problem, m, key)
        if adv is not None:
            return adv
        if m.engine == "kernel":
            raise ConfigError("engine", f"the C++ kernel does not apply: {_sgd_kernel.kernel_status(problem, m)}; "
                                        "use 'auto', 'blocked' or 'generic'")
    if m.engine in ("auto", "blocked"):
        from ._sgd_projection import make_blocked_advance

        adv = make_blocked_advance(problem, m, key)
        if adv is not None:
            return adv
        if m.engine == "blocked":
            why = ("noisy SGD (beta < inf) adds a full-rank term every step" if m.noisy
                   else "a constraint retracts the parameters every step" if problem.constraint is not None
                   else "it needs a ProjectionUnit a*sigma(<w,x>+b)")
            raise ConfigError("engine", f"the blocked engine does not apply: {why}; use 'auto' or 'generic'")
    step = make_step(problem, m, key)
    return lambda theta, k0, n: jax.lax.fori_loop(k0, k0 + n, step, theta)
