"""Run status and tables of computed points: the ``result`` / ``stopped_at`` attrs of a point,
their ``summary.json`` entries, per-solver files split from one dataset, text tables."""

from __future__ import annotations

__all__ = ["divergence_summary", "fmt_ci", "format_table", "run_status", "summary_status", "take"]


def run_status(times, sgd, *dds) -> dict:
    """Dataset attrs of a computed point: ``result`` ("successful" or "diverged"), ``stopped_at``
    (if diverged: the last save time kept by every solver, ``times[-1]``), ``sgd_diverged`` and
    ``dd_diverged`` (0/1: netCDF attributes cannot be booleans).  ``None`` entries of ``dds`` are skipped."""
    sgd_div = int(sgd is not None and sgd.result == "diverged")
    dd_div = int(any(d.result == "diverged" for d in dds if d is not None))
    out = {"result": "diverged" if sgd_div or dd_div else "successful", "sgd_diverged": sgd_div, "dd_diverged": dd_div}
    if sgd_div or dd_div:
        out["stopped_at"] = float(times[-1]) if len(times) else 0.0
    return out


def summary_status(ds) -> dict:
    """The run-status entries of ``summary.json`` from a computed dataset's attrs (``run_status``)."""
    out = {"sgd_diverged": bool(ds.attrs.get("sgd_diverged", 0)), "dd_diverged": bool(ds.attrs.get("dd_diverged", 0)),
           "result": ds.attrs.get("result", "successful")}
    if out["result"] == "diverged":
        out["stopped_at"] = float(ds.attrs["stopped_at"])
        out["warning"] = "a solver diverged: results end at the last finite save"
    return out


def take(ds, prefix: str, description: str = "", drop=()):
    """The variables of ``ds`` named ``<prefix><name>``, renamed ``<name>``, with ``ds``'s coords
    (less ``drop``): splits one computed dataset into the per-solver files of a run."""
    import xarray as xr

    out = xr.Dataset({k[len(prefix):]: v for k, v in ds.data_vars.items() if k.startswith(prefix)})
    out = out.drop_vars([c for c in drop if c in out.coords])
    if description:
        out.attrs["description"] = description
    return out


def format_table(rows: list, columns: list) -> str:
    """Fixed-width text table for ``mfnn show``: ``columns`` = [(header, key, format)], a key ``"a.b"``
    reads ``row["a"]["b"]``; columns whose key is missing from the first row are left out."""
    def get(row, key):
        for part in key.split("."):
            row = row[part] if isinstance(row, dict) and part in row else None
        return row

    cols = [c for c in columns if rows and get(rows[0], c[1]) is not None]
    width = [max(10, len(h)) for h, _, _ in cols]
    lines = [" ".join(f"{h:>{w}}" for (h, _, _), w in zip(cols, width))]
    for r in rows:
        lines.append(" ".join(f"{get(r, k):>{w}{f}}" for (_, k, f), w in zip(cols, width)))
    return "\n".join(lines)


def divergence_summary(labelled: dict) -> dict:
    """``{"result": "diverged", "stopped_at": {label: t}}`` for the datasets (label -> Dataset) whose
    ``attrs["result"]`` is "diverged"; ``{}`` when none is."""
    stopped = {k: ds.attrs["stopped_at"] for k, ds in labelled.items() if ds.attrs.get("result") == "diverged"}
    return {"result": "diverged", "stopped_at": stopped} if stopped else {}


def fmt_ci(fit) -> str:
    """``value [ci_low, ci_high]`` of an exponent fit (3 decimals), ``n/a`` for None."""
    return "n/a" if fit is None else f"{fit['value']:.3f} [{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]"
