"""Figures of the kernel-limit demonstration (rendering only; data from ``mfnn.kernel.compare``).

Only finite positive values reach a log axis, so flows cut short by divergence still render.
"""

from __future__ import annotations

import numpy as np

from .plots import plt
from .scaling_plots import fit_line, log_axes, positive


def kernel_limit_figures(flows: dict, alpha_fit_min: float, t_fit: float) -> dict:
    """``gap_vs_time`` (one panel per student), ``gap_vs_alpha`` (fitted slopes, Thm 4 slope -1)
    and ``lazy_to_rich`` (W2 displacement and test-prediction gap at t_max vs alpha)."""
    from ..analysis.gap_points import fit_or_none

    acts = list(flows)
    figs = {}
    fig, axes = plt.subplots(1, len(acts), figsize=(4.6 * len(acts), 3.8), squeeze=False)
    for ax, act in zip(axes[0], acts):
        ds = flows[act]
        times, n_a = ds.time.values, ds.sizes["alpha"]
        for j, a in enumerate(ds.alpha.values):
            ax.plot(*positive(times, ds.gap.values[j]), "-o", ms=3, color=plt.cm.viridis(j / max(1, n_a - 1)),
                    label=f"alpha={a:g}")
        log_axes(ax, "rescaled time t", "||u^alpha_t - u*_t||  (L2 of data)")
        ax.set_title(f"student {act}")
    axes[0][0].legend(frameon=False, fontsize=7)
    fig.suptitle("Thm 4 demonstration: alpha-scaled flow vs linearized dynamics")
    fig.tight_layout()
    figs["gap_vs_time"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for i, act in enumerate(acts):
        ds = flows[act]
        al, k = ds.alpha.values, int(np.argmin(np.abs(ds.time.values - t_fit)))
        g, m = ds.gap.values[:, k], ds.alpha.values >= alpha_fit_min
        f = fit_or_none(al[m], g[m])
        ax.plot(*positive(al, g), "o", color=f"C{i}", label=f"{act}" + ("" if f is None else
                f": slope {f['value']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}]"))
        fit_line(ax, al[m], f, ls="-", color=f"C{i}")
        if "gap_population" in ds:
            ax.plot(*positive(al, ds.gap_population.values[:, k]), "x", color=f"C{i}", alpha=0.6,
                    label=f"{act}: vs population kernel H_rho0")
    ds = flows[acts[0]]
    al, g0 = ds.alpha.values, ds.gap.values[0, int(np.argmin(np.abs(ds.time.values - t_fit)))]
    ax.plot(*positive(al, g0 * (al / al[0]) ** -1.0), "k:", label="slope -1 (Thm 4 bound)")
    log_axes(ax, "alpha", f"gap at t = {t_fit:g}")
    ax.legend(frameon=False, fontsize=7)
    ax.set_title("kernel limit: gap vs alpha")
    fig.tight_layout()
    figs["gap_vs_alpha"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for i, act in enumerate(acts):
        ds = flows[act]
        t_end = ds.time.values[-1]
        ax.plot(*positive(ds.alpha.values, ds.w2_bound.values[:, -1]), "-o", color=f"C{i}",
                label=f"{act}: W2 bound at t={t_end:g}")
        ax.plot(*positive(ds.alpha.values, ds.gap_test.values[:, -1]), "--s", color=f"C{i}", ms=3, alpha=0.7,
                label=f"{act}: |fhat - kernel predictor| (test)")
    log_axes(ax, "alpha", "displacement / prediction gap")
    ax.set_title("lazy (large alpha) to rich (alpha ~ 1)")
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    figs["lazy_to_rich"] = fig
    return figs
