"""Field converters and the old-API epilogue shared by the limit-solver methods (``RadialDD``,
``ParticleDD``, ``NoisyRadialPDE``, ``GibbsFixedPoint``, ``AnisotropicDD``, ``AlphaFlow``)."""

from __future__ import annotations

import equinox as eqx

from ..errors import DivergenceError, RunInterrupted, check
from ..numerics.pytree import to_int, to_real

__all__ = ["choice", "legacy_result", "static_int", "static_positive"]


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


def legacy_result(sol, what: str) -> bool:
    """The earlier solvers' convention: an interrupt raises, a divergence before the first save
    raises, a later divergence is a ``diverged`` flag (returned) on what was saved."""
    if sol.result == "interrupted":
        raise RunInterrupted(sol.message, partial=sol)
    if len(sol.times) == 0:
        raise DivergenceError(f"{what} diverged before the first save time", partial=sol)
    return sol.result == "diverged"
