"""Throughput of online SGD: mfnn.simulate_sgd (blocked and generic engines) vs a NumPy loop.

PNAS 2018 isotropic setting: sigma(<w, x>) with the ramp activation, x | y ~ N(0, (1 + y 0.8)^2 I_40),
N = 800 neurons, kappa = 0.8, eps = 1e-5.  Reports neuron-updates per second
(N * steps * replicas / wall time) and microseconds per SGD step per replica.

Timing of simulate_sgd excludes compilation: a warm-up call compiles (simulate_sgd caches the
compiled program per problem and config), any JAX trace / lowering / compile time of a timed call
(reported by jax.monitoring) is subtracted from its wall time, and the per-step cost is the
difference between a long and a short run divided by the difference in steps (which also removes
the fixed costs: initialization and the population-risk evaluations at the two save times 0 and
T).  Each measurement is the best of ``--repeats`` runs (the machine may be shared).

    python benchmarks/sgd_throughput.py [--steps S] [--seconds 2] [--repeats 3]

The last line printed is ``speedup_vs_numpy_loop: X`` with X = (engine "auto", float64,
1 replica) / (NumPy loop), in neuron-updates per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

import mfnn
from mfnn import SGDConfig, simulate_sgd

N, D, DELTA, KAPPA, EPS = 800, 40, 0.8, 0.8, 1e-5

# --- compile-time accounting ------------------------------------------------------------------
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_secs = [0.0]


def _listener(event, duration, **_):
    if event in _COMPILE_EVENTS:
        _compile_secs[0] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


def problem():
    task = mfnn.IsotropicGaussians(d=D, delta=DELTA)
    return mfnn.Problem(mfnn.sigma_w("ramp"), task, mfnn.GaussianInit(kappa=KAPPA))


def run_seconds(prob, engine, dtype, replicas, steps):
    """Wall seconds of one simulate_sgd call of ``steps`` steps, minus its compilation time."""
    cfg = SGDConfig(n_neurons=N, eps=EPS, times=(0.0, steps * EPS), replicas=replicas,
                    dtype=dtype, engine=engine)
    _compile_secs[0] = 0.0
    t0 = time.perf_counter()
    traj = simulate_sgd(prob, cfg, 0)
    wall = time.perf_counter() - t0
    assert int(traj.steps[-1]) == steps and not traj.diverged
    return wall - _compile_secs[0]


def measure_sgd(prob, engine, dtype, replicas, *, steps, seconds, repeats):
    """Seconds per SGD step (all replicas together), by differencing a long and a short run."""
    short = 2048
    run = lambda n: run_seconds(prob, engine, dtype, replicas, n)
    run(short)  # warm-up: compiles, fills the caches
    t_fixed = run(short)  # mostly fixed costs: initialization, risk at t = 0 and t = T
    if steps is None:  # calibrate: about max(seconds, t_fixed) of stepping in the long run
        probe = 4 * short
        while True:
            extra = run(probe) - run(short)
            if extra > 0.25 * seconds or probe >= 2**24:
                break
            probe *= 4
        target = max(seconds, t_fixed)
        steps = short + int(target * (probe - short) / max(extra, 1e-6))
    steps = max(int(steps), 2 * short)
    for _ in range(3):  # a run disturbed by other load can make the difference meaningless
        t_short = t_long = float("inf")
        for _ in range(repeats):
            t_short = min(t_short, run(short))
            t_long = min(t_long, run(steps))
        if t_long > t_short:
            break
    return (t_long - t_short) / (steps - short), steps


# --- the NumPy reference ----------------------------------------------------------------------
def numpy_loop(n_steps, seed=0):
    """Plain online SGD: Python loop over steps, NumPy over neurons (float64)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((N, D)) * (KAPPA / np.sqrt(D))
    t1, t2, s1, s2 = 0.5, 1.5, -2.5, 7.5
    slope = (s2 - s1) / (t2 - t1)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        y = 1.0 if rng.random() < 0.5 else -1.0
        x = (1.0 + DELTA * y) * rng.standard_normal(D)
        z = W @ x
        ramp = s1 + slope * (np.clip(z, t1, t2) - t1)
        dramp = np.where((z > t1) & (z <= t2), slope, 0.0)
        err = y - ramp.mean()
        W += (2.0 * EPS * err) * dramp[:, None] * x[None, :]
    return time.perf_counter() - t0


def measure_numpy(*, steps, seconds, repeats):
    if steps is None:
        per = numpy_loop(2000) / 2000
        steps = max(2000, int(seconds / per))
    return min(numpy_loop(steps) for _ in range(repeats)) / steps, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None,
                    help="steps of the long timed run (default: calibrated to --seconds)")
    ap.add_argument("--seconds", type=float, default=2.0, help="target length of a timed run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best kept)")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU cores, jax {jax.__version__}, numpy {np.__version__}")
    print(f"# N={N} d={D} ramp, IsotropicGaussians(delta={DELTA}), kappa={KAPPA}, eps={EPS}; "
          f"saves at t=0 and t=T only")
    prob = problem()
    rows = []
    np_per, np_steps = measure_numpy(steps=args.steps, seconds=args.seconds, repeats=args.repeats)
    rows.append(("numpy-loop", "float64", 1, np_per, np_steps))
    for engine in ("auto", "generic"):
        for dtype in ("float64", "float32"):
            for replicas in (1, 16):
                per, steps = measure_sgd(prob, engine, dtype, replicas, steps=args.steps,
                                         seconds=args.seconds, repeats=args.repeats)
                rows.append((engine, dtype, replicas, per, steps))
                print(f"#   measured {engine} {dtype} x{replicas}: {per * 1e6:.2f} us/step "
                      f"({steps} steps)", flush=True)

    nu_np = N / np_per
    header = (f"| {'engine':10s} | {'dtype':7s} | {'replicas':8s} | {'neuron-updates/s':16s} | "
              f"{'us/step/replica':15s} | {'vs NumPy':8s} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    speedup = None
    for engine, dtype, replicas, per, _ in rows:
        nu = N * replicas / per
        ratio = nu / nu_np
        if (engine, dtype, replicas) == ("auto", "float64", 1):
            speedup = ratio
        print(f"| {engine:10s} | {dtype:7s} | {replicas:8d} | {nu:16.3e} | "
              f"{per / replicas * 1e6:15.2f} | {ratio:8.1f} |")
    print(f"speedup_vs_numpy_loop: {speedup:.1f}")


if __name__ == "__main__":
    main()
