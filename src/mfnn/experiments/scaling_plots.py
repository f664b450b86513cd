"""Figures of SGD -> DD gap sweeps (rendering only; data from ``mfnn.analysis.gap_points``).

Every plot keeps only finite positive values before a log axis, so a sweep cut short by a
diverged run (NaN entries) still renders.
"""

from __future__ import annotations

import numpy as np

from .plots import plt


def positive(x, y):
    """The (x, y) pairs with both finite and > 0, as float arrays."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    return x[ok], y[ok]


def fit_line(ax, x, fit, **kw):
    """Draw exp(intercept) x^value over the positive x (nothing when ``fit`` is None)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x) & (x > 0)]
    if fit is not None and x.size:
        ax.plot(x, np.exp(fit["intercept"]) * x ** fit["value"], **kw)


def log_axes(ax, xlabel, ylabel):
    """Log scales when anything positive was drawn (an empty panel keeps linear axes)."""
    if any(positive(*line.get_data())[0].size for line in ax.get_lines()):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plot_gap_sweeps(panels, title):
    """One log-log panel per (x, sweep, fit, xlabel, panel title, reference slopes): replica mean
    gap with its standard error and fitted line, fluctuation and bias parts, reference slopes."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.25 * len(panels), 4.2), squeeze=False)
    for ax, (x, s, fit, xlabel, ptitle, refs) in zip(axes[0], panels):
        x = np.asarray(x, float)
        g, sem = np.asarray(s["gap_mean"], float), np.asarray(s["gap_sem"], float)
        ok = np.isfinite(g) & (g > 0)
        lab = "sup|R_N - R| per replica" + ("" if fit is None else
                                            f": slope {fit['value']:.2f} [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]")
        ax.errorbar(x[ok], g[ok], yerr=np.nan_to_num(sem[ok]), fmt="o", color="C0", capsize=2, label=lab)
        fit_line(ax, x[ok], fit, ls="-", color="C0")
        ax.plot(*positive(x, s["fluct_mean"]), "s", color="C2", ms=4, label="fluctuation sup|R_N - mean R_N|")
        ax.plot(*positive(x, s["bias"]), "^", color="C3", ms=4, label="bias sup|mean R_N - R|")
        if ok.any():
            x0, g0 = x[ok][0], g[ok][0]
            for j, (p, rlab) in enumerate(refs):
                ax.plot(x[ok], g0 * (x[ok] / x0) ** p, ":" if j == 0 else "--", color="k", lw=1, label=rlab)
        log_axes(ax, xlabel, "sup_t |R_N(theta^k) - R(rho_{k eps})|")
        ax.set_title(ptitle)
        ax.legend(frameon=False, fontsize=6.5)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_dimension_free(summary, dims, n_neurons, eps_sweep, eps):
    """COLT 2019 Thm 1(A) demonstration: gap vs N per d (fitted slopes, reference -1/2) and the
    eps-sweep's gap vs sqrt(d eps) (reference slope 1)."""
    from ..analysis.gap_points import fit_or_none

    Ns, eps_grid = np.asarray(n_neurons, float), np.asarray(eps_sweep, float)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for i, d in enumerate(dims):
        g, sem = np.asarray(summary["gap_n_mean"][str(d)], float), np.asarray(summary["gap_n_sem"][str(d)], float)
        f = fit_or_none(Ns, g)
        ok = np.isfinite(g) & (g > 0)
        ax.errorbar(Ns[ok], g[ok], yerr=np.nan_to_num(sem[ok]), fmt="o", color=f"C{i}", capsize=2, label=f"d={d}"
                    + ("" if f is None else f": slope {f['value']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}]"))
        fit_line(ax, Ns[ok], f, ls="-", color=f"C{i}")
        bx.plot(*positive(np.sqrt(d * eps_grid), summary["gap_eps_mean"][str(d)]), "-o", color=f"C{i}", label=f"d={d}")
    g0 = np.nanmean([summary["gap_n_mean"][str(d)][0] for d in dims])
    ax.plot(*positive(Ns, g0 * (Ns / Ns[0]) ** -0.5), "k:", label="slope -1/2")
    xs = np.sqrt(max(dims) * eps_grid)
    ax_ref = summary["gap_eps_mean"][str(dims[-1])][-1]
    bx.plot(*positive(xs, ax_ref * xs / xs[-1]), "k:", label="slope 1 in sqrt(d eps)")
    for a, xl, t in ((ax, "N", f"N-term at eps={eps:g}"), (bx, "sqrt(d eps)", f"step-size term at N={Ns[-1]:g}")):
        log_axes(a, xl, "sup_t |R_N - R(rho_t)|")
        a.set_title(t)
        a.legend(frameon=False, fontsize=7)
    fig.suptitle("Thm 1(A) demonstration: dimension-free N-term, sqrt(d eps) step term")
    fig.tight_layout()
    return fig
