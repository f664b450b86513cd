"""One run's ``points -> compute -> reduce -> render`` into an open run directory: the points
loaded on ``--resume``, computed here (checkpointed per point) or mapped over an executor
(:mod:`mfnn.experiments.pointmap`), diverged points recorded without stopping the others, the
reduced data and the figures written (docs/architecture.md, sections 4 and 5).  Nothing
numerical lives here."""

from __future__ import annotations

import shutil

from .. import _signals
from ..errors import ConfigError, DivergenceError, RunInterrupted
from ..io import RunDir
from .run_records import _save_partial

__all__: list = []  # the runner's private helpers (mfnn.experiments.runner re-exports them)


def _stop_check(state):
    signum = _signals.stop_requested()
    if signum is not None:
        raise RunInterrupted(f"interrupted by {_signals.signal_name(signum)}", signum=signum)


def _call_compute(exp, point, progress: bool):
    """``compute(point, progress)``, or ``compute(point)`` for a compute without a progress argument."""
    import inspect

    try:
        params = inspect.signature(exp.compute).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        params = {}
    if "progress" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return exp.compute(point, progress=progress)
    return exp.compute(point)


def _load_point(path):
    import xarray as xr

    with xr.open_dataset(path, engine="scipy") as ds:
        return ds.load()


def _stopped_in(i: int, points: list, message: str) -> dict:
    """Where a run stopped: ``summary["stopped_in"]``."""
    return {"point": i, "of": len(points), "key": points[i].key, "params": points[i].params, "message": message}


def _checkpointing(root, key):
    """Checkpoint the solves of one point into ``root/<key>`` (see ``mfnn.solvers._checkpoint``)."""
    if root is None:
        import contextlib

        return contextlib.nullcontext()
    from ..solvers._checkpoint import checkpointing

    return checkpointing(root / key)


def _computed(exp, points, loaded, progress, state, executor, workers, ckpt_root=None, given=None):
    """Yield ``(i, point, dataset, None)`` or ``(i, point, None, (message, partial))`` (diverged)
    for every point: loaded and ``given`` ones first, then computed here (``executor`` None /
    "serial") or on the executor, in completion order."""
    given = {k: v for k, v in (given or {}).items() if k not in loaded}
    todo = [i for i, p in enumerate(points) if p.key not in loaded and p.key not in given]
    for i, p in enumerate(points):
        if p.key in loaded or p.key in given:
            yield i, p, loaded.get(p.key, given.get(p.key)), None
    if executor in (None, "serial"):
        for i in todo:
            state["point"] = {"index": i, "of": len(points), "key": points[i].key}
            _stop_check(state)
            try:
                with _checkpointing(ckpt_root, points[i].key):  # solver state kept for --resume
                    ds = _call_compute(exp, points[i], progress)
            except DivergenceError as e:  # a solver that diverged before saving anything it could return
                yield i, points[i], None, (str(e).splitlines()[0] if str(e) else "diverged", e.partial)
                continue
            yield i, points[i], ds, None
        return
    from .pointmap import PointFailed, map_points

    state["point"] = {"index": None, "of": len(points), "on": executor}
    for j, out in map_points(exp, [points[i] for i in todo], executor, workers, progress,
                             stop_check=lambda: _stop_check(state)):
        i = todo[j]
        if out[0] == "ok":
            yield i, points[i], out[1], None
        elif out[0] == "diverged":
            yield i, points[i], None, (out[1], out[2])
        else:
            state["point"] = {"index": i, "of": len(points), "key": points[i].key}
            raise PointFailed(f"point {points[i].key}: {out[1]}\n--- traceback in the worker ---\n{out[2]}")


def _pipeline(exp, cfg, run: RunDir, progress: bool, state: dict, resume: bool = False, executor=None,
              workers=None, given=None):
    """``points -> compute -> reduce -> render`` into ``run``; returns ``(result, summary)``.

    A point that diverged -- its Dataset says ``attrs["result"] == "diverged"`` (kept with the
    saves before the blow-up), or its compute raised ``DivergenceError`` (the exception's
    ``partial`` saves go to ``diverged_saves.nc``, or ``diverged_saves_<key>.nc`` after the first)
    -- does not stop the others: the points are independent, so every one is computed, then
    reduced and rendered.  ``summary["stopped_in"]`` names the first diverged point and
    ``summary["diverged_points"]`` all of them.  The result is "diverged" when a point diverged or
    ``reduce``'s summary says ``"result": "diverged"``."""
    points = list(exp.points(cfg))
    results: dict = {}
    diverged: list = []
    state["phase"] = "compute"
    loaded = {}
    if resume:
        for point in points:
            f = run.path / "points" / f"{point.key}.nc"
            if f.is_file():
                try:
                    loaded[point.key] = _load_point(f)
                except Exception:  # noqa: BLE001 - an unreadable save is recomputed
                    pass
    for i, point, ds, err in _computed(exp, points, loaded, progress, state, executor, workers,
                                       ckpt_root=run.path / "checkpoints", given=given):
        if err is not None:  # DivergenceError (raised in this process, or reported by a worker)
            message, partial = err
            where = _stopped_in(i, points, message)
            name = "diverged_saves.nc" if not diverged else f"diverged_saves_{point.key}.nc"
            saved = _save_partial(run, partial, name)
            if saved:
                where["saved"] = saved
            diverged.append(where)
            continue
        if point.key not in loaded:
            if str(ds.attrs.get("result", "")) == "interrupted":  # a solver stopped inside the point:
                run.write_dataset(f"points/{point.key}.interrupted.nc", ds)  # kept, but not resumed from
                signum = _signals.stop_requested()
                raise RunInterrupted(f"interrupted by {_signals.signal_name(signum)}", signum=signum)
            run.write_dataset(f"points/{point.key}.nc", ds)
            shutil.rmtree(run.path / "checkpoints" / point.key, ignore_errors=True)  # the point is saved
        results[point.key] = ds
        if str(ds.attrs.get("result", "successful")) == "diverged":
            diverged.append(_stopped_in(i, points, str(ds.attrs.get("message", "non-finite values"))))
    results = {p.key: results[p.key] for p in points if p.key in results}  # in point order
    diverged.sort(key=lambda d: d["point"])
    stopped = diverged[0] if diverged else None
    state["point"] = None
    _stop_check(state)

    summary: dict = {}
    state["phase"] = "reduce"
    try:
        reduced = exp.reduce(cfg, results)
        summary, data = reduced if isinstance(reduced, tuple) else (reduced, {})
        summary = dict(summary)
        for fname, ds in (data or {}).items():
            run.write_dataset(fname, ds)
    except (KeyboardInterrupt, ConfigError):
        raise
    except Exception as e:  # noqa: BLE001
        if stopped is None:
            raise
        summary = {"reduce_error": f"{type(e).__name__}: {e}"}
    _stop_check(state)

    state["phase"] = "render"
    render_errors = {}
    try:
        figs = exp.render(cfg, results, summary) or {}
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - plotting never loses a run
        figs = {}
        render_errors["render"] = f"{type(e).__name__}: {e}"
    figures = list(summary.get("figures", [])) if isinstance(summary.get("figures"), list) else []
    for stem, fig in figs.items():
        try:
            run.savefig(fig, stem)
            if f"{stem}.png" not in figures:
                figures.append(f"{stem}.png")
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001
            render_errors[stem] = f"{type(e).__name__}: {e}"
    summary["figures"] = figures
    if render_errors:
        summary["render_errors"] = render_errors
    state["phase"] = "finalize"
    summary["points"] = [p.key for p in points[: len(results)]]
    if stopped is not None:
        # the first diverged point, and all of them; the experiment's own "stopped_at" (a time) is kept
        summary["stopped_in"] = stopped
        summary["diverged_points"] = [{k: d[k] for k in ("point", "key", "message")} for d in diverged]
    return "diverged" if stopped is not None or summary.get("result") == "diverged" else "successful", summary


