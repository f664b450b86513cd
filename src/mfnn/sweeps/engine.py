"""The sweep engine: validate a spec, skip the done points, run the others on an executor.

:func:`run_sweep` validates the whole spec first (every point's config and size: a
``ConfigError`` and nothing written), checks the output directory, writes ``sweep.json``, then
submits one :func:`run_point` per point that is not done.  Each point is an ordinary experiment
run (:func:`mfnn.experiments.runner.run_experiment`) into ``points/<key>`` (atomic, marker, a
``.partial`` while in flight): a failed point keeps its traceback in ``points/<key>.partial/error.log``
and does not stop the others.  One progress bar counts points (with an ETA).
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["run_sweep", "run_point", "SweepResult"]


_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"  # one per jit cache miss
_traces = {"n": 0, "listening": False}


def _count_traces() -> int:
    """JAX traces (jit cache misses) in this process so far (counting starts at the first call)."""
    if not _traces["listening"]:
        import jax

        def listener(event, duration, **kwargs):  # noqa: ARG001
            if event == _TRACE_EVENT:
                _traces["n"] += 1

        jax.monitoring.register_event_duration_secs_listener(listener)
        _traces["listening"] = True
    return _traces["n"]


def run_point(root: str, point: dict, imports: tuple = ()) -> dict:
    """Run one sweep point into ``root/points/<key>`` (picklable; runs in a worker).

    Returns ``{"key", "status": "done" | "diverged" | "failed" | "interrupted" | "skipped",
    "seconds", "error", "traces" (JAX traces, i.e. compilations, during the point), "pid"}``;
    never raises for a failure of the point itself."""
    import importlib
    import shutil

    from ..errors import DivergenceError
    from ..io import read_marker
    from ..experiments.runner import RunFailed, run_experiment
    from .store import SweepStore

    store = SweepStore(root)
    try:
        for m in imports:
            importlib.import_module(m)
    except Exception as e:  # noqa: BLE001 - reported as data: mfnn's exceptions do not pickle
        return {"key": point["key"], "status": "failed", "seconds": 0.0, "error": f"cannot import: {e}",
                "traces": 0, "pid": 0}
    key = point["key"]
    import os

    traces0 = _count_traces()
    t0 = time.perf_counter()
    out = {"key": key, "status": "done", "seconds": 0.0, "error": None, "traces": 0, "pid": os.getpid()}
    with store.lock(key):  # another driver computing it: wait, then find it done
        if store.is_done(key):
            return {**out, "status": "skipped"}
        partial = store.partial(key)
        if partial.is_dir() and not partial.is_symlink() and read_marker(partial) is None:
            shutil.rmtree(partial)  # killed before its marker was written: ours (sweep dir, under the lock)
        try:
            run_experiment(point["experiment"], out=store.final(key), quick=point["quick"],
                           overrides=point["overrides"], seed=point["seed"], progress=False,
                           resume=partial.exists(), force=True)
        except DivergenceError:
            out["status"] = "diverged"
        except KeyboardInterrupt as e:
            out.update(status="interrupted", error=str(e) or "interrupted")
        except (RunFailed, ConfigError) as e:
            out.update(status="failed", error=" ".join(str(e).split()))
            _log_error(partial, traceback.format_exc(), overwrite=False)
        except Exception as e:  # noqa: BLE001 - a bug of one point never stops the sweep
            out.update(status="failed", error=f"{type(e).__name__}: {e}")
            _log_error(partial, traceback.format_exc(), overwrite=True)
    out["seconds"] = time.perf_counter() - t0
    out["traces"] = _count_traces() - traces0
    return out


def _log_error(partial, text: str, overwrite: bool) -> None:
    try:
        partial.mkdir(parents=True, exist_ok=True)
        log = partial / "error.log"
        if overwrite or not log.is_file():
            log.write_text(text)
    except OSError:  # pragma: no cover - best effort
        pass


@dataclass
class SweepResult:
    """What ``run_sweep`` did: the sweep directory ``root``, the number of points ``total``, how many
    were ``skipped`` as already done, ``run_point``'s result dict of each point it ran (completion
    order), the wall time, and the CLI ``exit_code``."""

    root: object
    total: int
    skipped: int = 0
    results: list = field(default_factory=list)   # run_point's dicts, in completion order
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.results)

    @property
    def failed(self) -> list:
        return [r for r in self.results if r["status"] == "failed"]

    @property
    def exit_code(self) -> int:
        """0: every point done; 1: a point failed or was lost with its worker; 3: a point diverged
        (and none failed); 130: interrupted."""
        if self.count("interrupted"):
            return 130
        if self.failed or self.count("lost"):
            return 1
        return 3 if self.count("diverged") else 0


def run_sweep(spec, out, *, executor="local", workers=None, address=None, slurm=None,
              progress: bool = True, check_size: bool = True) -> SweepResult:
    """Run ``spec`` (a :class:`~mfnn.sweeps.spec.SweepSpec`) into ``out``.  ``executor``: a name of
    :data:`~mfnn.sweeps.executors.EXECUTORS` or any object with ``submit(fn, *args) -> future``."""
    from tqdm.auto import tqdm

    from .executors import make_executor, submit_all
    from .store import SweepStore

    points = spec.resolve(check_size=check_size)            # everything validated ...
    store = SweepStore.check(out, spec.experiment, _spec_dict(spec))  # ... and the location, before writing
    if isinstance(executor, str):
        make_executor(executor, workers, address=address, folder=store.root, slurm=slurm)  # argument checks
    store.create(spec.experiment, _spec_dict(spec), points)
    todo = [p for p in points if not store.is_done(p.key)]
    res = SweepResult(store.root, len(points), skipped=len(points) - len(todo))
    start = time.perf_counter()
    ctx = make_executor(executor, workers, address=address, folder=store.root, slurm=slurm) \
        if isinstance(executor, str) else _nullctx(executor)
    bar = tqdm(total=len(points), initial=res.skipped, unit="point", desc=spec.experiment, disable=not progress,
               smoothing=0.0, dynamic_ncols=True)

    def handle(f, point):
        try:
            r = f.result()
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a worker that died (killed, out of memory)
            import concurrent.futures.process as cfp

            r = {"key": point.key, "status": "lost", "seconds": 0.0, "error": f"worker lost: {type(e).__name__}: {e}",
                 "traces": 0, "pid": 0}
            if not isinstance(e, (cfp.BrokenProcessPool, cf.CancelledError)):  # a failure of the point: recorded
                r["status"] = "failed"
                _log_error(store.partial(point.key), "".join(traceback.format_exception(e)), overwrite=False)
        res.results.append(r)
        if r["status"] == "interrupted":  # Ctrl-C / SIGTERM reached a point: stop the sweep (rerun continues)
            from .. import _signals
            from ..errors import RunInterrupted

            signum = _signals.stop_requested()
            raise RunInterrupted(f"sweep interrupted ({r['error']}); rerun the command to continue", signum=signum)
        if r["status"] == "lost" and not res.count("lost") > 1:
            bar.write(f"mfnn: a worker died ({r['error']}); the points it did not finish stay pending: rerun")
        if r["status"] == "failed":
            bar.write(f"mfnn: point {point.key} {point.coords} seed={point.seed} failed: {r['error']}")
        bar.update(1)
        bar.set_postfix(failed=len(res.failed), refresh=False)

    handled: set = set()
    with bar:
        with ctx as ex:
            args = [(str(store.root), p.to_dict(), tuple(spec.imports)) for p in todo]

            def on_submit(i, f):
                if isinstance(f, cf.Future) and f.done():
                    handled.add(i)
                    handle(f, todo[i])

            futs = submit_all(ex, run_point, args, on_submit=on_submit)
            waiting = {i: f for i, f in enumerate(futs) if i not in handled}
            try:
                while waiting:
                    cf_futs = [f for f in waiting.values() if isinstance(f, cf.Future)]
                    if len(cf_futs) == len(waiting):
                        cf.wait(cf_futs, timeout=1.0, return_when=cf.FIRST_COMPLETED)
                    else:
                        time.sleep(0.5)
                    for i in [i for i, f in waiting.items() if f.done()]:
                        handle(waiting.pop(i), todo[i])
            except KeyboardInterrupt:
                for f in waiting.values():
                    f.cancel()
                raise
    res.wall_seconds = time.perf_counter() - start
    return res


def _spec_dict(spec) -> dict:
    from ..io import _jsonable

    return _jsonable(spec.to_dict())


class _nullctx:
    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        return self.obj

    def __exit__(self, *exc):
        return False
