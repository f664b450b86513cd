"""Compiled ODE integration between save times, on diffrax.

``make_segment_fn(rhs, observe, ...)`` builds the body that advances dy/dt = rhs(t, y) (y any
pytree) over one save interval with ``diffrax.diffeqsolve`` and calls ``observe(t, y)`` at its
end; ``segment_inputs(times)`` gives the per-interval inputs.  Solvers run ``lax.scan`` over
blocks of these segments (see ``solvers/_segments.py`` for progress and divergence handling).

Methods:

* ``"dopri5"``: ``diffrax.Dopri5`` (Dormand-Prince 5(4), FSAL: 6 right-hand sides per step)
  with ``diffrax.PIDController(rtol, atol)`` as an I-controller (Hairer-Norsett-Wanner II.4):
  err = RMS_i( e_i / (atol + rtol max(|y_i|, |y_new_i|)) ), accept if err < 1, next
  h = h * clip(0.9 err^(-1/5), 0.2, 5) (at most 0.9 h after a rejection); the proposed h carries
  over to the next save interval.  Tolerances are the user's knob.
* ``"rk4"``: the classical RK4 tableau on ``diffrax.AbstractERK`` with constant steps ``dt``
  (``segment_inputs(times, dt_max)`` divides each save interval into equal steps <= ``dt_max``).

``post`` (e.g. a reflection r -> |r|) is applied to every accepted step; when it changes the
state, the stored first-same-as-last stage is recomputed at the projected state.

Chosen over the hand-written Dormand-Prince/RK4 steppers this module had before by measurement
(``benchmarks/ode_steppers.py``, table in ``benchmarks/README.md``): on the radial DD (PNAS 2018
Fig. 1, M = 4000, rtol 1e-7) and the particle DD (d = 10, M = 512), same right-hand sides and
tolerances, diffrax compiled in 1.2-1.4x (Dopri5) and 0.6-1.0x (RK4) the CPU time and ran in
0.67-0.92x, with final risks agreeing to 1e-8.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check

_tm = jax.tree_util.tree_map
MAX_STEPS = 1_000_000  # per save interval; a segment that needs more returns NaN (a divergence)


# classical RK4 (diffrax ships adaptive embedded pairs, not the classical 4-stage method); the zero
# error weights are never used (constant steps)
_RK4_TABLEAU = diffrax.ButcherTableau(
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.zeros(4),
    c=np.array([0.5, 0.5, 1.0]),
)


class RK4(diffrax.AbstractERK):
    """Classical 4th-order Runge-Kutta (Hairer-Norsett-Wanner I, Table 1.2) for constant steps."""

    tableau = _RK4_TABLEAU
    interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


class _Projected(diffrax.AbstractAdaptiveSolver, diffrax.AbstractWrappedSolver):
    """Wrap a Runge-Kutta solver so that every step ends with y1 <- post(y1).

    With a first-same-as-last tableau (Dopri5) the wrapped solver keeps f(t1, y1) for the next
    step; if ``post`` moved y1 that stored value is stale, so the next step re-evaluates it.
    """

    solver: diffrax.AbstractSolver
    post: callable = eqx.field(static=True)

    @property
    def scan_kind(self):  # isinstance checks see the wrapped Runge-Kutta solver
        return self.solver.scan_kind

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, y_err, dense, state, result = self.solver.step(terms, t0, t1, y0, args, solver_state, made_jump)
        y1p = self.post(y1)
        if isinstance(state, tuple) and len(state) == 2:  # FSAL state (first_step, f(t1, y1))
            moved = jnp.any(jnp.stack([jnp.any(a != b) for a, b in
                                       zip(jax.tree_util.tree_leaves(y1p), jax.tree_util.tree_leaves(y1))]))
            state = (state[0] | moved, state[1])
        return y1p, y_err, dense, state, result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


class _CarryStep(diffrax.AbstractAdaptiveStepSizeController):
    """``diffrax.PIDController`` that also keeps the proposed step size in its state, so the next
    save interval starts from it (``SaveAt(controller_state=True)``).  A step shortened only to
    land on the interval's end does not shrink the proposal (as in Hairer-Norsett-Wanner's
    DOPRI5 code)."""

    pid: diffrax.PIDController

    @property
    def rtol(self):
        return self.pid.rtol

    @property
    def atol(self):
        return self.pid.atol

    @property
    def norm(self):
        return self.pid.norm

    def wrap(self, direction):
        return self

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t_next, state = self.pid.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return t_next, (state, t_next - t0)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        state, h_prop = controller_state
        keep, t0n, t1n, jump, state, result = self.pid.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, state)
        h_next = jnp.where(keep & (t1 - t0 < h_prop), h_prop, t1n - t0n)
        return keep, t0n, t1n, jump, (state, h_next), result


def _solver(method, post=None):
    base = diffrax.Dopri5(scan_kind="lax") if method == "dopri5" else RK4(scan_kind="lax")
    return _Projected(base, post) if post is not None else base


def step(method, rhs, t, y, h):
    """One step of ``method`` from (t, y) with step h: (y1, local error estimate or zeros for RK4)."""
    check(method in ("dopri5", "rk4"), "method", f"use 'dopri5' or 'rk4', got {method!r}")
    term, solver = diffrax.ODETerm(lambda t, y, args: rhs(t, y)), _solver(method)
    state = solver.init(term, t, t + h, y, None)
    y1, err, _, _, _ = solver.step(term, t, t + h, y, None, state, False)
    return y1, err


def make_segment_fn(rhs, observe, *, method="dopri5", rtol=1e-7, atol=1e-9, post=None, h0=1e-3,
                    max_steps=MAX_STEPS):
    """Return ``segment(carry, inp) -> (carry, saved)`` for ``lax.scan`` over save times.

    carry = (y, h) with h the step size to try first (0: use ``h0``); inp has "t0", "t1" and
    for RK4 "dt" (from ``segment_inputs``).  saved = observe(t1, y) plus "n_steps" (accepted)
    and "n_rejected".  A segment that fails (more than ``max_steps`` steps) returns NaN states,
    which the solvers report as a divergence.
    """
    check(method in ("dopri5", "rk4"), "method", f"use 'dopri5' or 'rk4', got {method!r}")
    if method == "dopri5":
        check(rtol > 0 and atol > 0, "rtol", f"tolerances must be > 0, got rtol={rtol}, atol={atol}")
    term = diffrax.ODETerm(lambda t, y, args: rhs(t, y))
    solver = _solver(method, post)
    controller = (_CarryStep(diffrax.PIDController(rtol=rtol, atol=atol, factormax=5.0)) if method == "dopri5"
                  else diffrax.ConstantStepSize())
    saveat = diffrax.SaveAt(t1=True, controller_state=method == "dopri5")

    def segment(carry, inp):
        y, h = carry
        t0, t1 = inp["t0"], inp["t1"]
        dt0 = jnp.where(h > 0, h, h0) if method == "dopri5" else inp["dt"]
        sol = diffrax.diffeqsolve(term, solver, t0, t1, dt0, y, saveat=saveat, stepsize_controller=controller,
                                  adjoint=diffrax.ForwardMode(), max_steps=max_steps, throw=False)
        ok = sol.result == diffrax.RESULTS.successful
        y_new = _tm(lambda a: jnp.where(ok, a[-1], jnp.nan), sol.ys)
        na, nr = sol.stats["num_accepted_steps"], sol.stats["num_rejected_steps"]
        if method == "dopri5":  # a zero-length interval takes no step and keeps h
            h = jnp.where(t1 > t0, sol.controller_state[1], h)
        saved = dict(observe(t1, y_new), n_steps=na, n_rejected=nr)
        return (y_new, h), saved

    return segment


MAX_FIXED_STEPS = 1e9  # total fixed (RK4) steps of one solve: at >= 1 us per step, beyond a day


def segment_inputs(times, dt_max=None):
    """Per-save-segment inputs: t0, t1 and, when dt_max is given, RK4 step counts n and steps dt."""
    times = np.asarray(times, dtype=float)
    t0 = np.concatenate([[0.0], times[:-1]])
    gaps = times - t0
    inp = {"t0": t0, "t1": times}
    if dt_max is not None:
        steps = np.where(gaps > 0, np.ceil(gaps / dt_max - 1e-9), 0)
        # fixed steps: refuse a run whose step count cannot finish (or overflows the counter)
        check(float(np.sum(steps)) <= MAX_FIXED_STEPS, "dt",
              f"{float(np.sum(steps)):.3g} fixed steps of dt <= {dt_max:g} up to t = {times[-1]:g} exceed "
              f"{MAX_FIXED_STEPS:.0e}; raise dt or shorten the save times")
        check(float(np.max(steps)) <= MAX_STEPS, "dt",
              f"{float(np.max(steps)):.3g} fixed steps in one save interval exceed {MAX_STEPS:.0e}; add save "
              f"times or raise dt")
        n = steps.astype(np.int64)
        inp["n"] = n
        inp["dt"] = np.where(n > 0, gaps / np.maximum(n, 1), 0.0)
    else:
        inp["n"] = np.zeros(len(times), dtype=np.int64)  # unused by the adaptive stepper
    return inp
