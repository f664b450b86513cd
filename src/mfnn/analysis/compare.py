"""Comparisons of finite-N SGD with its mean-field limit (PNAS 2018 Theorem 3).

Theorem 3 of PNAS 2018: the empirical law of the N SGD neurons at t = k eps is close to rho_t, the
solution of the distributional dynamics (DD, eq. 13), and the SGD risk R_N(theta^k) is close to
R(rho_t), uniformly on [0, T], up to K e^{KT} sqrt(max(1/N, eps)) (sqrt(D + log(N/eps)) + z) with
probability >= 1 - exp(-z^2).  These helpers put the two on the same footing:

* :func:`histogram_vs_density`: histograms of a scalar neuron statistic (||w_i||) of SGD against the
  DD density of the same statistic on the same bins (PNAS 2018 Fig. 1).
* :func:`replica_stats` / :func:`risk_table`: SGD risk over independent replicas (mean, sample
  standard deviation) against DD risk curves, with the gap to a reference curve.
* :func:`block_norm_means`: neuron means of a, b and of the block norms r1 = ||w_1:s0||,
  r2 = ||w_s0+1:d|| (the reduced coordinates of the anisotropic task, PNAS 2018 Fig. 3).
"""

from __future__ import annotations

import numpy as np

from ..errors import check


def particle_density(samples, edges) -> np.ndarray:
    """Mass of the empirical law of ``samples`` (..., M) per bin divided by bin width: (..., n_bins).

    Unlike ``np.histogram(density=True)`` the normalization is by the total count M, so mass
    outside [edges[0], edges[-1]] is lost rather than redistributed (the DD quantile particles).
    """
    s = np.asarray(samples, dtype=float)
    edges = np.asarray(edges, dtype=float)
    check(edges.ndim == 1 and edges.size >= 2 and bool(np.all(np.diff(edges) > 0)), "edges",
          "need a strictly increasing 1-d array of >= 2 edges")
    flat = s.reshape(-1, s.shape[-1])
    out = np.stack([np.histogram(r, bins=edges)[0] for r in flat]).astype(float)
    out /= s.shape[-1] * np.diff(edges)
    return out.reshape(s.shape[:-1] + (edges.size - 1,))


def histogram_vs_density(sgd_samples, dd_particles, bins: int, pad: float = 1.05):
    """Common bins on [0, pad * max] for SGD samples and DD particles at each panel.

    ``sgd_samples``: (panel, ...) neuron statistics (replicas pooled); ``dd_particles``: (panel, M)
    quantile particles of the DD law.  Returns ``edges``, the SGD histogram (``density=True``,
    integrates to 1 over the bins) and the DD density (mass per bin / width), each (panel, bins).
    """
    check(int(bins) >= 1, "bins", f"must be >= 1, got {bins}")
    sgd = np.asarray(sgd_samples, dtype=float)
    dd = np.asarray(dd_particles, dtype=float)
    check(sgd.shape[0] == dd.shape[0], "dd_particles", "need one row per SGD panel")
    finite = np.concatenate([sgd[np.isfinite(sgd)].ravel(), dd[np.isfinite(dd)].ravel()])
    rmax = float(np.max(finite)) * pad if finite.size and np.max(finite) > 0 else 1.0
    edges = np.linspace(0.0, rmax, int(bins) + 1)
    sgd_hist = np.stack([np.histogram(row.ravel(), bins=edges, density=True)[0] for row in sgd])
    return edges, sgd_hist, particle_density(dd, edges)


def replica_stats(risk):
    """Mean and sample standard deviation (ddof = 1; zeros for one replica) over axis 0."""
    r = np.asarray(risk, dtype=float)
    std = r.std(axis=0, ddof=1) if r.shape[0] > 1 else np.zeros(r.shape[1:])
    return r.mean(axis=0), std


def risk_table(times, sgd_risk, references: dict, gap_to: str | None = None) -> list:
    """Rows {t, sgd_risk, sgd_risk_std, <reference columns>, [gap = sgd mean - references[gap_to]]}.

    ``sgd_risk``: (replica, time); ``references``: column name -> curve over the same times.
    """
    mean, std = replica_stats(sgd_risk)
    rows = []
    for i, t in enumerate(np.asarray(times, dtype=float)):
        row = {"t": float(t), "sgd_risk": float(mean[i]), "sgd_risk_std": float(std[i])}
        row.update({k: float(np.asarray(v)[i]) for k, v in references.items()})
        if gap_to is not None:
            row["gap"] = float(mean[i] - np.asarray(references[gap_to])[i])
        rows.append(row)
    return rows


def max_abs_gap(sgd_risk, reference) -> float:
    """max_t |mean over replicas of R_N(t) - R(rho_t)| (nan for an empty curve)."""
    mean, _ = replica_stats(sgd_risk)
    gap = np.abs(mean - np.asarray(reference, dtype=float))
    return float(np.max(gap)) if gap.size else float("nan")


def block_norm_means(params: dict, s0: int) -> dict:
    """Means over the last (neuron) axis of a, b, r1 = ||w_1:s0||, r2 = ||w_s0+1:d||.

    ``params``: arrays a, b (..., N) and w (..., N, d), e.g. SGD snapshots (replica, time, N, d).
    """
    w = np.asarray(params["w"])
    check(1 <= s0 < w.shape[-1], "s0", f"must be in [1, d) = [1, {w.shape[-1]}), got {s0}")
    return {"a": np.asarray(params["a"]).mean(-1), "b": np.asarray(params["b"]).mean(-1),
            "r1": np.linalg.norm(w[..., :s0], axis=-1).mean(-1),
            "r2": np.linalg.norm(w[..., s0:], axis=-1).mean(-1)}
