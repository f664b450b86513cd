"""Neuronal embeddings: how the initial weights of a multilayer network are made (Nguyen–Pham
2020, section on neuronal embeddings; Pham–Nguyen ICLR 2021 section 3).

An embedding samples per-neuron labels C_i(j) and sets w_1(j) = w_1^0(C_1(j)),
W_i[j, k] = w_i^0(C_{i-1}(j), C_i(k)), w_L(j) = w_L^0(C_{L-1}(j)).  Randomness is counter-based:
neuron j's label (and, for i.i.d. middle layers, entry (j, k)) is drawn from
``fold_in(layer_key, j)`` (``fold_in(fold_in(layer_key, j), k)``), so a width-n network's initial
weights are *exactly* the leading block of the width-2n network's for the same key
(**prefix coupling**: width comparisons share one sample path).

* :class:`IIDEmbedding`: i.i.d. per-layer laws: w_1 ~ N(w1_mean, w1_std^2 / d) per coordinate,
  middle entries N(mid_mean, mid_std^2), w_L uniform on [out_mean - out_width, out_mean + out_width]
  (bounded, Assumption 2 of ICLR 2021), biases N(bias_mean, bias_std^2).
* :class:`CorrelatedEmbedding`: latent labels C_1(j) ~ N(0, I_d) (w_1 = w1_mean + w1_std C_1 / sqrt(d),
  full support), C_i(j) ~ N(0, I_m) for 2 <= i <= L - 1, middle weights g_i(C_{i-1}(j), C_i(k)) and
  output weights out_mean + out_width tanh(<gamma, C_{L-1}>/sqrt(m)).  The built-in g is the
  "bidirectional diversity" example (a library construction, not the paper's):
  g_i(u, v) = mid_mean + scale tanh(gain (u^T B_i v / sqrt(m_u m_v) + <beta_i, u>/sqrt(m_u) + <beta'_i, v>/sqrt(m_v)))
  with fixed Gaussian B_i, beta_i, beta'_i: every middle neuron's incoming and outgoing weight
  maps vary with its own label.  A user ``g(U, V, i) -> (n_{i-1}, n_i)`` receives the label
  matrices; entry (j, k) must depend on U[j] and V[k] only (this keeps the prefix coupling).
"""

from __future__ import annotations

import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import Module, real, to_int

__all__ = ["Embedding", "IIDEmbedding", "CorrelatedEmbedding", "neuron_normals", "entry_normals",
           "bidirectional_diversity"]


_DRAW = jnp.float64  # draws are float64 (when x64 is on) and cast: float32 and float64 runs start together


def neuron_normals(key, n: int, shape: tuple, dtype=jnp.float64):
    """(n, *shape) standard normals; row j depends only on (key, j) (prefix-consistent)."""
    return jax.vmap(lambda j: jax.random.normal(jax.random.fold_in(key, j), shape, dtype))(jnp.arange(n))


def _neuron_uniform(key, n: int, dtype):
    return jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(key, j), (), dtype, -1.0, 1.0))(jnp.arange(n))


def entry_normals(key, rows: int, cols: int, dtype=jnp.float64):
    """(rows, cols) standard normals; entry (j, k) depends only on (key, j, k)."""
    def row(j):
        kj = jax.random.fold_in(key, j)
        return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(kj, k), (), dtype))(jnp.arange(cols))

    return jax.lax.map(row, jnp.arange(rows))


class Embedding(Module):
    """Interface: ``sample(key, net, dtype) -> params`` (``MultilayerNetwork.param_shapes`` keys)."""

    def sample(self, key, net, dtype=jnp.float64):  # pragma: no cover - interface
        raise NotImplementedError


def _biases(emb, key, net, dtype, out):
    for i in net.biases:
        k = jax.random.fold_in(key, 500 + i)
        if i < net.depth:
            z = neuron_normals(k, net.widths[i - 1], (), dtype)
            mean = emb.bias_mean if i == 1 else emb.deep_bias_mean
        else:
            z, mean = jax.random.normal(k, (), dtype), 0.0
        out[f"b{i}"] = (mean + emb.bias_std * z).astype(dtype)
    return out


class IIDEmbedding(Embedding):
    """i.i.d. initialization, layer by layer (module docstring)."""

    w1_mean: float = real("init.w1_mean", 0.0)
    w1_std: float = real("init.w1_std", 1.0)
    mid_mean: float = real("init.mid_mean", 1.0)
    mid_std: float = real("init.mid_std", 1.0)
    out_mean: float = real("init.out_mean", 1.0)
    out_width: float = real("init.out_width", 0.5)
    bias_mean: float = real("init.bias_mean", 0.0)
    deep_bias_mean: float = real("init.deep_bias_mean", 0.0)
    bias_std: float = real("init.bias_std", 1.0)

    def __check_init__(self):
        for f in ("w1_std", "mid_std", "out_width", "bias_std"):
            v = getattr(self, f)
            check(not hasattr(v, "shape") or float(v) >= 0, f"init.{f}", f"must be >= 0, got {v}")

    def sample(self, key, net, dtype=jnp.float64):
        out_dtype, dtype = dtype, _DRAW
        L, n, d = net.depth, net.widths, net.d
        out = {"w1": (self.w1_mean + self.w1_std / math.sqrt(d) * neuron_normals(jax.random.fold_in(key, 1), n[0], (d,), dtype)).T}
        for i in range(2, L):
            out[f"w{i}"] = self.mid_mean + self.mid_std * entry_normals(jax.random.fold_in(key, i), n[i - 2], n[i - 1], dtype)
        out[f"w{L}"] = self.out_mean + self.out_width * _neuron_uniform(jax.random.fold_in(key, L), n[L - 2], dtype)
        out = _biases(self, key, net, dtype, out)
        return {k: v.astype(out_dtype) for k, v in out.items()}


def _dot(U, M):
    """U @ M summed in a fixed order, term by term over the (small) label axis: every entry is the
    same float whatever the number of rows, so prefix coupling stays exact (a GEMM's blocking
    depends on the matrix shape and changes the last bits)."""
    acc = U[:, 0:1] * M[0:1]
    for a in range(1, U.shape[1]):
        acc = acc + U[:, a:a + 1] * M[a:a + 1]
    return acc


def bidirectional_diversity(key, m_in: int, m_out: int, mid_mean, scale, gain, dtype):
    """The built-in g_i (module docstring) with its fixed coefficients drawn from ``key``."""
    kB, kb, kc = jax.random.split(key, 3)
    B = jax.random.normal(kB, (m_in, m_out), dtype)
    beta = jax.random.normal(kb, (m_in,), dtype)
    beta2 = jax.random.normal(kc, (m_out,), dtype)

    def g(U, V):
        z = _dot(_dot(U, B), V.T) / math.sqrt(m_in * m_out) + _dot(U, beta[:, None]) / math.sqrt(m_in) \
            + _dot(V, beta2[:, None]).T / math.sqrt(m_out)
        return mid_mean + scale * jnp.tanh(gain * z)

    return g


class CorrelatedEmbedding(Embedding):
    """Initial weights from per-neuron latent labels (module docstring); ``g`` optional user map."""

    label_dim: int = eqx.field(static=True, default=16, converter=lambda v: to_int("init.label_dim", v, minimum=1, maximum=4096))
    w1_mean: float = real("init.w1_mean", 0.0)
    w1_std: float = real("init.w1_std", 1.0)
    mid_mean: float = real("init.mid_mean", 0.0)
    scale: float = real("init.scale", 2.0)
    gain: float = real("init.gain", 2.0)
    out_mean: float = real("init.out_mean", 1.0)
    out_width: float = real("init.out_width", 0.5)
    bias_mean: float = real("init.bias_mean", 0.0)
    deep_bias_mean: float = real("init.deep_bias_mean", 0.0)
    bias_std: float = real("init.bias_std", 1.0)
    g: Callable | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check(self.g is None or callable(self.g), "init.g", "must be callable g(U, V, layer) -> matrix")

    def labels(self, key, net, dtype=jnp.float64) -> list:
        """[C_1 (n_1, d), C_2 (n_2, m), ..., C_{L-1}]: prefix-consistent per-neuron labels."""
        dims = (net.d,) + (self.label_dim,) * (net.depth - 2)
        return [neuron_normals(jax.random.fold_in(key, 100 + i), net.widths[i - 1], (dims[i - 1],), dtype)
                for i in range(1, net.depth)]

    def sample(self, key, net, dtype=jnp.float64):
        out_dtype, dtype = dtype, _DRAW
        L, d = net.depth, net.d
        C = self.labels(key, net, dtype)
        out = {"w1": (self.w1_mean + self.w1_std / math.sqrt(d) * C[0]).T}
        for i in range(2, L):
            U, V = C[i - 2], C[i - 1]
            if self.g is None:
                g = bidirectional_diversity(jax.random.fold_in(key, 200 + i), U.shape[1], V.shape[1],
                                            self.mid_mean, self.scale, self.gain, dtype)
                out[f"w{i}"] = g(U, V)
            else:
                W = jnp.asarray(self.g(U, V, i), dtype)
                check(W.shape == (U.shape[0], V.shape[0]), "init.g",
                      f"layer {i}: must return shape {(U.shape[0], V.shape[0])}, got {W.shape}")
                out[f"w{i}"] = W
        gamma = jax.random.normal(jax.random.fold_in(key, 300), (C[-1].shape[1],), dtype)
        out[f"w{L}"] = self.out_mean + self.out_width * jnp.tanh(_dot(C[-1], gamma[:, None])[:, 0] / math.sqrt(C[-1].shape[1]))
        out = _biases(self, key, net, dtype, out)
        return {k: v.astype(out_dtype) for k, v in out.items()}
