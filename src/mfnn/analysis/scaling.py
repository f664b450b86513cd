"""SGD -> DD error sweeps and log-log exponent fits (PNAS 2018 Thm 3 / COLT 2019 Thm 1(A)).

The quantity of the bounds (theory/two-layer-mean-field.md section 5, eq. "err_{N,D}";
theory/kernel-limit-and-bounds.md section 5, Thm 1(A)) is, per SGD realization,

    G = sup_{k in [0, T/eps]} | R_N(theta^k) - R(rho_{k eps}) |  <=  K e^{KT} sqrt(max(1/N, eps)) [...]

measured here on the save times of one run (``times``, which must lie on the step grid k eps).
:func:`gap_statistics` splits a batch of replicas into

* ``gap``:  G per replica (the bound's quantity; it contains the O(N^{-1/2}) fluctuation);
* ``fluct``: sup_t |R_N^{(r)}(t) - mean_r R_N(t)| per replica (the fluctuation alone, O(N^{-1/2}));
* ``bias``: sup_t |mean_r R_N(t) - R(rho_t)| (one number: the systematic part: the O(1/N) bias of
  R_N from the i = j terms of (1/N^2) sum_ij U, the O(1/N) correlations between particles, the
  O(eps) drift of SGD, plus the replica-mean's own O(1/sqrt(N R)) noise).

``gap <= fluct + bias`` replica by replica (triangle inequality at the maximizing time).

:func:`gap_sweep` runs :func:`mfnn.solvers.simulate_sgd` once per distinct (N, eps) (replicas are
vmapped inside one call; a repeated pair is reused, not re-run) against one DD reference risk
curve.  :func:`loglog_fit` fits log y = c + p log x by least squares with a t-interval on p.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..errors import DivergenceError, check


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


@dataclass
class GapSweep:
    """Results of :func:`gap_sweep`, one row per requested (N, eps) point."""

    points: list                      # [(N, eps), ...] in request order
    gap: np.ndarray                   # (point, replica)
    fluct: np.ndarray                 # (point, replica)
    bias: np.ndarray                  # (point,)
    risk: np.ndarray                  # (point, replica, time)
    runs: int = 0                     # number of distinct simulate_sgd calls
    seconds: dict = field(default_factory=dict)  # wall time per distinct (N, eps)

    def select(self, idx) -> dict:
        """Mean and standard error over replicas of ``gap``/``fluct`` and ``bias`` at the given rows."""
        idx = list(idx)
        g, f = self.gap[idx], self.fluct[idx]
        R = g.shape[1]
        return {"gap_mean": g.mean(1), "gap_sem": g.std(1, ddof=1) / np.sqrt(R) if R > 1 else np.zeros(len(idx)),
                "fluct_mean": f.mean(1), "bias": self.bias[idx]}


def gap_sweep(problem, reference, times, points, *, replicas: int, key, engine: str = "auto",
              dtype: str = "float64", progress: bool = False, label: str = "") -> GapSweep:
    """SGD against a DD reference at each (N, eps) of ``points``; replicas vmapped in one call.

    ``reference``: R(rho_t) at ``times`` (e.g. ``solve_radial_dd(...).risk``).  Each distinct
    (N, eps) is simulated once with key fold_in(key, i) (i its index among the distinct pairs in
    request order) and reused where it repeats.  A diverged SGD run raises DivergenceError.
    """
    import time as _time

    import jax

    from ..solvers import SGDConfig, simulate_sgd

    times = tuple(float(t) for t in np.asarray(times, float))
    ref = np.asarray(reference, float)
    check(ref.shape == (len(times),), "reference", f"need one reference value per save time, got {ref.shape}")
    check(len(points) >= 1, "points", "need at least one (N, eps) point")
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    cache: dict = {}
    seconds: dict = {}
    rows = []
    for N, eps in points:
        pair = (int(N), float(eps))
        if pair not in cache:
            start = _time.time()
            cfg = SGDConfig(n_neurons=pair[0], eps=pair[1], times=times, replicas=int(replicas), engine=engine,
                            dtype=dtype)
            tr = simulate_sgd(problem, cfg, jax.random.fold_in(key, len(cache)), progress=progress)
            if tr.diverged:
                raise DivergenceError(f"SGD diverged {label} at N={pair[0]}, eps={pair[1]:g}")
            cache[pair] = (tr.risk, gap_statistics(tr.risk, ref))
            seconds[f"N={pair[0]},eps={pair[1]:g}"] = round(_time.time() - start, 2)
        rows.append(cache[pair])
    return GapSweep(points=[(int(n), float(e)) for n, e in points],
                    gap=np.stack([r[1]["gap"] for r in rows]), fluct=np.stack([r[1]["fluct"] for r in rows]),
                    bias=np.array([r[1]["bias"] for r in rows]), risk=np.stack([r[0] for r in rows]),
                    runs=len(cache), seconds=seconds)
