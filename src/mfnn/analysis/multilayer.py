"""Diagnostics of mean-field multilayer networks (Nguyen–Pham 2020; Pham–Nguyen ICLR 2021).

* **Width convergence** (Nguyen–Pham Theorem 3 quantity, ICLR 2021 Thm 3): prefix-coupled runs
  at widths n and a reference run (largest width); :func:`trajectory_distance` compares each
  neuron's weights with the reference's weights for the same label: ``sup`` over save times,
  layers and neurons of |w_i^n(t, j) - w_i^ref(t, j)|, and ``rms`` (max over times and layers of
  the RMS over neurons, the v3 variant).  Expected ~ n^{-1/2} up to logs.
* **Degeneracy** (v3 abstract: i.i.d. initialization degenerates at depth >= 4): within-layer
  spread sd_i = mean_x std_j H_i(x, j) (absolute: a std/|mean| ratio is O(1) even when the layer
  has collapsed to one neuron); the weight-increment structure (two-way ANOVA of
  dW_i = W_i(t) - W_i(0): shares of the constant, row-mean (function of j_{i-1}), column-mean
  (function of j_i) and residual parts); the effective rank of H_i over probe inputs (top singular
  value's share of sum sigma^2 and exp(entropy)); an explicit two-layer baseline network.
* Slopes of a diagnostic against width with 95% intervals: :func:`width_slope` (least squares
  over all (width, seed) pairs, ``analysis.scaling.loglog_fit``).

The ``jnp`` kernels run inside the compiled program through :func:`degeneracy_observer` (a
``SaveAt.fn`` for ``MultilayerSGD(keep_init=True)``); everything works on NumPy arrays too.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..problem.multilayer import MultilayerNetwork
from .scaling import exponent_summary, loglog_fit

__all__ = ["trajectory_distance", "within_layer_spread", "increment_shares", "rank_measures",
           "degeneracy_observer", "width_slope", "two_layer_baseline", "width_convergence", "degeneracy_run",
           "degeneracy_tables"]


def trajectory_distance(params: dict, reference: dict) -> dict:
    """``{"sup", "rms"}`` between a width-n run and the reference (module docstring).

    ``params`` / ``reference``: name -> array (time, *shape) for one replica (``params/<name>``
    of a ``Solution`` indexed at one replica); the reference's shapes are >= the run's and its
    leading block holds the same neurons (prefix coupling)."""
    sup, rms = 0.0, 0.0
    for name, v in params.items():
        v = np.asarray(v, float)
        r = np.asarray(reference[name], float)
        check(r.shape[0] == v.shape[0], "reference", f"{name}: time axes differ ({r.shape[0]} vs {v.shape[0]})")
        blk = (slice(None),) + tuple(slice(0, s) for s in v.shape[1:])
        diff = np.abs(v - r[blk]).reshape(v.shape[0], -1)
        sup = max(sup, float(diff.max()))
        rms = max(rms, float(np.sqrt(np.mean(diff ** 2, axis=1)).max()))
    return {"sup": sup, "rms": rms}


def within_layer_spread(H):
    """sd = mean over inputs of the std over neurons of H[..., x, j] (absolute)."""
    return jnp.mean(jnp.std(H, axis=-1), axis=-1)


def increment_shares(dW):
    """Shares (constant, row, column, residual) of sum dW^2 for dW (rows, cols) by the two-way
    decomposition dW = c + r_j + s_k + e (orthogonal; the shares sum to 1)."""
    ss = jnp.sum(dW * dW)
    c = jnp.mean(dW)
    r = jnp.mean(dW, axis=1) - c
    s = jnp.mean(dW, axis=0) - c
    n_r, n_c = dW.shape
    parts = jnp.stack([n_r * n_c * c * c, n_c * jnp.sum(r * r), n_r * jnp.sum(s * s)])
    parts = parts / jnp.maximum(ss, jnp.finfo(dW.dtype).tiny)
    return jnp.concatenate([parts, 1.0 - jnp.sum(parts, keepdims=True)])


def rank_measures(H):
    """(top share sigma_1^2 / sum sigma^2, effective rank exp(entropy of sigma^2 / sum sigma^2)) of
    H (probe, neuron), from the eigenvalues of the probe Gram matrix.  NumPy, on the host: an
    eigvalsh inside the compiled scan deadlocked XLA's CPU runtime (jax 0.10.2, 2 loaded cores)."""
    H = np.asarray(H, float)
    ev = np.clip(np.linalg.eigvalsh(H @ H.T), 0.0, None)
    p = ev / max(float(ev.sum()), np.finfo(float).tiny)
    nz = p[p > 0]
    return np.array([p.max(), np.exp(-np.sum(nz * np.log(nz)))])


def degeneracy_observer(problem, state) -> dict:
    """``SaveAt.fn`` for ``MultilayerSGD(keep_init=True)``: ``increments`` (layer 2..L-1, 4 shares)."""
    net, p, p0 = problem.net, state["params"], state["init"]
    inc = [increment_shares((p[f"w{i}"] - p0[f"w{i}"]).astype(jnp.float64)) for i in range(2, net.depth)]
    return {"increments": jnp.stack(inc) if inc else jnp.zeros((0, 4))}


def width_slope(widths, values) -> dict | None:
    """Slope of log value against log width with a 95% interval (``{"value", "ci_low", "ci_high"}``):
    ``values`` (width,) or (width, seed), fitted over all pairs.  None when fewer than 3 finite
    positive points."""
    w = np.asarray(widths, float)
    v = np.asarray(values, float)
    if v.ndim == 1:
        v = v[:, None]
    x = np.repeat(w, v.shape[1])
    y = v.reshape(-1)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 3 or len(np.unique(x[ok])) < 2:
        return None
    return exponent_summary(loglog_fit(x[ok], y[ok]))


def two_layer_baseline(net: MultilayerNetwork, width: int | None = None) -> MultilayerNetwork:
    """The two-layer MF network that a degenerate deep net reduces to (a trainable first layer of
    the same activation and first-layer bias, identity output): the loss baseline of the papers'
    degeneracy discussion (a low loss alone does not show that depth is used)."""
    return MultilayerNetwork(d=net.d, widths=(width or net.widths[0],),
                             activations=(net.activations[0], "identity"),
                             biases=tuple(b for b in net.biases if b == 1), loss=net.loss,
                             huber_delta=net.huber_delta)


# --- runs (the numerics of the np-* experiments) ---------------------------------------------

def _status(sol) -> dict:
    if sol.ok:
        return {"result": "successful"}
    return {"result": sol.result, "stopped_at": float(sol.times[-1]) if len(sol.times) else 0.0,
            "message": sol.message}


def width_convergence(problem, method, widths, ref_width: int, times, key: int = 0, progress: bool = False):
    """Prefix-coupled runs at equal hidden widths ``widths`` and the reference ``ref_width`` (same
    key: same data and labels) -> ``xarray.Dataset`` with ``distance_sup`` / ``distance_rms``
    (width, replica), ``loss`` (width, time, replica) and ``ref_loss`` (time, replica)."""
    import xarray as xr

    from ..solvers import SaveAt, solve

    L = problem.net.depth
    obs = SaveAt(times=times, observables=("loss", "params"))
    run = lambda n: solve(problem.with_widths((int(n),) * (L - 1)), method, obs, key=key,  # noqa: E731
                          progress=progress, throw=False)
    ref = run(ref_width)
    status = _status(ref)
    sups, rmss, losses = [], [], []
    for n in widths:
        sol = run(n)
        if not sol.ok or not ref.ok:
            status = _status(sol) if not sol.ok else status
            break
        pr = {k[7:]: v for k, v in sol.ys.items() if k.startswith("params/")}
        rr = {k[7:]: ref.ys[k] for k in sol.ys if k.startswith("params/")}
        ds = [trajectory_distance({k: v[:, r] for k, v in pr.items()}, {k: v[:, r] for k, v in rr.items()})
              for r in range(method.replicas)]
        sups.append([d["sup"] for d in ds])
        rmss.append([d["rms"] for d in ds])
        losses.append(sol.loss)
    k = len(sups)
    out = xr.Dataset(
        {"distance_sup": (("width", "replica"), np.asarray(sups, float).reshape(k, -1)),
         "distance_rms": (("width", "replica"), np.asarray(rmss, float).reshape(k, -1)),
         "loss": (("width", "time", "replica"), np.asarray(losses, float).reshape(k, len(times), -1)),
         "ref_loss": (("rtime", "replica"), np.asarray(ref.ys.get("loss", np.zeros((0, 1))), float))},
        coords={"width": list(widths)[:k], "time": np.asarray(times, float)})
    out.attrs.update(status, ref_width=int(ref_width))
    return out


def _observe_with_collapse(problem, state) -> dict:
    from .multilayer_collapse import collapse_observer

    return {**degeneracy_observer(problem, state), **collapse_observer(problem, state)}


def degeneracy_run(problem, method, times, key: int = 0, progress: bool = False, reduced: bool = False):
    """One run with the degeneracy diagnostics at every save: ``sd`` (time, replica, layer),
    ``loss`` (time, replica), ``increments`` (time, replica, mid_layer, share) and ``rank``
    (time, replica, layer, measure) (``method`` needs ``keep_init=True``).  ``reduced=True`` (an
    i.i.d. network of depth >= 4) also runs its collapsed model
    (``multilayer_collapse.reduced_model_distance``): ``reduced_sup`` / ``reduced_rms`` (replica),
    the distance of the projected run to it, and ``reduced_loss`` (time, replica)."""
    import xarray as xr

    from ..solvers import SaveAt, solve

    check(method.keep_init, "method.keep_init", "the increment diagnostics need keep_init=True")
    fn = _observe_with_collapse if reduced else degeneracy_observer
    sol = solve(problem, method, SaveAt(times=times, observables=("loss", "sd", "features"), fn=fn),
                key=key, progress=progress, throw=False)
    L, R = problem.net.depth, method.replicas
    feats = [sol.ys.pop(f"features/H{i}", None) for i in range(1, L)]
    proj = {k[9:]: sol.ys.pop(k) for k in list(sol.ys) if k.startswith("collapse/")}
    if sol.ys:
        sol.ys["rank"] = np.array([[[rank_measures(F[t, r]) for F in feats] for r in range(R)]
                                   for t in range(len(sol.times))]).reshape(len(sol.times), R, L - 1, 2)
    ds = xr.Dataset(
        {"sd": (("time", "replica", "layer"), sol.ys["sd"]) if sol.ys else (("time", "replica", "layer"), np.zeros((0, R, L - 1))),
         "loss": (("time", "replica"), sol.ys.get("loss", np.zeros((0, R)))),
         "increments": (("time", "replica", "mid_layer", "share"),
                        sol.ys.get("increments", np.zeros((0, R, L - 2, 4)))),
         "rank": (("time", "replica", "layer", "measure"), sol.ys.get("rank", np.zeros((0, R, L - 1, 2))))},
        coords={"time": sol.times, "layer": np.arange(1, L), "mid_layer": np.arange(2, L),
                "share": ["constant", "row", "column", "residual"], "measure": ["top_share", "effective_rank"]})
    ds.attrs.update(_status(sol), seconds=float(sol.stats.get("wall_seconds", 0.0)))
    if reduced and len(sol.times):
        from .multilayer_collapse import reduced_model_distance

        red = reduced_model_distance(problem, method, times, proj, key=key, progress=progress)
        ds["reduced_sup"] = ("replica", red["sup"])
        ds["reduced_rms"] = ("replica", red["rms"])
        ds["reduced_loss"] = (("rtime", "replica"), red["loss"])
    return ds


_SHARES = ("constant", "row", "column", "residual")


def degeneracy_tables(results: dict, depths, inits, widths) -> dict:
    """The np-degeneracy tables from ``degeneracy_run`` datasets keyed ``(depth, init, width)``;
    the two-layer baseline runs (same first-layer width, task and training) are keyed
    ``(2, "baseline", width)``.  At the last save:

    * ``sd_slopes``: per (depth, init, layer) the :func:`width_slope` of sd_i over (width, replica);
    * ``table``: per (depth, init, width, layer) sd, rank measures, increment shares, final loss;
    * ``loss_table``: per (depth, init, width) the final test loss (mean and std over replicas),
      baseline rows included (init "baseline", depth 2);
    * ``reduced_model_distance``: per (depth, width) of the runs with a collapsed model
      (``degeneracy_run(reduced=True)``), ``rms`` / ``sup`` (mean over replicas), ``full_loss`` and
      ``reduced_loss``; ``reduced_slopes``: the width slope of ``rms`` per depth.

    Parameters
    ----------
    results : dict
        ``(depth, init, width) -> xarray.Dataset`` (missing or empty runs are skipped).
    depths, inits, widths : sequence
        the grid of the deep runs, in the order of the rows.
    """
    rows, table, losses, red, red_slopes = [], [], [], [], []
    ok = {k: v for k, v in results.items() if v.sizes.get("time", 0) > 0}
    combos = [(L, i) for L in depths for i in inits] + [(2, "baseline")]
    for L, init in combos:
        got = [(n, ok[(L, init, n)]) for n in widths if (L, init, n) in ok]
        for n, ds in got:
            lv = ds.loss.values[-1]
            losses.append({"depth": L, "init": init, "width": n, "final_loss": float(lv.mean()),
                           "final_loss_std": float(lv.std())})
            if "reduced_rms" in ds:
                red.append({"depth": L, "width": n, "rms": float(ds.reduced_rms.values.mean()),
                            "sup": float(ds.reduced_sup.values.mean()), "full_loss": float(lv.mean()),
                            "reduced_loss": float(ds.reduced_loss.values[-1].mean())})
        if init == "baseline" or not got:
            continue
        ws = [n for n, _ in got]
        sd = np.stack([ds.sd.values[-1] for _, ds in got])  # (width, replica, layer)
        for layer in range(1, L):
            fit = width_slope(ws, sd[:, :, layer - 1])
            rows.append({"depth": L, "init": init, "layer": layer, **(fit or {"value": None, "ci_low": None, "ci_high": None})})
        for n, ds in got:
            inc = ds.increments.values[-1].mean(axis=0)  # (mid_layer, share)
            rk = ds["rank"].values[-1].mean(axis=0)
            for layer in range(1, L):
                table.append({"depth": L, "init": init, "width": n, "layer": layer,
                              "sd": float(ds.sd.values[-1, :, layer - 1].mean()),
                              "top_share": float(rk[layer - 1, 0]), "effective_rank": float(rk[layer - 1, 1]),
                              **({f"increment_{s}": float(v) for s, v in zip(_SHARES, inc[layer - 2])}
                                 if 2 <= layer <= L - 1 else {}),
                              "final_loss": float(ds.loss.values[-1].mean())})
    for L in sorted({r["depth"] for r in red}):
        pts = [r for r in red if r["depth"] == L]
        fit = width_slope([r["width"] for r in pts], [r["rms"] for r in pts])
        red_slopes.append({"depth": L, **(fit or {"value": None, "ci_low": None, "ci_high": None})})
    return {"sd_slopes": rows, "table": table, "loss_table": losses, "reduced_model_distance": red,
            "reduced_slopes": red_slopes}
