"""Initial laws rho_0 of one neuron's parameters (theta_i^0 i.i.d. rho_0)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ..errors import check


@dataclass(frozen=True)
class GaussianInit:
    """w ~ N(0, (kappa^2/d) I_d); a ~ a_mean + a_std N(0,1); b ~ b_mean + b_std N(0,1).

    ``kappa`` follows PNAS 2018 (rho_0 = N(0, kappa^2/d I_d); Fig. 1 uses kappa = 0.8).
    ``symmetric_a`` draws a = +-|a| with a fair sign (E a = 0: the kernel-limit property (I)).
    Parameters absent from a unit's shapes are skipped; a user unit's other leaves get N(0, 1/d).
    """

    kappa: float = 0.8
    a_mean: float = 1.0
    a_std: float = 0.0
    b_mean: float = 0.0
    b_std: float = 0.0
    symmetric_a: bool = False

    def __post_init__(self):
        check(self.kappa >= 0, "init.kappa", f"must be >= 0, got {self.kappa}")
        check(self.a_std >= 0, "init.a_std", f"must be >= 0, got {self.a_std}")
        check(self.b_std >= 0, "init.b_std", f"must be >= 0, got {self.b_std}")

    def sample(self, key, n: int, shapes: dict, dtype=jnp.float64):
        """Draw n neurons: a dict of arrays with leading axis n."""
        out = {}
        for i, (name, shape) in enumerate(sorted(shapes.items())):
            k = jax.random.fold_in(key, i)
            d = shape[0] if shape else 1
            z = jax.random.normal(k, (n,) + tuple(shape), dtype=dtype)
            if name == "w":
                out[name] = z * (self.kappa / math.sqrt(d))
            elif name == "a":
                a = self.a_mean + self.a_std * z
                if self.symmetric_a:
                    sign = jnp.where(jax.random.bernoulli(jax.random.fold_in(k, 1), 0.5, (n,)), 1.0, -1.0)
                    a = sign.astype(dtype) * a
                out[name] = a
            elif name == "b":
                out[name] = self.b_mean + self.b_std * z
            else:
                out[name] = z / math.sqrt(d)
        return out

    def radius_quantiles(self, d: int, m: int) -> np.ndarray:
        """The m midpoint quantiles of r = ||w||, which is (kappa/sqrt(d)) * chi_d."""
        u = (np.arange(m) + 0.5) / m
        return self.kappa / math.sqrt(d) * stats.chi.ppf(u, d)
