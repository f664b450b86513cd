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
