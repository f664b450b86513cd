"""Validation helpers of experiment configs: ranges, sweeps, save grids, dimensions, and the
field an estimate names when it refuses a run.  Each raises ``ConfigError`` naming the field."""

from __future__ import annotations

import math
import numbers

from ...errors import ConfigError, check

__all__ = ["check_finite", "check_range", "check_ranges", "check_save_grid", "check_sweep", "dominant_field",
           "parse_d"]


def check_ranges(cfg, ranges: dict) -> None:
    """``ranges``: field -> an interval such as ``"[2, 1e6]"`` or ``"(0, 1)"``, or a tuple of allowed
    values.  NaN, infinities and non-numbers are outside every interval; a tuple-valued field is
    checked element by element.  ConfigError naming the first field that fails."""
    for field, spec in ranges.items():
        v = getattr(cfg, field)
        if isinstance(spec, tuple):
            check(v in spec, field, f"use one of {', '.join(map(repr, spec))}, got {v!r}")
            continue
        lo, hi = (float(x) for x in spec[1:-1].split(","))
        ok = all(isinstance(x, numbers.Real) and math.isfinite(x)
                 and (x > lo if spec[0] == "(" else x >= lo) and (x < hi if spec[-1] == ")" else x <= hi)
                 for x in (v if isinstance(v, tuple) else (v,)))
        check(ok, field, f"must be finite, got {v!r}" if math.isinf(hi - lo) else f"must be in {spec}, got {v!r}")


def check_range(cfg, **bounds) -> None:
    """:func:`check_ranges` with keyword bounds: ``name=(lo, hi)`` is the closed interval [lo, hi]."""
    check_ranges(cfg, {name: f"[{float(lo)!r}, {float(hi)!r}]" for name, (lo, hi) in bounds.items()})


def check_finite(cfg, names) -> None:
    """ConfigError naming the first field of ``names`` that is NaN or +-inf."""
    check_range(cfg, **{n: (-math.inf, math.inf) for n in names})


def check_sweep(cfg, name, lo, hi, min_len: int = 3, increasing: bool = True) -> None:
    """ConfigError unless the tuple field holds >= min_len values in [lo, hi] (increasing)."""
    v = getattr(cfg, name)
    check(isinstance(v, tuple) and len(v) >= min_len, name, f"need >= {min_len} values, got {v!r}")
    check_range(cfg, **{name: (lo, hi)})
    check(not increasing or all(b > a for a, b in zip(v, v[1:])), name, f"must be increasing, got {v!r}")


def check_save_grid(t_max: float, n_times: int, steps, field: str = "eps") -> None:
    """ConfigError unless every SGD step divides the save interval t_max / (n_times - 1)."""
    interval = t_max / (n_times - 1)
    for e in steps:
        check(abs(interval / e - round(interval / e)) < 1e-6, field,
              f"step {e} must divide the save interval {interval} (SGD saves at whole steps)")


def dominant_field(cfg, grow=(), shrink=()) -> str:
    """The size field furthest above (``grow``: N, d) or below (``shrink``: a step) its default,
    tuples by their extreme element: the field ``Experiment.estimate`` names when it refuses a run."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    ratio = {}
    for name in grow:
        v, d0 = getattr(cfg, name), defaults[name]
        ratio[name] = (max(v) / max(d0)) if isinstance(v, tuple) else v / d0
    for name in shrink:
        v, d0 = getattr(cfg, name), defaults[name]
        ratio[name] = (min(d0) / min(v)) if isinstance(v, tuple) else d0 / v
    return max(ratio, key=ratio.get)


def parse_d(raw, field: str = "d"):
    """A dimension given as text: 'inf' / 'infinity' -> math.inf, an integer >= 2 -> int; else
    ConfigError(field).  (d = inf selects the d -> infinity reductions of the DD.)"""
    s = str(raw).strip().lower()
    if s in ("inf", "infinity", "+inf"):
        return math.inf
    try:
        d = int(s)
    except ValueError:
        raise ConfigError(field, f"use a positive integer or 'inf', got {raw!r}") from None
    check(2 <= d <= 10 ** 7, field, f"must be in [2, 1e7] or 'inf', got {raw!r}")
    return d
