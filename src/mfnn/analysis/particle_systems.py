"""Reductions for the Rotskoff-Vanden-Eijnden 2018 experiments: loss-vs-n tables and exponent fits,
the n-scaled variance of f_n across initializations (RV 2018 section 2.3, CLT: n Var f_n flat in n at
t = 0), the collapse of SGD losses against the temperature theta = dt/P (eq. 3.16), and the 2-D
slices of the sphere on which Fig. 1 and Fig. 4 draw f and f_n.
"""

from __future__ import annotations

import numpy as np

from ..errors import check
from .scaling import exponent_summary, loglog_fit

__all__ = ["loss_table", "n_exponent", "n_scaled_variance", "collapse_spread", "sphere_slice", "great_circle"]


def loss_table(ns, losses, extra: dict | None = None) -> list:
    """Rows {n, loss_mean, loss_std (over realizations, ddof 1), loss_min, loss_max, + mean of each
    ``extra`` array}; ``losses[i]`` holds the realizations of width ``ns[i]``."""
    rows = []
    for i, n in enumerate(ns):
        v = np.asarray(losses[i], float)
        row = {"n": int(n), "loss_mean": float(v.mean()), "loss_std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
               "loss_min": float(v.min()), "loss_max": float(v.max())}
        for k, arr in (extra or {}).items():
            row[k] = float(np.mean(arr[i]))
        rows.append(row)
    return rows


def n_exponent(rows) -> dict | None:
    """Log-log slope of loss_mean against n with its 95% interval (None with < 3 finite positive rows)."""
    ok = [r for r in rows if np.isfinite(r["loss_mean"]) and r["loss_mean"] > 0]
    if len(ok) < 3:
        return None
    fit = loglog_fit([r["n"] for r in ok], [r["loss_mean"] for r in ok])
    return {**exponent_summary(fit), "r2": fit["r2"], "n_points": fit["n_points"]}


def n_scaled_variance(n: int, f_probe) -> tuple:
    """n Var_init[f_n(x)] averaged over probe points x, and its standard error.

    ``f_probe`` (replica, probe): f_n at the probes for R independent initializations.  With fbar
    the replica mean, q_r = mean_x (f_r(x) - fbar(x))^2 R/(R - 1) is an unbiased estimate per
    replica; the value is n mean_r q_r and its standard error n std_r(q_r)/sqrt(R) (probes share
    the particles of a replica, so they are averaged before the spread over replicas is taken)."""
    f = np.asarray(f_probe, float)
    check(f.ndim == 2 and f.shape[0] >= 3, "f_probe", f"need (replica >= 3, probe), got {f.shape}")
    R = f.shape[0]
    q = np.mean((f - f.mean(axis=0)) ** 2, axis=1) * R / (R - 1)
    return float(n * q.mean()), float(n * q.std(ddof=1) / np.sqrt(R))


def collapse_spread(thetas, losses) -> dict:
    """How well final losses collapse on theta = dt/P.  ``thetas`` (k,), ``losses`` (k,) per (dt, P);
    on log(loss): ``spread_equal_theta`` = RMS deviation from the mean of its equal-theta group
    (groups of >= 2 configs), ``spread_across_theta`` = standard deviation of the group means.
    Collapse: spread_equal_theta << spread_across_theta."""
    th, lo = np.asarray(thetas, float), np.log(np.asarray(losses, float))
    keys = np.round(np.log(th), 9)
    groups = [lo[keys == k] for k in np.unique(keys)]
    multi = [g for g in groups if g.size >= 2]
    check(len(multi) >= 1 and len(groups) >= 2, "collapse", "need >= 2 distinct theta and one with >= 2 configs")
    within = np.sqrt(np.mean(np.concatenate([(g - g.mean()) ** 2 for g in multi]) * 1.0))
    means = np.array([g.mean() for g in groups])
    return {"spread_equal_theta": float(within), "spread_across_theta": float(means.std(ddof=1)),
            "ratio": float(within / means.std(ddof=1)), "metric": "log(final loss)"}


def sphere_slice(d: int, m: int) -> tuple:
    """RV Fig. 1 slice x(t, p) = sqrt(d)(sin t cos p, sin t sin p, cos t, 0, ...) on an m x m grid of
    t in [0, pi], p in [0, 2 pi): returns (t, p, x (m*m, d))."""
    check(d >= 3, "d", f"the slice needs d >= 3, got {d}")
    t, p = np.linspace(0, np.pi, m), np.linspace(0, 2 * np.pi, m, endpoint=False)
    T, P = np.meshgrid(t, p, indexing="ij")
    x = np.zeros((m * m, d))
    x[:, 0], x[:, 1], x[:, 2] = np.sin(T).ravel() * np.cos(P).ravel(), np.sin(T).ravel() * np.sin(P).ravel(), np.cos(T).ravel()
    return t, p, np.sqrt(d) * x


def great_circle(d: int, m: int, i: int = 0, j: int = 1) -> tuple:
    """RV Fig. 4: x_i = sqrt(d) cos t, x_j = sqrt(d) sin t, other coordinates 0; returns (t, x (m, d))."""
    t = np.linspace(0, 2 * np.pi, m)
    x = np.zeros((m, d))
    x[:, i], x[:, j] = np.sqrt(d) * np.cos(t), np.sqrt(d) * np.sin(t)
    return t, x
