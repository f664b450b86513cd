"""Figures shared by experiments (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_histogram_panels(edges, sgd_density, dd_density, times, title=""):
    """One panel per time: SGD histogram (bars) and the DD density on the same bins (line)."""
    k = len(times)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.0), sharey=False)
    axes = np.atleast_1d(axes)
    centers = 0.5 * (edges[1:] + edges[:-1])
    for ax, t, hs, hd in zip(axes, times, sgd_density, dd_density):
        ax.bar(centers, hs, width=np.diff(edges), color="C0", alpha=0.5, label="SGD")
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
    mean = sgd_risk.mean(axis=0)
    ax.fill_between(t[pos], sgd_risk.min(axis=0)[pos], sgd_risk.max(axis=0)[pos], color="C0", alpha=0.25,
                    label="SGD replica range")
    ax.plot(t[pos], mean[pos], "o", color="C0", ms=4, label="SGD mean")
    for i, (name, r) in enumerate(dd_curves.items()):
        ax.plot(t[pos], np.asarray(r)[pos], "-" if i == 0 else "--", color=f"C{3 + i}", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t = k eps")
    ax.set_ylabel("population risk")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
