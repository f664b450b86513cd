"""Executors: anything with ``submit(fn, *args) -> future`` (``concurrent.futures.Executor``-like).

* ``serial``: in this process, one point after the other (a compiled program is reused across points);
* ``local`` (default): ``concurrent.futures.ProcessPoolExecutor`` with the *spawn* start method
  (JAX is not fork-safe); each worker keeps its compiled programs across the points it runs; when
  the workers fill the CPUs each runs XLA single-threaded (no oversubscription; also on Dask);
* ``dask``: a ``distributed.LocalCluster`` (one single-threaded worker process per ``workers``), or an
  existing scheduler with ``address="tcp://host:port"`` (workers need mfnn and the sweep directory on a
  shared filesystem); extra ``mfnn[dask]``;
* ``slurm``: submitit SLURM job arrays (partition, time, memory, array parallelism); ``slurm-local``
  is submitit's local executor (same code path, for testing without SLURM); extra ``mfnn[slurm]``.

No scheduling is done here: the engine submits every pending point and waits.  ``EXECUTORS`` lists
the names above.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
from pathlib import Path

from ..errors import ConfigError

__all__ = ["SerialExecutor", "SubmititPool", "make_executor", "submit_all", "EXECUTORS"]

EXECUTORS = ("local", "serial", "dask", "slurm", "slurm-local")


class SerialExecutor(cf.Executor):
    """Runs each call at ``submit`` in this process; returns a finished future."""

    def submit(self, fn, /, *args, **kwargs):
        f = cf.Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - delivered through the future, like a pool
            f.set_exception(e)
        return f


class SubmititPool:
    """A submitit executor as a pool: ``submit_many`` sends one job array for all points."""

    def __init__(self, executor):
        self.executor = executor

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def submit_many(self, fn, arglists: list) -> list:
        if not arglists:
            return []
        return self.executor.map_array(fn, *[list(a) for a in zip(*arglists)])


def submit_all(executor, fn, arglists: list, on_submit=None) -> list:
    """Submit ``fn(*args)`` for every ``args``; ``on_submit(i, future)`` sees each future at once
    (so a serial executor's results are reported as they come)."""
    if hasattr(executor, "submit_many"):
        futs = executor.submit_many(fn, arglists)
        for i, f in enumerate(futs):
            on_submit and on_submit(i, f)
        return futs
    futs = []
    for i, args in enumerate(arglists):
        f = executor.submit(fn, *args)
        futs.append(f)
        on_submit and on_submit(i, f)
    return futs


def _single_threaded_xla() -> None:
    """Worker initializer: one XLA (Eigen) thread per worker when the workers fill the CPUs (the
    JAX default of one thread per core oversubscribes a machine running one worker per core)."""
    flag = "--xla_cpu_multi_thread_eigen=false"
    flags = os.environ.get("XLA_FLAGS", "")
    if flag not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()


def _xla_threads_env(workers: int) -> dict:
    if workers < (os.cpu_count() or 1):
        return {}
    flags = os.environ.get("XLA_FLAGS", "")
    return {"XLA_FLAGS": f"{flags} --xla_cpu_multi_thread_eigen=false".strip()}


def _need(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError("--executor", f"needs {module} (pip install 'mfnn[{extra}]')") from None


def make_executor(kind: str = "local", workers: int | None = None, *, address: str | None = None,
                  folder=None, slurm: dict | None = None):
    """A context manager yielding an executor of ``kind`` (see the module docstring); the
    arguments are checked at once (``ConfigError`` naming the option)."""
    if kind not in EXECUTORS:
        raise ConfigError("--executor", f"unknown executor {kind!r}; choose from {', '.join(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 4096):
        raise ConfigError("--workers", f"must be an integer in [1, 4096], got {workers!r}")
    if address is not None and kind != "dask":
        raise ConfigError("--address", "only with --executor dask")
    if kind == "dask":
        _need("distributed", "dask")
    if kind.startswith("slurm"):
        _need("submitit", "slurm")
    return _executor(kind, workers, address, folder, slurm)


@contextlib.contextmanager
def _executor(kind, workers, address, folder, slurm):
    if kind == "serial":
        yield SerialExecutor()
    elif kind == "local":
        n = workers or max(1, os.cpu_count() or 1)
        init = _single_threaded_xla if n >= (os.cpu_count() or 1) else None
        ex = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"), initializer=init)
        try:
            yield ex
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    elif kind == "dask":
        from distributed import Client, LocalCluster

        if address:
            client, cluster = Client(address), None
        else:
            n = workers or max(1, os.cpu_count() or 1)
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   env=_xla_threads_env(n))
            client = Client(cluster)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        import submitit

        opts = dict(slurm or {})
        folder = Path(folder or ".") / ".submitit"
        ex = submitit.AutoExecutor(folder=str(folder), cluster="local" if kind == "slurm-local" else "slurm")
        params = {"timeout_min": int(opts.get("time", 60)), "name": "mfnn-sweep"}
        if opts.get("mem_gb") is not None:
            params["mem_gb"] = float(opts["mem_gb"])
        if kind == "slurm":
            if opts.get("partition"):
                params["slurm_partition"] = opts["partition"]
            params["slurm_array_parallelism"] = int(opts.get("array_parallelism") or workers or 64)
            params["cpus_per_task"] = int(opts.get("cpus", 1))
        ex.update_parameters(**params)
        yield SubmititPool(ex)
