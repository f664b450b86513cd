"""Checkpoints of ``solve``: the solver state and the saves so far, written between blocks.

Inside ``checkpointing(directory, every_seconds)`` the n-th call of :func:`mfnn.solve` (n = 0, 1,
... in call order: a point's compute is deterministic, so a rerun makes the same calls) keeps
``directory/solve-<n>.ckpt`` (pickle of NumPy arrays, written atomically) up to date: after a block
of save intervals, when ``every_seconds`` have passed since the last write, and when the run is
interrupted.  A later call with the same problem, method, times and key (a fingerprint of their
values and structure) continues from it: the scan resumes at the same block boundary with the same
compiled program, so the result is the uninterrupted one bit for bit.  Outside the context nothing
is written.  The experiment runner enters the context per point (``points/<key>`` checkpoints in
the run directory, removed once the point is saved), so ``mfnn run ... --resume`` continues a long
run from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import os
import pickle
import re
import time
from pathlib import Path

import jax
import numpy as np

__all__ = ["checkpointing", "Checkpoint", "current", "run"]

_ctx: contextvars.ContextVar = contextvars.ContextVar("mfnn_checkpoint", default=None)


class _Session:
    def __init__(self, directory, every_seconds):
        self.directory = Path(directory)
        self.every = float(every_seconds)
        self.calls = 0


@contextlib.contextmanager
def checkpointing(directory, every_seconds: float | None = None):
    """Checkpoint every ``solve`` call inside the block into ``directory`` (default period:
    ``$MFNN_CHECKPOINT_SECONDS`` or 60 s; 0 writes after every block)."""
    if every_seconds is None:
        every_seconds = float(os.environ.get("MFNN_CHECKPOINT_SECONDS", "60"))
    token = _ctx.set(_Session(directory, every_seconds))
    try:
        yield
    finally:
        _ctx.reset(token)


def current(problem, method, times, key, names) -> "Checkpoint | None":
    """The checkpoint of this ``solve`` call, or None outside ``checkpointing``."""
    s = _ctx.get()
    if s is None:
        return None
    n = s.calls
    s.calls += 1
    return Checkpoint(s.directory / f"solve-{n}.ckpt", s.every, _fingerprint(problem, method, times, key, names))


def _fingerprint(*objs) -> str:
    h = hashlib.sha256()
    leaves, treedef = jax.tree_util.tree_flatten(objs)
    h.update(re.sub(r"0x[0-9a-fA-F]+", "", str(treedef)).encode())  # no object addresses
    for leaf in leaves:
        a = np.asarray(jax.device_get(leaf)) if hasattr(leaf, "shape") or isinstance(leaf, (int, float)) else None
        if a is None:
            h.update(re.sub(r"0x[0-9a-fA-F]+", "", repr(leaf)).encode())
        else:
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class Checkpoint:
    """The checkpoint file of one ``solve`` call: ``path``, the write period ``every`` (seconds) and the
    ``fingerprint`` of the call (problem, method, times, key, observables); a file whose fingerprint
    differs is ignored, so a changed call never resumes from another's state."""

    def __init__(self, path: Path, every: float, fingerprint: str):
        self.path, self.every, self.fingerprint = path, every, fingerprint
        self.last = time.monotonic()

    def load(self, state):
        """``(state, saves, n_done)`` from the file (leaves into ``state``'s structure), or None."""
        try:
            with open(self.path, "rb") as f:
                d = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError):
            return None
        if not isinstance(d, dict) or d.get("fingerprint") != self.fingerprint:
            return None
        leaves, treedef = jax.tree_util.tree_flatten(state)
        if len(d["state"]) != len(leaves):
            return None
        restored = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(a) for a in d["state"]])
        return restored, list(d["saved"]), int(d["n_done"])

    def write(self, state, saved: list, n_done: int, force: bool = False) -> None:
        if not force and time.monotonic() - self.last < self.every:
            return
        from ..io import atomic_write_bytes

        blob = {"fingerprint": self.fingerprint, "n_done": int(n_done), "saved": list(saved),
                "state": [np.asarray(a) for a in jax.device_get(jax.tree_util.tree_leaves(state))]}
        atomic_write_bytes(self.path, pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL))
        self.last = time.monotonic()


def run(run_segments, ckpt, step_block, state, inputs, *, n_segments, work, block, **kw):
    """``run_segments`` continued from ``ckpt`` (if any) and checkpointing into it after blocks.

    Checkpoints are taken at block boundaries of the full run (``block`` fixed from the full
    length), so the resumed scan visits the same blocks with the same compiled program."""
    from ..errors import RunInterrupted

    if ckpt is None:
        return run_segments(step_block, state, inputs, n_segments=n_segments, work=work, block=block, **kw)
    if block is None:
        block = max(1, math.ceil(n_segments / 50))
    prev, n0 = [], 0
    got = ckpt.load(state)
    if got is not None and got[2] % block == 0 or (got is not None and got[2] >= n_segments):
        state, prev, n0 = got
    if n0 >= n_segments:
        return prev[:n_segments], False, state
    rest = {k: v[n0:] for k, v in inputs.items()}

    def on_block(st, saved, stopping):
        ckpt.write(st, prev + saved, n0 + len(saved), force=stopping or n0 + len(saved) >= n_segments)

    try:
        saved, diverged, state = run_segments(step_block, state, rest, n_segments=n_segments - n0,
                                              work=None if work is None else work[n0:], block=block,
                                              on_block=on_block, **kw)
    except RunInterrupted as e:
        e.partial = prev + list(e.partial or [])
        raise
    return prev + saved, diverged, state
