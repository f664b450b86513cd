"""SGD -> DD error sweeps and log-log exponent fits (PNAS 2018 Thm 3 / COLT 2019 Thm 1(A)).

The quantity of the bounds (PNAS 2018 Thm 3; COLT 2019 Thm 1(A)) is, per SGD realization,

    G = sup_{k in [0, T/eps]} | R_N(theta^k) - R(rho_{k eps}) |  <=  K e^{KT} sqrt(max(1/N, eps)) [...]

measured here on the save times of one run (``times``, which must lie on the step grid k eps).
:func:`gap_statistics` splits a batch of replicas into

* ``gap``:  G per replica (the bound's quantity; it contains the O(N^{-1/2}) fluctuation);
* ``fluct``: sup_t |R_N^{(r)}(t) - mean_r R_N(t)| per replica (the fluctuation alone, O(N^{-1/2}));
* ``bias``: sup_t |mean_r R_N(t) - R(rho_t)| (one number: the systematic part: the O(1/N) bias of
  R_N from the i = j terms of (1/N^2) sum_ij U, the O(1/N) correlations between particles, the
  O(eps) drift of SGD, plus the replica-mean's own O(1/sqrt(N R)) noise).

``gap <= fluct + bias`` replica by replica (triangle inequality at the maximizing time).

Experiments compute one SGD run per (N, eps) point (``mfnn.analysis.gap_points``) and compare it
with one DD reference risk curve.  :func:`loglog_fit` fits log y = c + p log x by least squares with a t-interval on p.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import check


def loglog_fit(x, y, level: float = 0.95) -> dict:
    """Least-squares fit log y = c + p log x with a ``level`` confidence interval on p.

    The interval is slope +- t_{(1+level)/2, n-2} * stderr (ordinary least squares with the
    residual variance estimated from the fit; needs >= 3 points).  Returns ``value`` (p),
    ``ci_low``, ``ci_high``, ``stderr``, ``intercept`` (c), ``n_points``, ``r2``.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    check(x.shape == y.shape and x.ndim == 1, "fit", "x and y must be 1-d arrays of the same length")
    n = x.size
    check(n >= 3, "fit", f"need >= 3 points for a slope with a confidence interval, got {n}")
    check(bool(np.all(np.isfinite(x) & (x > 0)) and np.all(np.isfinite(y) & (y > 0))), "fit",
          "x and y must be finite and > 0")
    lx, ly = np.log(x), np.log(y)
    check(0 < level < 1, "fit", f"level must be in (0, 1), got {level}")
    res = stats.linregress(lx, ly)
    q = stats.t.ppf(0.5 + level / 2, n - 2)
    return {"value": float(res.slope), "ci_low": float(res.slope - q * res.stderr),
            "ci_high": float(res.slope + q * res.stderr), "stderr": float(res.stderr),
            "intercept": float(res.intercept), "n_points": int(n), "r2": float(res.rvalue ** 2)}


def exponent_summary(fit: dict) -> dict:
    """The ``{"value", "ci_low", "ci_high"}`` part of a :func:`loglog_fit` result (summary.json form)."""
    return {k: fit[k] for k in ("value", "ci_low", "ci_high")}


def gap_statistics(risk, reference) -> dict:
    """Split SGD risks ``risk`` (replica, time) against the DD risk ``reference`` (time,).

    Returns ``gap`` (replica,), ``fluct`` (replica,) and ``bias`` (float); see the module note.
    ``fluct`` needs >= 2 replicas (NaN otherwise).
    """
    risk = np.asarray(risk, float)
    ref = np.asarray(reference, float)
    check(risk.ndim == 2 and ref.shape == risk.shape[1:], "risk",
          f"need risk (replica, time) and reference (time,), got {risk.shape} and {ref.shape}")
    mean = risk.mean(axis=0)
    gap = np.max(np.abs(risk - ref[None]), axis=1)
    fluct = (np.max(np.abs(risk - mean[None]), axis=1) if risk.shape[0] > 1
             else np.full(risk.shape[0], np.nan))
    return {"gap": gap, "fluct": fluct, "bias": float(np.max(np.abs(mean - ref)))}
