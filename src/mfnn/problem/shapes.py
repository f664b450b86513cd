"""Named activation shapes built from the generic ``PiecewiseLinear`` (no new numerics).

* :func:`even_piecewise_linear`: sigma(t) = g(|t|) with g piecewise linear on [0, inf), flat
  beyond its last breakpoint.
* ``HALF_BREAKPOINTS`` / ``HALF_VALUES``: the non-monotone activation of our reproduction of
  PNAS 2018 Fig. 4 (the paper does not state its sigma; this one is ours):

      |t|      0     0.1    0.3    1.0    2.0   (flat beyond)
      sigma   -0.5   0.5   -1.5   -1.5    3.5

Why it traps small initializations (isotropic task, Delta = 0.5, tau_+- = 1 +- Delta).  At d = inf a
point mass delta_r has risk R(delta_r) = (1/2)(1 - m(tau_+ r))^2 + (1/2)(1 + m(tau_- r))^2, m(s) =
E sigma(s G), and 2 psi'(r; delta_r) = d/dr R(delta_r), so every critical point of r -> R(delta_r)
is a fixed point of the DD (PNAS 2018 eq. 13).  The bump sigma(0.1) = 0.5 gives R(delta_r) a local
minimum at r ~ 0.05 (R ~ 0.77: the tau_+ class sees the bump, the tau_- class sees sigma(0) = -0.5);
the dip to -1.5 on [0.3, 1] raises a barrier (R ~ 2 at r ~ 0.33); beyond it m(1.5 r) -> +1 on the
rise to 3.5 while m(0.5 r) ~ -1 sits in the dip, so the global minimum (R ~ 0.007 at d = inf, ~0.01
at d = 320) is a single radius r* ~ 1.36.  The stalled state is a fixed point (psi' ~ 0 on its
support) but not a minimizer: psi(.; rho) is lower near r* (optimality gap ~ 0.98, so the
first-order condition of a minimizer of the convex R, supp rho in argmin psi(.; rho), fails).  The design came from scanning R(delta_r) and the d = inf radial DD.
"""

from __future__ import annotations

import math

from ..errors import check
from .activations import PiecewiseLinear

# sigma on |t| (mirrored to t < 0): knots at 0 and at these breakpoints, flat beyond the last
HALF_BREAKPOINTS = (0.1, 0.3, 1.0, 2.0)
HALF_VALUES = (-0.5, 0.5, -1.5, -1.5, 3.5)  # sigma(0), sigma(0.1), sigma(0.3), sigma(1), sigma(2)


def check_even_shape(half_breakpoints, half_values, bound: float = 1e3) -> None:
    """ConfigError (field ``half_breakpoints`` / ``half_values``) unless the breakpoints are in
    (0, bound] and strictly increasing and the values are finite in [-bound, bound], one more of them."""
    b, v = tuple(half_breakpoints), tuple(half_values)
    check(len(b) >= 1 and all(isinstance(x, (int, float)) and 0 < x <= bound for x in b)
          and all(b2 > b1 for b1, b2 in zip(b, b[1:])), "half_breakpoints",
          f"need values in (0, {bound:g}], strictly increasing")
    check(len(v) == len(b) + 1, "half_values", "need one value at 0 plus one per breakpoint")
    check(all(isinstance(x, (int, float)) and math.isfinite(x) and abs(x) <= bound for x in v), "half_values",
          f"need finite values in [-{bound:g}, {bound:g}]")


def even_piecewise_linear(half_breakpoints, half_values) -> PiecewiseLinear:
    """sigma(t) = g(|t|), g piecewise linear through (0, v_0), (b_j, v_{j+1}), flat beyond b_last.

    ``half_breakpoints`` must be positive and strictly increasing and ``half_values`` one longer
    (the value at 0 first); ``PiecewiseLinear`` validates the mirrored knots.
    """
    b = tuple(float(x) for x in half_breakpoints)
    v = tuple(float(x) for x in half_values)
    bp = tuple(-x for x in reversed(b)) + (0.0,) + b
    vals = tuple(reversed(v[1:])) + (v[0],) + v[1:]
    return PiecewiseLinear(bp, vals, name="even_piecewise_linear")
