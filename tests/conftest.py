"""Shared test setup.

The solvers cache their compiled blocks in memory per (problem, config), but tests build many
distinct problems whose compiled programs still coincide (same shapes, same HLO), and a full XLA
compile costs 10-20 s for the Dormand-Prince solvers on a loaded 2-core machine.  A persistent
compilation cache keyed by the HLO makes those repeats cheap.  It lives in a temporary directory removed at
the end of the session (set MFNN_TEST_JAX_CACHE to keep one across sessions); it is exported as
``$MFNN_JAX_CACHE`` so that the CLI and sweep workers the tests start use it too.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import jax
import numpy as np
import pytest

import mfnn

mfnn.enable_x64()  # the suite checks float64 accuracy of direct evaluations too

_OWN_CACHE = None


def pytest_configure(config):
    global _OWN_CACHE
    path = os.environ.get("MFNN_TEST_JAX_CACHE")
    if not path:
        path = _OWN_CACHE = tempfile.mkdtemp(prefix="mfnn-test-jax-cache-")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    # mfnn's CLI and sweep workers (subprocesses) turn the cache on from $MFNN_JAX_CACHE: the same
    # temporary directory, never the user's ~/.cache/mfnn/jax
    os.environ["MFNN_JAX_CACHE"] = path


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# JAX trace events: one per jit cache miss (whether or not the persistent cache then finds the
# executable); the listener is registered once for the session.
_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
_trace_count = [0]


def _on_trace(event, duration, **kwargs):
    if event == _TRACE_EVENT:
        _trace_count[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_trace)


@pytest.fixture
def traces():
    """``traces(fn)``: run ``fn()`` and return how many JAX traces (jit cache misses) it caused."""
    def count(fn) -> int:
        before = _trace_count[0]
        fn()
        return _trace_count[0] - before
    return count


@pytest.fixture
def rng():
    """An independent NumPy generator for Monte Carlo references (fixed seed: reproducible)."""
    return np.random.default_rng(20180807)
