"""Finite data sets as tasks: ``FiniteDataset`` (sampling = drawing rows uniformly with
replacement, so online SGD on it is mini-batch SGD and full-batch GD uses all rows) and
:func:`digits_task`, scikit-learn's bundled 8x8 handwritten digits (no download; optional extra
``data``: ``pip install mfnn[data]``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check
from ..numerics.pytree import to_int
from .tasks import Task

__all__ = ["FiniteDataset", "digits_task"]


def _matrix(name, v):
    a = np.asarray(v, dtype=np.float64)
    check(a.ndim == 2 and a.shape[0] >= 1 and np.all(np.isfinite(a)), name, f"must be a finite (n, d) array, got shape {a.shape}")
    return a


class FiniteDataset(Task):
    """The empirical law of rows (x_i, y_i).  ``x`` (n, d) and ``y`` (n,) are float64 leaves."""

    x: np.ndarray = eqx.field(converter=lambda v: _matrix("x", v))
    y: np.ndarray = eqx.field(converter=lambda v: np.asarray(v, dtype=np.float64))
    d: int = eqx.field(static=True, init=False)
    n_mc: int = eqx.field(static=True, default=20000)

    def __post_init__(self):
        self.d = int(self.x.shape[1])

    def __check_init__(self):
        check(self.y.shape == (self.x.shape[0],) and bool(np.all(np.isfinite(self.y))), "y",
              f"must be finite with shape ({self.x.shape[0]},), got {self.y.shape}")

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    def sample(self, key, n: int, dtype=jnp.float64):
        idx = jax.random.randint(key, (n,), 0, self.size)
        return jnp.asarray(self.x, dtype)[idx], jnp.asarray(self.y, dtype)[idx]

    @property
    def y_second_moment(self) -> float:
        return float(np.mean(self.y ** 2))


def digits_task(positive=(0, 1, 2, 3, 4), n: int | None = None, seed: int = 0) -> FiniteDataset:
    """The 1797 8x8 digits of ``sklearn.datasets.load_digits`` as a regression task: x centred per
    pixel and scaled by one global std (so E|x|^2 = d), y = +1 for the ``positive`` digits, -1 otherwise; ``n`` rows
    chosen at random by ``seed`` (all by default)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("task", "the digits task needs scikit-learn: pip install 'mfnn[data]'") from None
    data = load_digits()
    x = np.asarray(data.data, float)
    x = x - x.mean(axis=0)
    x = x / x.std()  # one global scale: per-pixel standardization blows rare pixels up to ~40
    y = np.where(np.isin(data.target, positive), 1.0, -1.0)
    if n is not None:
        n = to_int("n_train", n, minimum=1, maximum=x.shape[0])
        idx = np.random.default_rng(seed).permutation(x.shape[0])[:n]
        x, y = x[idx], y[idx]
    return FiniteDataset(x, y)
