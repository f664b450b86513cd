"""Figures of the RV 2018 experiments (rendering only; robust to truncated data)."""

from __future__ import annotations

import numpy as np

from .plots import plt
from .scaling_plots import fit_line, log_axes, positive


def plot_loss_vs_n(ax, rows, fit, key="loss_mean", label="final test loss", refs=(-1.0, -2.0)):
    n, y = positive([r["n"] for r in rows], [r[key] for r in rows])
    ax.plot(n, y, "o", label=label)
    fit_line(ax, n, fit, ls="-", label=None if fit is None else
             f"fit n^{fit['value']:.2f} [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]")
    for s in refs:
        if n.size:
            ax.plot(n, y[0] * (n / n[0]) ** s, ":", label=f"n^{s:g}")
    log_axes(ax, "n", "loss")
    ax.legend(fontsize=7)


def plot_curves(ax, steps, curves: dict, ylabel="loss", log=True):
    for label, y in curves.items():
        y = np.asarray(y, float)
        ok = np.isfinite(y) & (y > 0) if log else np.isfinite(y)
        ax.plot(np.asarray(steps)[ok], y[ok], label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def figure(ncols: int, title: str, width: float = 4.5):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.8), squeeze=False)
    fig.suptitle(title, fontsize=9)
    return fig, axes[0]
