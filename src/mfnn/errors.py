"""Errors raised by mfnn for invalid input and diverging runs."""

from __future__ import annotations


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


def check(cond: bool, field: str, message: str) -> None:
    """Raise ``ConfigError(field, message)`` unless ``cond``."""
    if not cond:
        raise ConfigError(field, message)
