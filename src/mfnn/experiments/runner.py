"""The experiment runner: validate the input, check the output location, run an experiment's
``points -> compute -> reduce -> render`` into a run directory, and handle divergence,
interruption and failure (docs/architecture.md, sections 4 and 5).

* :func:`run_experiment`: the one way to run an experiment (the CLI's ``mfnn run`` calls it);
* :func:`check_budget`: the size guard (half the physical memory, one day of wall time);
* :class:`RunFailed`: an unexpected error during a run (exit 1 in the CLI).

The pieces live in modules named for what they hold, re-exported here: the size guard in
:mod:`~mfnn.experiments.run_budget`, the pipeline (points, compute, reduce, render) in
:mod:`~mfnn.experiments.run_pipeline`, what a run writes about itself (summary, partial saves)
in :mod:`~mfnn.experiments.run_records`.  Nothing numerical lives here.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback

from .. import _signals
from ..errors import ConfigError, DivergenceError, RunInterrupted
from ..io import RunDir, plan_output, versions
from .base import get
# re-exported: every name runner.py held before the split stays importable from here
from .run_budget import (MAX_BYTES_FRACTION, MAX_SECONDS, _as_float, _fmt_bytes, _fmt_seconds,  # noqa: F401
                         check_budget, physical_memory)
from .run_pipeline import (_call_compute, _checkpointing, _computed, _load_point, _pipeline,  # noqa: F401
                           _stop_check, _stopped_in)
from .run_records import _interrupt_line, _save_partial, _short, _write_summary  # noqa: F401

__all__ = ["RunFailed", "run_experiment", "check_budget"]


class RunFailed(RuntimeError):
    """A run stopped on an unexpected error; ``run_dir`` keeps its saves (``.partial``)."""

    def __init__(self, message: str, run_dir=None):
        self.run_dir = run_dir
        super().__init__(message)


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
