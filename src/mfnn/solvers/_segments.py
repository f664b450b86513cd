"""Shared driver: run a compiled integrator between save times, with progress and divergence stops.

A trajectory is a list of segments (one per save time).  ``advance(state, t0, n_steps, dt)`` is
compiled once (``lax.fori_loop`` with a dynamic trip count) and ``lax.scan`` runs a block of
segments in one call; the Python loop only visits blocks, which is where the progress bar ticks
and NaN/Inf are detected.  A diverging run stops at the end of the block in which it diverged,
keeping every save before the first non-finite one.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .. import _signals
from ..errors import RunInterrupted


def run_segments(
    step_block: Callable,
    state,
    seg_inputs: dict,
    *,
    n_segments: int,
    finite: Callable,
    desc: str,
    progress: bool,
    block: int | None = None,
    work=None,
    unit: str = "step",
    on_block: Callable | None = None,
):
    """Call ``step_block(state, inputs_block) -> (state, saved)`` over blocks of segments.

    ``seg_inputs`` holds arrays with leading axis n_segments; ``work`` (default ``seg_inputs["n"]``)
    weighs each segment for the progress bar, counted in ``unit``.  The last block is padded by
    repeating zero-length segments, so one compiled function serves every block.  Returns
    (list of saved pytrees per segment, diverged flag).  ``on_block(state, saves, stopping)``, if
    given, sees the state after every finite block (``stopping``: an interrupt follows; checkpoints).
    """
    if block is None:
        block = max(1, math.ceil(n_segments / 50))
    saved_all = []
    diverged = False
    pad = (-n_segments) % block
    padded = {k: np.concatenate([v, np.repeat(v[-1:] * 0, pad, axis=0)]) for k, v in seg_inputs.items()}
    work = np.asarray(seg_inputs["n"] if work is None else work, dtype=float)
    with tqdm(total=float(work.sum()) or 1.0, desc=desc, disable=not progress, unit=unit, unit_scale=True,
              leave=False) as bar:
        for start in range(0, n_segments, block):
            sl = slice(start, start + block)
            inputs = {k: jnp.asarray(v[sl]) for k, v in padded.items()}
            state, saved = step_block(state, inputs)
            saved = jax.device_get(saved)
            n_real = min(block, n_segments - start)
            ok = np.asarray(finite(saved))[:n_real]
            for j in range(n_real):
                if not ok[j]:
                    diverged = True
                    break
                saved_all.append(jax.tree_util.tree_map(lambda a: a[j], saved))
            bar.update(float(np.sum(work[sl])))
            if diverged:
                break
            signum = _signals.stop_requested()
            if on_block is not None:
                on_block(state, saved_all, signum is not None)
            if signum is not None:
                raise RunInterrupted(f"interrupted by signal {signum} at save {len(saved_all)} of {n_segments}",
                                     partial=saved_all, signum=signum)
    return saved_all, diverged, state


def stack(saved: list):
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *saved) if saved else None
