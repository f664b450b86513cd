"""The size guard of a run: an experiment's ``estimate(cfg)`` against ``MAX_BYTES_FRACTION`` (one
half) of the physical memory and ``MAX_SECONDS`` (one day) of wall time (docs/architecture.md,
section 4).  Nothing numerical lives here."""

from __future__ import annotations

import math
import os

from ..errors import ConfigError

__all__ = ["MAX_BYTES_FRACTION", "MAX_SECONDS", "check_budget", "physical_memory"]

MAX_BYTES_FRACTION = 0.5   # of physical memory
MAX_SECONDS = 86400.0      # one day on 2 cores


def check_budget(exp, cfg, force: bool = False) -> dict:
    """``exp.estimate(cfg)``; raise ``ConfigError`` naming its ``field`` when it exceeds half the
    physical memory or a day of wall time (unless ``force``)."""
    try:
        est = dict(exp.estimate(cfg) or {})
    except ConfigError:
        raise
    except (ArithmeticError, ValueError, TypeError, MemoryError) as e:
        raise ConfigError("config", f"cannot estimate the size of this run ({type(e).__name__}: {e}); "
                                    "reduce the sizes") from None
    if force:
        return est
    field = str(est.get("field") or "config")
    ram = physical_memory()
    b = _as_float(est.get("bytes"))
    s = _as_float(est.get("seconds"))
    if b is not None and ram and not b <= MAX_BYTES_FRACTION * ram:
        raise ConfigError(field, f"this run needs about {_fmt_bytes(b)} of memory, more than half of the "
                                 f"{_fmt_bytes(ram)} here; reduce it or pass --force")
    if s is not None and not s <= MAX_SECONDS:
        raise ConfigError(field, f"this run would take about {_fmt_seconds(s)} (more than a day); "
                                 "reduce it or pass --force")
    return est


def _as_float(x):
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return math.inf


def physical_memory() -> int:
    """Bytes of physical memory (0 where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 0


def _fmt_bytes(b: float) -> str:
    if not math.isfinite(b):
        return "an unbounded amount"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if b < 1024 or unit == "PiB":
            return f"{b:.3g} {unit}"
        b /= 1024
    return f"{b:.3g} EiB"  # pragma: no cover


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "forever"
    if s < 3600 * 48:
        return f"{s / 3600:.3g} hours"
    if s < 86400 * 365 * 3:
        return f"{s / 86400:.3g} days"
    return f"{s / (86400 * 365):.3g} years"
