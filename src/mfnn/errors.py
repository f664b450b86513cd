"""Errors raised by mfnn for invalid input and diverging runs."""

from __future__ import annotations

__all__ = ["ConfigError", "DivergenceError", "RunInterrupted"]


class ConfigError(ValueError):
    """Invalid configuration value; ``field`` names the offending field.

    The message is one line, suitable for a CLI to print as-is.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class DivergenceError(FloatingPointError):
    """A run produced NaN/Inf; ``partial`` holds the observables saved so far."""

    def __init__(self, message: str, partial=None):
        self.partial = partial
        super().__init__(message)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT / SIGTERM; ``signum`` is the signal, ``partial`` what was saved."""

    def __init__(self, message: str = "interrupted", partial=None, signum: int | None = None):
        self.partial = partial
        self.signum = signum
        super().__init__(message)


def check(cond: bool, field: str, message: str) -> None:
    """Raise ``ConfigError(field, message)`` unless ``cond``."""
    if not cond:
        raise ConfigError(field, message)


def check_times(times, field: str = "times"):
    """Validate save times (non-empty, 1-d, non-decreasing, finite, >= 0) and return them as a float array."""
    import numpy as np

    try:
        t = np.atleast_1d(np.asarray(times, dtype=float))
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a list of numbers, got {times!r}") from None
    check(t.ndim == 1 and t.size > 0 and bool(np.all(np.isfinite(t))) and bool(np.all(np.diff(t) >= 0))
          and t[0] >= 0, field, "must be a non-empty non-decreasing list of finite times >= 0")
    return t
