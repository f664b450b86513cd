"""Map an experiment's ``compute`` over its points on an executor (the sweep engine's executors).

:func:`map_points` submits every point to an executor (``mfnn.sweeps.executors``: spawn process
pool, Dask, submitit, or any ``concurrent.futures.Executor``) and yields ``(index, outcome)`` as
points finish.  :func:`compute_worker` runs one point in a worker (float64, like the runner) and
returns a picklable outcome instead of raising (mfnn's exceptions carry unpicklable state):

* ``("ok", dataset)``;
* ``("diverged", message, partial dataset or None)``: the compute raised ``DivergenceError``;
* ``("error", "Type: message", traceback text)``.

Nothing numerical lives here.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback

__all__ = ["compute_worker", "map_points", "PointFailed"]


class PointFailed(RuntimeError):
    """A point's compute raised in a worker; the message carries the worker's traceback."""


def compute_worker(name: str, point, imports: tuple = ()) -> tuple:
    """Compute one point of experiment ``name`` in a worker process (after importing the modules in
    ``imports``, where user experiments register), in float64.  Returns picklable data, never raises:
    ``("ok", dataset)``, ``("diverged", message, partial dataset or None)`` or ``("error", message,
    traceback)``."""
    import importlib

    import jax

    from ..sweeps import jax_cache as _jax_cache
    from ..errors import DivergenceError
    from .base import get

    _jax_cache.enable()
    try:
        for m in imports:
            importlib.import_module(m)
        exp = get(name)
        with jax.enable_x64(True):
            return "ok", exp.compute(point)
    except DivergenceError as e:
        partial = getattr(e, "partial", None)
        try:
            partial = partial.to_xarray() if hasattr(partial, "to_xarray") else None
        except Exception:  # noqa: BLE001 - best effort
            partial = None
        return "diverged", str(e).splitlines()[0] if str(e) else "diverged", partial
    except Exception as e:  # noqa: BLE001 - delivered to the driver as data
        return "error", f"{type(e).__name__}: {e}", traceback.format_exc()


def map_points(exp, points: list, executor: str, workers=None, progress: bool = False, stop_check=None):
    """Yield ``(i, outcome)`` for ``points`` (indices into the list) as they finish on ``executor``."""
    from tqdm.auto import tqdm

    from ..sweeps.executors import make_executor, submit_all

    if not points:
        return
    with make_executor(executor, workers) as ex, \
            tqdm(total=len(points), unit="point", desc=exp.name, disable=not progress, smoothing=0.0) as bar:
        imports = (type(exp).__module__,)  # the module registering the experiment (also outside mfnn)
        futs = submit_all(ex, compute_worker, [(exp.name, p, imports) for p in points])
        waiting = dict(enumerate(futs))
        try:
            while waiting:
                cf_futs = list(waiting.values())
                if all(isinstance(f, cf.Future) for f in cf_futs):
                    cf.wait(cf_futs, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                else:
                    time.sleep(0.5)
                if stop_check is not None:
                    stop_check()
                for i in sorted(i for i, f in waiting.items() if f.done()):
                    f = waiting.pop(i)
                    try:
                        out = f.result()
                    except Exception as e:  # noqa: BLE001 - a worker lost (killed, out of memory)
                        out = ("error", f"worker lost: {type(e).__name__}: {e}", "".join(traceback.format_exception(e)))
                    bar.update(1)
                    yield i, out
        finally:
            for f in waiting.values():
                f.cancel()
