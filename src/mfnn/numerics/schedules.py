"""Step-size schedules xi(t); SGD step k uses s_k = eps * xi(k eps) (PNAS 2018, eq. 6).

Schedules are pytree modules: their numbers are leaves (a sweep over p or t0 compiles once),
user functions are static; ``__call__`` is traceable.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax.numpy as jnp

from ..errors import ConfigError, check
from .pytree import Module, is_tracer, real


class Schedule(Module):
    """A step-size schedule t -> xi(t) (PNAS 2018 eq. 7: the DD runs at speed 2 xi(t)); numbers are leaves."""

    def __call__(self, t):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return repr(self)


class Constant(Schedule):
    """xi(t) = value."""

    value: float = real("xi", 1.0)

    def __check_init__(self):
        check(is_tracer(self.value) or self.value > 0, "xi", f"constant schedule must be > 0, got {self.value}")

    def __call__(self, t):
        return jnp.full_like(jnp.asarray(t, dtype=float), self.value)


class PowerLaw(Schedule):
    """xi(t) = scale * (t0 + t)^(-p): the PNAS Fig. 3 schedule t^(-1/4) regularized at t = 0 by t0."""

    p: float = real("xi.p", 0.25)
    t0: float = real("xi.t0", 1.0)
    scale: float = real("xi.scale", 1.0)

    def __check_init__(self):
        if is_tracer(self.p):
            return
        check(self.p >= 0, "xi.p", f"exponent must be >= 0, got {self.p}")
        check(self.t0 > 0, "xi.t0", f"offset must be > 0 (xi must stay bounded), got {self.t0}")
        check(self.scale > 0, "xi.scale", f"must be > 0, got {self.scale}")

    def __call__(self, t):
        return self.scale * (self.t0 + jnp.asarray(t, dtype=float)) ** (-self.p)


class Function(Schedule):
    """A user schedule: any jax-traceable ``fn(t) -> xi``.  Assumption A1 asks it bounded, Lipschitz."""

    fn: Callable = eqx.field(static=True)

    def __call__(self, t):
        return jnp.asarray(self.fn(t), dtype=float)


def as_schedule(spec) -> Schedule:
    """Build a schedule from a number, a ``Schedule``, a callable, or a string.

    Strings: ``"1"`` / ``"constant:0.5"`` / ``"power:0.25"`` / ``"power:0.25:1.0"`` (p, t0).
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(spec)
    if callable(spec):
        return Function(spec)
    if isinstance(spec, str):
        parts = spec.split(":")
        try:
            if parts[0] == "constant":
                return Constant(float(parts[1]) if len(parts) > 1 else 1.0)
            if parts[0] == "power":
                p = float(parts[1]) if len(parts) > 1 else 0.25
                t0 = float(parts[2]) if len(parts) > 2 else 1.0
                return PowerLaw(p=p, t0=t0)
            return Constant(float(spec))
        except ConfigError:
            raise  # a parsed value out of range: keep the precise field (e.g. xi.p)
        except (ValueError, IndexError):
            pass
    raise ConfigError("xi", f"cannot build a schedule from {spec!r} (use a number, 'constant:V' or 'power:P[:T0]')")
