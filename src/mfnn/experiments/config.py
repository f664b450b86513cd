"""Parsing and validation of experiment config values (``--set key=value`` and Python values).

:func:`build` makes an experiment's config: defaults, then the ``--quick`` preset, then the
overrides (strings parsed by the type of the field's default, :func:`parse_value`), then the
generic checks of every field (:func:`check_value`), then the config's own ``validate``.

Generic checks, by the type of the field's default: bools are bools; ints are integers (not bools,
numpy integers accepted) in ``[0, 2**31)``; seeds in ``[0, 2**32)``; floats finite unless the
field is listed in the config's ``INF_OK`` (NaN never); a field in the config's ``BOUNDS``
(``field -> (lo, hi)``) must lie in that range; tuples element-wise by the type of the default's
first element; strings non-empty.  ``--set`` strings must be printable ASCII (``n_neurons=٣٠`` is
refused) and non-empty.  Every failure is a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import fields
from typing import Any

import numpy as np

from ..errors import ConfigError

INT_RANGE = (0, 2**31 - 1)
SEED_RANGE = (0, 2**32 - 1)


def build(config_cls: type, experiment: str, quick: dict | None = None, overrides: dict | None = None,
          seed=None):
    """``config_cls`` from its defaults, the ``quick`` preset (if given), the ``overrides`` and
    ``seed``; every field -- not only the overridden ones -- passes the generic checks before the
    config's own ``validate``.  ``experiment`` names the experiment in error messages."""
    values = dict(quick or {})
    names = {f.name: f for f in fields(config_cls)}
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError("--set", f"overrides must be a dict, got {type(overrides).__name__}")
    for key, raw in (overrides or {}).items():
        if not isinstance(key, str) or key not in names:
            raise ConfigError(str(key), f"unknown field of {experiment}; fields: {', '.join(sorted(names))}")
        values[key] = parse_value(key, raw, names[key])
    if seed is not None:
        values["seed"] = parse_value("seed", seed, names["seed"])
    for key, f in names.items():
        if key in values:
            values[key] = check_value(config_cls, key, values[key], f)
    try:
        cfg = config_cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError("config", str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    for key, f in names.items():  # defaults too (a subclass default could be out of range)
        check_value(config_cls, key, getattr(cfg, key), f)
    try:
        cfg.validate()
    except ConfigError:
        raise
    except (ArithmeticError, TypeError, ValueError) as e:  # a validate() tripping over a value
        raise ConfigError("config", f"invalid combination of values ({type(e).__name__}: {e})") from None
    return cfg


_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)",
                       re.IGNORECASE)


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def _kind(default) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, tuple):
        return "tuple"
    return "any"


def _elem_kind(default) -> str:
    return _kind(default[0]) if default else "float"


def _parse_scalar(key: str, s: str, kind: str, raw: str):
    s = s.strip()
    if not s:
        raise ConfigError(key, f"empty value in {raw!r}")
    if kind == "bool":
        if s.lower() in ("1", "true", "yes", "on"):
            return True
        if s.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, f"cannot parse {raw!r} as a boolean (true/false)")
    if kind == "int":
        if _INT_RE.fullmatch(s):
            return int(s)
        if _FLOAT_RE.fullmatch(s):  # 1e6 is an integer; 2.5 or inf is not
            f = float(s)
            if math.isfinite(f) and f == int(f):
                return int(f)
        raise ConfigError(key, f"cannot parse {raw!r} as an integer")
    if kind == "float":
        if _FLOAT_RE.fullmatch(s):
            return float(s)
        raise ConfigError(key, f"cannot parse {raw!r} as a number")
    return s


def parse_value(key: str, raw: Any, field: dataclasses.Field):
    """Parse a ``--set key=value`` string using the field's default type (non-strings pass through
    to :func:`check_value`).  Only ASCII text is accepted; empty values and elements are refused."""
    if not isinstance(raw, str):
        return raw
    if not raw.isascii() or not raw.isprintable():
        raise ConfigError(key, f"only printable ASCII characters are accepted, got {raw!r}")
    if not raw.strip():
        raise ConfigError(key, "empty value")
    default = _default(field)
    kind = _kind(default)
    if kind == "tuple":
        body = raw.strip()
        if body[:1] in "([" and body[-1:] in ")]":
            body = body[1:-1]
        if not body.strip():
            return ()
        items = body.split(",")
        if items and not items[-1].strip() and len(items) > 1:  # a trailing comma: "1,2,"
            items = items[:-1]
        return tuple(_parse_scalar(key, s, _elem_kind(default), raw) for s in items)
    return _parse_scalar(key, raw, kind, raw)


def _check_scalar(cls, key: str, v, kind: str, where: str = ""):
    bounds = dict(getattr(cls, "BOUNDS", {}) or {})
    if kind == "bool":
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise ConfigError(key, f"must be true or false{where}, got {v!r}")
    if kind == "int":
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ConfigError(key, f"must be an integer{where}, got {v!r}")
        v = int(v)
        lo, hi = bounds.get(key, SEED_RANGE if key == "seed" else INT_RANGE)
        if not lo <= v <= hi:
            raise ConfigError(key, f"must be in [{lo}, {hi}]{where}, got {v}")
        return v
    if kind == "float":
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ConfigError(key, f"must be a number{where}, got {v!r}")
        try:
            v = float(v)
        except OverflowError:
            raise ConfigError(key, f"is out of the floating-point range{where}") from None
        if math.isnan(v):
            raise ConfigError(key, f"must be a number, got nan{where}")
        if math.isinf(v) and key not in tuple(getattr(cls, "INF_OK", ()) or ()):
            raise ConfigError(key, f"must be finite{where}, got {v}")
        if key in bounds:
            lo, hi = bounds[key]
            if not lo <= v <= hi:
                raise ConfigError(key, f"must be in [{lo}, {hi}]{where}, got {v}")
        return v
    if kind == "str":
        if not isinstance(v, str):
            raise ConfigError(key, f"must be a string{where}, got {v!r}")
        if not v.strip():
            raise ConfigError(key, f"must not be empty{where}")
        if not v.isascii() or not v.isprintable():
            raise ConfigError(key, f"only printable ASCII characters are accepted{where}, got {v!r}")
        return v
    return v


def check_value(cls, key: str, value, field: dataclasses.Field):
    """Generic type/finiteness/range check of one config value; returns it normalized
    (numpy scalars to Python, lists to tuples)."""
    default = _default(field)
    kind = _kind(default)
    if kind == "tuple":
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (tuple, list)):
            raise ConfigError(key, f"must be a list of values, got {value!r}")
        if len(value) > INT_RANGE[1]:  # pragma: no cover - absurd
            raise ConfigError(key, "too many values")
        ek = _elem_kind(default)
        return tuple(_check_scalar(cls, key, v, ek, f" (element {i})") for i, v in enumerate(value))
    return _check_scalar(cls, key, value, kind)
