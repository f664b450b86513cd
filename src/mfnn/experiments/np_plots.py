"""Figures of the Nguyen–Pham experiments (np-*): drawing only, from ``summary.json`` rows."""

from __future__ import annotations

__all__ = ["degeneracy_figure"]


def degeneracy_figure(depths, inits, summary):
    """One panel per depth (sd_i vs width, log-log), the final loss of every (depth, init) against
    the two-layer baseline, and the distance of the i.i.d. runs to their collapsed model.

    Parameters
    ----------
    depths, inits : sequence
        the configured depths and initializations (panel and line order).
    summary : dict
        the np-degeneracy summary (``table``, ``loss_table``, ``reduced_model_distance``).
    """
    import matplotlib.pyplot as plt

    k = len(depths)
    fig, axes = plt.subplots(1, k + 2, figsize=(4.0 * (k + 2), 3.6), squeeze=False)
    for ax, L in zip(axes[0], depths):
        for init, ls in zip(inits, ("-", "--")):
            for layer in range(1, L):
                pts = [(r["width"], r["sd"]) for r in summary["table"]
                       if r["depth"] == L and r["init"] == init and r["layer"] == layer]
                if pts:
                    w, s = zip(*pts)
                    ax.loglog(w, s, ls, marker="o", label=f"{init} H_{layer}")
        ax.set(title=f"L = {L}", xlabel="width n", ylabel="sd_i (absolute)")
        ax.legend(fontsize=6)
    ax = axes[0][k]
    for L, init in [(L, i) for L in depths for i in inits] + [(2, "baseline")]:
        pts = [(r["width"], r["final_loss"]) for r in summary["loss_table"] if r["depth"] == L and r["init"] == init]
        if pts:
            w, v = zip(*pts)
            ax.semilogx(w, v, "k-" if init == "baseline" else "-", marker="s" if init == "baseline" else "o",
                        lw=2 if init == "baseline" else 1,
                        label="two-layer baseline" if init == "baseline" else f"L = {L} {init}")
    ax.set(title="final test loss (a low loss does not show depth is used)", xlabel="width n", ylabel="loss")
    ax.legend(fontsize=6)
    ax = axes[0][k + 1]
    for c, L in enumerate(sorted({r["depth"] for r in summary["reduced_model_distance"]})):
        pts = [(r["width"], r["rms"], r["sup"]) for r in summary["reduced_model_distance"] if r["depth"] == L]
        w, rms, sup = zip(*pts)
        ax.loglog(w, rms, "o-", color=f"C{c}", label=f"L = {L} RMS")
        ax.loglog(w, sup, "^--", color=f"C{c}", label=f"L = {L} sup")
    ax.set(title="i.i.d. net vs its collapsed model", xlabel="width n", ylabel="distance")
    ax.legend(fontsize=6)
    fig.suptitle("within-layer spread vs width (i.i.d. L >= 4 middle layers: slope -1/2)")
    fig.tight_layout()
    return fig
