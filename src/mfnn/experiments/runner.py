"""The experiment runner: validate the input, check the output location, run an experiment's
``points -> compute -> reduce -> render`` into a run directory, and handle divergence,
interruption and failure (docs/architecture.md, sections 4 and 5).

* :func:`run_experiment`: the one way to run an experiment (the CLI's ``mfnn run`` calls it);
* :func:`check_budget`: the size guard (half the physical memory, one day of wall time);
* :class:`RunFailed`: an unexpected error during a run (exit 1 in the CLI).

Nothing numerical lives here.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import traceback

import numpy as np

from .. import _signals
from ..errors import ConfigError, DivergenceError, RunInterrupted
from ..io import RunDir, plan_output, versions
from .base import get

MAX_BYTES_FRACTION = 0.5   # of physical memory
MAX_SECONDS = 86400.0      # one day on 2 cores


class RunFailed(RuntimeError):
    """A run stopped on an unexpected error; ``run_dir`` keeps its saves (``.partial``)."""

    def __init__(self, message: str, run_dir=None):
        self.run_dir = run_dir
        super().__init__(message)


def check_budget(exp, cfg, force: bool = False) -> dict:
    """``exp.estimate(cfg)``; raise ``ConfigError`` naming its ``field`` when it exceeds half the
    physical memory or a day of wall time (unless ``force``)."""
    try:
        est = dict(exp.estimate(cfg) or {})
    except ConfigError:
        raise
    except (ArithmeticError, ValueError, TypeError, MemoryError) as e:
        raise ConfigError("config", f"cannot estimate the size of this run ({type(e).__name__}: {e}); "
                                    "reduce the sizes") from None
    if force:
        return est
    field = str(est.get("field") or "config")
    ram = physical_memory()
    b = _as_float(est.get("bytes"))
    s = _as_float(est.get("seconds"))
    if b is not None and ram and not b <= MAX_BYTES_FRACTION * ram:
        raise ConfigError(field, f"this run needs about {_fmt_bytes(b)} of memory, more than half of the "
                                 f"{_fmt_bytes(ram)} here; reduce it or pass --force")
    if s is not None and not s <= MAX_SECONDS:
        raise ConfigError(field, f"this run would take about {_fmt_seconds(s)} (more than a day); "
                                 "reduce it or pass --force")
    return est


def _as_float(x):
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return math.inf


def physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 0


def _fmt_bytes(b: float) -> str:
    if not math.isfinite(b):
        return "an unbounded amount"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if b < 1024 or unit == "PiB":
            return f"{b:.3g} {unit}"
        b /= 1024
    return f"{b:.3g} EiB"  # pragma: no cover


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "forever"
    if s < 3600 * 48:
        return f"{s / 3600:.3g} hours"
    if s < 86400 * 365 * 3:
        return f"{s / 86400:.3g} days"
    return f"{s / (86400 * 365):.3g} years"


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


def _stop_check(state):
    signum = _signals.stop_requested()
    if signum is not None:
        raise RunInterrupted(f"interrupted by {_signals.signal_name(signum)}", signum=signum)


def run_experiment(name: str, *, out=None, quick=False, overrides=None, seed=None, progress=True,
                   overwrite=False, resume=False, force=False, executor=None, workers=None, given=None):
    """Validate everything, check the output location, then run into ``out`` (default
    results/<name>); returns the final run path.

    * Bad input raises ``ConfigError`` before anything is written (config, size estimate, ``out``).
    * The run writes into ``<out>.partial`` (marker first) under ``_signals.cooperative()``; each
      point goes to ``points/<key>.nc`` as it completes; with ``resume`` the points already there
      are loaded instead of recomputed, and a point in flight continues from its solvers' last
      checkpoint (``checkpoints/<key>/``, every ``$MFNN_CHECKPOINT_SECONDS`` = 60 s and at an
      interrupt; bit for bit the uninterrupted numbers).
    * Divergence: ``summary.json`` with ``"result": "diverged"`` and where it stopped, figures from
      what was saved (plotting failures are recorded in ``render_errors``), the directory renamed
      to ``out`` (a finished, reproducible result), then ``DivergenceError`` is raised with
      ``.run_dir`` and ``.summary``.
    * Interruption (SIGINT/SIGTERM/KeyboardInterrupt): ``summary.json`` with ``"result":
      "interrupted"``, the phase and point; ``.partial`` kept; ``RunInterrupted`` re-raised with
      ``.run_dir`` and ``.signum``.
    * Any other error: ``summary.json`` with ``"result": "failed"`` and ``error.log`` (traceback)
      in ``.partial``; ``RunFailed`` raised (``ConfigError`` raised mid-run is re-raised as is).
    * ``executor`` ("local", "dask", "slurm", ... of :mod:`mfnn.sweeps.executors`; default None:
      in this process) maps ``compute`` over the points with ``workers`` workers
      (:mod:`mfnn.experiments.pointmap`); the results are the same, point by point.
    * ``given`` (point key -> Dataset): points already computed elsewhere (the sweep engine's
      ``compute_seeds`` of several seeds in one call); they are saved and used as computed here.
    """
    from pathlib import Path

    exp = get(name)
    cfg = exp.make_config(quick=quick, overrides=overrides, seed=seed)
    check_budget(exp, cfg, force=force)
    out = Path("results") / name if out is None else out
    plan = plan_output(out, experiment=name, overwrite=overwrite, resume=resume)
    if executor not in (None, "serial"):
        from ..sweeps.executors import make_executor

        make_executor(executor, workers)  # checks the executor's arguments (ConfigError), starts nothing

    state = {"phase": "setup", "point": None, "n_points": None}
    start = time.time()
    run = None
    _signals.clear()
    import jax

    with _signals.cooperative(), jax.enable_x64(True):  # a whole run in float64 (no global switch)
        try:
            run = RunDir.open(plan, name)
            run.write_json("config.json", {"experiment": name, "quick": quick, "config": cfg,
                                           "versions": versions()})
            _stop_check(state)
            result, summary = _pipeline(exp, cfg, run, progress, state, resume=plan.resume,
                                        executor=executor, workers=workers, given=given)
            _stop_check(state)
        except KeyboardInterrupt as e:  # RunInterrupted included
            signum = getattr(e, "signum", None)
            if signum is None:
                signum = _signals.stop_requested()
            info = {"result": "interrupted", "signal": _signals.signal_name(signum), "phase": state["phase"],
                    "message": str(e) or "interrupted"}
            if state["point"] is not None:
                info["point"] = state["point"]
            if run is not None:
                saved = _save_partial(run, getattr(e, "partial", None), "interrupted_saves.nc")
                if saved:
                    info["saved"] = saved
                _write_summary(run, exp, name, quick, cfg, start, info)
            err = RunInterrupted(_interrupt_line(info, run), signum=signum)
            err.run_dir = run.path if run is not None else None
            err.summary = info
            raise err from None
        except ConfigError as e:
            if run is not None:
                _write_summary(run, exp, name, quick, cfg, start,
                               {"result": "failed", "phase": state["phase"], "error": str(e)})
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then re-raised as one line
            if os.environ.get("MFNN_DEBUG"):
                raise
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
            if run is None:
                raise RunFailed(f"{msg} (before anything was written)") from e
            try:
                (run.path / "error.log").write_text(traceback.format_exc())
            except OSError:
                pass
            _write_summary(run, exp, name, quick, cfg, start,
                           {"result": "failed", "phase": state["phase"], "point": state["point"], "error": msg})
            raise RunFailed(f"{msg} during {state['phase']}; saves and error.log kept in {run.path}",
                            run_dir=run.path) from e

        summary = _write_summary(run, exp, name, quick, cfg, start,
                                 {"result": result, **{k: v for k, v in summary.items() if k != "result"}})
        shutil.rmtree(run.path / "checkpoints", ignore_errors=True)  # a finished run needs none
        path = run.finalize()
    if result == "diverged":
        where = summary.get("stopped_in") or summary.get("stopped_at") or summary.get("message")
        err = DivergenceError(f"run diverged ({_short(where)}); saves, figures and summary.json in {path}")
        err.run_dir = path
        err.summary = summary
        raise err
    return path


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


def _write_summary(run: RunDir, exp, name, quick, cfg, start, summary: dict) -> dict:
    full = {"experiment": name, "quick": quick, "seed": cfg.seed,
            "wall_seconds": round(time.time() - start, 2), **summary}
    try:
        run.write_json("summary.json", full)
    except (TypeError, ValueError) as e:  # a summary that cannot be serialized: keep the run's status
        full = {k: full[k] for k in ("experiment", "quick", "seed", "wall_seconds", "result")}
        full["summary_error"] = f"{type(e).__name__}: {e}"
        run.write_json("summary.json", full)
    return full


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
