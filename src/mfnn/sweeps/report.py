"""``mfnn report DIR``: one self-contained HTML page for a run directory or a sweep directory.

* a run: its summary (scalar outputs as a table), config, environment (``config.json``'s
  versions) and every figure (PNG embedded as base64);
* a sweep: the spec, the point counts, the environment, the collected table (mean +- std over seeds
  per grid point) and the standard scaling plot: a metric against a swept field on log-log axes
  with the least-squares slope and its 95% interval (:func:`mfnn.analysis.scaling.loglog_fit`),
  plus the figures of the first finished point.

Nothing is fetched from the network: no external scripts, styles or fonts.  A small inline script
marks ``<body data-decoded=...>`` with the number of images the browser decoded (the browser test
reads it).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import MARKER, read_json

__all__ = ["write_report", "sweep_html", "run_html", "scaling_figure"]

_CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #bbb;padding:2px 8px;text-align:right;font-size:90%}th{background:#eee}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}img{max-width:100%;border:1px solid #ddd}"""
_SCRIPT = """window.addEventListener('load',function(){var im=document.images,n=0;
for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0){n++;}}
document.body.setAttribute('data-decoded',String(n));});"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, alt: str) -> str:
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(rows: list, cols: list) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return "" if v is None else str(v)


def _page(title: str, sections: list) -> str:
    n_img = sum(s.count("<img ") for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body data-images=\"{n_img}\"><h1>{html.escape(title)}</h1>"
            + "\n".join(sections) + f"<script>{_SCRIPT}</script></body></html>\n")


def _environment(versions: dict | None) -> str:
    env = dict(versions or {})
    env.setdefault("report python", platform.python_version())
    return "<h2>Environment</h2>" + _table([{"package": k, "version": v} for k, v in env.items()], ["package", "version"])


def _figures(directory: Path, limit: int = 12) -> list:
    return [_img(base64.b64encode(p.read_bytes()).decode(), p.name) for p in sorted(directory.glob("*.png"))[:limit]]


def run_html(directory: Path) -> str:
    """The HTML page of one run directory: result, scalar outputs of ``summary.json``, its figures
    (embedded), config and environment."""
    from .collect import scalar_outputs

    summary = read_json(directory / "summary.json")
    config = read_json(directory / "config.json") if (directory / "config.json").is_file() else {}
    outs = scalar_outputs(summary)
    sections = [f"<p>result: <b>{html.escape(str(summary.get('result', 'successful')))}</b>, "
                f"wall time {html.escape(_fmt(summary.get('wall_seconds')))} s, seed {summary.get('seed')}</p>",
                "<h2>Summary</h2>" + _table([{"output": k, "value": v} for k, v in outs.items()], ["output", "value"]),
                "<h2>Figures</h2>" + "".join(_figures(directory)),
                "<h2>Config</h2><pre>" + html.escape(json.dumps(config.get("config", config), indent=1, default=str)) + "</pre>",
                _environment(config.get("versions"))]
    return _page(f"mfnn run: {summary.get('experiment')}", sections)


def scaling_figure(x, y, yerr, fit, field: str, metric: str):
    """A log-log figure of ``metric`` (mean ``y`` with error bars ``yerr``) against the swept ``field``
    ``x``, with the fitted power law ``fit`` (slope and its 95% interval) drawn and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(x, y, yerr=yerr, fmt="o", capsize=3, label=f"{metric} (mean +- std over seeds)")
    if fit is not None:
        xs = np.geomspace(min(x), max(x), 50)
        ax.plot(xs, np.exp(fit["intercept"]) * xs ** fit["value"], "-",
                label=f"slope {fit['value']:.3f}  95% CI [{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(field)
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} vs {field} (log-log)")
    return fig


def _scaling(ds, spec: dict, metric: str | None, field: str | None) -> tuple:
    """(html, fit) of the scaling plot: ``metric`` mean against ``field`` (other dims: first value)."""
    from ..analysis.scaling import loglog_fit

    dims = [d for d in ds.dims]
    candidates = [field] if field else [d for d in spec["grid"] if d in dims] + \
        [k for g in spec["zip"] for k in g]
    means = [v[:-5] for v in ds.data_vars if v.endswith("_mean")]
    if metric is not None and metric.replace(".", "_") not in means:
        raise ConfigError("--metric", f"no output {metric!r}; outputs: {', '.join(means)}")
    metrics = [metric.replace(".", "_")] if metric else means
    for f in candidates:
        if f not in ds.coords:
            if field:
                raise ConfigError("--field", f"{field!r} is not a swept field; swept: {', '.join(candidates) or 'none'}")
            continue
        dim = ds[f].dims[0]
        for m in metrics:
            da = ds[f"{m}_mean"]
            sd = ds[f"{m}_std"]
            others = {d: 0 for d in da.dims if d != dim}
            y, e, x = da.isel(others).values, sd.isel(others).values, np.asarray(ds[f].values, float)
            ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
            if ok.sum() < 3:
                continue
            if metric is None and np.ptp(np.log(y[ok])) == 0:
                continue  # a constant output (a copy of a config value, say): no scaling to show
            fit = loglog_fit(x[ok], y[ok])
            err = np.where(np.isfinite(e[ok]), e[ok], 0.0)
            fig = scaling_figure(x[ok], y[ok], err, fit, f, m)
            note = (f"<p>fit of log {html.escape(m)} = c + p log {html.escape(f)} over {int(ok.sum())} points"
                    + (" (other dimensions at their first value: " + html.escape(
                        ", ".join(f"{d} = {_fmt(ds[d].values[0].item())}" for d in others)) + ")" if others else "")
                    + f": p = {fit['value']:.4g}, 95% CI [{fit['ci_low']:.4g}, {fit['ci_high']:.4g}], "
                      f"R<sup>2</sup> = {fit['r2']:.4f}</p>")
            return "<h2>Scaling</h2>" + _img(_png(fig), f"{m} vs {f}") + note, fit
    if field or metric:
        raise ConfigError("--metric" if metric else "--field", "no positive metric with >= 3 points along this field")
    return "<h2>Scaling</h2><p>no swept numeric field with >= 3 positive points and a positive metric</p>", None


def sweep_html(directory: Path, metric=None, field=None) -> str:
    """The HTML page of a sweep directory: status counts, the collected table, the scaling plot of
    ``metric`` against ``field`` (chosen automatically when None) and the spec and environment."""
    from .collect import dataset, status

    from ..io import versions

    st = status(directory)
    spec = read_json(directory / "sweep.json")["spec"]
    ds = dataset(directory)
    c = st["counts"]
    sections = [f"<p>{len(st['points'])} points: done {c['done']}, running {c['running']}, failed {c['failed']}, "
                f"pending {c['pending']}</p>"]
    failed = [{"key": p["key"], **p["coords"], "seed": p["seed"], "error": d} for p, s, d in st["points"] if s == "failed"]
    if failed:
        sections.append("<h2>Failed points</h2>" + _table(failed, list(failed[0])))
    fit = None
    if ds.data_vars:
        scaling, fit = _scaling(ds, spec, metric, field)
        sections.append(scaling)
        df = ds.to_dataframe().reset_index()
        cols = [c for c in df.columns if not c.endswith("_std") and not c.endswith("_count")][:14]
        sections.append("<h2>Results (mean over seeds)</h2>" + _table(df[cols].to_dict("records"), cols))
    sections.append("<h2>Spec</h2><pre>" + html.escape(json.dumps(spec, indent=1)) + "</pre>")
    done = [p for p, s, _ in st["points"] if s == "done"]
    if done:
        sections.append(f"<h2>Figures of point {html.escape(done[0]['key'])}</h2>"
                        + "".join(_figures(directory / "points" / done[0]["key"], limit=6)))
    try:
        env = versions()
    except Exception:  # noqa: BLE001 - the environment table is informative only
        env = {}
    sections.append(_environment(env))
    return _page(f"mfnn sweep: {spec['experiment']}", sections)


def write_report(directory, out=None, metric=None, field=None) -> Path:
    """Write the report of a run or sweep ``directory`` (default ``directory/report.html``)."""
    from ..io import atomic_write_bytes

    d = Path(directory)
    if (d / "sweep.json").is_file():
        text = sweep_html(d, metric, field)
    elif (d / "summary.json").is_file() and ((d / MARKER).is_file() or (d / "config.json").is_file()):
        if metric or field:
            raise ConfigError("--metric" if metric else "--field", "only for a sweep directory")
        text = run_html(d)
    else:
        raise ConfigError("directory", f"{directory} is neither an mfnn run (summary.json) nor a sweep (sweep.json)")
    path = Path(out) if out else d / "report.html"
    atomic_write_bytes(path, text.encode())
    return path
