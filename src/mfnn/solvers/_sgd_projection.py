"""Exact blocked online SGD for projection units sigma_*(x; theta) = a sigma(<w, x> + b).

For a ``ProjectionUnit`` and noiseless SGD (beta = inf) one step changes the weight matrix
W (N x d) by a decay and a rank-B term,

    W_{k+1} = delta_k W_k + C_k^T X_k,     delta_k = 1 - 2 lambda s_k  (1 when lambda = 0),
    C_k[m, i] = (2 s_k / (alpha B)) (y_{k,m} - yhat(x_{k,m})) a_i sigma'(z_{k,m,i}),

with X_k (B x d) the batch of step k (a and b, when trained, get their own N-vector updates
with the same coefficients).  Over a block of K steps j = 0..K-1, whose data and step sizes are
drawn up front exactly as ``sgd.make_step`` draws them, write P_j = prod_{i<j} delta_i and
Ct_i = C_i / P_{i+1}; then

    W_j = P_j (W_0 + sum_{i<j} Ct_i^T X_i),
    z_{j,m} = <w_j, x_{j,m}> + b_j = P_j (Z0[j,m] + sum_{i<j} G[j,m; i,.] Ct_i) + b_j,

with Z0 = X W_0^T (one GEMM per block) and G = X X^T the Gram matrix of the block's K B inputs.
The K steps then run sequentially on N-vectors only (pre-activations, activations, the error,
the a and b updates, the coefficients Ct_j), and W is written once per block,
W_K = P_K (W_0 + Ct^T X) (a second GEMM).  This is the generic step's arithmetic reassociated:
the iterates agree to rounding.

Layout and sub-blocks.  W is carried transposed, W^T (d x N), so that every product is a plain
row-major GEMM (the fast form for XLA on CPU).  The K steps of a block run in sub-blocks of S2
steps: a sub-block's pre-activations receive the earlier sub-blocks' contributions through one
GEMM, and within it each step adds its own sub-block's part, a (B x S2 B) x (S2 B x N) product.
The data of ``DRAW`` steps are sampled in one batched call; the steps past the end of a run are
masked (s = 0, which makes them exact identities: zero update, decay factor 1).

Noisy SGD (beta < inf) adds a full-rank Gaussian term to W every step, and a constraint retracts
W every step, so the trick does not apply and ``make_blocked_advance`` returns None.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..problem.units import ProjectionUnit

# Defaults chosen by measurement on a shared 2-core CPU (N = 800, d = 40, batch 1, float64; see
# benchmarks/README.md): (K, S2) = (32, 16) ran at ~9 us per step, (32, 8) and (16, 16) within 5%
# of it, (48, 16) and (64, 16 or 32) 15-25% slower, and unrolling the sequential loop was slower
# still (XLA then fuses each step's coefficients into the later steps and recomputes them).
BLOCK = 32  # steps per block (the GEMM size)
SUB = 16  # steps per sequential sub-block
DRAW = 64  # steps whose data are sampled in one batched call
_ROWS = 64  # rank-1 terms per block for batch_size > 1: K = _ROWS // batch_size


def draw_step(task, key, k, eps, xi, batch_size, dtype):
    """Data ``(x, y)`` and step size s_k = eps xi(k eps) of step k, from ``fold_in(key, k)``: the one
    draw every SGD engine (generic, blocked, C++ kernel) shares, so they run the same data."""
    kd = jax.random.fold_in(key, k)
    s = (eps * xi(k * eps)).astype(dtype)
    x, y = task.sample(kd, batch_size, dtype)
    return x, y, s


def _sizes(batch_size: int, block, sub, draw):
    K = int(block) if block is not None else max(1, min(BLOCK, _ROWS // batch_size))
    sub = int(sub) if sub is not None else SUB
    S2 = max(q for q in range(1, min(K, max(sub, 1)) + 1) if K % q == 0)  # divides K
    L = int(draw) if draw is not None else DRAW
    L = max(K, (L // K) * K)
    return K, S2, L


def make_blocked_advance(problem, config, key, *, block=None, sub=None, draw=None):
    """Return ``advance(theta, k0, n) -> theta`` (steps k0 .. k0+n-1, one replica), or None.

    None when the fast path does not apply: the unit is not a ``ProjectionUnit`` or the run is
    noisy (``config.beta < inf``).  ``block``, ``sub`` and ``draw`` override the number of steps
    per block, per sequential sub-block (a divisor of the block) and per sampling call.
    """
    unit, task = problem.unit, problem.task
    if not isinstance(unit, ProjectionUnit) or config.noisy or problem.constraint is not None:
        return None

    act = unit.activation
    trained = set(unit.trained)
    tr_w, tr_a, tr_b = "w" in trained, "a" in trained, "b" in trained
    dtype = jnp.dtype(config.dtype)
    # leaves are float64; a float32 run computes in float32
    alpha, lam = jnp.asarray(problem.alpha, dtype), jnp.asarray(config.lam, dtype)
    eps, xi, B = config.eps, config.xi, config.batch_size
    decay = config.decay
    K, S2, L = _sizes(B, block, sub, draw)
    m2 = S2 * B  # sample rows of a sub-block

    def draw_one(k):
        return draw_step(task, key, k, eps, xi, B, dtype)

    def sub_block(carry, Zq, Gq, Yq, Sq):
        """S2 sequential steps.  Zq (S2, B, N): pre-activations (times 1/P) without this
        sub-block's own contributions; Gq (S2, B, m2): Gram rows against the sub-block's
        samples.  Returns the new (a, b, P) and the coefficients Ct of the sub-block, (m2, N)."""
        N = Zq.shape[-1]
        mean_w = jnp.full((N,), 1.0 / N, dtype)

        def one(j, c):
            a, b, P, Cq = c
            s = Sq[j]
            z = jax.lax.dynamic_index_in_dim(Zq, j, axis=0, keepdims=False)  # (B, N)
            if tr_w:
                g = jax.lax.dynamic_index_in_dim(Gq, j, axis=0, keepdims=False)  # (B, m2)
                z = z + g @ Cq  # the rows of Cq not written yet are 0
                if decay:
                    z = P * z
            z = z + b[None, :]
            val = act.value(z)  # (B, N)
            err = Yq[j] - alpha * ((a[None, :] * val) @ mean_w)  # (B,); a dot vmaps better
            coef = (2.0 / alpha) * s * err / B
            ad = a[None, :] * act.deriv(z)  # (B, N): d sigma_* / d b
            dl = (1.0 - 2.0 * lam * s) if decay else None
            a_new = ((dl * a if decay else a) + coef @ val) if tr_a else a
            b_new = ((dl * b if decay else b) + coef @ ad) if tr_b else b
            if tr_w:
                if decay:
                    P = P * dl
                c = coef[:, None] * ad  # (B, N)
                Cq = jax.lax.dynamic_update_slice_in_dim(Cq, c / P if decay else c, j * B, axis=0)
            return a_new, b_new, P, Cq

        a, b, P = carry
        Cq0 = jnp.zeros((m2 if tr_w else 0, N), dtype)
        a, b, P, Cq = jax.lax.fori_loop(0, S2, one, (a, b, P, Cq0))
        return (a, b, P), Cq

    def run_block(th, X, XT, Y, S):
        """K steps on drawn data: X (K B, d) (row j B + m: sample m of step j), its transpose
        XT (d, K B), Y (K, B), step sizes S (K,).  ``th`` carries wT = W^T (d, N)."""
        wT = th["wT"]
        N = wT.shape[1]
        Z = X @ wT  # (K B, N) = X W_0^T
        G = X @ XT if tr_w else None  # (K B, K B)
        carry = (th["a"], th["b"], jnp.ones((), dtype))
        Cs = []
        for q in range(K // S2):
            r0 = q * m2
            Zq, Z = Z[:m2], Z[m2:]
            Gq = G[r0:r0 + m2, r0:r0 + m2].reshape(S2, B, m2) if tr_w else None
            steps = slice(q * S2, (q + 1) * S2)
            carry, Cq = sub_block(carry, Zq.reshape(S2, B, N), Gq, Y[steps], S[steps])
            if tr_w:
                Cs.append(Cq)
                if Z.shape[0]:  # the later sub-blocks see this one's coefficients
                    Z = Z + G[r0 + m2:, r0:r0 + m2] @ Cq
        a, b, P = carry
        new = dict(th)
        if tr_a:
            new["a"] = a
        if tr_b:
            new["b"] = b
        if tr_w:
            C = jnp.concatenate(Cs, axis=0) if len(Cs) > 1 else Cs[0]  # (K B, N)
            wT = wT + XT @ C
            new["wT"] = P * wT if decay else wT
        return new

    def advance(theta, k0, n):
        # draws of L steps, each running its blocks of K steps (fewer in the last draw); the
        # steps past k0 + n are masked out (s = 0: exact identities)
        def draw_body(i, th):
            ks = k0 + i * L + jnp.arange(L, dtype=jnp.asarray(k0).dtype)
            X, Y, S = jax.vmap(draw_one)(ks)  # (L, B, d), (L, B), (L,)
            n_left = n - i * L  # steps still to do (>= 1)
            S = jnp.where(jnp.arange(L) < n_left, S, jnp.zeros_like(S))
            X = X.reshape(L * B, -1)
            XT = X.T  # (d, L B); sliced per block, so XLA materializes it (no transposed GEMM)

            def blk(jb, th):
                sl = lambda A, axis, m: jax.lax.dynamic_slice_in_dim(A, jb * m, m, axis=axis)
                return run_block(th, sl(X, 0, K * B), sl(XT, 1, K * B), sl(Y, 0, K), sl(S, 0, K))

            return jax.lax.fori_loop(0, jnp.minimum(L // K, (n_left + K - 1) // K), blk, th)

        th = {name: v for name, v in theta.items() if name != "w"}
        th["wT"] = theta["w"].T
        th = jax.lax.fori_loop(0, (n + L - 1) // L, draw_body, th)
        out = {name: v for name, v in th.items() if name != "wT"}
        out["w"] = th["wT"].T if tr_w else theta["w"]
        return out

    return advance
