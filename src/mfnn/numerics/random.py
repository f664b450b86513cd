"""Fast exact Gaussian sampling.

``jax.random.normal`` in float64 goes through a slow float64 erfinv on CPU (~100 us for 40
numbers, 30x the float32 cost: see benchmarks/sgd_throughput.py); the Box-Muller transform of
float64 uniforms is exact in distribution and as cheap as float32 sampling.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def normal(key, shape, dtype=jnp.float64):
    """Standard normal samples of ``shape`` (Box-Muller for float64, jax.random.normal otherwise)."""
    dtype = jnp.dtype(dtype)
    if dtype != jnp.float64:
        return jax.random.normal(key, shape, dtype)
    n = math.prod(shape)
    m = (n + 1) // 2
    k1, k2 = jax.random.split(key)
    u1 = jax.random.uniform(k1, (m,), dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    u2 = jax.random.uniform(k2, (m,), dtype)
    rad = jnp.sqrt(-2.0 * jnp.log(u1))
    ang = 2.0 * math.pi * u2
    z = jnp.concatenate([rad * jnp.cos(ang), rad * jnp.sin(ang)])[:n]
    return z.reshape(shape)
