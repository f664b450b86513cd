"""alpha-scaled finite-network gradient flow on a finite dataset (COLT 2019 eq. 13, App. H.2).

    fhat_{alpha,N}(x; theta) = (alpha/N) sum_j sigma_*(x; theta_j)                              (eq. 13)
    d theta_j/dt = (1/alpha) E_x[ (f(x) - fhat_{alpha,N}(x; theta)) grad_theta sigma_*(x; theta_j) ]  (App. H.2)

with E_x the empirical measure of the n training points and the gradient over the TRAINED leaves
only.  This is gradient flow on R_{alpha,N} with time reparametrized by N/(2 alpha^2): the
paper's rescaled time in which rho^alpha_t moves at speed 1/alpha (COLT 2019 eq. 14 as printed
has no 2 xi factor: xi = 1/2).  The residual on the data obeys
(RD) with the finite-N kernel H(x, z; theta_t): d_t u = -(1/n) H(theta_t) u.

Antithetic initialization: N/2 neurons (a, w, b) are drawn from rho_0 and
paired with (-a, w, b), so fhat_{alpha,N}(.; theta^0) = 0 exactly (otherwise it is
O(alpha/sqrt(N)) and dominates for large alpha).  The pairing keeps the law rho_0 when rho_0 is
symmetric in a (``GaussianInit(symmetric_a=True)`` or ``a_mean = 0``).

Integration: fixed-step RK4 (default) or adaptive Dormand-Prince from ``numerics.ode``; ``AlphaFlow``
is the method of ``mfnn.solve`` (alpha, the data and theta0 are traced leaves: a sweep over alpha
compiles once): ``mfnn.solve(unit, AlphaFlow(x=x, y=y, theta0=theta0, alpha=alpha), times)``.

W2 displacement: for equal-weight particles the identity coupling theta_j(0) <-> theta_j(t) gives
    W2(rho^N_t, rho^N_0) <= sqrt( (1/N) sum_j ||theta_j(t) - theta_j(0)||^2 )
(trained coordinates); the library reports this upper bound, not W2 itself.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import ConfigError, check
from ..numerics.ode import make_segment_fn, segment_inputs
from ..numerics.pytree import is_tracer
from ..solvers import Method
from ..solvers.fields import choice, finish_observe, static_positive


def antithetic_init(unit, init, key, n_neurons: int, d: int, dtype=jnp.float64):
    """N = 2 M neurons: M from ``init`` and their mirrors with a -> -a (fhat = 0 at t = 0)."""
    check(n_neurons % 2 == 0, "n_neurons", f"antithetic pairs need an even N, got {n_neurons}")
    shapes = unit.param_shapes(d)
    if "a" not in shapes:
        raise ConfigError("unit", "antithetic initialization needs an output weight 'a'")
    half = init.sample(key, n_neurons // 2, shapes, dtype)
    out = {k: jnp.concatenate([v, v]) for k, v in half.items()}
    out["a"] = jnp.concatenate([half["a"], -half["a"]])
    return out


def network_output(unit, theta, x, alpha):
    """fhat_{alpha,N}(x_i; theta) = (alpha/N) sum_j sigma_*(x_i; theta_j), shape (n,)."""
    vals = jax.vmap(lambda xx: jax.vmap(lambda th: unit.apply(th, xx))(theta))(x)
    return alpha * jnp.mean(vals, axis=1)


def make_velocity(unit, x, y):
    """velocity(theta, alpha) = d theta/dt of App. H.2 on the dataset (x, y), trained leaves only."""
    trained = tuple(unit.trained)
    n = x.shape[0]

    def velocity(theta, alpha):
        def val_grad(th, xx):
            return jax.value_and_grad(unit.apply)(th, xx)

        vals, grads = jax.vmap(jax.vmap(val_grad, in_axes=(0, None)), in_axes=(None, 0))(theta, x)  # (n, N)
        resid = y - alpha * jnp.mean(vals, axis=1)  # f - fhat_{alpha,N}, (n,)
        out = {k: jnp.zeros_like(v) for k, v in theta.items()}
        for k in trained:
            out[k] = jnp.tensordot(resid, grads[k], axes=(0, 0)) / (n * alpha)
        return out

    return velocity


class AlphaFlow(Method):
    """The alpha-scaled gradient flow on a finite dataset, as a method of ``mfnn.solve``.

    The data (``x``, ``y``, optional ``x_test``), the initial parameters ``theta0`` and ``alpha``
    (None: the problem's alpha) are traced leaves, so a sweep over alpha compiles once.  ``problem``
    supplies the unit (a ``Problem``, or the unit itself: the task plays no part, the data law is
    the empirical measure of (x, y)).  Static: ``solver`` ("rk4" with steps <= ``dt``, or "dopri5"
    with ``rtol``/``atol``).  Observables: ``residual`` u = y - fhat on the data (sample),
    ``pred_test`` (test_point; with ``x_test``), ``w2_bound`` (the identity-coupling bound on
    W2(rho_t, rho_0)), ``risk`` (1/n)|u|^2, ``params/<name>`` (neuron, ...) and ``n_steps``.
    """

    x: jax.Array
    y: jax.Array
    theta0: dict
    alpha: float | None = None
    x_test: jax.Array | None = None
    solver: str = eqx.field(static=True, default="rk4", converter=choice("method", ("dopri5", "rk4")))
    dt: float = static_positive("dt", 0.02)
    rtol: float = static_positive("rtol", 1e-9)
    atol: float = static_positive("atol", 1e-11)

    label = "alpha-flow"

    def __check_init__(self):
        if self.alpha is not None and not is_tracer(self.alpha):
            check(float(self.alpha) > 0, "alpha", f"must be > 0, got {self.alpha}")

    @staticmethod
    def _unit(problem):
        return problem.unit if hasattr(problem, "unit") else problem

    def _alpha(self, problem):
        return problem.alpha if self.alpha is None else self.alpha

    def available(self, problem):
        out = ("residual",) + (("pred_test",) if self.x_test is not None else ()) + ("w2_bound", "risk", "n_steps")
        return out + tuple(f"params/{k}" for k in sorted(self.theta0))

    @property
    def default_observables(self):
        return ("residual",) + (("pred_test",) if self.x_test is not None else ()) + ("w2_bound", "risk", "n_steps")

    def dims(self, name):
        return {"residual": ("sample",), "pred_test": ("test_point",)}.get(
            name, ("neuron", f"{name[7:]}_dim") if name.startswith("params/") else ())

    def init(self, problem, times, key):
        check(self.alpha is not None or hasattr(problem, "alpha"), "alpha",
              "give alpha when solving a bare unit (a Problem supplies its own)")
        alpha = self._alpha(problem)
        check(not is_tracer(alpha) and float(alpha) > 0, "alpha", f"must be > 0, got {alpha}")
        inputs = segment_inputs(times, self.dt if self.solver == "rk4" else None)
        inputs["work"] = inputs["t1"] - inputs["t0"]
        theta0 = {k: jnp.asarray(v) for k, v in self.theta0.items()}
        return {"theta": theta0, "h": jnp.asarray(0.0), "n_steps": jnp.asarray(0)}, inputs

    def segment(self, problem, state, seg):
        velocity = make_velocity(self._unit(problem), jnp.asarray(self.x), jnp.asarray(self.y))
        alpha = self._alpha(problem)
        step = make_segment_fn(lambda t, th: velocity(th, alpha), lambda t, th: {}, method=self.solver,
                               rtol=self.rtol, atol=self.atol)
        (th, h), saved = step((state["theta"], state["h"]), seg)
        return {"theta": th, "h": h, "n_steps": saved["n_steps"]}

    def observe(self, problem, state, names, fn):
        unit, alpha, th = self._unit(problem), self._alpha(problem), state["theta"]
        out = {}
        u = jnp.asarray(self.y) - network_output(unit, th, jnp.asarray(self.x), alpha)
        if "residual" in names:
            out["residual"] = u
        if "risk" in names:
            out["risk"] = jnp.mean(u * u)
        if "pred_test" in names:
            out["pred_test"] = network_output(unit, th, jnp.asarray(self.x_test), alpha)
        if "w2_bound" in names:
            sq = sum(jnp.sum((th[k] - self.theta0[k]).reshape(th[k].shape[0], -1) ** 2, axis=1) for k in unit.trained)
            out["w2_bound"] = jnp.sqrt(jnp.mean(sq))
        return finish_observe(out, problem, state, names, fn, th)
