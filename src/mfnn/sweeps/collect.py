"""Status and collection of a sweep directory.

* :func:`status`: every point's state (done / running / failed / pending, see ``store``);
* :func:`table`: one tidy row per (done point, scalar output of its ``summary.json``): columns
  ``key``, ``seed``, the swept fields, ``result``, ``wall_seconds`` (of the point), ``output`` (nested keys joined by ``.``:
  ``final.sgd_risk``), ``value`` (float);
* :func:`dataset`: an ``xarray.Dataset`` with the swept fields as dimensions (a zip group is one
  dimension, ``"eps+n_neurons"``, its fields coordinates along it) and, per output,
  ``<output>_mean``, ``<output>_std`` (sample standard deviation over seeds, ddof = 1; NaN with one
  seed) and ``<output>_count`` (the seeds present);
* :func:`collect`: writes ``DIR/table.parquet`` and ``DIR/dataset.nc`` (atomically).
"""

from __future__ import annotations

import re

import numpy as np

from ..io import read_json
from .spec import zip_dim
from .store import SweepStore

__all__ = ["status", "status_lines", "table", "dataset", "collect", "scalar_outputs"]

META = {"experiment", "quick", "seed", "result", "sgd_diverged", "dd_diverged", "wall_seconds", "machine"}


def status(root) -> dict:
    """``{"points": [(point dict, state, detail)], "counts": {done, running, failed, pending}}``."""
    store = SweepStore.open(root)
    rows, counts = [], {"done": 0, "running": 0, "failed": 0, "pending": 0}
    for p in store.spec()["points"]:
        state, detail = store.state(p["key"])
        counts[state] += 1
        rows.append((p, state, detail))
    return {"points": rows, "counts": counts, "experiment": store.spec()["spec"]["experiment"]}


def status_lines(root) -> list:
    """``mfnn status`` as lines: a header, one line per failed or running point (key, coords, seed,
    error), and last ``done: N, running: N, failed: N, pending: N``."""
    st = status(root)
    lines = [f"sweep of {st['experiment']}: {len(st['points'])} points in {root}"]
    for p, state, detail in st["points"]:
        if state in ("failed", "running"):
            where = ", ".join(f"{k}={v}" for k, v in p["coords"].items())
            lines.append(f"{state:>8}  {p['key']}  {where}{', ' if where else ''}seed={p['seed']}"
                         + (f": {detail}" if detail else ""))
    c = st["counts"]
    lines.append(f"done: {c['done']}, running: {c['running']}, failed: {c['failed']}, pending: {c['pending']}")
    return lines


def scalar_outputs(summary: dict, prefix: str = "") -> dict:
    """Numeric scalars of a summary (nested dicts flattened with ``.``; lists and texts skipped)."""
    out = {}
    for k, v in summary.items():
        name = f"{prefix}{k}"
        if not prefix and k in META:
            continue
        if isinstance(v, dict):
            out.update(scalar_outputs(v, name + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def _done_points(store: SweepStore):
    for p in store.spec()["points"]:
        if store.is_done(p["key"]):
            yield p, read_json(store.final(p["key"]) / "summary.json")


def table(root):
    """The tidy ``pandas.DataFrame`` of a sweep (see the module docstring), sorted by point then output."""
    import pandas as pd

    store = SweepStore.open(root)
    spec = store.spec()["spec"]
    fields = [*spec["grid"], *(k for g in spec["zip"] for k in g)]
    rows = []
    for p, summary in _done_points(store):
        base = {"key": p["key"], "seed": p["seed"], **{f: p["coords"][f] for f in fields},
                "result": str(summary.get("result", "successful")),
                "wall_seconds": float(summary.get("wall_seconds", np.nan))}
        for name, value in scalar_outputs(summary).items():
            rows.append({**base, "output": name, "value": value})
    cols = ["key", "seed", *fields, "result", "wall_seconds", "output", "value"]
    return pd.DataFrame(rows, columns=cols)


def _var(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def dataset(root, tab=None):
    """The labelled dataset of a sweep (see the module docstring)."""
    import xarray as xr

    store = SweepStore.open(root)
    spec = store.spec()["spec"]
    tab = table(root) if tab is None else tab
    grid, zips = list(spec["grid"]), [dict(g) for g in spec["zip"]]
    if tab.empty:
        return xr.Dataset(attrs={"experiment": spec["experiment"], "points_done": 0})
    wide = tab.pivot_table(index=["key"], columns="output", values="value", aggfunc="first")
    info = tab.drop_duplicates("key").set_index("key")
    dims = list(grid)
    points = store.spec()["points"]
    pos = {p["key"]: p.get("index", {}) for p in points}
    for g in zips:  # a zip group: one integer dimension, its fields as coordinates
        d = zip_dim(g)
        info[d] = [pos.get(k, {}).get(d, -1) for k in info.index]
        dims.append(d)
    wide = wide.join(info[dims]) if dims else wide.assign(_all=0)
    by = dims or ["_all"]
    outputs = [c for c in wide.columns if c not in by]
    stats = wide.groupby(by)[outputs].agg(["mean", "std", "count"])
    stats.columns = [f"{_var(o)}_{s}" for o, s in stats.columns]
    ds = xr.Dataset.from_dataframe(stats)
    if not dims:
        ds = ds.isel(_all=0, drop=True)
    full = {f: list(dict.fromkeys(p["coords"][f] for p in points)) for f in grid}
    full.update({zip_dim(g): list(range(len(next(iter(g.values()))))) for g in zips})
    ds = ds.reindex({d: full[d] for d in dims})  # the whole grid: points not done have count 0
    for g in zips:
        d = zip_dim(g)
        at = {p["index"][d]: p["coords"] for p in points if d in p.get("index", {})}
        ds = ds.assign_coords({k: (d, [at[int(i)][k] for i in ds[d].values]) for k in g})
    for v in ds.data_vars:
        if v.endswith("_count"):
            ds[v] = ds[v].fillna(0).astype("int64")
    ds.attrs.update(experiment=spec["experiment"], seeds=len(spec["seeds"]), points_done=int(tab["key"].nunique()),
                    description="mean, sample std (ddof=1) and count over seeds of every scalar output of "
                                "summary.json, by swept field")
    return ds


def collect(root) -> tuple:
    """Write ``table.parquet`` and ``dataset.nc`` into the sweep directory; returns their paths."""
    import io as _io

    from ..io import atomic_write_bytes, atomic_write_dataset

    store = SweepStore.open(root)
    tab = table(root)
    buf = _io.BytesIO()
    tab.to_parquet(buf, index=False)
    tpath = store.root / "table.parquet"
    atomic_write_bytes(tpath, buf.getvalue())
    ds = dataset(root, tab)
    dpath = atomic_write_dataset(store.root / "dataset.nc", ds)
    return tpath, dpath
