"""What a run writes about itself in its directory: ``summary.json`` (whatever the outcome), the
best-effort ``.partial`` saves of a solver that stopped, and the one-line message of an
interruption (docs/architecture.md, section 5).  Nothing numerical lives here."""

from __future__ import annotations

import os
import time

import numpy as np

from ..io import RunDir

__all__: list = []  # the runner's private helpers (mfnn.experiments.runner re-exports them)


def _save_partial(run: RunDir, partial, name: str) -> str | None:
    """Best-effort save of the observables a solver carried in an exception (``.partial``)."""
    if partial is None:
        return None
    try:
        import xarray as xr

        if isinstance(partial, xr.Dataset):  # from a worker (mfnn.experiments.pointmap)
            ds = partial
        elif hasattr(partial, "to_xarray"):
            ds = partial.to_xarray()
        else:
            items = list(partial) if isinstance(partial, (list, tuple)) else None
            if not items or not all(isinstance(s, dict) for s in items):
                return None
            data = {}
            for k in items[0]:
                arr = np.stack([np.asarray(s[k]) for s in items])
                if arr.dtype.kind in "biuf":
                    data[str(k)] = (("save",) + tuple(f"{k}_dim{i}" for i in range(arr.ndim - 1)), arr)
            if not data:
                return None
            ds = xr.Dataset(data, attrs={"description": "saves made before the run stopped"})
        run.write_dataset(name, ds)
        return name
    except Exception:  # noqa: BLE001 - best effort: never mask the original stop
        return None


def _short(x, n: int = 160) -> str:
    s = x if isinstance(x, str) else repr(x)
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _interrupt_line(info: dict, run) -> str:
    where = f"during {info['phase']}"
    if "point" in info and isinstance(info["point"], dict) and info["point"].get("index") is not None:
        where += f" (point {info['point'].get('index', 0) + 1} of {info['point'].get('of')})"
    kept = f"; saves kept in {run.path} (--resume continues)" if run is not None else ""
    return f"interrupted by {info['signal']} {where}{kept}"


def _machine() -> dict:
    """CPU count and load averages (1, 5, 15 min) at the end of a run: a wall time means little
    without the load it was measured under (the docs' Results page prints both)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not every platform has a load average
        load = None
    return {"cpus": os.cpu_count(), "load_average": load}


def _write_summary(run: RunDir, exp, name, quick, cfg, start, summary: dict) -> dict:
    full = {"experiment": name, "quick": quick, "seed": cfg.seed,
            "wall_seconds": round(time.time() - start, 2), "machine": _machine(), **summary}
    try:
        run.write_json("summary.json", full)
    except (TypeError, ValueError) as e:  # a summary that cannot be serialized: keep the run's status
        full = {k: full[k] for k in ("experiment", "quick", "seed", "wall_seconds", "result")}
        full["summary_error"] = f"{type(e).__name__}: {e}"
        run.write_json("summary.json", full)
    return full


