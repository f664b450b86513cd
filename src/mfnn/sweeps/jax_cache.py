"""JAX's persistent compilation cache for mfnn's own processes.

A compiled XLA program is written to disk (keyed by its HLO, the compile options, the XLA flags
and the jax/jaxlib versions) and loaded by any later process that lowers the same program, so a
second ``mfnn run``, every later sweep, and every sweep worker after the first one to compile a
program skip XLA compilation (tracing and lowering still run in each process).

Where it is on: ``mfnn run`` and ``mfnn sweep`` (and ``mfnn run --executor ...``'s workers), and every
process that runs sweep points
(:func:`mfnn.sweeps.run_point` / ``run_points``: the local pool's workers, Dask workers, submitit
jobs, and the driver itself with the serial executor).  ``import mfnn`` does not turn it on: a
Python program opts in with :func:`enable` (re-exported as ``mfnn.sweeps.enable_jax_cache``).

The directory: ``$MFNN_JAX_CACHE``, else ``$XDG_CACHE_HOME/mfnn/jax``, else ``~/.cache/mfnn/jax``;
``MFNN_JAX_CACHE=0`` (or ``off``/``no``/``false``) turns it off.  A directory the process has already
configured (``jax.config.update("jax_compilation_cache_dir", ...)``) is kept.  Programs that compile
in under ``MIN_COMPILE_SECONDS`` are not written (loading them would not save time).  On CPU nothing
else is needed (``jax_persistent_cache_enable_xla_caches`` names a GPU autotuning cache).  The cache
is trusted code: keep it in a directory only you can write.

JAX does not write programs with host callbacks to the cache, and equinox's runtime checks
(``eqx.error_if``, used by diffrax for its argument checks: the sign of ``dt0``, ordered save times,
which mfnn's solvers never violate) are host callbacks under equinox's default ``EQX_ON_ERROR=raise``,
so every ODE (DD) block would be compiled again in every process.  :func:`enable` therefore sets
``EQX_ON_ERROR=nan`` (a check that fired returns NaN, which mfnn reports as a divergence) in this
process and, through the environment, in its workers, unless ``EQX_ON_ERROR`` is set already
(``EQX_ON_ERROR=raise`` keeps the callbacks, and those programs out of the cache).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "enable", "MIN_COMPILE_SECONDS"]

MIN_COMPILE_SECONDS = 0.2
_OFF = ("0", "off", "no", "false", "none", "")


def cache_dir() -> Path | None:
    """The cache directory mfnn uses (see the module docstring), or None when it is turned off.

    Returns
    -------
    Path or None
        ``$MFNN_JAX_CACHE``, ``$XDG_CACHE_HOME/mfnn/jax`` or ``~/.cache/mfnn/jax``; None for
        ``MFNN_JAX_CACHE=0``.
    """
    env = os.environ.get("MFNN_JAX_CACHE")
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mfnn" / "jax"


def enable(path=None, min_compile_seconds: float = MIN_COMPILE_SECONDS) -> str | None:
    """Turn on JAX's persistent compilation cache in this process (idempotent).

    Parameters
    ----------
    path : str or Path, optional
        the directory (default: :func:`cache_dir`).  A directory already set in ``jax.config``
        wins over both.
    min_compile_seconds : float
        programs compiling faster than this are not written.

    Returns
    -------
    str or None
        the directory in use, or None when the cache is turned off (or cannot be created).  The
        directory is also exported as ``$MFNN_JAX_CACHE`` so that worker processes started from
        this one use the same cache.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        os.environ.setdefault("MFNN_JAX_CACHE", str(current))
        return str(current)
    where = Path(path).expanduser() if path is not None else cache_dir()
    if where is None:
        return None
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None  # an unwritable home: run without the cache, never fail for it
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_compilation_cache_dir", str(where))
    os.environ["MFNN_JAX_CACHE"] = str(where)
    _no_error_callbacks()
    return str(where)


def _no_error_callbacks() -> None:
    """``EQX_ON_ERROR=nan`` unless the user chose a mode (see the module docstring): in the
    environment (processes started from here) and in an equinox already imported (it reads the
    mode when a check is traced)."""
    if "EQX_ON_ERROR" in os.environ:
        return
    os.environ["EQX_ON_ERROR"] = "nan"
    errors = sys.modules.get("equinox._errors")
    if errors is not None and getattr(errors, "EQX_ON_ERROR", None) == "raise":
        errors.EQX_ON_ERROR = "nan"
