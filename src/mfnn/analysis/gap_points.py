"""SGD -> DD gap measurements one grid point at a time (PNAS 2018 Thm 3; COLT 2019 Thm 1(A)).

The bounds (PNAS 2018 Thm 3, COLT 2019 Thm 1(A)) control, per SGD realization,

    G = sup_{k <= T/eps} |R_N(theta^k) - R(rho_{k eps})|
      <= K e^{KT} sqrt(max(1/N, eps)) [sqrt(D + log(N/eps)) + z]                 (PNAS 2018 Thm 3)

so G falls like N^{-1/2} (eps << 1/N) and grows like eps^{1/2} (1/N << eps); COLT 2019 Thm 1(A)
makes the N-term dimension-free and the step term ~ sqrt(d eps).  An experiment measures G on a
grid of (N, eps[, d]) points; this module provides the pure per-point computations and the
reductions, so that each grid point is computed on its own (its own random stream, see
``mfnn.experiments.base.Point``):

* :func:`sgd_risk_point`: the exact population risk R_N(theta^k) of ``replicas`` SGD runs at the
  save times (one ``mfnn.solve`` of ``OnlineSGD``, replicas vmapped), as a labelled dataset;
* :func:`dd_risk_point`: the DD reference R(rho_t) (radial DD, exact finite-d angular average);
* :func:`gap_table`: :func:`mfnn.analysis.scaling.gap_statistics` of each point against the
  reference: ``gap`` G per replica, ``fluct`` = sup_t |R_N^(r) - mean_r R_N| (the O(N^{-1/2})
  fluctuation) and ``bias`` = sup_t |mean_r R_N - R(rho_t)| (the systematic part: the O(1/N)
  diagonal bias of R_N, i.e. the i = j terms of (1/N^2) sum_ij U, and the O(eps) SGD drift);
  G <= fluct + bias replica by replica.  Where a run diverged the sup runs over the saves it kept;
* :func:`fit_or_none`: :func:`mfnn.analysis.scaling.loglog_fit` over the usable (finite, > 0)
  entries, ``None`` when fewer than 3 remain (a grid cut short by divergence).

Reading the fitted exponents: where the 1/N bias dominates (small N) the N-slope lies between
-1/2 and -1; the eps-term mixes an O(sqrt(eps)) fluctuation with an O(eps) drift, so the eps-slope
lies between 1/2 and 1.  The bounds are upper bounds: steeper decay is consistent with them.

A diverged run (NaN/Inf) is not an error here: the returned dataset holds the saves before it,
with ``attrs["result"] = "diverged"`` and ``attrs["stopped_at"]`` the last saved time.
"""

from __future__ import annotations

import time as _time
import warnings

import numpy as np
import xarray as xr

from ..errors import DivergenceError, check
from .scaling import gap_statistics, loglog_fit


def _status(ds: xr.Dataset, diverged: bool, times_saved, times) -> xr.Dataset:
    ds.attrs["result"] = "diverged" if diverged else "successful"
    if diverged:
        ds.attrs["stopped_at"] = float(times_saved[-1]) if len(times_saved) else float(times[0])
    return ds


def sgd_risk_point(problem, times, *, n_neurons: int, eps: float, replicas: int, key, engine: str = "auto",
                   dtype: str = "float64", progress: bool = False) -> xr.Dataset:
    """``risk`` (replica, time): exact R_N(theta^k) of ``replicas`` SGD runs at ``times`` (on the
    step grid k eps).  Replica r uses fold_in(key, r) (``OnlineSGD``)."""
    from ..solvers import OnlineSGD, SaveAt, kept, solve

    times = np.asarray(times, float)
    m = OnlineSGD(n_neurons=int(n_neurons), eps=float(eps), replicas=int(replicas), engine=engine, dtype=dtype)
    start = _time.time()
    try:
        sol = kept(solve(problem, m, SaveAt(m.grid_times(times), "risk"), key=key, progress=progress, throw=False))
        risk, saved, diverged = sol.risk.T, np.asarray(sol.times, float), sol.result == "diverged"
    except DivergenceError:  # nothing saved, not even t = 0
        risk, saved, diverged = np.zeros((int(replicas), 0)), times[:0], True
    ds = xr.Dataset({"risk": (("replica", "time"), np.asarray(risk, float))}, coords={"time": saved},
                    attrs={"n_neurons": int(n_neurons), "eps": float(eps), "seconds": round(_time.time() - start, 2),
                           "description": "exact population risk R_N(theta^k) per SGD replica"})
    return _status(ds, diverged, saved, times)


def dd_risk_point(problem, times, *, n_particles: int, rtol: float, progress: bool = False) -> xr.Dataset:
    """``dd_risk`` (time): R(rho_t) of the radial DD (``RadialDD``, quantile particles)."""
    from ..solvers import RadialDD, SaveAt, kept, solve

    times = np.asarray(times, float)
    try:
        m = RadialDD(n_particles=int(n_particles), rtol=float(rtol))
        dd = kept(solve(problem, m, SaveAt(times, "risk"), progress=progress, throw=False))
        risk, saved, diverged = dd.risk, np.asarray(dd.times, float), dd.result == "diverged"
    except DivergenceError:
        risk, saved, diverged = np.zeros(0), times[:0], True
    ds = xr.Dataset({"dd_risk": (("time",), np.asarray(risk, float))}, coords={"time": saved},
                    attrs={"description": "radial DD risk R(rho_t) (exact finite-d angular average)"})
    return _status(ds, diverged, saved, times)


def gap_table(risks, reference, n_times: int | None = None) -> dict:
    """Gap statistics of each SGD point against the DD reference.

    ``risks``: list of (replica, t_p) arrays whose t_p <= T saves are a prefix of the common save
    times (shorter when a run diverged); ``reference``: R(rho_t) on a prefix of those times.
    Returns ``gap``, ``fluct`` (point, replica), ``bias`` (point,), ``risk`` (point, replica, T)
    and ``reference`` (T,) padded with NaN, ``n_saved`` (point,) the number of times each sup ran
    over (0: no data, NaN statistics), ``frac_sup_at_t0`` (point,) (:func:`frac_sup_at_start`).
    """
    ref = np.asarray(reference, float)
    check(ref.ndim == 1, "reference", f"need a 1-d reference risk, got shape {ref.shape}")
    check(len(risks) >= 1, "risks", "need at least one point")
    R = max(np.asarray(r).shape[0] for r in risks)
    T = max([ref.size] + [np.asarray(r).shape[1] for r in risks]) if n_times is None else int(n_times)
    P = len(risks)
    out = {"gap": np.full((P, R), np.nan), "fluct": np.full((P, R), np.nan), "bias": np.full(P, np.nan),
           "risk": np.full((P, R, T), np.nan), "n_saved": np.zeros(P, int), "reference": np.full(T, np.nan)}
    out["reference"][:min(ref.size, T)] = ref[:T]
    for i, r in enumerate(risks):
        r = np.asarray(r, float)
        out["risk"][i, :r.shape[0], :r.shape[1]] = r
        k = min(r.shape[1], ref.size)
        out["n_saved"][i] = k
        if k:
            s = gap_statistics(r[:, :k], ref[:k])
            out["gap"][i, :r.shape[0]], out["fluct"][i, :r.shape[0]], out["bias"][i] = s["gap"], s["fluct"], s["bias"]
    out["frac_sup_at_t0"] = frac_sup_at_start(out["risk"], ref)
    return out


def sweep_means(table: dict, idx) -> dict:
    """Replica mean (and standard error) of ``gap``/``fluct``, the ``bias`` and ``frac_sup_at_t0``
    at rows ``idx``, as lists (summary form)."""
    idx = list(idx)
    g, f = table["gap"][idx], table["fluct"][idx]
    R = g.shape[1]
    with warnings.catch_warnings():  # rows of a run that saved nothing are all-NaN: their means are NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        sem = np.nanstd(g, axis=1, ddof=1) / np.sqrt(R) if R > 1 else np.zeros(len(idx))
        out = {"gap_mean": np.nanmean(g, axis=1), "gap_sem": sem, "fluct_mean": np.nanmean(f, axis=1),
               "bias": table["bias"][idx], "frac_sup_at_t0": table["frac_sup_at_t0"][idx]}
    return {k: [float(x) for x in v] for k, v in out.items()}


def fit_or_none(x, y, level: float = 0.95):
    """``loglog_fit`` over the entries with finite positive x and y; ``None`` if fewer than 3."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    return loglog_fit(x[ok], y[ok], level) if ok.sum() >= 3 else None


def frac_sup_at_start(risk, reference) -> np.ndarray:
    """Per point, the fraction of replicas whose sup_t |R_N - R(rho_t)| sits at the first save
    (t = 0: the initial-sampling error).  ``risk`` (point, replica, T) may hold NaN padding."""
    risk = np.asarray(risk, float)
    ref = np.asarray(reference, float)
    k = min(risk.shape[-1], ref.size)
    diff = np.abs(risk[..., :k] - ref[None, None, :k])
    diff = np.where(np.isfinite(diff), diff, -np.inf)
    valid = np.isfinite(risk[..., 0])
    at0 = (np.argmax(diff, axis=-1) == 0) & valid
    n = valid.sum(axis=1)
    return np.where(n > 0, at0.sum(axis=1) / np.maximum(n, 1), np.nan)
