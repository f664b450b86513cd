"""Save-time grids shared by SGD and its mean-field limit.

Online SGD at step size eps saves after whole steps, at t = k eps (PNAS 2018 eq. 8: the DD time
is t = k eps).  Comparing SGD with the distributional dynamics (PNAS 2018 eq. 13) therefore needs
save times on the step grid, so that both are read at the same t.  ``log_save_times`` builds the
usual grid (t = 0 plus a geometric grid over ``decades`` decades up to t_max, plus any extra times)
and snaps it to the step grid.
"""

from __future__ import annotations

import numpy as np

from ..errors import check


def snap_to_steps(times, eps: float) -> np.ndarray:
    """Sorted unique times rounded to the nearest multiple of ``eps`` (whole SGD steps)."""
    check(eps > 0, "eps", f"must be > 0, got {eps}")
    t = np.asarray(times, dtype=float)
    return np.unique(np.round(t / eps) * eps)


def log_save_times(t_max: float, n_times: int, eps: float | None = None, extra=(), decades: float = 3.0):
    """0, ``n_times - 1`` geometric points from t_max 10^-decades to t_max, and ``extra``.

    With ``eps`` the result is snapped to the step grid t = k eps (``snap_to_steps``); without it,
    sorted and de-duplicated.  Snapping can merge nearby times, so the result may hold fewer than
    ``n_times + len(extra)`` entries.
    """
    check(t_max > 0, "t_max", f"must be > 0, got {t_max}")
    check(n_times >= 2, "n_times", f"must be >= 2, got {n_times}")
    grid = np.geomspace(t_max / 10.0 ** decades, t_max, n_times - 1)
    ts = np.concatenate([[0.0], grid, np.asarray(extra, dtype=float).ravel()])
    return snap_to_steps(ts, eps) if eps is not None else np.unique(ts)


def extend_geometric(t_end: float, t_long: float, n: int = 8) -> np.ndarray:
    """Times after ``t_end`` up to ``t_long``: ``geomspace(t_end, t_long, n)[1:]`` (empty if t_long <= t_end).

    Used to continue a cheap DD solve far past the SGD horizon (long-time risk, PNAS 2018 Fig. 2).
    """
    if not t_long > t_end or t_end <= 0:
        return np.zeros(0)
    return np.geomspace(t_end, t_long, n)[1:]


def nearest_indices(times, targets) -> list:
    """Index into ``times`` of the entry nearest to each target (panel times of a figure)."""
    t = np.asarray(times, dtype=float)
    check(t.size > 0, "times", "need at least one time")
    return [int(np.argmin(np.abs(t - x))) for x in np.asarray(targets, dtype=float).ravel()]
