"""Closed forms of H_rho0 (COLT 2019 eq. 16) for Gaussian rho_0.

rho_0: w ~ N(0, s^2 I_d), a independent of w with E a^2 = sigma_a^2, b = 0.  For
sigma_*(x; theta) = a sigma(<w, x> + b) the trained-parameter gradients are

    d/da = sigma(<w,x>),   d/dw = a sigma'(<w,x>) x,   d/db = a sigma'(<w,x>)

so (COLT 2019 eq. 16 with the gradients above)

    H = [a trained]  E_w[sigma(<w,x>) sigma(<w,x'>)]
      + [w trained]  sigma_a^2 <x, x'> E_w[sigma'(<w,x>) sigma'(<w,x'>)]
      + [b trained]  sigma_a^2          E_w[sigma'(<w,x>) sigma'(<w,x'>)]

("general coefficients" = a-term + w-term; "fixed coefficients" = w-term only).  The b-term is
the library's extension (b trained but 0 at initialization).

erf (section 9 of the note):  A = (1 + 2 s^2 |x|^2)(1 + 2 s^2 |x'|^2),
    E[erf erf']   = (2/pi) arcsin( 2 s^2 <x,x'> / sqrt(A) )                (Williams 1997)
    E[erf' erf'']  = (4/pi) / sqrt( A - 4 s^4 <x,x'>^2 )   (= (4/pi) det(I + 2C)^{-1/2}, C the
                                                          covariance of (<w,x>, <w,x'>))
ReLU (arc-cosine kernels of degree 1 and 0, Cho-Saul 2009), th = angle(x, x'):
    E[relu relu']  = (s^2 |x||x'| / (2 pi)) (sin th + (pi - th) cos th)
    E[1{.>0}1{.>0}] = (pi - th) / (2 pi)
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..errors import ConfigError, check
from ..problem.activations import Erf, PiecewiseLinear


def _terms(trained):
    trained = tuple(trained)
    for name in trained:
        check(name in ("a", "b", "w"), "trained", f"unknown parameter {name!r}")
    check(len(trained) > 0, "trained", "train at least one of a, b, w")
    return "a" in trained, "w" in trained, "b" in trained


def _pair(x, z):
    x = jnp.asarray(x, dtype=float)
    z = x if z is None else jnp.asarray(z, dtype=float)
    xx = jnp.sum(x * x, axis=-1)[:, None]
    zz = jnp.sum(z * z, axis=-1)[None, :]
    xz = x @ z.T
    return xx, zz, xz


def erf_kernel(x, z=None, *, s: float, sigma_a2: float = 1.0, trained=("a", "w")):
    """H_rho0(x_i, z_k) for sigma = erf, w ~ N(0, s^2 I), E a^2 = sigma_a2, b = 0 (section 9)."""
    ta, tw, tb = _terms(trained)
    xx, zz, xz = _pair(x, z)
    s2 = s * s
    A = (1.0 + 2.0 * s2 * xx) * (1.0 + 2.0 * s2 * zz)
    out = jnp.zeros_like(xz)
    if ta:
        out = out + (2.0 / math.pi) * jnp.arcsin(jnp.clip(2.0 * s2 * xz / jnp.sqrt(A), -1.0, 1.0))
    if tw or tb:
        dd = (4.0 / math.pi) / jnp.sqrt(A - 4.0 * s2 * s2 * xz * xz)
        out = out + sigma_a2 * ((xz if tw else 0.0) + (1.0 if tb else 0.0)) * dd
    return out


def relu_kernel(x, z=None, *, s: float, sigma_a2: float = 1.0, trained=("a", "w")):
    """H_rho0(x_i, z_k) for sigma = ReLU, w ~ N(0, s^2 I), E a^2 = sigma_a2, b = 0 (arc-cosine)."""
    ta, tw, tb = _terms(trained)
    xx, zz, xz = _pair(x, z)
    norm = jnp.sqrt(xx * zz)
    cos = jnp.clip(xz / jnp.maximum(norm, 1e-300), -1.0, 1.0)
    th = jnp.arccos(cos)
    out = jnp.zeros_like(xz)
    if ta:
        out = out + (s * s) * norm / (2.0 * math.pi) * (jnp.sqrt(1.0 - cos * cos) + (math.pi - th) * cos)
    if tw or tb:
        out = out + sigma_a2 * ((xz if tw else 0.0) + (1.0 if tb else 0.0)) * (math.pi - th) / (2.0 * math.pi)
    return out


def is_relu(act) -> bool:
    return (isinstance(act, PiecewiseLinear) and act.breakpoints == (0.0,) and act.values == (0.0,)
            and act.left_slope == 0.0 and act.right_slope == 1.0)


def gaussian_kernel(unit, init, x, z=None, *, d: int | None = None):
    """Closed-form H_rho0 for a ``ProjectionUnit`` with erf or ReLU and a ``GaussianInit``.

    Maps ``GaussianInit`` to the note's parameters: s = kappa / sqrt(d), sigma_a^2 = a_mean^2 + a_std^2
    (the random sign of ``symmetric_a`` does not change E a^2).  Needs b = 0 at initialization.
    """
    from ..problem.units import ProjectionUnit

    if not isinstance(unit, ProjectionUnit):
        raise ConfigError("unit", "closed forms exist only for ProjectionUnit")
    if init.b_mean != 0.0 or init.b_std != 0.0:
        raise ConfigError("init", "closed forms need b = 0 at initialization")
    x = jnp.asarray(x, dtype=float)
    d = int(x.shape[-1]) if d is None else int(d)
    s = init.kappa / math.sqrt(d)
    sigma_a2 = init.a_mean ** 2 + init.a_std ** 2
    if isinstance(unit.activation, Erf):
        return erf_kernel(x, z, s=s, sigma_a2=sigma_a2, trained=unit.trained)
    if is_relu(unit.activation):
        return relu_kernel(x, z, s=s, sigma_a2=sigma_a2, trained=unit.trained)
    raise ConfigError("unit.activation", f"no closed form for {unit.activation.name!r}; use mc_kernel")
