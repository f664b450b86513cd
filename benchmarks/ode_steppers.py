"""Time stepping of the distributional dynamics: the former hand-written steppers vs diffrax.

Runs, in one process and on the same right-hand sides, tolerances and save times:

* radial DD (``mfnn.solve`` of ``RadialDD``), PNAS 2018 Fig. 1 problem: sigma(<w, x>) with the ramp
  (t1, t2, s1, s2) = (0.5, 1.5, -2.5, 7.5), x | y ~ N(0, (1 + 0.8 y)^2 I_40), w^0 ~ N(0, 0.8^2/d I_d),
  M = 4000 quantile particles, finite-d interaction, t in [0, 30] with the experiment's save
  times (27), rtol 1e-7, atol 1e-9 (Dormand-Prince) and RK4 with dt = 0.01;
* particle DD (``mfnn.solve`` of ``ParticleDD``), same task at d = 10, M = 512 particles (exact
  interaction), t in [0, 2] with 9 save times, rtol 1e-6, atol 1e-8 and RK4 with dt = 0.01;
* optionally (``--sde``) the noisy particle DD (beta = 100): the Euler-Maruyama loop of
  ``ParticleDD`` (beta < inf) vs ``diffrax.Euler`` on a drift + Brownian ``MultiTerm``, dt = 0.01.

Stepper variants: ``hand`` is the Dormand-Prince 5(4) / RK4 code that ``mfnn.numerics.ode`` used
before it moved to diffrax (kept below, verbatim, as the reference); ``diffrax`` is the current
``mfnn.numerics.ode.make_segment_fn``.  Each variant is swapped into the solver module (its
``make_segment_fn`` name) with the solver's compile cache cleared, then the solver is called twice:
compile = JAX trace + lower + backend-compile time of the first call (``jax.monitoring``), run =
best wall time of the later calls (cached program).  "max |dr|" is the largest difference of the
final-time particles from the ``hand`` Dormand-Prince run, "dR" that of the final risk.
(The swap relies on the solver methods calling ``make_segment_fn`` by their module-level name
while they are traced; ``jax.clear_caches()`` forces that trace.)

    python benchmarks/ode_steppers.py [--repeats 2] [--sde] [--only radial|particle]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mfnn  # noqa: E402
from mfnn.numerics import ode  # noqa: E402
from mfnn.solvers import particle_dd, radial_dd  # noqa: E402

import compile_clock  # noqa: E402  (benchmarks/ is on sys.path when a script here runs)


# --- reference: the hand-written steppers mfnn.numerics.ode had before diffrax ------------------
_tm = jax.tree_util.tree_map
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


def _axpy(y, h, coeffs, ks):
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


def _dopri5_step(rhs, t, y, h):
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


def _rk4_step(rhs, t, y, h):
    k1 = rhs(t, y)
    k2 = rhs(t + h / 2, _axpy(y, h, (0.5,), (k1,)))
    k3 = rhs(t + h / 2, _axpy(y, h, (0.5,), (k2,)))
    k4 = rhs(t + h, _axpy(y, h, (1.0,), (k3,)))
    return _axpy(y, h, (1 / 6, 1 / 3, 1 / 3, 1 / 6), (k1, k2, k3, k4))


def _error_norm(err, y, y_new, rtol, atol):
    sq, n = 0.0, 0
    for e, a, b in zip(jax.tree_util.tree_leaves(err), jax.tree_util.tree_leaves(y),
                       jax.tree_util.tree_leaves(y_new)):
        scale = atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b))
        sq = sq + jnp.sum((e / scale) ** 2)
        n += e.size
    return jnp.sqrt(sq / n)


def _adaptive_segment(rhs, t0, t1, y, h, *, rtol, atol, post, max_steps=1_000_000):
    def cond(c):
        t, _, _, na, nr = c
        return (t < t1) & (na + nr < max_steps)

    def body(c):
        t, y, h, na, nr = c
        h_try = jnp.minimum(h, t1 - t)
        y_new, err = _dopri5_step(rhs, t, y, h_try)
        e = _error_norm(err, y, y_new, rtol, atol)
        ok = jnp.isfinite(e) & (e <= 1.0)
        fac = jnp.where(jnp.isfinite(e), jnp.clip(0.9 * jnp.maximum(e, 1e-10) ** (-0.2), 0.2, 5.0), 0.2)
        y_next = _tm(lambda a, b: jnp.where(ok, a, b), post(y_new), y)
        t_next = jnp.where(ok, jnp.where(h_try >= t1 - t, t1, t + h_try), t)
        h_next = jnp.where(ok & (h_try < h), h, h_try * fac)
        return t_next, y_next, h_next, na + ok, nr + (~ok)

    t, y, h, na, nr = jax.lax.while_loop(cond, body, (t0, y, h, 0, 0))
    return y, h, na, nr


def hand_make_segment_fn(rhs, observe, *, method="dopri5", rtol=1e-7, atol=1e-9, post=None, h0=1e-3):
    post = post or (lambda y: y)

    def segment(carry, inp):
        y, h = carry
        if method == "rk4":
            def body(i, y):
                return post(_rk4_step(rhs, inp["t0"] + i * inp["dt"], y, inp["dt"]))
            y = jax.lax.fori_loop(0, inp["n"], body, y)
            na, nr = inp["n"], jnp.zeros_like(inp["n"])
        else:
            h = jnp.where(h > 0, h, h0)
            y, h, na, nr = _adaptive_segment(rhs, inp["t0"], inp["t1"], y, h, rtol=rtol, atol=atol, post=post)
        return (y, h), dict(observe(inp["t1"], y), n_steps=na, n_rejected=nr)

    return segment


STEPPERS = {"hand": hand_make_segment_fn, "diffrax": ode.make_segment_fn}


# --- measurement -------------------------------------------------------------------------------
def _call(call):
    """(wall s, process CPU s, JAX compile s) of one call."""
    compile_clock.reset()
    w, c = time.perf_counter(), time.process_time()
    out = call()
    return time.perf_counter() - w, time.process_time() - c, compile_clock.seconds(), out


def timed(module, stepper, call, short_call, repeats, compile_repeats):
    """(compile s, compile CPU s, run s, run CPU s, result) of ``call()`` with ``stepper`` in ``module``.

    compile: JAX trace + lower + compile time (``jax.monitoring``) of the first call of
    ``short_call`` (the same compiled program on a short save grid), best of ``compile_repeats``
    fresh compiles; compile CPU: that call's process CPU time.  run: best wall time of
    ``repeats`` calls of ``call`` with the program cached; run CPU: its process CPU time (less
    sensitive than wall time to other jobs on a shared machine).
    """
    saved = module.make_segment_fn
    module.make_segment_fn = STEPPERS[stepper]
    try:
        comp = []
        for _ in range(compile_repeats):
            jax.clear_caches()  # the driver compiles per structure: force a fresh trace with this stepper
            wall, cpu, compile_s, _ = _call(short_call)
            comp.append((compile_s, cpu))
        runs = []
        for _ in range(max(repeats, 1)):
            wall, cpu, c, out = _call(call)
            runs.append((wall - c, cpu))
        return min(comp) + min(runs) + (out,)
    finally:
        module.make_segment_fn = saved
        jax.clear_caches()


def pnas_problem(d):
    act = mfnn.ramp(0.5, 1.5, -2.5, 7.5)
    return mfnn.Problem(mfnn.sigma_w(act), mfnn.IsotropicGaussians(d=d, delta=0.8), mfnn.GaussianInit(kappa=0.8))


def pnas_times(t_max=30.0, n_times=24, panel=(0.0, 1.0, 5.0, 10.0, 30.0)):
    grid = np.geomspace(t_max / 1e3, t_max, n_times - 1)
    return np.union1d(np.concatenate([[0.0], grid]), np.asarray(panel))


def bench_radial(repeats, compile_repeats, rows):
    prob, times = pnas_problem(40), pnas_times()
    ref = None
    for method, kw in (("dopri5", dict(rtol=1e-7, atol=1e-9)), ("rk4", dict(dt=0.01))):
        for stepper in ("hand", "diffrax"):
            call = lambda ts=times: mfnn.solve(prob, mfnn.RadialDD(n_particles=4000, solver=method, **kw), ts)
            c, cc, r, rc, sol = timed(radial_dd, stepper, call, lambda: call(times[:2]), repeats, compile_repeats)
            assert sol.ok and len(sol.times) == len(times)
            if ref is None:
                ref = sol
            rows.append(("radial d=40 M=4000", method, stepper, c, cc, r, rc, int(np.sum(sol.n_steps)),
                         float(np.max(np.abs(sol.radii[-1] - ref.radii[-1]))),
                         float(abs(sol.risk[-1] - ref.risk[-1])), float(sol.risk[-1])))
            print(*rows[-1], flush=True)


def bench_particle(repeats, compile_repeats, rows):
    prob, times = pnas_problem(10), np.linspace(0.0, 2.0, 9)
    ref = None
    for method, kw in (("dopri5", dict(rtol=1e-6, atol=1e-8)), ("rk4", dict(dt=0.01))):
        for stepper in ("hand", "diffrax"):
            call = lambda ts=times: mfnn.solve(prob, mfnn.ParticleDD(n_particles=512, solver=method, interaction="exact",
                                                                     **kw),
                                               mfnn.SaveAt(ts, ("risk", "n_steps", "params/w")), key=0)
            c, cc, r, rc, sol = timed(particle_dd, stepper, call, lambda: call(times[:2]), repeats, compile_repeats)
            assert sol.ok and len(sol.times) == len(times)
            if ref is None:
                ref = sol
            rows.append(("particle d=10 M=512", method, stepper, c, cc, r, rc, int(np.sum(sol.n_steps)),
                         float(np.max(np.abs(sol.ys["params/w"][-1] - ref.ys["params/w"][-1]))),
                         float(abs(sol.risk[-1] - ref.risk[-1])), float(sol.risk[-1])))
            print(*rows[-1], flush=True)


def bench_sde(repeats, compile_repeats, rows, beta=100.0, dt=0.01):
    """Noisy particle DD: the solver's Euler-Maruyama loop vs diffrax.Euler (different noise paths)."""
    import diffrax
    import lineax

    prob, times = pnas_problem(10), np.linspace(0.0, 2.0, 9)
    M = 512
    call = lambda ts=times: mfnn.solve(prob, mfnn.ParticleDD(n_particles=M, beta=beta, dt=dt, interaction="exact"),
                                       ts, key=0)
    # the SDE path does not use make_segment_fn
    c, cc, r, rc, sol = timed(particle_dd, "diffrax", call, lambda: call(times[:2]), repeats, compile_repeats)
    rows.append(("noisy particle d=10 M=512", "euler-maruyama", "hand", c, cc, r, rc, int(np.sum(sol.n_steps)),
                 float("nan"), float("nan"), float(sol.risk[-1])))
    print(*rows[-1], flush=True)

    psi_grad, risk = particle_dd.make_interaction(prob, "exact", 0, 0, 256)
    theta0 = prob.sample_init(jax.random.fold_in(jax.random.PRNGKey(0), 0), M, jnp.float64)
    w0 = theta0["w"]

    def drift(t, w, args):
        return -2.0 * psi_grad(dict(theta0, w=w))["w"]

    def diffusion(t, w, args):
        return lineax.DiagonalLinearOperator(2.0 * jnp.sqrt(1.0 / beta) * jnp.ones_like(w))

    @jax.jit
    def solve(w0, key):
        bm = diffrax.UnsafeBrownianPath(shape=w0.shape, key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, float(times[-1]), dt, w0,
                                  saveat=diffrax.SaveAt(ts=jnp.asarray(times)), max_steps=int(times[-1] / dt) + 8,
                                  adjoint=diffrax.DirectAdjoint())
        return jax.vmap(lambda w: risk(dict(theta0, w=w)))(sol.ys), sol.stats["num_accepted_steps"]

    run = lambda: jax.block_until_ready(solve(w0, jax.random.PRNGKey(1)))
    comp = []
    for _ in range(compile_repeats):
        solve.clear_cache()
        _, cpu, c, _ = _call(run)
        comp.append((c, cpu))
    runs = [_call(run) for _ in range(max(repeats, 1))]
    wall, cpu, c, (R, n) = min(runs, key=lambda x: x[0])
    rows.append(("noisy particle d=10 M=512", "euler-maruyama", "diffrax", *min(comp), wall - c, cpu, int(n),
                 float("nan"), float(abs(R[-1] - sol.risk[-1])), float(R[-1])))
    print(*rows[-1], flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", choices=("radial", "particle"), default=None)
    ap.add_argument("--compile-repeats", type=int, default=2)
    ap.add_argument("--sde", action="store_true")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
          f"diffrax {__import__('diffrax').__version__}, load {os.getloadavg()[0]:.1f}")
    rows = []
    if args.only in (None, "particle"):
        bench_particle(args.repeats, args.compile_repeats, rows)
    if args.only in (None, "radial"):
        bench_radial(args.repeats, args.compile_repeats, rows)
    if args.sde:
        bench_sde(args.repeats, args.compile_repeats, rows)
    print("\n| problem | method | stepper | compile s | compile CPU s | run s | run CPU s | steps "
          "| max dtheta(T) vs hand dopri5 | dR(T) | R(T) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p, m, s, c, cc, r, rc, n, dr, dR, R in rows:
        print(f"| {p} | {m} | {s} | {c:.2f} | {cc:.2f} | {r:.2f} | {rc:.2f} | {n} | {dr:.2e} | {dR:.2e} | {R:.6f} |")


if __name__ == "__main__":
    main()
