"""Sweeps: any experiment x a grid of config fields x seeds, on any executor, restartable.

``spec`` (the grid), ``store`` (the sweep directory), ``executors`` (serial, process pool, Dask,
submitit), ``engine`` (:func:`run_sweep`), ``collect`` (table.parquet, dataset.nc), ``report``
(one self-contained HTML page).  See docs/architecture.md, "Sweeps".
"""

from .jax_cache import enable as enable_jax_cache
from .engine import SweepResult, run_point, run_sweep
from .spec import SweepPoint, SweepSpec

__all__ = ["SweepSpec", "SweepPoint", "SweepResult", "run_sweep", "run_point", "enable_jax_cache"]
