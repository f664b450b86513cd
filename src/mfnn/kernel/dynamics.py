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

Integration: fixed-step RK4 (default) or adaptive Dormand-Prince from ``numerics.ode``, the whole
trajectory one compiled ``lax.scan`` over save segments.

W2 displacement: for equal-weight particles the identity coupling theta_j(0) <-> theta_j(t) gives
    W2(rho^N_t, rho^N_0) <= sqrt( (1/N) sum_j ||theta_j(t) - theta_j(0)||^2 )
(trained coordinates); the library reports this upper bound, not W2 itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, DivergenceError, check, check_times
from ..numerics.ode import make_segment_fn, segment_inputs
from ..solvers._segments import run_segments, stack


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


@dataclass
class AlphaFlowResult:
    """Saves at ``times``: residual u = y - fhat on the data (T, n), test predictions (T, m),
    the W2 coupling bound (T,), the empirical risk (1/n)|u|^2 (T,) and the final parameters."""

    times: np.ndarray
    alpha: float
    residual: np.ndarray
    pred_test: np.ndarray | None
    w2_bound: np.ndarray
    risk: np.ndarray
    theta0: dict
    theta: dict
    n_steps: np.ndarray
    diverged: bool = False


def alpha_gradient_flow(unit, theta0, x, y, alpha, times, *, x_test=None, method: str = "rk4",
                        dt: float = 0.02, rtol: float = 1e-9, atol: float = 1e-11,
                        progress: bool = False) -> AlphaFlowResult:
    """Integrate the alpha-scaled gradient flow from ``theta0`` and save at ``times`` (t=0 allowed)."""
    check(alpha > 0, "alpha", f"must be > 0, got {alpha}")
    check(dt > 0, "dt", f"must be > 0, got {dt}")
    times = check_times(times)
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    xt = x if x_test is None else jnp.asarray(x_test)
    step_block = _compiled_block(unit, method, float(rtol), float(atol))
    inputs = segment_inputs(times, dt if method == "rk4" else None)
    state = (theta0, jnp.asarray(0.0))
    block = functools.partial(step_block, theta0=theta0, x=x, y=y, xt=xt, alpha=jnp.asarray(float(alpha)))
    saved, diverged, (final, _) = run_segments(
        block, state, inputs, n_segments=len(times),
        finite=lambda s: np.all(np.isfinite(s["u"]), axis=-1), desc=f"alpha-flow alpha={alpha:g}",
        progress=progress, block=len(times),
    )
    if not saved:
        raise DivergenceError("alpha-scaled flow diverged before the first save time")
    out = stack(saved)
    k = len(saved)
    return AlphaFlowResult(
        times=times[:k], alpha=float(alpha), residual=out["u"],
        pred_test=out["pred"] if x_test is not None else None, w2_bound=out["w2"],
        risk=np.mean(out["u"] ** 2, axis=-1), theta0=jax.device_get(theta0), theta=jax.device_get(final),
        n_steps=out["n_steps"], diverged=diverged)


@functools.lru_cache(maxsize=32)
def _compiled_block(unit, method, rtol, atol):
    trained = tuple(unit.trained)

    @jax.jit
    def step_block(state, inputs, *, theta0, x, y, xt, alpha):
        velocity = make_velocity(unit, x, y)

        def rhs(t, theta):
            return velocity(theta, alpha)

        def observe(t, theta):
            sq = sum(jnp.sum((theta[k] - theta0[k]).reshape(theta[k].shape[0], -1) ** 2, axis=1) for k in trained)
            return {"u": y - network_output(unit, theta, x, alpha),
                    "pred": network_output(unit, theta, xt, alpha),
                    "w2": jnp.sqrt(jnp.mean(sq))}

        segment = make_segment_fn(rhs, observe, method=method, rtol=rtol, atol=atol)
        return jax.lax.scan(segment, state, inputs)

    return step_block
