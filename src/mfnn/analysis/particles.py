"""Certificates for a general particle measure rho = sum_j p_j delta_{theta_j} (first-order optimality
of the convex risk R, PNAS 2018 eq. 4).

The user supplies theta -> Psi(theta; rho) for ONE parameter vector theta (shape (D,)), with rho
already fixed (e.g. Psi(theta) = V(theta) + sum_j p_j U(theta, theta_j)), and optionally its
gradient (default: ``jax.grad``).  Reported:

* stationarity  max over the support of ||grad Psi(theta_j; rho)||  (a DD fixed point has 0);
* gap           int Psi drho - inf_theta Psi(theta; rho) >= 0  (0 iff rho minimizes the convex R;
                R(rho) - inf R <= 2 gap);
* support_gap   min over the support of Psi - inf Psi.

The infimum over theta is found by MULTI-START GRADIENT DESCENT from every particle and from
``n_restarts`` random points (Gaussian around the particles' mean with per-coordinate scale
``restart_scale`` x max(spread, RMS size) of the particles), keeping the lowest value seen along all paths.  It is an upper bound on the
true infimum, so the reported gap is a lower bound on the true gap: a certificate of
non-optimality when clearly positive, and of optimality only up to the search.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check


def particle_certificates(psi_fn, theta_particles, weights=None, *, grad_fn=None, n_restarts=64,
                          restart_scale=2.0, steps=2000, lr=1e-2, seed=0, support_tol=0.0) -> dict:
    """Stationarity and optimality-gap certificates; see the module docstring.

    ``psi_fn(theta) -> scalar`` (jax-traceable), ``theta_particles`` (n, D), ``weights`` (n,) or None
    (equal).  Descent: ``steps`` plain gradient steps of size ``lr`` from each start (compiled with
    ``lax.scan`` and vmapped over starts), tracking the best value along every path.
    """
    th = jnp.asarray(np.atleast_2d(np.asarray(theta_particles, dtype=float)))
    n, D = th.shape
    check(n >= 1, "theta_particles", "need at least one particle")
    if weights is None:
        p = np.full(n, 1.0 / n)
    else:
        p = np.asarray(weights, dtype=float)
        check(p.shape == (n,) and bool(np.all(p >= 0)) and p.sum() > 0, "weights",
              "need n non-negative weights with positive sum")
        p = p / p.sum()
    check(steps >= 0 and lr > 0, "lr", "need steps >= 0 and lr > 0")
    psi = jax.vmap(psi_fn)
    grad = jax.vmap(grad_fn if grad_fn is not None else jax.grad(psi_fn))

    vals = np.asarray(psi(th))
    norms = np.asarray(jnp.linalg.norm(grad(th), axis=-1))
    supp = p > support_tol

    key = jax.random.PRNGKey(seed)
    # per-coordinate scale: the particles' spread, but never below their RMS size (one particle)
    spread = jnp.maximum(jnp.std(th, axis=0), jnp.sqrt(jnp.mean(th * th, axis=0)) + 1e-3)
    rand = jnp.mean(th, axis=0) + restart_scale * spread * jax.random.normal(key, (n_restarts, D))
    starts = jnp.concatenate([th, rand]) if n_restarts > 0 else th

    @jax.jit
    def descend(x0):
        def body(carry, _):
            x, best, best_x = carry
            x = x - lr * grad(x)
            f = psi(x)
            better = f < best
            return (x, jnp.where(better, f, best), jnp.where(better[:, None], x, best_x)), None

        f0 = psi(x0)
        (x, best, best_x), _ = jax.lax.scan(body, (x0, f0, x0), None, length=steps)
        return best, best_x

    best, best_x = descend(starts)
    best = np.asarray(best)
    i = int(np.nanargmin(best))
    psi_min = min(float(best[i]), float(np.min(vals[supp])))
    theta_arg = np.asarray(best_x[i]) if psi_min == float(best[i]) else np.asarray(th[supp][np.argmin(vals[supp])])
    psi_mean = float(np.dot(p, vals))
    return {
        "stationarity": float(np.max(norms[supp])),
        "stationarity_rms": float(np.sqrt(np.dot(p, norms * norms))),
        "psi_mean": psi_mean,
        "psi_min": psi_min,
        "theta_argmin": theta_arg,
        "gap": max(psi_mean - psi_min, 0.0),
        "support_gap": max(float(np.min(vals[supp])) - psi_min, 0.0),
        "n_starts": int(starts.shape[0]),
    }
