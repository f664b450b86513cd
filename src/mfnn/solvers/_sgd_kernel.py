"""The C++ online-SGD kernel for projection units (``_kernels/sgd_block.cc``): build, load, call.

The step is PNAS 2018 eq. 6 (noiseless, weight decay, batch B), exactly as ``sgd.make_step``
takes it; the kernel runs a block of steps whose data JAX has drawn with the generic step's keys,
in one XLA FFI call (``jax.ffi.ffi_call``), so the sequential part of SGD runs as compiled loops
instead of many small XLA kernels.

Build: at first use the package's own source is compiled with the system C++ compiler
(``$MFNN_CXX``, else ``$CXX``, else ``c++``/``g++``; ``-O3 -march=native``) into a per-user cache
(``$MFNN_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/mfnn/kernels``, else ``~/.cache/mfnn/kernels``),
under a name keyed by a hash of the source, the flags, the jaxlib version and the CPU, and
behind a file lock, so parallel sweep workers compile once and never race.  Where there is no
compiler, the compile fails, the activation is not one the kernel knows, or JAX's default backend
is not the CPU, ``available()`` says why and the callers fall back to the JAX engines (logged
once).  ``MFNN_SGD_KERNEL=0`` turns the kernel off for ``engine="auto"``.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..problem.activations import Erf, PiecewiseLinear, Sigmoid, Tanh
from ..problem.units import ProjectionUnit
from ._sgd_projection import draw_step

__all__ = ["available", "kernel_status", "make_kernel_advance", "pair_runs", "pair_series"]

SOURCE = Path(__file__).with_name("_kernels") / "sgd_block.cc"
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")
TARGETS = {"float64": "mfnn_sgd_block_f64", "float32": "mfnn_sgd_block_f32"}
SYMBOLS = {"float64": "MfnnSgdBlockF64", "float32": "MfnnSgdBlockF32"}
PAIR_TARGETS = {"float64": "mfnn_pair_sum_f64", "float32": "mfnn_pair_sum_f32"}
PAIR_SYMBOLS = {"float64": "MfnnPairSumF64", "float32": "MfnnPairSumF32"}
KINDS = {PiecewiseLinear: 0, Tanh: 1, Sigmoid: 2, Erf: 3}
# steps per kernel call (their data are sampled in one batched JAX call), and per call for the
# rest of a save interval; measured (N = 800, d = 40, float64, load ~10, CPU time per step):
# 1024 steps 5.7-5.9 us, 256 steps 6.5-6.9 us (sampling ahead of the kernel in a software
# pipeline gained nothing measurable and was dropped)
DRAW = 1024
DRAW_TAIL = 64
# (drawing the next call's data in the iteration of the running call, a software pipeline, was
# measured at load 7-9: 4.03 vs 4.15 and 4.00 vs 6.55 us/step wall with wall = CPU time, i.e.
# XLA's CPU runtime did not overlap the two; dropped)
# steps per pass over W (two-level blocking in the kernel: batch 1, no weight decay, w trained;
# 1 = one pass per step, the path for every other case)
FUSE = 2

_log = logging.getLogger("mfnn")
_state: dict = {}  # "lib": loaded library, or "error": why not (set once per process)
_logged: set = set()


def _cache_dir() -> Path:
    if os.environ.get("MFNN_KERNEL_CACHE"):
        return Path(os.environ["MFNN_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mfnn" / "kernels"


def _compiler() -> str | None:
    for cand in (os.environ.get("MFNN_CXX"), os.environ.get("CXX")):
        if cand:
            return shutil.which(cand) or (cand if os.path.isfile(cand) else None)
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _cpu_tag() -> str:
    """The CPU the -march=native build is for (a cache shared across machines must not mix them)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(cxx: str) -> str:
    import jaxlib

    h = hashlib.sha256(SOURCE.read_bytes())
    for part in (cxx, " ".join(FLAGS), jaxlib.__version__, jax.ffi.include_dir(), _cpu_tag()):
        h.update(b"\0" + str(part).encode())
    return h.hexdigest()[:20]


def build() -> Path:
    """Compile the kernel into the cache (once; under a lock) and return the shared library's path.

    Raises ``RuntimeError`` with the compiler's message when there is no compiler or it fails.
    """
    cxx = _compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set MFNN_CXX or CXX)")
    out_dir = _cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / f"sgd_block-{_key(cxx)}.so"
    if so.exists():
        return so
    with open(out_dir / f"{so.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be compiling the same key
        if so.exists():
            return so
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".build-", suffix=".so")
        os.close(fd)
        try:
            cmd = [cxx, *FLAGS, "-I", jax.ffi.include_dir(), str(SOURCE), "-o", tmp]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                raise RuntimeError(f"{cxx} failed ({res.returncode}): {res.stderr.strip()[-800:]}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, so)  # atomic: a reader sees the whole library or none
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return so


def _load():
    """Build, load and register the kernel once per process; the library or None (reason kept)."""
    if "lib" in _state or "error" in _state:
        return _state.get("lib")
    try:
        lib = ctypes.cdll.LoadLibrary(str(build()))
        for dtype, target in TARGETS.items():
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, SYMBOLS[dtype])), platform="cpu")
        for dtype, target in PAIR_TARGETS.items():
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, PAIR_SYMBOLS[dtype])), platform="cpu")
        _state["lib"] = lib
    except Exception as e:  # no compiler, a failed compile or load: fall back, never error
        _state["error"] = f"{type(e).__name__}: {e}"
    return _state.get("lib")


def kernel_status(problem=None, config=None) -> str | None:
    """Why the kernel cannot run, or None when it can (builds and loads it at the first call).

    Parameters
    ----------
    problem : Problem, optional
        the problem (None: check only the machine: switch, backend, compiler).
    config : OnlineSGD, optional
        the method (noisy SGD is not for the kernel).

    Returns
    -------
    str or None
        the reason, or None.
    """
    if os.environ.get("MFNN_SGD_KERNEL", "1").strip().lower() in ("0", "off", "no", "false"):
        return "turned off by MFNN_SGD_KERNEL"
    if jax.default_backend() != "cpu":
        return f"the kernel is CPU-only and JAX's default backend is {jax.default_backend()!r}"
    if problem is not None:
        unit = problem.unit
        if not isinstance(unit, ProjectionUnit):
            return "it needs a ProjectionUnit a*sigma(<w,x>+b)"
        if type(unit.activation) not in KINDS:
            return (f"activation {type(unit.activation).__name__} is not one the kernel evaluates "
                    "(PiecewiseLinear, Tanh, Sigmoid, Erf)")
        if problem.constraint is not None:
            return "a constraint retracts the parameters every step"
    if config is not None and config.noisy:
        return "noisy SGD (beta < inf) adds a full-rank term every step"
    if _load() is None:
        return f"the kernel could not be built or loaded ({_state['error']})"
    return None


def available(problem=None, config=None) -> bool:
    """Whether the kernel can run this (problem, config); logs the reason once when it cannot.

    Parameters
    ----------
    problem : Problem, optional
        the problem (None: check only the machine).
    config : OnlineSGD, optional
        the method.

    Returns
    -------
    bool
        True when ``kernel_status(problem, config)`` is None.
    """
    why = kernel_status(problem, config)
    if why is not None and why not in _logged:
        _logged.add(why)
        _log.info("mfnn: online SGD uses the JAX engine: %s", why)
    return why is None


def _pieces(act, dtype):
    """The activation's parameters for the kernel: (lo, hi, slope, anchor_v) of a piecewise-linear
    sigma (traced leaves), a dummy row of zeros otherwise."""
    if isinstance(act, PiecewiseLinear):
        lo, hi, slope, _, anchor_v = act._pieces(dtype)
        return jnp.concatenate([lo, hi, slope, anchor_v])
    return jnp.zeros((4,), dtype)


def make_kernel_advance(problem, config, key, *, draw=None, threads=None, fuse=None):
    """``advance(theta, k0, n) -> theta`` for one replica through the C++ kernel, or None.

    Parameters
    ----------
    problem : Problem
        a ``ProjectionUnit`` problem without constraint.
    config : OnlineSGD
        the method (noiseless: ``beta = inf``).
    key : jax PRNG key
        the replica's data key (step k draws from ``fold_in(key, k)``, as ``sgd.make_step``).
    draw : int, optional
        steps per kernel call, whose data are sampled by one batched JAX call (default ``DRAW``).
    threads : int, optional
        threads over the replicas of a vmapped call (default ``$MFNN_SGD_THREADS``, else the
        CPU count).
    fuse : int, optional
        steps per pass over W: 2 (two-level blocking, where batch 1, no weight decay and w
        trained) or 1 (default ``FUSE``).

    Returns
    -------
    callable or None
        ``advance(theta, k0, n)`` running steps k0 .. k0+n-1, or None where
        ``available(problem, config)`` is false.
    """
    if not available(problem, config):
        return None
    unit, task = problem.unit, problem.task
    trained = set(unit.trained)
    dtype = jnp.dtype(config.dtype)
    eps, xi, B = config.eps, config.xi, config.batch_size
    L = int(draw) if draw is not None else DRAW
    L2 = min(L, DRAW_TAIL)
    attrs = dict(kind=np.int64(KINDS[type(unit.activation)]), batch=np.int64(B),
                 tr_w=np.int64("w" in trained), tr_a=np.int64("a" in trained), tr_b=np.int64("b" in trained),
                 decay=np.int64(bool(config.decay)), threads=np.int64(_threads(threads)),
                 fuse=np.int64(FUSE if fuse is None else fuse))
    d = problem.d

    def draw_one(k):
        return draw_step(task, key, k, eps, xi, B, dtype)

    def advance(theta, k0, n):
        N = theta["a"].shape[0]
        out_types = (jax.ShapeDtypeStruct((d, N), dtype), jax.ShapeDtypeStruct((N,), dtype),
                     jax.ShapeDtypeStruct((N,), dtype))
        call = jax.ffi.ffi_call(TARGETS[config.dtype], out_types, vmap_method="broadcast_all",
                                input_output_aliases={0: 0, 1: 1, 2: 2})
        params = jnp.stack([jnp.asarray(problem.alpha, dtype), jnp.asarray(config.lam, dtype)])
        pieces = _pieces(unit.activation, dtype)

        def data(start, i, size):
            ks = k0 + start + i * size + jnp.arange(size, dtype=jnp.asarray(k0).dtype)
            X, Y, S = jax.vmap(draw_one)(ks)  # (size, B, d), (size, B), (size,)
            return X.reshape(size * B, d), Y.reshape(size * B), S

        def blocks(th, start, count, size):
            """``count`` kernel calls of ``size`` steps from step k0 + start (the last one partial)."""
            def run_call(i, th):
                n_i = jnp.minimum(n - start - i * size, size).astype(jnp.int64)
                return tuple(call(*th, *data(start, i, size), n_i, params, pieces, **attrs))

            return jax.lax.fori_loop(0, count, run_call, th)

        # full draws of L steps, then the rest in draws of L_TAIL (no sampling of unused steps
        # beyond L_TAIL - 1 when save intervals are short)
        th = (theta["w"].T.astype(dtype), theta["a"].astype(dtype), theta["b"].astype(dtype))
        n_full = n // L
        th = blocks(th, 0, n_full, L)
        rest = n - n_full * L
        wT, a, b = blocks(th, n_full * L, (rest + L2 - 1) // L2, L2)
        out = dict(theta)
        out.update(a=a, b=b, w=wT.T if "w" in trained else theta["w"])
        return out

    return advance


def _threads(threads=None) -> int:
    if threads is not None:
        return max(1, int(threads))
    return max(1, int(os.environ.get("MFNN_SGD_THREADS", os.cpu_count() or 1)))


def pair_runs(dtype) -> bool:
    """Whether ``pair_series`` runs the kernel for arrays of this dtype (float32 / float64 on
    the CPU backend with the kernel built; see ``kernel_status``).

    Parameters
    ----------
    dtype : dtype
        the dtype of A and C.

    Returns
    -------
    bool
        True where the kernel runs.
    """
    return jnp.dtype(dtype).name in PAIR_TARGETS and kernel_status() is None


def pair_series(A, C, *, threads=None):
    """sum_{i != j} sum_k A_ki A_kj C_ij^k through the C++ kernel, or None where it cannot run.

    The off-diagonal Mehler pair sum of the exact population risk (PNAS 2018 eqs. 3-4 with
    Mehler's formula; see ``mfnn.problem.population.mehler_pair_sum``): each pair's polynomial by
    Horner, the upper triangle only, in one pass over C (no (N, N, K) intermediate); rows split
    across threads in fixed groups, so the result does not depend on the thread count.  Vmapped
    calls (replicas) run in one kernel call.

    Parameters
    ----------
    A : array (K, N)
        the weighted Hermite coefficients A_ki = a_i chat_k(S_i, b_i), float32 or float64.
    C : array (N, N)
        the correlations C_ij (its diagonal is not read), the dtype of A.
    threads : int, optional
        threads (default ``$MFNN_SGD_THREADS``, else the CPU count).

    Returns
    -------
    array () or None
        the sum, or None where the kernel is unavailable (switched off, a non-CPU backend, no
        compiler, a dtype other than float32 / float64).
    """
    dtype = jnp.result_type(A, C)
    if not pair_runs(dtype):
        return None
    call = jax.ffi.ffi_call(PAIR_TARGETS[dtype.name], jax.ShapeDtypeStruct((), dtype), vmap_method="broadcast_all")
    return call(jnp.asarray(A, dtype), jnp.asarray(C, dtype), threads=np.int64(_threads(threads)))
