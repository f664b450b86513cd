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
import os
import time
import traceback
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["run_sweep", "run_point", "run_points", "seed_jobs", "SweepResult"]


_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"  # one per jit cache miss
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # XLA compilation of one program
_LOWER_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"  # lowering of one program
_HIT_EVENT = "/jax/compilation_cache/cache_hits"  # an executable loaded from the persistent cache
_traces = {"n": 0, "compile_s": 0.0, "trace_s": 0.0, "lower_s": 0.0, "hits": 0, "listening": False}


def _count_traces() -> int:
    """JAX traces (jit cache misses) in this process so far (counting starts at the first call)."""
    if not _traces["listening"]:
        import jax

        def listener(event, duration, **kwargs):  # noqa: ARG001
            if event == _TRACE_EVENT:
                _traces["n"] += 1
                _traces["trace_s"] += float(duration)
            elif event == _LOWER_EVENT:
                _traces["lower_s"] += float(duration)
            elif event == _COMPILE_EVENT:
                _traces["compile_s"] += float(duration)

        def hits(event, **kwargs):  # noqa: ARG001
            if event == _HIT_EVENT:
                _traces["hits"] += 1

        jax.monitoring.register_event_duration_secs_listener(listener)
        jax.monitoring.register_event_listener(hits)
        _traces["listening"] = True
    return _traces["n"]


def _jax_seconds() -> dict:
    """Wall seconds this process spent tracing, lowering and compiling (or loading from the
    persistent cache) JAX programs since counting started."""
    _count_traces()
    return {"trace": _traces["trace_s"], "lower": _traces["lower_s"], "compile": _traces["compile_s"]}


def _compile_seconds() -> float:
    """Wall seconds this process spent in XLA compilations (or loading an executable from the
    persistent cache) since counting started."""
    _count_traces()
    return _traces["compile_s"]


def _cache_hits() -> int:
    """Executables this process loaded from JAX's persistent compilation cache since counting started."""
    _count_traces()
    return _traces["hits"]


def _import(imports) -> str | None:
    import importlib

    from . import jax_cache as _jax_cache

    _jax_cache.enable()  # every executor's worker: the persistent compilation cache ($MFNN_JAX_CACHE)

    try:
        for m in imports:
            importlib.import_module(m)
    except Exception as e:  # noqa: BLE001 - reported as data: mfnn's exceptions do not pickle
        return f"cannot import: {e}"
    return None


def run_point(root: str, point: dict, imports: tuple = ()) -> dict:
    """Run one sweep point into ``root/points/<key>`` (picklable; runs in a worker).

    Returns ``{"key", "status": "done" | "diverged" | "failed" | "interrupted" | "skipped",
    "seconds", "cpu_seconds" (CPU time of the process, all threads), "compile_seconds" (XLA
    compilation), "error", "traces" (JAX traces, i.e. compilations, during the point), "cache_hits"
    (executables loaded from JAX's persistent compilation cache instead), "jax_seconds" ({"trace",
    "lower", "compile"}: wall seconds in each stage; "compile" includes loads from the cache), "pid"}``;
    never raises for a failure of the point itself."""
    from .store import SweepStore

    error = _import(imports)
    if error:
        return {"key": point["key"], "status": "failed", "seconds": 0.0, "cpu_seconds": 0.0, "error": error,
                "traces": 0, "pid": 0}
    store = SweepStore(root)
    with store.lock(point["key"]):  # another driver computing it: wait, then find it done
        return _run_locked(store, point)


def run_points(root: str, points: list, imports: tuple = ()) -> list:
    """Run the seeds of one grid point (``points``: sweep points that differ only in their seed)
    with the experiment's ``compute_seeds`` (one call, e.g. vmapped SGD replicas), then each point's
    reduce, render and writes as in :func:`run_point`.  Returns ``run_point``'s dicts, one per
    point; the batch's compute time and traces are shared out over the points it computed.  If the
    batch raises, every point runs alone (and records its own failure)."""
    import contextlib
    import os

    from .store import SweepStore

    if len(points) == 1:
        return [run_point(root, points[0], imports)]
    error = _import(imports)
    if error:
        return [{"key": p["key"], "status": "failed", "seconds": 0.0, "cpu_seconds": 0.0, "error": error,
                 "traces": 0, "pid": 0} for p in points]
    store = SweepStore(root)
    with contextlib.ExitStack() as stack:
        for key in sorted({p["key"] for p in points}):  # one order for every driver: no deadlock
            stack.enter_context(store.lock(key))
        done = [p for p in points if store.is_done(p["key"])]
        todo = [p for p in points if not store.is_done(p["key"])]
        out = [{"key": p["key"], "status": "skipped", "seconds": 0.0, "cpu_seconds": 0.0, "error": None,
                "traces": 0, "pid": os.getpid()} for p in done]
        traces0, comp0, t0, c0 = _count_traces(), _compile_seconds(), time.perf_counter(), time.process_time()
        hits0, jax0 = _cache_hits(), _jax_seconds()
        try:
            given = _compute_seeds(todo) if len(todo) > 1 else {}
        except KeyboardInterrupt as e:
            return out + [{"key": p["key"], "status": "interrupted", "seconds": 0.0, "cpu_seconds": 0.0,
                           "error": str(e) or "interrupted", "traces": 0, "pid": os.getpid()} for p in todo]
        shared = [(time.perf_counter() - t0) / max(len(todo), 1), (time.process_time() - c0) / max(len(todo), 1)]
        traces, comp, hits = _count_traces() - traces0, _compile_seconds() - comp0, _cache_hits() - hits0
        jsec = {k: v - jax0[k] for k, v in _jax_seconds().items()}
        for p in todo:
            r = _run_locked(store, p, given.get(p["key"]))
            r["seconds"] += shared[0]
            r["cpu_seconds"] += shared[1]
            r["traces"] += traces
            r["compile_seconds"] += comp
            r["cache_hits"] += hits
            r["jax_seconds"] = {k: v + jsec[k] for k, v in r["jax_seconds"].items()}
            traces = comp = hits = 0
            jsec = dict.fromkeys(jsec, 0.0)
            out.append(r)
    return out


def _compute_seeds(points: list) -> dict:
    """sweep key -> {experiment point key: Dataset} from ``compute_seeds`` over the seeds; ``{}``
    when the experiment's points do not line up across seeds or the batch fails (each point then
    runs alone)."""
    import jax

    from ..experiments.base import get

    try:
        exp = get(points[0]["experiment"])
        cfgs = [exp.make_config(quick=p["quick"], overrides=p["overrides"], seed=p["seed"]) for p in points]
        per_seed = [list(exp.points(c)) for c in cfgs]
        if len({len(x) for x in per_seed}) != 1:
            return {}
        given = [{} for _ in points]
        with jax.enable_x64(True):
            for group in zip(*per_seed):
                for g, pt, ds in zip(given, group, exp.compute_seeds(list(group))):
                    g[pt.key] = ds
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - the points run alone and report their own errors
        return {}
    return {p["key"]: g for p, g in zip(points, given)}


def _run_locked(store, point: dict, given: dict | None = None) -> dict:
    """``run_point``'s work for a point whose lock is held (``given``: its computed datasets)."""
    import os
    import shutil

    from ..errors import DivergenceError
    from ..experiments.runner import RunFailed, run_experiment
    from ..io import read_marker

    key = point["key"]
    traces0, comp0, hits0, jax0 = _count_traces(), _compile_seconds(), _cache_hits(), _jax_seconds()
    t0, c0 = time.perf_counter(), time.process_time()
    out = {"key": key, "status": "done", "seconds": 0.0, "cpu_seconds": 0.0, "compile_seconds": 0.0, "error": None,
           "traces": 0, "cache_hits": 0, "jax_seconds": dict.fromkeys(jax0, 0.0), "pid": os.getpid()}
    if store.is_done(key):
        return {**out, "status": "skipped"}
    partial = store.partial(key)
    if partial.is_dir() and not partial.is_symlink() and read_marker(partial) is None:
        shutil.rmtree(partial)  # killed before its marker was written: ours (sweep dir, under the lock)
    try:
        run_experiment(point["experiment"], out=store.final(key), quick=point["quick"],
                       overrides=point["overrides"], seed=point["seed"], progress=False,
                       resume=partial.exists(), force=True, given=given)
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
    out["cpu_seconds"] = time.process_time() - c0
    out["compile_seconds"] = _compile_seconds() - comp0
    out["traces"] = _count_traces() - traces0
    out["cache_hits"] = _cache_hits() - hits0
    out["jax_seconds"] = {k: v - jax0[k] for k, v in _jax_seconds().items()}
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
    jobs: int = 0                                  # calls submitted (a grid point's seeds may share one)

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
              progress: bool = True, check_size: bool = True, seed_batch: int | None = None) -> SweepResult:
    """Run ``spec`` (a :class:`~mfnn.sweeps.spec.SweepSpec`) into ``out``.  ``executor``: a name of
    :data:`~mfnn.sweeps.executors.EXECUTORS` or any object with ``submit(fn, *args) -> future``.

    For an experiment with ``vmap_seeds`` the pending seeds of a grid point go to one
    :func:`run_points` call (``compute_seeds``: vmapped replicas), at most ``seed_batch`` seeds per
    call (default: as many as keeps every worker busy, see :func:`seed_jobs`; 1: one seed per call)."""
    from tqdm.auto import tqdm

    from .executors import make_executor, submit_all
    from .store import SweepStore

    if seed_batch is not None and (isinstance(seed_batch, bool) or not isinstance(seed_batch, int)
                                   or not 1 <= seed_batch <= 100000):
        raise ConfigError("--seed-batch", f"must be an integer in [1, 100000], got {seed_batch!r}")
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

    def handle(f, job):
        try:
            rs = f.result()
            rs = [rs] if isinstance(rs, dict) else list(rs)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a worker that died (killed, out of memory)
            import concurrent.futures.process as cfp

            lost = isinstance(e, (cfp.BrokenProcessPool, cf.CancelledError))
            rs = [{"key": p.key, "status": "lost" if lost else "failed", "seconds": 0.0, "cpu_seconds": 0.0,
                   "error": f"worker lost: {type(e).__name__}: {e}", "traces": 0, "pid": 0} for p in job]
            if not lost:  # a failure of the points: recorded
                for p in job:
                    _log_error(store.partial(p.key), "".join(traceback.format_exception(e)), overwrite=False)
        by_key = {p.key: p for p in job}
        interrupted = None
        for r in rs:
            point = by_key[r["key"]]
            res.results.append(r)
            if r["status"] == "interrupted":
                interrupted = r
            if r["status"] == "lost" and not res.count("lost") > 1:
                bar.write(f"mfnn: a worker died ({r['error']}); the points it did not finish stay pending: rerun")
            if r["status"] == "failed":
                bar.write(f"mfnn: point {point.key} {point.coords} seed={point.seed} failed: {r['error']}")
            bar.update(1)
        bar.set_postfix(failed=len(res.failed), refresh=False)
        if interrupted is not None:  # Ctrl-C / SIGTERM reached a point: stop the sweep (rerun continues)
            from .. import _signals
            from ..errors import RunInterrupted

            signum = _signals.stop_requested()
            raise RunInterrupted(f"sweep interrupted ({interrupted['error']}); rerun the command to continue",
                                 signum=signum)

    handled: set = set()
    with bar:
        with ctx as ex:
            from ..experiments.base import get

            vmap = bool(getattr(get(spec.experiment), "vmap_seeds", False)) and seed_batch != 1
            n_workers = 1 if executor == "serial" else (workers or (slurm or {}).get("array_parallelism")
                                                        or os.cpu_count() or 1)
            jobs = seed_jobs(todo, seed_batch if vmap else 1, n_workers)
            res.jobs = len(jobs)
            if all(len(j) == 1 for j in jobs):
                fn, args = run_point, [(str(store.root), j[0].to_dict(), tuple(spec.imports)) for j in jobs]
            else:
                fn = run_points
                args = [(str(store.root), [p.to_dict() for p in j], tuple(spec.imports)) for j in jobs]

            def on_submit(i, f):
                if isinstance(f, cf.Future) and f.done():
                    handled.add(i)
                    handle(f, jobs[i])

            futs = submit_all(ex, fn, args, on_submit=on_submit)
            waiting = {i: f for i, f in enumerate(futs) if i not in handled}
            try:
                while waiting:
                    cf_futs = [f for f in waiting.values() if isinstance(f, cf.Future)]
                    if len(cf_futs) == len(waiting):
                        cf.wait(cf_futs, timeout=1.0, return_when=cf.FIRST_COMPLETED)
                    else:
                        time.sleep(0.5)
                    for i in [i for i, f in waiting.items() if f.done()]:
                        handle(waiting.pop(i), jobs[i])
            except KeyboardInterrupt:
                for f in waiting.values():
                    f.cancel()
                raise
    res.wall_seconds = time.perf_counter() - start
    return res


def seed_jobs(points: list, seed_batch: int | None, workers: int) -> list:
    """Group ``points`` (sweep points) into jobs: the seeds of one grid point together, in chunks
    of at most ``seed_batch`` (``None``: the fewest chunks that still give every one of ``workers``
    a job, e.g. 8 seeds of one grid point on 2 workers -> 2 jobs of 4; 1: one point per job)."""
    groups: dict = {}
    for p in points:
        groups.setdefault(tuple(sorted(p.index.items())), []).append(p)
    if seed_batch is None:
        per = max(1, -(-max(int(workers), 1) // max(len(groups), 1)))  # chunks per grid point
        sizes = {k: max(1, -(-len(g) // per)) for k, g in groups.items()}
    else:
        sizes = {k: int(seed_batch) for k in groups}
    return [g[i:i + sizes[k]] for k, g in groups.items() for i in range(0, len(g), sizes[k])]


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
