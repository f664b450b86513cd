"""Named activation shapes built from the generic ``PiecewiseLinear`` (no new numerics).

* :func:`even_piecewise_linear`: sigma(t) = g(|t|) with g piecewise linear on [0, inf), flat
  beyond its last breakpoint.
* ``HALF_BREAKPOINTS`` / ``HALF_VALUES``: the non-monotone activation of our reproduction of
  PNAS 2018 Fig. 4 (the paper does not state its sigma; this one is ours).  At d = inf a point
  mass delta_r has risk R(delta_r) = (1/2)(1 - m(1.5 r))^2 + (1/2)(1 + m(0.5 r))^2 (PNAS 2018
  eq. 21 with tau_+- = 1 +- Delta, Delta = 0.5), which for this sigma has a local minimum near
  r ~ 0.05 (the trap), a barrier near r ~ 0.33 and its global minimum near r ~ 1.36.
"""

from __future__ import annotations

from .activations import PiecewiseLinear

# sigma on |t| (mirrored to t < 0): knots at 0 and at these breakpoints, flat beyond the last
HALF_BREAKPOINTS = (0.1, 0.3, 1.0, 2.0)
HALF_VALUES = (-0.5, 0.5, -1.5, -1.5, 3.5)  # sigma(0), sigma(0.1), sigma(0.3), sigma(1), sigma(2)


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
