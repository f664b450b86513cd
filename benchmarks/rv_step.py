"""One SGD step of RV 2018 eq. 3.1: sigmoid units c h(w.x + b) on the spherical 3-spin target.

    python benchmarks/rv_step.py [--n 1024] [--d 25] [--P 200] [--steps 200] [--repeats 3] [--threads 1] [--mfnn-runs 5]
    pip install -e ".[bench]"   # optional: torch, for the PyTorch eager row (skipped without it)

Rows (microseconds per step, best of ``repeats``): mfnn (``ParticleFlow(mode="sgd")`` through
``mfnn.solve``, saving only the step counter; data drawn inside the compiled step; one solve call
runs ``--mfnn-runs`` x ``--steps`` steps, as a training run does many, and the call's fixed setup,
a 1-step solve, is printed under the rows), a plain NumPy
step, the same step in PyTorch eager mode with autograd, each in float32 and float64 for 1 and 8
realizations of a_pqr (8: vmapped in mfnn, a loop in NumPy and torch).  All three draw x on the
sphere and evaluate the 3-spin f(x) every step.  GFLOP/s counts 4 P n d (forward GEMM + the
weight-gradient GEMM) + 2 P d^3 (the 3-spin target) per realization; the ceiling is one large
NumPy matmul (2 m^3 flops) in the same dtype.  Last line: ``speedup_vs_torch: X`` (float32, one
realization: torch us/step over mfnn us/step).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _pin_threads(argv):
    """``--threads N`` pins every peer to N threads (BLAS/OpenMP env, torch, XLA's Eigen pool) before
    anything is imported: on a shared, overloaded machine multi-threaded BLAS spin-waits and is
    several times slower than one thread (measured: NumPy 39 ms vs 3.5 ms per step at load 8)."""
    if "--threads" in argv:
        n = argv[argv.index("--threads") + 1]
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[v] = n
        if n == "1":
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                       " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


_pin_threads(sys.argv)

import numpy as np  # noqa: E402


def flops(n, d, P, R):
    return R * (4.0 * P * n * d + 2.0 * P * d ** 3)


def matmul_ceiling(dtype, m=2048, repeats=3):
    a = np.random.default_rng(0).standard_normal((m, m)).astype(dtype)
    a @ a
    best = min(_time(lambda: a @ a) for _ in range(repeats))
    return 2.0 * m ** 3 / best / 1e9


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def numpy_steps(n, d, P, R, dtype, steps, dt=1e-3):
    rng = np.random.default_rng(0)
    A = [rng.standard_normal((d, d * d)).astype(dtype) for _ in range(R)]
    par = [dict(c=rng.standard_normal(n).astype(dtype), w=(rng.standard_normal((n, d)) / np.sqrt(d)).astype(dtype),
                b=rng.standard_normal(n).astype(dtype)) for _ in range(R)]

    def run():
        for _ in range(steps):
            for r in range(R):
                g = rng.standard_normal((P, d)).astype(dtype)
                x = g * (np.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True)).astype(dtype)
                f = np.einsum("nqr,nq,nr->n", (x @ A[r]).reshape(P, d, d), x, x) / d
                p = par[r]
                h = 1.0 / (1.0 + np.exp(-(x @ p["w"].T + p["b"])))
                e = (f - h @ p["c"] / n).astype(dtype)
                hp = h * (1 - h) * p["c"]
                s = dtype(dt / P)
                p["c"] += s * (h.T @ e)
                p["w"] += s * ((hp * e[:, None]).T @ x)
                p["b"] += s * (hp.T @ e)
    return run


def torch_steps(n, d, P, R, dtype, steps, dt=1e-3):
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    td = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    gen = torch.Generator().manual_seed(0)
    A = [torch.randn(d, d * d, generator=gen, dtype=td) for _ in range(R)]
    par = [[torch.randn(n, generator=gen, dtype=td).requires_grad_(), (torch.randn(n, d, generator=gen, dtype=td) / d ** 0.5).requires_grad_(),
            torch.randn(n, generator=gen, dtype=td).requires_grad_()] for _ in range(R)]

    def run():
        for _ in range(steps):
            for r in range(R):
                c, w, b = par[r]
                g = torch.randn(P, d, generator=gen, dtype=td)
                x = g * (d ** 0.5 / g.norm(dim=1, keepdim=True))
                f = torch.einsum("nqr,nq,nr->n", (x @ A[r]).view(P, d, d), x, x) / d
                fn = torch.sigmoid(x @ w.T + b) @ c / n
                loss = 0.5 * n / P * ((f - fn) ** 2).sum()
                loss.backward()
                with torch.no_grad():
                    for t in (c, w, b):
                        t -= dt * t.grad
                        t.grad = None
    return run


def mfnn_steps(n, d, P, R, dtype, steps, dt=1e-3):
    import mfnn
    from mfnn.experiments.rv_pieces import spin_sigmoid_problem

    prob = spin_sigmoid_problem(d, list(range(R)))
    m = mfnn.ParticleFlow(n_particles=n, phases=(mfnn.Phase(steps, dt, P),), mode="sgd", n_test=1, replicas=R,
                          dtype=np.dtype(dtype).name)
    save = mfnn.SaveAt(m.times_at([0, steps]), observables=("step", "temperature"))
    mfnn.solve(prob, m, save)  # compile
    return lambda: mfnn.solve(prob, m, save)


def mfnn_setup_ms(n, d, P, R, dtype, repeats):
    """Milliseconds of one ``mfnn.solve`` call beyond its steps (init draw, observations, host copies):
    a 1-step solve, best of ``repeats``."""
    run = mfnn_steps(n, d, P, R, dtype, 1)
    return min(_time(run) for _ in range(repeats)) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--d", type=int, default=25)
    ap.add_argument("--P", type=int, default=200)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="pin every implementation to this many threads (0: defaults)")
    ap.add_argument("--mfnn-runs", type=int, default=5,
                    help="mfnn solves this many times --steps steps per call (its per-call setup amortized as in a training run)")
    a = ap.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed (pip install -e '.[bench]'): the PyTorch row is skipped")
    print(f"RV 2018 eq. 3.1 SGD step, sigmoid units, 3-spin target: n={a.n} d={a.d} P={a.P}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; threads: {a.threads or 'default'}")
    print(f"{'dtype':8} {'R':>2} {'impl':6} {'us/step':>10} {'GFLOP/s':>8} {'%ceil':>6} {'x numpy':>8} {'x torch':>8}")
    headline = None
    for dtype in (np.float32, np.float64):
        ceil = matmul_ceiling(dtype)
        print(f"{np.dtype(dtype).name:8} matmul ceiling (2048^2 GEMM): {ceil:.1f} GFLOP/s")
        for R in (1, 8):
            steps = max(4, a.steps // R)
            impls = {"numpy": numpy_steps, **({"torch": torch_steps} if have_torch else {}), "mfnn": mfnn_steps}
            us = {}
            for name, make in impls.items():
                k = steps * (a.mfnn_runs if name == "mfnn" else 1)
                run = make(a.n, a.d, a.P, R, dtype, k)
                if name != "mfnn":
                    make(a.n, a.d, a.P, R, dtype, 2)()  # warm-up
                us[name] = min(_time(run) for _ in range(a.repeats)) / k * 1e6
            for name, u in us.items():
                gf = flops(a.n, a.d, a.P, R) / u / 1e3
                xt = f"{us['torch'] / u:8.2f}" if "torch" in us else f"{'-':>8}"
                print(f"{np.dtype(dtype).name:8} {R:>2} {name:6} {u:10.1f} {gf:8.2f} {100 * gf / ceil:5.1f}% "
                      f"{us['numpy'] / u:8.2f} {xt}")
            print(f"{'':8} {R:>2} mfnn: {steps * a.mfnn_runs} steps per solve call; the call's setup (a 1-step solve) "
                  f"{mfnn_setup_ms(a.n, a.d, a.P, R, dtype, a.repeats):.1f} ms; load average {os.getloadavg()[0]:.1f}")
            if dtype is np.float32 and R == 1 and "torch" in us:
                headline = us["torch"] / us["mfnn"]
    print(f"speedup_vs_torch: {headline:.2f}" if headline is not None else "speedup_vs_torch: n/a (torch missing)")


if __name__ == "__main__":
    main()
