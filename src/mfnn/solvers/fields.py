"""Field converters shared by the solver methods (``RadialDD``, ``ParticleDD``, ``NoisyRadialPDE``,
``GibbsFixedPoint``, ``AnisotropicDD``, ``AlphaFlow``), and ``kept``: what a caller that keeps the
saves of a diverged run does with a ``solve(..., throw=False)`` result."""

from __future__ import annotations

import equinox as eqx

from ..errors import DivergenceError, RunInterrupted, check
from ..numerics.pytree import to_int, to_real

__all__ = ["choice", "finish_observe", "kept", "static_int", "static_positive"]


def choice(field: str, options: tuple):
    """Converter: a string from ``options`` (ConfigError naming ``field`` otherwise)."""
    def conv(v):
        check(isinstance(v, str) and v in options, field, f"use one of {list(options)}, got {v!r}")
        return v
    return conv


def static_positive(field: str, default: float):
    """A static float field > 0 (tolerances and step sizes: the steppers use them on the host)."""
    def conv(v):
        v = float(to_real(field, v))
        check(v > 0, field, f"must be > 0, got {v}")
        return v
    return eqx.field(static=True, default=default, converter=conv)


def static_int(field: str, default: int, minimum: int, maximum: int = 2**26):
    """A static (structural) integer field of a method, converted and checked in [minimum, maximum]
    at construction (``ConfigError`` naming ``field``)."""
    return eqx.field(static=True, default=default, converter=lambda v: to_int(field, v, minimum=minimum, maximum=maximum))


def finish_observe(out: dict, problem, state, names, fn, params: dict | None = None) -> dict:
    """The tail every ``observe`` shares: ``params/<name>`` snapshots of ``params`` (when given),
    ``n_steps`` from the state, and the user's ``fn(problem, state)``."""
    if params is not None:
        out.update({n: params[n[7:]] for n in names if n.startswith("params/")})
    if "n_steps" in names:
        out["n_steps"] = state["n_steps"]
    if fn is not None:
        out.update(fn(problem, state))
    return out


def kept(sol):
    """``sol`` (from ``solve(..., throw=False)``) when it saved something: an interrupt raises
    ``RunInterrupted`` and a divergence before the first save ``DivergenceError`` (both carrying
    ``sol`` as ``.partial``); a later divergence is returned, ``sol.result == "diverged"``, with
    the saves before it."""
    if sol.result == "interrupted":
        raise RunInterrupted(sol.message, partial=sol)
    if len(sol.times) == 0:
        raise DivergenceError(f"diverged before the first save time: {sol.message}", partial=sol)
    return sol
