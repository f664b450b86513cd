"""Training n charged particles (c_i, y_i): gradient flow and mini-batch SGD on E = n l
(Rotskoff-Vanden-Eijnden 2018 eqs. 2.1-2.2, 3.1, 4.5 and App. A), a method of ``mfnn.solve``.

One Euler step of size dt on the energy of the chosen ``mode``::

    "sgd":    L_P(z) = (n/(2P)) sum_p |y_p - f_n(x_p; z)|^2, P fresh points every step (eq. 3.6-3.7)
    "fixed":  the same on one fixed Monte Carlo sample of ``n_mc`` points, shared by the replicas
              (eq. 2.1 with Monte Carlo F and K: deterministic gradient flow)
    "direct": E = -sum_i c_i f(y_i) + (1/(2n)) sum_ij c_i c_j phi(y_j; y_i)  (eq. 4.5: f and phi in
              place of F and K; needs a position ``y`` in R^d, e.g. ``RBFUnit``).  Its two-body term
              phi(y, y) = 1 is ~70x the Monte Carlo K(y, y) of the paper's RBF (d = 5, alpha = 1),
              so it needs a ~100x smaller dt than "fixed" (2e-3 against 0.5): a too-large step raises
              the energy (observable ``energy``) and, on the sphere, stalls instead of diverging.

    z <- project( z + tangent( -dt grad E + sqrt(2 T dt) g - dt T lambda c e_c ) )

with T the Langevin temperature of the phase (App. A: T = 1/(beta n), see ``langevin_temperature``;
m ~ exp(-lambda c^2/2) confines the charges) and ``project``/``tangent`` the problem's constraint
(RBF centres on S^{d-1}(sqrt d): the Lagrange multiplier lambda_i of eq. 4.5).  The SGD effective
temperature is theta = dt/P (eq. 3.16); it is saved at every save (observable ``temperature``).

Correspondence with ``OnlineSGD`` (PNAS 2018 eq. 6 with a B-sample average): its step
theta += 2 s (1/B) sum_b (y_b - yhat_b) grad sigma_* is exactly this "sgd" step with dt = 2 s and
P = B (s = eps * xi), the same data and initial draws (keys fold_in(key, r), then 0 for the init
and 1 for the data, fold_in(., k) at step k).  PNAS time t = k eps is half of RV time k dt.

``phases``: consecutive ``Phase(steps, dt, batch, temperature)`` (a batch schedule such as the
quench of RV section 4.2, ``quench(...)``; thermal noise for the first part of a run).  Phases are
structure (one compiled program runs them all; dt and T are traced leaves).  Save times are RV
times t = sum of dt over the steps done; ``times_at(steps)`` converts step counts.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..numerics.pytree import Module, is_tracer, real, to_int
from ..problem.regression import Regression, network_values, test_loss
from ._driver import Method
from .fields import choice

__all__ = ["Phase", "ParticleFlow", "quench", "langevin_temperature"]

MODES = ("sgd", "fixed", "direct")
DRAW_BLOCK = 32  # "sgd": steps whose data are drawn in one batched call (``ParticleFlow._phase_loop``)


class Phase(Module):
    """``steps`` Euler steps of size ``dt`` with batch ``batch`` (mode "sgd") and Langevin
    temperature ``temperature`` (0: none).  ``sgd_temperature`` = dt/batch (RV eq. 3.16)."""

    steps: int = eqx.field(static=True, converter=lambda v: to_int("phase.steps", v, minimum=1, maximum=2**40))
    dt: float = real("phase.dt", 1e-3)
    batch: int = eqx.field(static=True, default=1, converter=lambda v: to_int("phase.batch", v, minimum=1, maximum=2**24))
    temperature: float = real("phase.temperature", 0.0)

    def __check_init__(self):
        if not is_tracer(self.dt):
            check(self.dt > 0, "phase.dt", f"must be > 0, got {self.dt}")
            check(self.temperature >= 0, "phase.temperature", f"must be >= 0, got {self.temperature}")

    @property
    def sgd_temperature(self) -> float:
        return float(self.dt) / self.batch

    def describe(self, mode: str = "sgd") -> dict:
        return {"steps": self.steps, "dt": float(self.dt), "batch": self.batch if mode == "sgd" else None,
                "temperature": self.sgd_temperature if mode == "sgd" else 0.0, "langevin": float(self.temperature)}


def quench(n: int, steps: int, quench_steps: int, dt: float = 1e-3, temperature: float = 0.0) -> tuple:
    """The batch schedule of RV 2018 section 4.2: P = floor(n/5) for ``steps`` steps ("alpha = 1/2"),
    then P = floor((n/5)^2) for ``quench_steps`` ("alpha = 1"); P >= 1."""
    n = to_int("n", n, minimum=1)
    p1, p2 = max(1, n // 5), max(1, (n // 5) ** 2)
    return (Phase(steps, dt, p1, temperature), Phase(quench_steps, dt, p2, temperature))


def langevin_temperature(beta: float, n: int) -> float:
    """T = 1/(beta n): the Langevin noise of RV App. A (invariant density ~ exp(-n beta E_beta))."""
    check(beta > 0, "beta", f"must be > 0, got {beta}")
    return 1.0 / (float(beta) * to_int("n", n, minimum=1))


def _phases(p):
    p = (p,) if isinstance(p, Phase) else tuple(p)
    check(len(p) >= 1 and all(isinstance(q, Phase) for q in p), "phases", "give one or more Phase(steps, dt, batch)")
    return p


def _over_replicas(fn, *args):
    """``jax.vmap(fn)(*args)``, except that one replica runs unbatched: a leading axis of size 1
    sends XLA:CPU's float32 reductions and GEMMs down slow paths (measured 4-7x on the SGD step)."""
    if jax.tree_util.tree_leaves(args)[0].shape[0] != 1:
        return jax.vmap(fn)(*args)
    out = fn(*jax.tree_util.tree_map(lambda a: a[0], args))
    return jax.tree_util.tree_map(lambda a: a[None], out)


class ParticleFlow(Method):
    """Gradient flow / mini-batch SGD of n particles (module docstring).  Observables: ``loss``,
    ``signed_pos``, ``signed_neg`` (test sample of ``n_test`` points), ``batch_loss`` (mean batch
    loss over the save interval), ``energy``, ``temperature`` (dt/P), ``langevin``, ``step``,
    ``sphere_error`` (with a constraint), ``f_probe`` (with ``probes``), ``params``."""

    n_particles: int = eqx.field(static=True, default=64, converter=lambda v: to_int("n_particles", v, minimum=1, maximum=2**24))
    phases: tuple = eqx.field(default=(Phase(1000),), converter=_phases)
    mode: str = eqx.field(static=True, default="sgd", converter=choice("mode", MODES))
    n_mc: int = eqx.field(static=True, default=10000, converter=lambda v: to_int("n_mc", v, minimum=1, maximum=10**8))
    n_test: int = eqx.field(static=True, default=10000, converter=lambda v: to_int("n_test", v, minimum=1, maximum=10**8))
    replicas: int = eqx.field(static=True, default=1, converter=lambda v: to_int("replicas", v, minimum=1, maximum=2**16))
    confine: float = real("confine", 0.0)
    probes: np.ndarray | None = eqx.field(default=None, converter=lambda p: p if p is None or is_tracer(p) else np.asarray(p, np.float64))
    dtype: str = eqx.field(static=True, default="float64", converter=choice("dtype", ("float32", "float64")))

    def __check_init__(self):
        check(self.probes is None or is_tracer(self.probes) or self.probes.ndim == 2, "probes", "must be an array (m, d)")
        check(is_tracer(self.confine) or self.confine >= 0, "confine", f"must be >= 0, got {self.confine}")

    @property
    def label(self) -> str:
        return f"RV {self.mode} n={self.n_particles} x{self.replicas}"

    @property
    def total_steps(self) -> int:
        return sum(p.steps for p in self.phases)

    def _kbounds(self):
        return np.concatenate([[0], np.cumsum([p.steps for p in self.phases])]).astype(np.int64)

    def _bounds(self):
        k = self._kbounds()
        t = np.concatenate([[0.0], np.cumsum([p.steps * float(p.dt) for p in self.phases])])
        return k, t

    def times_at(self, steps) -> np.ndarray:
        """RV times of the step counts ``steps`` (0 <= steps <= total_steps)."""
        steps = np.asarray(steps, np.int64)
        check(bool(np.all((steps >= 0) & (steps <= self.total_steps))), "steps", f"must lie in [0, {self.total_steps}]")
        k, t = self._bounds()
        j = np.clip(np.searchsorted(k, steps, side="right") - 1, 0, len(self.phases) - 1)
        dts = np.array([float(p.dt) for p in self.phases])
        return t[j] + (steps - k[j]) * dts[j]

    def steps_at(self, times) -> np.ndarray:
        times = np.asarray(times, float)
        k, t = self._bounds()
        check(bool(np.all(times <= t[-1] * (1 + 1e-12))), "saveat.times", f"the phases end at t = {t[-1]:g}")
        j = np.clip(np.searchsorted(t, times, side="right") - 1, 0, len(self.phases) - 1)
        dts = np.array([float(p.dt) for p in self.phases])
        steps = k[j] + np.round((times - t[j]) / dts[j]).astype(np.int64)
        check(bool(np.allclose(self.times_at(steps), times, rtol=1e-9, atol=1e-12)), "saveat.times",
              "must lie on the step grid (use method.times_at(steps))")
        return steps

    def schedule(self) -> list:
        """One row per phase: steps, dt, batch, temperature dt/P, Langevin temperature."""
        return [p.describe(self.mode) for p in self.phases]

    # --- method protocol --------------------------------------------------------------------
    def available(self, problem) -> tuple:
        out = ("loss", "signed_pos", "signed_neg", "batch_loss", "energy", "temperature", "langevin", "step")
        out += ("sphere_error",) if problem.constraint is not None else ()
        return out + (("f_probe",) if self.probes is not None else ()) + ("params",)

    default_observables = ("loss", "batch_loss", "temperature")

    def dims(self, name):
        if name in ("temperature", "langevin", "step"):
            return ()
        if name == "f_probe":
            return ("replica", "probe")
        if name.startswith("params/"):
            return ("replica", "particle", f"{name[7:]}_dim")
        return ("replica",)

    def init(self, problem, times, key):
        dtype = jnp.dtype(self.dtype)
        R, n = self.replicas, self.n_particles
        if self.mode == "direct":
            shapes = problem.unit.param_shapes(problem.d)
            check(shapes.get("y") == (problem.d,), "mode", "'direct' (RV eq. 4.5) needs a unit with a position y in R^d")
        rkeys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(R))
        theta0 = jax.vmap(lambda k: problem.sample_init(jax.random.fold_in(k, 0), n, dtype))(rkeys)
        dkeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(rkeys)
        real_ = jnp.arange(R) % problem.task.target.n_realizations
        if self.mode == "fixed":
            # one sample of x shared by the replicas (they differ by initialization and realization only)
            kf = jax.random.fold_in(key, 2**30)
            fixed = jax.vmap(lambda r: problem.task.sample(kf, self.n_mc, dtype, r))(real_)
        else:
            fixed = (jnp.zeros((R, 0, problem.d), dtype), jnp.zeros((R, 0), dtype))
        steps = self.steps_at(times)
        k0 = np.concatenate([[0], steps[:-1]])
        work = (steps - k0).astype(float) * (self.n_mc if self.mode == "fixed" else max(p.batch for p in self.phases))
        state = (theta0, dkeys, real_, fixed, jnp.zeros((R,), dtype), jnp.zeros((), jnp.int64))
        return state, {"k0": k0, "n": steps - k0, "work": work}

    def energy(self, problem, theta, x, y):
        """n l on the sample (x, y) ("sgd", "fixed"), or the eq. 4.5 energy ("direct"; x = realization)."""
        n = self.n_particles
        if self.mode == "direct":
            unit, r = problem.unit, x
            f = problem.task.target.values(theta["y"], r)
            K = jax.vmap(jax.vmap(unit.phi, in_axes=(None, 0)), in_axes=(0, None))(theta, theta["y"])  # K[i, j]
            c = theta["c"]
            return -jnp.dot(c, f) + 0.5 / n * (c @ K @ c)
        unit = problem.unit
        fn = unit.mean_apply(theta, x) if hasattr(unit, "mean_apply") else network_values(unit, theta, x)[1]
        return 0.5 * n * jnp.mean((y - jnp.asarray(problem.alpha, fn.dtype) * fn) ** 2)

    def _step(self, problem, phase, dkey, r, fixed):
        dtype = jnp.dtype(self.dtype)
        trained, con = tuple(problem.unit.trained), problem.constraint
        dt, T = jnp.asarray(phase.dt, dtype), jnp.asarray(phase.temperature, dtype)
        noisy = is_tracer(phase.temperature) or float(phase.temperature) > 0

        def body(k, carry, data=None):
            theta, acc = carry
            kd = jax.random.fold_in(dkey, k)
            if data is not None:  # drawn ahead for a block of steps (``_phase_loop``)
                x, y = data
            elif self.mode == "sgd":
                x, y = problem.task.sample(kd, phase.batch, dtype, r)
            elif self.mode == "fixed":
                x, y = fixed
            else:
                x, y = r, None
            e, g = jax.value_and_grad(lambda th: self.energy(problem, th, x, y))(theta)
            inc = {name: -dt * g[name] for name in trained}

            def thermal(inc):
                kn, out = jax.random.fold_in(kd, 7), dict(inc)
                for j, name in enumerate(trained):
                    out[name] = inc[name] + jnp.sqrt(2.0 * T * dt) * jax.random.normal(jax.random.fold_in(kn, j), theta[name].shape, dtype)
                if "c" in trained:
                    out["c"] = out["c"] - dt * T * jnp.asarray(self.confine, dtype) * theta["c"]
                return out

            if noisy:
                # T is a traced leaf (sweeps do not recompile): the n (d + 2) normals of the noise are
                # drawn only in steps where T > 0, not multiplied by zero (5x the data draws at d = 25)
                inc = jax.lax.cond(T > 0, thermal, lambda v: v, inc) if is_tracer(phase.temperature) else thermal(inc)
            if con is not None:
                inc = con.tangent(theta, {k_: inc.get(k_, jnp.zeros_like(v)) for k_, v in theta.items()})
            new = {name: (theta[name] + inc[name]).astype(dtype) if name in trained else theta[name] for name in theta}
            new = new if con is None else con.project(new)
            return new, acc + (e / self.n_particles).astype(acc.dtype)

        return body

    def _phase_loop(self, problem, phase, dkey, r, fixed, lo, hi, carry):
        """Steps lo <= k < hi of one phase.  "sgd": the data of ``DRAW_BLOCK`` steps are drawn at once
        (the same keys fold_in(dkey, k), so the same numbers), which amortizes XLA:CPU's rolled
        threefry loops over the block (measured: ~15% of the step at n = 1024, d = 25, P = 200)."""
        step = self._step(problem, phase, dkey, r, fixed)
        if self.mode != "sgd":
            return jax.lax.fori_loop(lo, hi, step, carry)
        B, dtype = max(1, min(DRAW_BLOCK, phase.steps)), jnp.dtype(self.dtype)

        task = problem.task
        split = isinstance(task, Regression)  # the targets f(x) per step: no (B, P, d^2) temporaries

        def block(i, carry):
            k0 = lo + i * B
            keys = jax.vmap(lambda k: jax.random.fold_in(dkey, k))(k0 + jnp.arange(B, dtype=k0.dtype))
            if split:
                xs, kys = jax.vmap(lambda kd: task.sample_inputs(kd, phase.batch, dtype))(keys)
                data = lambda j: (xs[j], task.labels(xs[j], kys[j], r))  # noqa: E731
            else:
                xs, ys = jax.vmap(lambda kd: task.sample(kd, phase.batch, dtype, r))(keys)
                data = lambda j: (xs[j], ys[j])  # noqa: E731
            return jax.lax.fori_loop(0, jnp.minimum(B, hi - k0), lambda j, c: step(k0 + j, c, data(j)), carry)

        return jax.lax.fori_loop(0, (hi - lo + B - 1) // B, block, carry)

    def segment(self, problem, state, seg):
        theta, dkeys, real_, fixed, _, _ = state
        kb = self._kbounds()
        k0, n = seg["k0"], seg["n"]

        def run(th, dk, r, fx):
            acc = jnp.zeros((), jnp.dtype(self.dtype))
            for j, ph in enumerate(self.phases):
                lo, hi = jnp.clip(k0, kb[j], kb[j + 1]), jnp.clip(k0 + n, kb[j], kb[j + 1])
                th, acc = self._phase_loop(problem, ph, dk, r, fx, lo, hi, (th, acc))
            return th, acc / jnp.maximum(n, 1).astype(acc.dtype)

        theta, bl = _over_replicas(run, theta, dkeys, real_, fixed)
        return theta, dkeys, real_, fixed, bl, (k0 + n).astype(jnp.int64)

    def observe(self, problem, state, names, fn):
        theta, dkeys, real_, fixed, bl, k = state
        kb = self._kbounds()

        def one(th, r, fx):
            out = {}
            if {"loss", "signed_pos", "signed_neg"} & set(names):
                out.update({k: v for k, v in test_loss(problem.task, problem.unit, th, self.n_test, r).items() if k in names})
            if "energy" in names:
                out["energy"] = (self.energy(problem, th, r, None) if self.mode == "direct"
                                 else self.energy(problem, th, *fx) if self.mode == "fixed"
                                 else self.n_particles * test_loss(problem.task, problem.unit, th, self.n_test, r)["loss"])
            if "sphere_error" in names:
                pr = problem.constraint.project(th)
                out["sphere_error"] = max(jnp.max(jnp.abs(th[k] - pr[k])) for k in problem.constraint.params)
            if "f_probe" in names:
                out["f_probe"] = network_values(problem.unit, th, jnp.asarray(self.probes, th["c"].dtype))[1]
            if "params" in names:
                out.update({f"params/{k}": v for k, v in th.items()})
            if fn is not None:
                out.update(fn(problem, th))
            return out

        out = jax.vmap(one)(theta, real_, fixed)
        if "batch_loss" in names:
            out["batch_loss"] = bl
        j = jnp.clip(jnp.searchsorted(jnp.asarray(kb[1:]), jnp.maximum(k - 1, 0), side="right"), 0, len(self.phases) - 1)
        sgd_t = jnp.stack([jnp.asarray(p.dt, jnp.float64) / p.batch for p in self.phases])
        lang = jnp.stack([jnp.asarray(p.temperature, jnp.float64) for p in self.phases])
        for name, v in (("temperature", sgd_t[j] if self.mode == "sgd" else jnp.zeros(())), ("langevin", lang[j]),
                        ("step", k)):
            if name in names:
                out[name] = v
        return out

    def describe(self) -> dict:
        return {"mode": self.mode, "n": self.n_particles, "phases": self.schedule()}
