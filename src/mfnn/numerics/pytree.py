"""Pytree modules for problem descriptions and solver methods: numbers are leaves, structure is static.

Every piece of a problem (activation, unit, task, initial law, schedule, ``Problem``, and the
solver methods) is an ``equinox.Module``.  Numeric parameters are stored as float64 NumPy
scalars/arrays (``real`` fields): they are leaves, so a compiled program that takes the module as
an argument (``equinox.filter_jit``) is traced once per *structure* and serves every value of
Delta, kappa, eps, alpha, ...  Integers that fix shapes (``d``, ``n_hermite``), names of trained
parameters, callables and dtype names are plain Python values, which ``filter_jit`` treats as
static.  NumPy (not JAX) arrays keep the values float64 whatever the JAX x64 setting is when the
problem is built.

Modules compare and hash by value (structure plus the bytes of every leaf), so code that caches
on a problem (``functools.lru_cache``) keys on its content.
"""

from __future__ import annotations

import math
import numbers

import equinox as eqx
import jax
import numpy as np

from ..errors import ConfigError


class Module(eqx.Module):
    """``equinox.Module`` with value hashing/equality (see the module docstring)."""

    def __hash__(self):
        leaves, treedef = jax.tree_util.tree_flatten(self)
        return hash((treedef, tuple(np.asarray(x).tobytes() for x in leaves)))

    def __eq__(self, other):
        if type(self) is not type(other):
            return False
        l1, t1 = jax.tree_util.tree_flatten(self)
        l2, t2 = jax.tree_util.tree_flatten(other)
        return t1 == t2 and all(
            np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b))) for a, b in zip(l1, l2))


def is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def to_real(field: str, value, *, allow_inf: bool = False, shape: str = "scalar"):
    """``value`` as a float64 NumPy scalar (or 1-d array for ``shape="vector"``), checked.

    Rejects booleans, strings, None and non-finite values (unless ``allow_inf``) with a
    ``ConfigError`` naming ``field``.  Tracers pass through untouched (modules rebuilt inside a
    compiled program are not validated again).
    """
    if is_tracer(value):
        return value
    items = value if shape == "vector" else [value]
    if shape == "vector" and (isinstance(value, (str, bytes)) or not hasattr(value, "__len__")):
        raise ConfigError(field, f"must be a sequence of numbers, got {value!r}")
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.ndarray, jax.Array)):
            raise ConfigError(field, f"must be a real number, got {v!r}")
    arr = np.asarray(value, dtype=np.float64)
    if shape == "scalar" and arr.ndim != 0:
        raise ConfigError(field, f"must be a scalar, got shape {arr.shape}")
    if np.any(np.isnan(arr)) or (not allow_inf and not np.all(np.isfinite(arr))):
        raise ConfigError(field, f"must be finite, got {value!r}")
    return arr


def to_int(field: str, value, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """``value`` as a Python int in [minimum, maximum] (NumPy integers accepted, bools not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral,)):
        raise ConfigError(field, f"must be an integer, got {value!r}")
    v = int(value)
    if not minimum <= v <= maximum:
        raise ConfigError(field, f"must be in [{minimum}, {maximum}], got {v}")
    return v


def real(name: str, default=None, *, allow_inf: bool = False, shape: str = "scalar"):
    """A numeric leaf field (float64, validated by ``to_real``)."""
    conv = lambda v: to_real(name, v, allow_inf=allow_inf, shape=shape)  # noqa: E731
    if default is None:
        return eqx.field(converter=conv)
    return eqx.field(converter=conv, default=default)


def finite_or_inf(x) -> bool:
    """True for a concrete finite value (helper for static flags derived from leaves)."""
    return math.isfinite(float(x))
