"""Throughput of online SGD: mfnn.solve(problem, OnlineSGD(...)) (blocked and generic engines) vs plain loops.

PNAS 2018 isotropic setting: sigma(<w, x>) with the ramp activation, x | y ~ N(0, (1 + y 0.8)^2 I_40),
N = 800 neurons, kappa = 0.8, eps = 1e-5.  Reports neuron-updates per second
(N * steps * replicas / wall time) and microseconds per SGD step per replica.

Peers (float64, one replica, the same update w_i <- w_i + 2 eps (y - yhat) sigma'(<w_i, x>) x,
PNAS 2018 eq. 6): a Python loop over steps with NumPy over neurons, a naive jitted JAX
``lax.scan`` loop, a numba loop (three nested loops, fastmath) and a PyTorch eager loop (numba and
torch are optional, each skipped with a message where missing; the ``bench`` extra installs them).  The peers get their data (x, y) pre-sampled in NumPy, up
front and outside the timing; mfnn samples its own data inside the timed run.  A correctness
check runs every peer on the same 500 pre-sampled steps and prints the max abs difference of
the final W from the NumPy loop's, and one checks mfnn's trajectory against the NumPy loop fed
mfnn's own initialization and data.

Timing of mfnn.solve(OnlineSGD) excludes compilation: a warm-up call compiles (solve caches the
compiled program per problem and config), any JAX trace / lowering / compile time of a timed call
(reported by jax.monitoring) is subtracted from its wall time, and the per-step cost is the
difference between a long and a short run divided by the difference in steps (which also removes
the fixed costs: initialization and the population-risk evaluations at the two save times 0 and
T).  The peers are timed the same way (long minus 2048-step run, after a warm-up of each length,
which compiles the JAX peer).  Each measurement is the best of ``--repeats`` runs (the machine
may be shared).

    python benchmarks/sgd_throughput.py [--steps S] [--seconds 2] [--repeats 3]

Also printed: which engine "auto" is (the C++ kernel, or the JAX blocked engine and why), the
flop bound (4 N d flop per step at XLA's measured float64 GEMM rate with both cores, the target's
reference; also at the one-core rate, since one replica runs on one thread, and the ratio of the
two rates), the fixed cost of one call and its breakdown (init, the exact O(N^2 K) population risk
at each of the two saves, the rest; the risk of 16 replicas), the 16-replica aggregate throughput
over one replica's, and a CPU-time cross-check of mfnn against the numba loop (less sensitive to
other jobs on the cores than wall time).

Prints ``speedup_vs_numpy_loop: X`` (engine "auto", float64, 1 replica, vs the NumPy loop) and,
as the last line, ``speedup_vs_best_peer: X`` with X = (fastest peer us/step) / (mfnn "auto"
float64 1-replica us/step).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)  # float64 peers and engine; do not rely on mfnn for it

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mfnn  # noqa: E402
from mfnn import OnlineSGD, SaveAt, solve  # noqa: E402

try:
    import torch
except ImportError:  # optional: pip install "mfnn[bench]"
    torch = None
try:
    import numba
except ImportError:  # optional: pip install "mfnn[bench]"
    numba = None

N, D, DELTA, KAPPA, EPS = 800, 40, 0.8, 0.8, 1e-5

import compile_clock  # noqa: E402  (benchmarks/ is on sys.path when a script here runs)


def problem():
    task = mfnn.IsotropicGaussians(d=D, delta=DELTA)
    return mfnn.Problem(mfnn.sigma_w("ramp"), task, mfnn.GaussianInit(kappa=KAPPA))


def run_seconds(prob, engine, dtype, replicas, steps):
    """Wall seconds of one mfnn.solve(OnlineSGD) call of ``steps`` steps, minus its compilation time."""
    method = OnlineSGD(n_neurons=N, eps=EPS, replicas=replicas, dtype=dtype, engine=engine)
    compile_clock.reset()
    t0 = time.perf_counter()
    sol = solve(prob, method, SaveAt((0.0, steps * EPS), ("risk", "w_norm")), key=0)
    wall = time.perf_counter() - t0
    assert int(method.save_steps(sol.times)[-1]) == steps and sol.ok
    return wall - compile_clock.seconds()


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


# --- peers: plain loops of the same PNAS update on pre-sampled data ----------------------------
# w_i <- w_i + 2 eps (y - yhat) sigma'(<w_i, x>) x,  yhat = (1/N) sum_i sigma(<w_i, x>)
# (PNAS 2018 eq. 6 with alpha = 1, xi = 1, lambda = 0, beta = inf; no 1/N in the step).
T1, T2, S1, S2 = 0.5, 1.5, -2.5, 7.5  # the PNAS ramp
SLOPE = (S2 - S1) / (T2 - T1)
SHORT = 2048  # steps of the short run of every difference measurement


def peer_data(n_steps, seed=0):
    """Initial W (N, d) and n_steps samples (X (n, d), Y (n,)), drawn up front in NumPy, float64."""
    rng = np.random.default_rng(seed)
    W0 = rng.standard_normal((N, D)) * (KAPPA / np.sqrt(D))
    Y = np.where(rng.random(n_steps) < 0.5, 1.0, -1.0)
    X = (1.0 + DELTA * Y)[:, None] * rng.standard_normal((n_steps, D))
    return W0, X, Y


def numpy_loop(W0, X, Y):
    """Python loop over steps, NumPy over neurons (float64).  Returns the final W."""
    W = W0.copy()
    for x, y in zip(X, Y.tolist()):
        z = W @ x
        ramp = S1 + SLOPE * (np.clip(z, T1, T2) - T1)
        dramp = np.where((z > T1) & (z <= T2), SLOPE, 0.0)
        err = y - ramp.mean()
        W += (2.0 * EPS * err) * dramp[:, None] * x[None, :]
    return W


@jax.jit
def jax_scan(W0, X, Y):
    """The naive JAX peer: lax.scan of the same update over pre-sampled (x, y), jitted."""
    def step(W, xy):
        x, y = xy
        z = W @ x
        ramp = S1 + SLOPE * (jnp.clip(z, T1, T2) - T1)
        dramp = jnp.where((z > T1) & (z <= T2), SLOPE, 0.0)
        W = W + (2.0 * EPS * (y - ramp.mean())) * dramp[:, None] * x[None, :]
        return W, None
    return jax.lax.scan(step, W0, (X, Y))[0]


def torch_loop(W0, X, Y):
    """PyTorch eager loop of the same update (float64, default thread count).  torch tensors in."""
    W = W0.clone()
    with torch.inference_mode():
        for k, y in enumerate(Y.tolist()):
            x = X[k]
            z = W @ x
            ramp = S1 + SLOPE * (z.clamp(T1, T2) - T1)
            dramp = ((z > T1) & (z <= T2)).to(W.dtype) * SLOPE
            err = y - ramp.mean()
            W += (2.0 * EPS * err) * dramp[:, None] * x[None, :]
    return W


def _numba_loop_py(W0, X, Y):
    """Three nested loops (steps, neurons, coordinates), compiled by numba (fastmath), float64."""
    W = W0.copy()
    n_neurons, d = W.shape
    z = np.empty(n_neurons)
    for k in range(X.shape[0]):
        tot = 0.0
        for i in range(n_neurons):
            acc = 0.0
            for j in range(d):
                acc += W[i, j] * X[k, j]
            z[i] = acc
            tot += S1 + SLOPE * (min(max(acc, T1), T2) - T1)
        err = Y[k] - tot / n_neurons
        for i in range(n_neurons):
            if T1 < z[i] <= T2:
                c = 2.0 * EPS * err * SLOPE
                for j in range(d):
                    W[i, j] += c * X[k, j]
    return W


numba_loop = numba.njit(fastmath=True)(_numba_loop_py) if numba is not None else None


def _peer_runner(name, W0, X, Y):
    """``run(n) -> W`` for the first n pre-sampled steps; data converted outside the timing."""
    if name == "numpy-loop":
        return lambda n: numpy_loop(W0, X[:n], Y[:n])
    if name == "jax-scan":
        Wj = jnp.asarray(W0)
        views = {}

        def run(n):
            if n not in views:  # device arrays of the first n steps, made once
                views[n] = (jnp.asarray(X[:n]), jnp.asarray(Y[:n]))
            return jax_scan(Wj, *views[n]).block_until_ready()
        return run
    if name == "numba-loop":
        return lambda n: numba_loop(W0, X[:n], Y[:n])
    if name == "torch-eager":
        Wt, Xt = torch.from_numpy(W0), torch.from_numpy(X)
        return lambda n: torch_loop(Wt, Xt[:n], Y[:n])
    raise ValueError(name)


def measure_peer(name, *, steps, seconds, repeats):
    """Seconds per step of a peer, by differencing a long and a SHORT-step run (best of repeats).

    The data are pre-sampled for the long run; the short run uses its first SHORT steps.  A
    warm-up call of each length comes first (it compiles the JAX peer for that shape).
    """
    if steps is None:  # calibrate on a probe of 4 * SHORT steps
        W0, X, Y = peer_data(4 * SHORT)
        run = _peer_runner(name, W0, X, Y)
        run(4 * SHORT)
        t0 = time.perf_counter()
        run(4 * SHORT)
        per = (time.perf_counter() - t0) / (4 * SHORT)
        steps = SHORT + int(seconds / max(per, 1e-9))
    steps = max(int(steps), 2 * SHORT)
    W0, X, Y = peer_data(steps)
    run = _peer_runner(name, W0, X, Y)

    timed = lambda n: _timed(lambda: run(n))  # noqa: E731

    timed(SHORT), timed(steps)  # warm-up
    for _ in range(3):  # a run disturbed by other load can make the difference meaningless
        t_short = min(timed(SHORT) for _ in range(repeats))
        t_long = min(timed(steps) for _ in range(repeats))
        if t_long > t_short:
            break
    return (t_long - t_short) / (steps - SHORT), steps


def check_peers(peers, n_steps=500):
    """Max abs difference of each peer's final W from the NumPy loop's, same W0 and data."""
    W0, X, Y = peer_data(n_steps, seed=1)
    ref = numpy_loop(W0, X, Y)
    out = {}
    for name in peers:
        if name == "numpy-loop":
            continue
        W = np.asarray(_peer_runner(name, W0, X, Y)(n_steps))
        out[name] = float(np.max(np.abs(W - ref)))
    return out, float(np.max(np.abs(ref - W0)))


def check_mfnn(prob, n_steps=500):
    """Max abs difference between mfnn's W after n_steps and the NumPy loop fed mfnn's own data.

    Rebuilds replica 0's initialization and data from mfnn.solve(OnlineSGD)'s key convention (replica key
    fold_in(key, 0); init from fold_in(., 0); step k's sample from fold_in(fold_in(., 1), k)).
    Returns None where that does not reproduce mfnn's initialization (the convention changed).
    """
    key = jax.random.PRNGKey(0)
    rkey = jax.random.fold_in(key, 0)
    W0 = np.asarray(prob.sample_init(jax.random.fold_in(rkey, 0), N, jnp.float64)["w"])
    dkey = jax.random.fold_in(rkey, 1)
    xs, ys = jax.vmap(lambda k: prob.task.sample(jax.random.fold_in(dkey, k), 1, jnp.float64))(
        jnp.arange(n_steps))
    X, Y = np.asarray(xs[:, 0]), np.asarray(ys[:, 0])
    sol = solve(prob, OnlineSGD(n_neurons=N, eps=EPS), SaveAt((0.0, n_steps * EPS), ("risk", "params")), key=key)
    Wm = np.asarray(sol.ys["params/w"])
    Wm0, Wm = Wm.reshape(-1, N, D)[0], Wm.reshape(-1, N, D)[-1]  # (time, replica) leading axes, one replica
    if not np.allclose(Wm0, W0, rtol=0, atol=1e-14):
        return None
    return float(np.max(np.abs(numpy_loop(W0, X, Y) - Wm)))


def gemm_rate(repeats=5):
    """float64 GEMM rate (flop/s) of XLA on this machine at the engine's shapes, best of repeats:
    (N x d) @ (d x 4096), the shape of the pre-activations of a block of steps."""
    a = jnp.ones((N, D), jnp.float64)
    b = jnp.ones((D, 4096), jnp.float64)
    f = jax.jit(jnp.matmul)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * N * D * 4096 / best


def gemm_rate_one_core(repeats=5):
    """``gemm_rate`` on one core: a subprocess pinned to one CPU with XLA's Eigen thread pool off
    (``--xla_cpu_multi_thread_eigen=false``); None where that subprocess fails."""
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip())
    code = ("import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import sgd_throughput as b; print(b.gemm_rate({int(repeats)}))")
    try:
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        return float(res.stdout.strip().splitlines()[-1])
    except Exception:  # noqa: BLE001  (no sched_setaffinity, a failed import: the line says so)
        return None


def fixed_costs(prob, repeats=3):
    """Milliseconds of the fixed cost of one mfnn.solve(OnlineSGD) call (engine auto, float64, one
    replica), best of repeats: the whole call with no steps and saves at t = 0 and t = 0 with the
    risk; ``init`` (OnlineSGD.init: the initial parameters and keys); one exact population risk
    (O(N^2 K), compiled alone); the rest (driver, dispatch, transfers)."""
    method = OnlineSGD(n_neurons=N, eps=EPS)
    best = lambda f: min(_timed(f) for _ in range(repeats))  # noqa: E731
    call = lambda: solve(prob, method, SaveAt((0.0, 0.0), ("risk",)), key=0)  # noqa: E731
    call()
    total = best(call)
    with jax.enable_x64(True):
        init = lambda: jax.block_until_ready(method.init(prob, np.array([0.0, 0.0]), jax.random.PRNGKey(0)))  # noqa: E731
        init()
        t_init = best(init)
        theta = prob.sample_init(jax.random.PRNGKey(0), N, jnp.float64)
        risk = jax.jit(prob.risk)
        risk(theta).block_until_ready()
        t_risk = best(lambda: risk(theta).block_until_ready())
        thetas = jax.vmap(lambda k: prob.sample_init(k, N, jnp.float64))(jax.random.split(jax.random.PRNGKey(0), 16))
        risk16 = jax.jit(lambda th: jax.lax.map(prob.risk, th))  # as OnlineSGD.observe
        risk16(thetas).block_until_ready()
        t_risk16 = best(lambda: risk16(thetas).block_until_ready())
    return {"total": total * 1e3, "init": t_init * 1e3, "risk_per_save": t_risk * 1e3, "risk16": t_risk16 * 1e3,
            "rest": (total - t_init - 2 * t_risk) * 1e3}


def cpu_per_step(name, prob, steps, repeats=3):
    """CPU seconds (this process, all threads) per step of the numba peer or of mfnn auto float64 x1,
    long minus SHORT-step run, best of repeats: less sensitive to other jobs on the cores than wall
    time (mfnn's count includes XLA's sampling threads, so it is the conservative one)."""
    if name == "mfnn":
        method = OnlineSGD(n_neurons=N, eps=EPS)
        run = lambda n: solve(prob, method, SaveAt((0.0, n * EPS), ("w_norm",)), key=0)  # noqa: E731
    else:
        W0, X, Y = peer_data(steps)
        run = _peer_runner(name, W0, X, Y)

    cpu = lambda n: _timed(lambda: run(n), time.process_time)  # noqa: E731

    cpu(SHORT), cpu(steps)  # warm-up (compiles)
    return (min(cpu(steps) for _ in range(repeats)) - min(cpu(SHORT) for _ in range(repeats))) / (steps - SHORT)


def _timed(f, clock=time.perf_counter):
    """Seconds of ``f()`` on ``clock`` (wall: ``time.perf_counter``; CPU: ``time.process_time``)."""
    t0 = clock()
    f()
    return clock() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None,
                    help="steps of the long timed run (default: calibrated to --seconds)")
    ap.add_argument("--seconds", type=float, default=2.0, help="target length of a timed run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best kept)")
    args = ap.parse_args()
    tv = f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ""
    tv += f", numba {numba.__version__}" if numba else ""
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f}, "
          f"jax {jax.__version__}, numpy {np.__version__}{tv}")
    print(f"# N={N} d={D} ramp, IsotropicGaussians(delta={DELTA}), kappa={KAPPA}, eps={EPS}; "
          f"saves at t=0 and t=T only")
    print("# peers get (x, y) pre-sampled in NumPy outside the timing; mfnn samples its own data "
          "inside the timed run")
    prob = problem()
    peers = ["numpy-loop", "jax-scan"]
    if numba is None:
        print("# numba-loop: skipped (import numba failed; pip install 'mfnn[bench]')")
    else:
        peers.append("numba-loop")
    if torch is None:
        print("# torch-eager: skipped (import torch failed; pip install 'mfnn[bench]')")
    else:
        peers.append("torch-eager")

    diffs, moved = check_peers(peers)
    for name, diff in diffs.items():
        print(f"# check: {name} vs numpy-loop, 500 steps, same data: max |W - W_numpy| = "
              f"{diff:.2e} (W moved by up to {moved:.2e})")
    dm = check_mfnn(prob)
    print("# check: mfnn auto vs numpy-loop on mfnn's data, 500 steps: " + (
        "skipped (could not rebuild mfnn's initialization from its key convention)" if dm is None
        else f"max |W - W_numpy| = {dm:.2e}"))

    rows = []
    for name in peers:
        per, steps = measure_peer(name, steps=args.steps, seconds=args.seconds,
                                  repeats=args.repeats)
        rows.append((name, "float64", 1, per, steps))
        print(f"#   measured {name} float64 x1: {per * 1e6:.2f} us/step ({steps} steps)", flush=True)
    from mfnn.solvers import _sgd_kernel

    why = _sgd_kernel.kernel_status(prob, OnlineSGD(n_neurons=N, eps=EPS))
    print(f"# engine auto = {'the C++ kernel' if why is None else 'the JAX blocked engine (' + why + ')'}")
    rate = gemm_rate()
    bound = 4 * N * D / rate
    print(f"# flop bound: 4 N d = {4 * N * D / 1e3:.0f} kflop per step at the measured float64 GEMM rate "
          f"{rate / 1e9:.1f} GFLOP/s (both cores; the target's reference): {bound * 1e6:.2f} us/step")
    rate1 = gemm_rate_one_core()
    bound1 = None if rate1 is None else 4 * N * D / rate1
    print("# flop bound at the ONE-core float64 GEMM rate (one replica runs on one thread): " + (
        "not measured (the pinned subprocess failed)" if rate1 is None else
        f"{rate1 / 1e9:.1f} GFLOP/s: {bound1 * 1e6:.2f} us/step (two-core rate / one-core rate = {rate / rate1:.2f})"))
    fc = fixed_costs(prob)
    print(f"# fixed cost per call (auto, float64, 1 replica, saves at t = 0 and T with the risk): "
          f"{fc['total']:.0f} ms = init {fc['init']:.0f} ms + 2 x exact risk {fc['risk_per_save']:.0f} ms "
          f"+ rest (driver, dispatch, transfers) {fc['rest']:.0f} ms; the exact risk of 16 replicas (one "
          f"save) {fc['risk16']:.0f} ms", flush=True)
    runs = [("auto", "float64", 1), ("auto", "float64", 16), ("auto", "float32", 1), ("auto", "float32", 16),
            ("blocked", "float64", 1), ("blocked", "float64", 16), ("generic", "float64", 1)]
    if True:
        for engine, dtype, replicas in runs:
            if True:
                per, steps = measure_sgd(prob, engine, dtype, replicas, steps=args.steps,
                                         seconds=args.seconds, repeats=args.repeats)
                rows.append((engine, dtype, replicas, per, steps))
                print(f"#   measured {engine} {dtype} x{replicas}: {per * 1e6:.2f} us/step "
                      f"({steps} steps)", flush=True)

    np_per = rows[0][3]
    nu_np = N / np_per
    header = (f"| {'engine':11s} | {'dtype':7s} | {'replicas':8s} | {'neuron-updates/s':16s} | "
              f"{'us/step/replica':15s} | {'vs NumPy':8s} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for engine, dtype, replicas, per, _ in rows:
        nu = N * replicas / per
        print(f"| {engine:11s} | {dtype:7s} | {replicas:8d} | {nu:16.3e} | "
              f"{per / replicas * 1e6:15.2f} | {nu / nu_np:8.1f} |")
    mf_per = next(r[3] for r in rows if r[:3] == ("auto", "float64", 1))
    best = min((r for r in rows if r[0] in peers), key=lambda r: r[3])
    print(f"speedup_vs_numpy_loop: {np_per / mf_per:.1f}")
    print(f"# best peer: {best[0]} at {best[3] * 1e6:.2f} us/step; mfnn auto float64 x1 at "
          f"{mf_per * 1e6:.2f} us/step")
    r16 = next(r[3] for r in rows if r[:3] == ("auto", "float64", 16))
    print(f"# replicas: 16 float64 replicas at {16 * mf_per / r16:.2f}x the aggregate throughput of one "
          f"(target >= 1.6); mfnn auto float64 x1 at {mf_per / bound:.2f}x the two-core flop bound (the target's "
          f"reference, target <= 2)" + ("" if bound1 is None else f", {mf_per / bound1:.2f}x the one-core bound") + "; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    if numba is not None:
        c_nb, c_mf = cpu_per_step("numba-loop", prob, 100_000), cpu_per_step("mfnn", prob, 100_000)
        print(f"# CPU-time cross-check (100000 steps, best of 3): numba-loop {c_nb * 1e6:.2f} us/step, mfnn auto "
              f"float64 x1 {c_mf * 1e6:.2f} us/step CPU (all threads): ratio {c_nb / c_mf:.2f}; load average "
              f"{os.getloadavg()[0]:.2f}")
    print(f"speedup_vs_best_peer: {best[3] / mf_per:.2f}")


if __name__ == "__main__":
    main()
