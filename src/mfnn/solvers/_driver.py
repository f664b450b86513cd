"""One entry point for every solver: ``solve(problem, method, saveat) -> Solution``.

A *method* (finite-N SGD, a mean-field limit solver, ...) is a small pytree module with

* ``init(problem, times, key) -> (state, seg_inputs)``: host side (NumPy/SciPy allowed); the
  initial state (a pytree of arrays) and one row of inputs per save interval (dict of NumPy
  arrays with leading axis ``len(times)``, including ``"work"``, the progress weight of each);
* ``segment(problem, state, seg) -> state``: traced; advance over one save interval;
* ``observe(problem, state, names, fn) -> dict``: traced; the named observables at a save
  (``fn(problem, state)`` adds user observables);
* ``default_observables``, ``dims(name)`` (dimension names after ``time``), ``label``.

The driver owns what every solver used to write for itself: save-time validation, compile
caching, the progress bar, NaN/Inf detection, cooperative interruption, float64, checkpoints
(inside ``_checkpoint.checkpointing(dir)``: resume bit for bit), and the result.
Compilation: one ``equinox.filter_jit`` of a ``lax.scan`` over save intervals, with the problem,
the method and the state as *arguments*: array leaves (Delta, kappa, eps, alpha, ...) are traced
and only the structure (shapes, static fields) keys the cache, so a sweep over numbers compiles
once.  float64: the method runs inside ``jax.enable_x64(method.x64)``; ``import mfnn`` changes no
global JAX setting.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from typing import Callable

import equinox as eqx
import jax
import numpy as np

from ..errors import ConfigError, DivergenceError, RunInterrupted, check, check_times
from ..numerics.pytree import Module
from . import _checkpoint
from ._segments import run_segments, stack

SUCCESSFUL, DIVERGED, INTERRUPTED = "successful", "diverged", "interrupted"


class SaveAt(Module):
    """Where and what to save.

    Parameters
    ----------
    times : array of float
        non-decreasing, >= 0 (t = 0 allowed).
    observables : tuple of str, optional
        the names to save (None: the method's defaults; ``method.available(problem)`` lists them).
    fn : callable, optional
        ``fn(problem, state) -> dict of arrays``, evaluated at every save inside the compiled program.
    """

    times: np.ndarray = eqx.field(converter=lambda t: check_times(t, "saveat.times"))
    observables: tuple | None = eqx.field(static=True, default=None,
                                          converter=lambda o: None if o is None else tuple([o] if isinstance(o, str) else o))
    fn: Callable | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check(self.fn is None or callable(self.fn), "saveat.fn", "must be callable fn(problem, state) -> dict")


class Method(Module):
    """Base of solver methods (see the module docstring for the protocol)."""

    x64 = True
    label = "solve"
    default_observables = ()

    def init(self, problem, times, key):  # pragma: no cover - interface
        raise NotImplementedError

    def segment(self, problem, state, seg):  # pragma: no cover - interface
        raise NotImplementedError

    def observe(self, problem, state, names, fn):  # pragma: no cover - interface
        raise NotImplementedError

    def available(self, problem) -> tuple:
        """Observable names this method can save for ``problem``."""
        return tuple(self.default_observables)

    def dims(self, name: str) -> tuple:
        return ()


@dataclass
class Solution:
    """What ``solve`` returns.

    ``times`` (the save times reached), ``ys`` (name -> array with leading axis time),
    ``dims`` (name -> dimension names, starting with "time"), ``stats`` (wall time, number of
    saves, method-specific counters), ``result`` ("successful", "diverged", "interrupted") and a
    one-line ``message``.  Observables are also attributes: ``sol.risk is sol.ys["risk"]``.
    """

    times: np.ndarray
    ys: dict
    dims: dict
    stats: dict = field(default_factory=dict)
    result: str = SUCCESSFUL
    message: str = ""

    def __getattr__(self, name):
        ys = self.__dict__.get("ys", {})
        if name in ys:
            return ys[name]
        raise AttributeError(name)

    def __getitem__(self, name):
        return self.ys[name]

    @property
    def ok(self) -> bool:
        return self.result == SUCCESSFUL

    def to_xarray(self):
        """An ``xarray.Dataset`` with named dimensions (time, replica, neuron, ...)."""
        import xarray as xr

        data = {k: (self.dims[k], np.asarray(v)) for k, v in self.ys.items()}
        ds = xr.Dataset(data, coords={"time": np.asarray(self.times)})
        ds.attrs.update(result=self.result, message=self.message)
        return ds


@eqx.filter_jit
def _scan_block(method, problem, names, fn, state, inputs):
    """``lax.scan`` of (segment, observe) over a block of save intervals (compiled per structure)."""

    def body(st, seg):
        st = method.segment(problem, st, seg)
        return st, method.observe(problem, st, names, fn)

    return jax.lax.scan(body, state, inputs)


def _finite(saved) -> np.ndarray:
    """Per-save flag: every floating observable finite (reduces all axes after the first)."""
    flags = None
    for leaf in jax.tree_util.tree_leaves(saved):
        a = np.asarray(leaf)
        if not np.issubdtype(a.dtype, np.inexact):
            continue
        f = np.all(np.isfinite(a.reshape(a.shape[0], -1)), axis=1)
        flags = f if flags is None else flags & f
    return flags


def _dims(names: tuple, ndim: int, obs: str) -> tuple:
    """Dimension names cut or padded (``<obs>_dim<i>``) to the array's rank."""
    names = names[:ndim]
    return names + tuple(f"{obs}_dim{i}" for i in range(len(names), ndim))


def solve(problem, method: Method, saveat, *, key=None, progress: bool = False, throw: bool = True,
          block: int | None = None) -> Solution:
    """Run ``method`` on ``problem`` and save observables at ``saveat.times``.

    A non-finite observable stops the run at the end of the block in which it appeared; an
    interrupt (``mfnn._signals``) stops it at the next block.  The call runs under
    ``jax.enable_x64`` when the method asks for float64 (``method.x64``, the default).

    Parameters
    ----------
    problem : Problem
        unit, task, initial law (and constraint): what is trained.
    method : Method
        how: ``OnlineSGD``, ``RadialDD``, ``ParticleDD``, ``NoisyRadialPDE``, ``GibbsFixedPoint``,
        ``AnisotropicDD``, ``AlphaFlow`` or your own ``Method``.
    saveat : SaveAt or sequence of float
        the save times (t = 0 allowed) and, in a ``SaveAt``, the observables and a user function.
    key : jax PRNG key or int, optional
        randomness (an int is a seed in [0, 2**32)); methods without randomness ignore it.
    progress : bool
        show a progress bar.
    throw : bool
        raise on divergence / interruption (else report it in ``Solution.result``).
    block : int, optional
        save intervals per compiled block (the granularity of NaN checks and interrupts).

    Returns
    -------
    Solution
        ``times``, ``ys`` (name -> array with leading time axis), ``result`` ("successful",
        "diverged", "interrupted"), ``message``, ``stats``; ``to_xarray()``.

    Raises
    ------
    ConfigError
        bad input, naming the field (e.g. ``saveat.observables``, ``key``).
    DivergenceError, RunInterrupted
        with ``throw=True``: the partial ``Solution`` is their ``.partial``.
    """
    if not isinstance(saveat, SaveAt):
        saveat = SaveAt(times=saveat)
    check(isinstance(method, Method), "method", f"must be a solver method, got {type(method).__name__}")
    if key is None:
        key = 0
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        check(0 <= int(key) < 2**32, "key", f"seed must be in [0, 2**32), got {key}")
        key = jax.random.PRNGKey(int(key))
    available = method.available(problem)
    names = saveat.observables if saveat.observables is not None else available
    for n in names:
        if n not in available:
            raise ConfigError("saveat.observables", f"{n!r} is not available for {type(method).__name__} "
                                                    f"on this problem; choose from {list(available)}")
    times = np.asarray(saveat.times, dtype=float)
    start = _time.time()
    with jax.enable_x64(bool(method.x64)):
        state, inputs = method.init(problem, times, key)
        work = np.asarray(inputs.pop("work"), dtype=float)
        step_block = lambda st, inp: _scan_block(method, problem, tuple(names), saveat.fn, st, inp)  # noqa: E731
        result, message = SUCCESSFUL, ""
        ckpt = _checkpoint.current(problem, method, times, key, (tuple(names), getattr(saveat.fn, "__qualname__", None)))
        try:
            saved, diverged, state = _checkpoint.run(run_segments, ckpt, step_block, state, inputs, n_segments=len(times),
                                                     finite=_finite, desc=method.label, progress=progress, work=work,
                                                     block=block)
        except RunInterrupted as e:
            saved, diverged = e.partial or [], False
            result, message = INTERRUPTED, str(e)
    k = len(saved)
    if diverged:
        stop = times[k] if k < len(times) else times[-1]
        result, message = DIVERGED, f"non-finite values between t = {times[k - 1] if k else 0.0:g} and t = {stop:g}"
    ys = {} if not saved else {n: np.asarray(v) for n, v in stack(saved).items()}
    dims = {n: _dims(("time",) + tuple(method.dims(n)), v.ndim, n) for n, v in ys.items()}
    sol = Solution(times=times[:k], ys=ys, dims=dims,
                   stats={"wall_seconds": _time.time() - start, "n_saves": k}, result=result, message=message)
    if throw and result == DIVERGED:
        raise DivergenceError(f"{method.label} diverged: {message}", partial=sol)
    if throw and result == INTERRUPTED:
        raise RunInterrupted(message, partial=sol)
    return sol
