"""Anisotropic Gaussians / variable selection (PNAS 2018 Fig. 3).

    y = +-1 equiprobable,   x | y ~ N(0, Sigma_y),   Sigma_+- = diag((1 +- Delta)^2 I_s0, I_{d-s0})

Only the first s0 coordinates carry signal (COLT 2019 Thm 3 takes O = I; so do we).  R_# = 1.

Exact population terms for ``ProjectionUnit`` units a sigma(<w, x> + b) (PNAS 2018 eqs. 3-4;
implemented once for both Gaussian tasks in ``population.GaussianProjectionTerms``).  Write w = (w1, w2) with w1 the first s0
coordinates, tau_+- = 1 +- Delta.  Given the class,

    <w, x> + b = S_tau G + b,       S_tau^2 = tau^2 ||w1||^2 + ||w2||^2,

and two neurons are jointly Gaussian with correlation

    c_tau = (tau^2 <w1, w1'> + <w2, w2'>) / (S_tau S'_tau).

Mehler's formula with the orthonormal Hermite coefficients chat_k(S, b) = E[sigma(SG+b) h_k(G)]
(``Activation.hermite_coeffs``) gives

    V(theta)         = -(a/2) [ chat_0(S_+, b) - chat_0(S_-, b) ]
    U(theta, theta') = (a a'/2) sum_tau sum_k chat_k(S_tau, b) chat_k(S'_tau, b') c_tau^k.

The series is truncated at ``n_hermite`` terms for distinct neurons (error <= |c|^K E sigma^2 per
class, negligible for the cosines of distinct neurons); the diagonal i = j of R_N uses the exact
second moment ``Activation.second_moment`` (c = 1 there, where truncation would be worst).
s0 = d is the isotropic task of ``IsotropicGaussians`` (tested).
"""

from __future__ import annotations

import equinox as eqx

from ..errors import check
from ..numerics.pytree import is_tracer, real, to_int
from .tasks import GaussianClasses


class AnisotropicGaussians(GaussianClasses):
    """y = +-1, x | y ~ N(0, diag((1 + y Delta)^2 I_s0, I_{d-s0})): the PNAS Fig. 3 data law.

    ``d`` dimension, ``s0`` number of relevant coordinates (1 <= s0 <= d), ``delta`` in (0, 1).
    Exact V, U, R_N for ``ProjectionUnit`` (module docstring); Monte Carlo for other units.
    """

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1))
    s0: int = eqx.field(static=True, converter=lambda v: to_int("s0", v, minimum=1))
    delta: float = real("delta", 0.5)
    n_hermite: int = eqx.field(static=True, default=64, converter=lambda v: to_int("n_hermite", v, minimum=2, maximum=4096))
    n_mc: int = eqx.field(static=True, default=20000, converter=lambda v: to_int("n_mc", v, minimum=1, maximum=10**8))

    def __check_init__(self):
        check(self.s0 <= self.d, "s0", f"must be an integer in [1, d={self.d}], got {self.s0!r}")
        check(is_tracer(self.delta) or 0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
