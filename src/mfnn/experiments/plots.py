"""Figures shared by experiments (matplotlib, Agg backend: no display needed).

Every function draws whatever data it is given, including truncated runs (a diverged solver keeps
its saves up to the failure): log axes are set only when there is positive data to show.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _log_axes(ax, x=None, y=None):
    """Log scale on the axes whose data (lists of arrays) has a positive finite entry."""
    for data, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if data is None:
            continue
        flat = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in data]) if len(data) else np.zeros(0)
        if np.any(np.isfinite(flat) & (flat > 0)):
            setter("log")


def plot_histogram_panels(hist, title=""):
    """One panel per time: SGD histogram (bars) and the DD density on the same bins (line).

    ``hist``: a Dataset with ``sgd_density``, ``dd_density`` (panel, bin), ``panel_time``,
    ``bin_left``, ``bin_right``.
    """
    times = np.atleast_1d(hist.panel_time.values)
    k = len(times)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.0), sharey=False)
    axes = np.atleast_1d(axes)
    left, right = hist.bin_left.values, hist.bin_right.values
    centers = 0.5 * (left + right)
    for ax, t, hs, hd in zip(axes, times, hist.sgd_density.values, hist.dd_density.values):
        ax.bar(centers, hs, width=right - left, color="C0", alpha=0.5, label="SGD")
        ax.plot(centers, hd, color="C3", lw=1.8, label="DD")
        ax.set_title(f"t = {t:.3g}")
        ax.set_xlabel("||w||")
    axes[0].set_ylabel("density")
    axes[0].legend(frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_risk_curves(times, sgd_risk, dd_curves: dict, title=""):
    """Risk vs t: SGD mean and min-max band over replicas (symbols), DD curves (lines)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    t = np.asarray(times)
    pos = t > 0
    sgd_risk = np.asarray(sgd_risk)
    mean = sgd_risk.mean(axis=0)
    ax.fill_between(t[pos], sgd_risk.min(axis=0)[pos], sgd_risk.max(axis=0)[pos], color="C0", alpha=0.25,
                    label="SGD replica range")
    ax.plot(t[pos], mean[pos], "o", color="C0", ms=4, label="SGD mean")
    for i, (name, r) in enumerate(dd_curves.items()):
        ax.plot(t[pos], np.asarray(r)[pos], "-" if i == 0 else "--", color=f"C{3 + i}", label=name)
    _log_axes(ax, [t[pos]], [mean[pos]] + [np.asarray(r)[pos] for r in dd_curves.values()])
    ax.set_xlabel("t = k eps")
    ax.set_ylabel("population risk")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_risk_replicas(times, sgd_risk, dd_curves: dict, title=""):
    """Risk vs log t: each SGD replica as '+' markers, DD curves as lines (PNAS 2018 Fig. 3 style)."""
    t = np.asarray(times)
    pos = t > 0
    sgd_risk = np.asarray(sgd_risk)
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    for r in range(sgd_risk.shape[0]):
        ax.plot(t[pos], sgd_risk[r, pos], "+", color="C0", ms=7, label="SGD (one run per point)" if r == 0 else None)
    for i, (name, curve) in enumerate(dd_curves.items()):
        ax.plot(t[pos], np.asarray(curve)[pos], "-" if i == 0 else "--", color=f"C{3 + i}", label=name)
    _log_axes(ax, x=[t[pos]])
    ax.set_xlabel("t = k eps")
    ax.set_ylabel("population risk")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


MEAN_LABELS = {"a": "mean a", "b": "mean b", "r1": "mean r1 = ||w_1:s0||", "r2": "mean r2 = ||w_s0+1:d||"}


def plot_means(times, sgd_means: dict, dd_means: dict, title="", labels=MEAN_LABELS):
    """Neuron means vs log t: DD as lines, SGD (mean over replicas of (replica, time)) as '+'."""
    t = np.asarray(times)
    pos = t > 0
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    for i, name in enumerate(dd_means):
        ax.plot(t[pos], np.asarray(dd_means[name])[pos], "-", color=f"C{i}", label=f"{labels.get(name, name)} (DD)")
        ax.plot(t[pos], np.asarray(sgd_means[name]).mean(0)[pos], "+", color=f"C{i}", ms=7)
    _log_axes(ax, x=[t[pos]])
    ax.set_xlabel("t = k eps")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_risk_and_norm(runs: dict, gmin_risk: float, title=""):
    """Left: risk vs t (SGD mean 'o', DD line) per run and the global minimum (dashed); right: mean
    ||w|| (SGD) and mean r (DD).  ``runs``: label -> Dataset with sgd_risk (replica, time),
    sgd_w_norm (replica, time, neuron), dd_risk (time), dd_radius (time, particle)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    risks, times = [], []
    for j, (label, ds) in enumerate(runs.items()):
        t = ds.time.values
        pos = t > 0
        col = f"C{j}"
        sgd_mean = ds.sgd_risk.values.mean(axis=0)[pos]
        ax1.plot(t[pos], sgd_mean, "o", color=col, ms=4, label=f"SGD {label}")
        ax1.plot(t[pos], ds.dd_risk.values[pos], "-", color=col, label=f"DD {label}")
        ax2.plot(t[pos], ds.sgd_w_norm.values.mean(axis=(0, 2))[pos], "o", color=col, ms=4)
        ax2.plot(t[pos], ds.dd_radius.values.mean(axis=1)[pos], "-", color=col)
        risks += [sgd_mean, ds.dd_risk.values[pos]]
        times.append(t[pos])
    ax1.axhline(gmin_risk, color="k", ls="--", lw=1, label="inf R (radial global min)")
    for ax in (ax1, ax2):
        _log_axes(ax, x=times)
        ax.set_xlabel("t = k eps")
    _log_axes(ax1, y=risks + [np.array([gmin_risk])])
    ax1.set_ylabel("population risk")
    ax2.set_ylabel("mean ||w||")
    ax1.legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_risk_vs_delta(table: list, dd_label: str, dd_t_max_label: str, sgd_label: str, title=""):
    """Risk vs Delta: long-time DD (line), DD at the SGD horizon (dotted), SGD +- std (symbols) and
    the convex global minimum (dashed, floored at 1e-16 for the log axis)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    x = [r["delta"] for r in table]
    col = {k: np.array([r[k] for r in table], dtype=float) for k in
           ("dd_risk", "dd_risk_at_t_max", "sgd_risk", "sgd_risk_std", "global_min_risk")}
    ax.plot(x, col["dd_risk"], "-", color="C3", label=dd_label)
    ax.plot(x, col["dd_risk_at_t_max"], ":", color="C3", label=dd_t_max_label)
    ax.errorbar(x, col["sgd_risk"], yerr=col["sgd_risk_std"], fmt="o", color="C0", ms=5, label=sgd_label)
    ax.plot(x, np.maximum(col["global_min_risk"], 1e-16), "--", color="k", label="inf R (convex global min)")
    _log_axes(ax, y=list(col.values()))
    ax.set_xlabel("Delta")
    ax.set_ylabel("risk")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig
