"""One full-batch mean-field GD step of a depth-4 network (Nguyen–Pham scaling): widths 1024,
batch 256, d = 64, tanh hidden layers, identity output, squared loss, float32 and float64.

    python benchmarks/multilayer_step.py [--width 1024] [--batch 256] [--d 64] [--repeats 5]
    pip install -e ".[bench]"   # optional: torch, for the PyTorch eager peer (skipped without it)

Peers, all the same step (forward, backward, w_i -= eps * n_{i-1} n_i * grad_i):
* ``mfnn``: ``MultilayerSGD.make_step`` (the explicit rescaled backward pass) under ``jax.jit``;
* ``numpy``: a plain NumPy forward / backward;
* ``torch``: PyTorch eager, autograd backward, then the scaled update;
* ``ceiling``: one (B x n) @ (n x n) matmul of the step's shape in JAX (the dense rate the step
  is made of).

FLOPs per step: 2 B (d n + 2 n^2 + n) forward + 2 B (2 n^2 + d n + n) weight gradients +
2 B (2 n^2 + n) back-propagation (~ 12 B n^2).  Prints us/step, GFLOP/s, the fraction of the
ceiling and the ratios; the last line is ``speedup_vs_torch: X`` (float32).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from mfnn.problem import IIDEmbedding, MultilayerProblem, TeacherNetwork, multilayer  # noqa: E402
from mfnn.solvers import MultilayerSGD  # noqa: E402


def best_time(fn, repeats: int) -> float:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def flops(B, n, d):
    return 2 * B * (d * n + 2 * n * n + n) + 2 * B * (2 * n * n + d * n + n) + 2 * B * (2 * n * n + n)


def mfnn_step(B, n, d, dtype, x, y):
    prob = MultilayerProblem(multilayer(d=d, depth=4, width=n), TeacherNetwork.random(d=d), IIDEmbedding())
    m = MultilayerSGD(eps=0.01, full_batch=True, n_train=B, dtype=dtype)
    params = prob.sample_init(jax.random.PRNGKey(0), jnp.dtype(dtype))
    data = {"x": jnp.asarray(x, dtype), "y": jnp.asarray(y, dtype)}
    step = jax.jit(lambda p: m.make_step(prob, jax.random.PRNGKey(1), data)(0, p))
    state = {"p": params}

    def run():
        state["p"] = step(state["p"])
        jax.block_until_ready(state["p"])
    return run, {k: np.asarray(v) for k, v in params.items()}


def numpy_step(params, x, y, n, eps=0.01):
    p = {k: v.copy() for k, v in params.items()}

    def run():
        H1 = x @ p["w1"]
        A1 = np.tanh(H1)
        H2 = A1 @ p["w2"] / n
        A2 = np.tanh(H2)
        H3 = A2 @ p["w3"] / n
        A3 = np.tanh(H3)
        yhat = A3 @ p["w4"] / n
        D4 = 2 * (yhat - y)
        B = x.shape[0]
        g4 = A3.T @ D4 / B
        D3 = D4[:, None] * p["w4"][None, :] * (1 - A3 ** 2)
        g3 = A2.T @ D3 / B
        D2 = (D3 @ p["w3"].T / n) * (1 - A2 ** 2)
        g2 = A1.T @ D2 / B
        D1 = (D2 @ p["w2"].T / n) * (1 - A1 ** 2)
        g1 = x.T @ D1 / B
        for k, g in (("w1", g1), ("w2", g2), ("w3", g3), ("w4", g4)):
            p[k] -= eps * g
    return run


def torch_step(params, x, y, n, eps=0.01):
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, yt = torch.tensor(x), torch.tensor(y)
    fac = {"w1": n, "w2": n * n, "w3": n * n, "w4": n}

    def run():
        A = torch.tanh(xt @ p["w1"])
        A = torch.tanh(A @ p["w2"] / n)
        A = torch.tanh(A @ p["w3"] / n)
        loss = torch.mean((A @ p["w4"] / n - yt) ** 2)
        grads = torch.autograd.grad(loss, list(p.values()))
        with torch.no_grad():
            for (k, v), g in zip(p.items(), grads):
                v -= eps * fac[k] * g
    return run


def ceiling(B, n, dtype, repeats):
    a = jax.random.normal(jax.random.PRNGKey(0), (B, n), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype) / n
    f = jax.jit(lambda a, b: a @ b)
    t = best_time(lambda: jax.block_until_ready(f(a, b)), repeats * 4)
    return 2 * B * n * n / t / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    B, n, d = a.batch, a.width, a.d
    F = flops(B, n, d)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed (pip install -e '.[bench]'): the PyTorch peer is skipped")
    rng = np.random.default_rng(0)
    speed = {}
    print(f"depth 4, widths {n}, batch {B}, d {d}: {F / 1e9:.2f} GFLOP per step")
    print(f"{'dtype':>8} {'peer':>8} {'us/step':>12} {'GFLOP/s':>9} {'of ceiling':>11}")
    for dtype in ("float32", "float64"):
        x = rng.standard_normal((B, d)).astype(dtype)
        y = rng.standard_normal(B).astype(dtype)
        run, params = mfnn_step(B, n, d, dtype, x, y)
        ceil = ceiling(B, n, dtype, a.repeats)
        times = {"mfnn": best_time(run, a.repeats), "numpy": best_time(numpy_step(params, x, y, n), a.repeats)}
        if have_torch:
            times["torch"] = best_time(torch_step(params, x, y, n), a.repeats)
        for peer, t in times.items():
            print(f"{dtype:>8} {peer:>8} {t * 1e6:12.0f} {F / t / 1e9:9.1f} {F / t / 1e9 / ceil:10.0%}")
        print(f"{dtype:>8} {'ceiling':>8} {'':>12} {ceil:9.1f}  (one {B}x{n} @ {n}x{n} matmul)")
        print(f"{dtype:>8} ratios: numpy/mfnn {times['numpy'] / times['mfnn']:.2f}"
              + (f", torch/mfnn {times['torch'] / times['mfnn']:.2f}" if have_torch else ""))
        speed[dtype] = times
    if have_torch:
        print(f"speedup_vs_torch: {speed['float32']['torch'] / speed['float32']['mfnn']:.2f}")
    else:
        print("speedup_vs_torch: n/a")


if __name__ == "__main__":
    main()
