"""JAX's persistent compilation cache in mfnn's processes (``mfnn.sweeps.jax_cache``).

The cross-process tests run the same solve in two fresh Python processes sharing a temporary
cache directory: the second must load every program the first wrote (cache hits, no new entries)
and give the same numbers bit for bit (an executable loaded from the cache is the one compiled).
The C++ SGD kernel's FFI custom call must resolve in a loaded executable (its target is registered
in Python before lowering); the DD (diffrax) blocks must be written at all, which needs equinox's
runtime checks compiled without host callbacks (JAX never caches a program with one).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from mfnn.sweeps import jax_cache as _jax_cache
from mfnn.solvers import _sgd_kernel

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from mfnn.sweeps import jax_cache as _jax_cache
where = _jax_cache.enable(min_compile_seconds=0.0)   # from $MFNN_JAX_CACHE
import jax, numpy as np
hits = [0]
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.__setitem__(0, hits[0] + (event == "/jax/compilation_cache/cache_hits")))
import mfnn
task = mfnn.IsotropicGaussians(d=8, delta=0.7, n_hermite=8)
init = mfnn.GaussianInit(kappa=1.2) if sys.argv[1] == "dd" else mfnn.GaussianInit(kappa=1.2, a_std=0.5, b_std=0.5)
problem = mfnn.Problem(mfnn.ProjectionUnit("ramp", trained=("w",)), task, init, alpha=1.0)
method = (mfnn.RadialDD(n_particles=64) if sys.argv[1] == "dd"
          else mfnn.OnlineSGD(n_neurons=20, eps=5e-3, engine="kernel"))
times = (0.0, 0.2, 0.5) if sys.argv[1] == "dd" else method.grid_times((0.0, 0.2, 0.5))
sol = mfnn.solve(problem, method, times, key=5)
print(json.dumps({"dir": where, "hits": hits[0], "ys": {k: np.asarray(v).ravel().tolist() for k, v in sol.ys.items()}}))
"""


def _run_twice(tmp_path, what):
    script = tmp_path / "solve.py"
    script.write_text(SCRIPT)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "EQX_ON_ERROR"}
    env.update(MFNN_JAX_CACHE=str(cache), PYTHONPATH=str(ROOT / "src"))
    out, entries = [], []
    for _ in range(2):
        p = subprocess.run([sys.executable, str(script), what], env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        out.append(json.loads(p.stdout.strip().splitlines()[-1]))
        entries.append(sorted(os.listdir(cache)))
    assert out[0]["dir"] == str(cache)
    return out, entries


def test_cache_dir_resolution(monkeypatch, tmp_path):
    """$MFNN_JAX_CACHE, else $XDG_CACHE_HOME/mfnn/jax, else ~/.cache/mfnn/jax; 0 turns it off."""
    monkeypatch.setenv("MFNN_JAX_CACHE", str(tmp_path / "c"))
    assert _jax_cache.cache_dir() == tmp_path / "c"
    for off in ("0", "off", "false"):
        monkeypatch.setenv("MFNN_JAX_CACHE", off)
        assert _jax_cache.cache_dir() is None
    monkeypatch.delenv("MFNN_JAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _jax_cache.cache_dir() == tmp_path / "xdg" / "mfnn" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _jax_cache.cache_dir() == tmp_path / "home" / ".cache" / "mfnn" / "jax"


def test_enable_keeps_a_configured_directory(monkeypatch, tmp_path):
    """A directory already set in jax.config (here the test session's, from conftest) is kept,
    and the user's home cache is never touched."""
    configured = jax.config.jax_compilation_cache_dir
    assert configured
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MFNN_JAX_CACHE", str(tmp_path / "other"))
    assert _jax_cache.enable() == configured
    assert jax.config.jax_compilation_cache_dir == configured
    assert not (tmp_path / "other").exists() and not (tmp_path / "home").exists()


@pytest.mark.skipif(_sgd_kernel.kernel_status() is not None,
                    reason=f"C++ kernel unavailable: {_sgd_kernel.kernel_status()}")
def test_kernel_ffi_call_runs_from_the_cache(tmp_path):
    """engine="kernel" (an XLA FFI custom call) twice in two processes: the second loads every
    program the first wrote (the kernel's block among them) and gives identical numbers."""
    out, entries = _run_twice(tmp_path, "kernel")
    assert any(e.startswith("jit__scan_block") for e in entries[0]), entries[0]
    assert entries[1] == entries[0]               # nothing compiled anew and written
    assert out[0]["hits"] == 0 and out[1]["hits"] == len(entries[0])
    assert out[1]["ys"] == out[0]["ys"]            # bit for bit


@pytest.mark.slow
def test_dd_blocks_are_cached(tmp_path):
    """RadialDD (diffrax inside the scan block): written by the first process (no host callback
    once EQX_ON_ERROR=nan) and loaded by the second, with identical numbers."""
    out, entries = _run_twice(tmp_path, "dd")
    assert any(e.startswith("jit__scan_block") for e in entries[0]), entries[0]
    assert entries[1] == entries[0]
    assert out[1]["hits"] == len(entries[0])
    assert out[1]["ys"] == out[0]["ys"]
