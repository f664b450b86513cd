"""Teacher-network tasks: x ~ N(0, I_d), y = f*(x) + noise * N(0, 1).

f*(x) = sum_k c_k tanh(<v_k, x>) with v_k ~ N(0, I_d/d) and c_k = +-1/sqrt(K) (the teacher of
``mfnn.kernel.compare.tanh_teacher``, here as a ``Task`` whose weights are traced leaves).  The
label noise sets the noise floor of the squared loss: inf_f E (y - f(x))^2 = noise^2, the target
of the global-convergence theorems (Pham–Nguyen ICLR 2021 Thm 8, Case 1).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..numerics.pytree import is_tracer, real, to_int
from .tasks import Task

__all__ = ["TeacherNetwork"]


class TeacherNetwork(Task):
    """A two-layer tanh teacher with Gaussian inputs and label noise (module docstring)."""

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1, maximum=10**6))
    v: np.ndarray = real("teacher.v", shape="vector")
    c: np.ndarray = real("teacher.c", shape="vector")
    noise: float = real("noise", 0.0)
    n_mc: int = eqx.field(static=True, default=20000, converter=lambda v: to_int("n_mc", v, minimum=1, maximum=10**8))

    def __check_init__(self):
        check(is_tracer(self.noise) or self.noise >= 0, "noise", f"must be >= 0, got {self.noise}")
        if not is_tracer(self.v):
            check(self.v.size == self.c.size * self.d, "teacher.v", f"need K * d = {self.c.size * self.d} entries")

    @classmethod
    def random(cls, d: int, units: int = 4, noise: float = 0.0, seed: int = 0, **kw) -> "TeacherNetwork":
        """A teacher with ``units`` tanh neurons drawn from ``seed`` (NumPy, independent of JAX keys)."""
        units = to_int("teacher_units", units, minimum=1, maximum=10**5)
        d = to_int("d", d, minimum=1, maximum=10**6)
        rng = np.random.default_rng(seed)
        v = rng.standard_normal((units, d)) / np.sqrt(d)
        c = np.where(rng.random(units) < 0.5, 1.0, -1.0) / np.sqrt(units)
        return cls(d=d, v=v.ravel(), c=c, noise=noise, **kw)

    def f(self, x):
        V = jnp.reshape(self.v, (-1, self.d)).astype(x.dtype)
        return jnp.tanh(x @ V.T) @ self.c.astype(x.dtype)

    def sample(self, key, n: int, dtype=jnp.float64):
        kx, kn = jax.random.split(key)
        x = jax.random.normal(kx, (n, self.d), dtype)
        y = self.f(x) + jnp.asarray(self.noise, dtype) * jax.random.normal(kn, (n,), dtype)
        return x, y

    @property
    def noise_floor(self) -> float:
        """inf over functions of E (y - f(x))^2 = noise^2."""
        return float(self.noise) ** 2

    @property
    def y_second_moment(self) -> float:
        x, y = self.sample(jax.random.PRNGKey(0), self.n_mc)
        return float(jnp.mean(y * y))
