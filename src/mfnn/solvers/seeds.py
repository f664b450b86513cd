"""Several seeds of one run in one compiled call: stack their keys, run, split the solution.

A method whose seeds only change PRNG keys (``OnlineSGD``: initialization, data and noise all
come from the key) runs S seeds as S*R vmapped replicas, seed-major.  :func:`stack_keys` builds
the key stack from integer seeds exactly as ``solve(..., key=seed)`` would build each key, and
:func:`split_replicas` cuts the solution back into the S solutions the seeds give one by one
(the same numbers: every replica is an independent vmapped lane).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ._driver import Solution

__all__ = ["stack_keys", "split_replicas"]


def stack_keys(seeds) -> jax.Array:
    """The keys ``jax.random.PRNGKey(seed)`` of ``seeds`` stacked into one (S, 2) array.

    Parameters
    ----------
    seeds : sequence of int
        seeds in [0, 2**32), at least one.

    Returns
    -------
    array
        uint32 keys of shape (S, 2): pass it as ``key`` to ``mfnn.solve`` with ``OnlineSGD``.

    Raises
    ------
    ConfigError
        on the field ``seeds`` for an empty list or a seed out of range.
    """
    seeds = [int(s) for s in seeds]
    check(len(seeds) >= 1, "seeds", "need at least one seed")
    check(all(0 <= s < 2**32 for s in seeds), "seeds", f"seeds must be in [0, 2**32), got {seeds}")
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def split_replicas(sol: Solution, n_seeds: int) -> list:
    """Cut a solution of ``n_seeds`` stacked runs (replica axis S*R, seed-major) into S solutions.

    Parameters
    ----------
    sol : Solution
        from ``mfnn.solve`` with a stack of ``n_seeds`` keys; every observable whose second
        dimension is "replica" is split, the others (no replica axis) are shared.
    n_seeds : int
        S, the number of stacked keys.

    Returns
    -------
    list of Solution
        one per seed, in key order, with the times, stats, result and message of ``sol``.

    Raises
    ------
    ConfigError
        on the field ``n_seeds`` when it does not divide the replica axis.
    """
    out = []
    for s in range(int(n_seeds)):
        ys = {}
        for name, v in sol.ys.items():
            dims = sol.dims.get(name, ())
            if len(dims) > 1 and dims[1] == "replica":
                total = np.shape(v)[1]
                check(n_seeds >= 1 and total % n_seeds == 0, "n_seeds",
                      f"{n_seeds} seeds do not divide {total} replicas of {name!r}")
                r = total // n_seeds
                v = np.asarray(v)[:, s * r:(s + 1) * r]
            ys[name] = v
        out.append(dataclasses.replace(sol, ys=ys, dims=dict(sol.dims), stats=dict(sol.stats)))
    return out
