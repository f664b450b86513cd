"""Compiled ODE integration with saves: Dormand-Prince 5(4) with error control, or fixed-step RK4.

``make_segment_fn(rhs, observe, ...)`` builds the body that advances dy/dt = rhs(t, y) (y any
pytree) over one save interval and calls ``observe(t, y)`` at its end; ``segment_inputs(times)``
gives the per-interval inputs.  Each inter-save segment is one ``lax.while_loop``
(adaptive) or ``lax.fori_loop`` (RK4); blocks of segments are one ``lax.scan``; see
``solvers/_segments.py`` for progress and divergence handling.

Error control (Hairer-Norsett-Wanner II.4): err = RMS_i( e_i / (atol + rtol max(|y_i|, |y_new_i|)) ),
accept if err <= 1, next h = h * clip(0.9 err^(-1/5), 0.2, 5).  Tolerances are the user's knob.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check

# Dormand-Prince 5(4) tableau
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)

_tm = jax.tree_util.tree_map


def _axpy(y, h, coeffs, ks):
    """y + h * sum_j coeffs[j] * ks[j] over pytrees."""
    out = y
    for c, k in zip(coeffs, ks):
        if c != 0.0:
            out = _tm(lambda o, kk: o + (h * c) * kk, out, k)
    return out


def _tableau():
    a = np.zeros((7, 7))
    for i, row in enumerate(_A):
        a[i, : len(row)] = row
    return jnp.asarray(a), jnp.asarray(_C), jnp.asarray(_B5), jnp.asarray(np.subtract(_B5, _B4))


def dopri5_step(rhs, t, y, h):
    """One Dormand-Prince step; the 7 stages run in a fori_loop over a stacked stage buffer, so
    the RHS appears once in the compiled graph (compile time ~1/7 of an unrolled step)."""
    a, c, b5, be = _tableau()
    ks0 = _tm(lambda x: jnp.zeros((7,) + x.shape, x.dtype), y)

    def stage(i, ks):
        yi = _tm(lambda x, k: x + h * jnp.tensordot(a[i], k, axes=1), y, ks)
        ki = rhs(t + c[i] * h, yi)
        return _tm(lambda k, kk: k.at[i].set(kk), ks, ki)

    ks = jax.lax.fori_loop(0, 7, stage, ks0)
    y5 = _tm(lambda x, k: x + h * jnp.tensordot(b5, k, axes=1), y, ks)
    err = _tm(lambda k: h * jnp.tensordot(be, k, axes=1), ks)
    return y5, err


def rk4_step(rhs, t, y, h):
    k1 = rhs(t, y)
    k2 = rhs(t + h / 2, _axpy(y, h, (0.5,), (k1,)))
    k3 = rhs(t + h / 2, _axpy(y, h, (0.5,), (k2,)))
    k4 = rhs(t + h, _axpy(y, h, (1.0,), (k3,)))
    return _axpy(y, h, (1 / 6, 1 / 3, 1 / 3, 1 / 6), (k1, k2, k3, k4))


def _error_norm(err, y, y_new, rtol, atol):
    sq, n = 0.0, 0
    for e, a, b in zip(jax.tree_util.tree_leaves(err), jax.tree_util.tree_leaves(y), jax.tree_util.tree_leaves(y_new)):
        scale = atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b))
        sq = sq + jnp.sum((e / scale) ** 2)
        n += e.size
    return jnp.sqrt(sq / n)


def adaptive_segment(rhs, t0, t1, y, h, *, rtol, atol, post=None, max_steps=1_000_000):
    """Integrate from t0 to t1 exactly (last step clipped); returns (y, h_next, n_accept, n_reject)."""
    post = post or (lambda y: y)

    def cond(c):
        t, _, _, na, nr = c
        return (t < t1) & (na + nr < max_steps)

    def body(c):
        t, y, h, na, nr = c
        h_try = jnp.minimum(h, t1 - t)
        y_new, err = dopri5_step(rhs, t, y, h_try)
        e = _error_norm(err, y, y_new, rtol, atol)
        ok = jnp.isfinite(e) & (e <= 1.0)
        fac = jnp.where(jnp.isfinite(e), jnp.clip(0.9 * jnp.maximum(e, 1e-10) ** (-0.2), 0.2, 5.0), 0.2)
        y_next = _tm(lambda a, b: jnp.where(ok, a, b), post(y_new), y)
        t_next = jnp.where(ok, jnp.where(h_try >= t1 - t, t1, t + h_try), t)
        # keep h from shrinking just because the segment end clipped it
        h_next = jnp.where(ok & (h_try < h), h, h_try * fac)
        return t_next, y_next, h_next, na + ok, nr + (~ok)

    t, y, h, na, nr = jax.lax.while_loop(cond, body, (t0, y, h, 0, 0))
    return y, h, na, nr


def make_segment_fn(rhs, observe, *, method="dopri5", rtol=1e-7, atol=1e-9, post=None, h0=1e-3):
    """Return ``segment(carry, inp) -> (carry, saved)`` for ``lax.scan`` over save times.

    carry = (y, h); inp has "t0", "t1" and for RK4 "n" (steps) and "dt".
    saved = observe(t1, y) plus "n_steps" (accepted) and "n_rejected".
    """
    check(method in ("dopri5", "rk4"), "method", f"use 'dopri5' or 'rk4', got {method!r}")
    post = post or (lambda y: y)

    def segment(carry, inp):
        y, h = carry
        if method == "rk4":
            def body(i, y):
                return post(rk4_step(rhs, inp["t0"] + i * inp["dt"], y, inp["dt"]))
            y = jax.lax.fori_loop(0, inp["n"], body, y)
            na, nr = inp["n"], jnp.zeros_like(inp["n"])
        else:
            h = jnp.where(h > 0, h, h0)
            y, h, na, nr = adaptive_segment(rhs, inp["t0"], inp["t1"], y, h, rtol=rtol, atol=atol, post=post)
        saved = dict(observe(inp["t1"], y), n_steps=na, n_rejected=nr)
        return (y, h), saved

    return segment


def segment_inputs(times, dt_max=None):
    """Per-save-segment inputs: t0, t1 and, when dt_max is given, RK4 step counts n and steps dt."""
    times = np.asarray(times, dtype=float)
    t0 = np.concatenate([[0.0], times[:-1]])
    gaps = times - t0
    inp = {"t0": t0, "t1": times}
    if dt_max is not None:
        n = np.where(gaps > 0, np.ceil(gaps / dt_max - 1e-9), 0).astype(np.int64)
        inp["n"] = n
        inp["dt"] = np.where(n > 0, gaps / np.maximum(n, 1), 0.0)
    else:
        inp["n"] = np.zeros(len(times), dtype=np.int64)  # unused by the adaptive stepper
    return inp
