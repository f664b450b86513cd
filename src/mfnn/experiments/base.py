"""Experiment framework: a config dataclass with the paper's defaults, a ``--quick`` preset,
``points -> compute -> reduce -> render`` (or a legacy ``run``), a registry for the CLI, and the
runner that validates input, checks the output location and handles divergence/interruption.

An experiment module defines::

    @dataclass(frozen=True)
    class Config(ExperimentConfig):
        d: int = 40
        ...
        INF_OK: ClassVar[tuple] = ()          # float fields that accept +-inf (documented there)
        BOUNDS: ClassVar[dict] = {}           # field -> (lo, hi): numeric range (elementwise for tuples)

    @register
    class MyExperiment(Experiment):
        name = "my-experiment"
        description = "one line for `mfnn list`"
        Config = Config
        quick = {"d": 10, ...}            # overrides applied by --quick

        def points / compute / reduce / render   (see ``Experiment``)
        def estimate(self, cfg) -> dict          # {"bytes": peak memory, "seconds": wall time, "field": ...}

Generic validation (every experiment, before the experiment's own ``validate``): each field is
checked against the type of its default -- bools are bools; ints are integers (not bools, numpy
integers accepted) in ``[0, 2**31)``; seeds in ``[0, 2**32)``; floats finite unless listed in
``INF_OK`` (NaN never); tuples element-wise by the type of the default's first element; strings
non-empty.  ``--set`` strings must be ASCII (``n_neurons=٣٠`` is refused) and non-empty.

Nothing numerical lives here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
import traceback
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from .. import _signals
from ..errors import ConfigError, DivergenceError, RunInterrupted
from ..io import RunDir, plan_output, versions

REGISTRY: dict[str, "Experiment"] = {}

INT_RANGE = (0, 2**31 - 1)
SEED_RANGE = (0, 2**32 - 1)
MAX_BYTES_FRACTION = 0.5   # of physical memory
MAX_SECONDS = 86400.0      # one day on 2 cores


@dataclass(frozen=True)
class ExperimentConfig:
    seed: int = 0

    INF_OK: ClassVar[tuple] = ()
    BOUNDS: ClassVar[dict] = {}

    def validate(self) -> None:
        """Subclasses raise ConfigError(field, ...) for bad values."""


@dataclass(frozen=True)
class Point:
    """One unit of work of an experiment: resolved parameters and a key derived from them.

    ``key`` hashes (experiment, params, seed): adding or removing other points never changes
    this point's key or its random stream (``seed`` is derived from the key).
    """

    experiment: str
    params: dict
    key: str
    seed: int

    @classmethod
    def make(cls, experiment: str, params: dict, seed: int = 0) -> "Point":
        import hashlib
        import json

        from ..io import _jsonable

        blob = json.dumps({"experiment": experiment, "params": _jsonable(params), "seed": int(seed)},
                          sort_keys=True, separators=(",", ":"))
        key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return cls(experiment, dict(params), key, int(key[:8], 16))


class Experiment:
    """An experiment: ``points -> compute -> reduce -> render`` (see docs/architecture.md).

    * ``points(cfg)``: the list of ``Point`` s to compute (default: one point holding the config);
    * ``compute(point, progress)``: pure, picklable, returns an ``xarray.Dataset`` (written to
      ``points/<key>.nc`` as soon as it is done).  A point whose solver diverged returns its
      saves with ``attrs["result"] = "diverged"`` (and ``attrs["message"]``): the runner stops
      there, reduces and renders what it has, and reports the divergence;
    * ``reduce(cfg, results)``: ``results`` maps point key -> Dataset (in point order); returns
      ``(summary, data)`` with ``data`` a dict file name -> Dataset written into the run directory;
    * ``render(cfg, results, summary)``: dict stem -> matplotlib figure (PNG + SVG);
    * ``estimate(cfg)``: optional ``{"bytes": peak memory, "seconds": wall time on 2 cores,
      "field": the dominant config field}``; the runner refuses runs over half the physical
      memory or over a day unless forced.

    Experiments not yet moved to this contract override ``run`` instead; the runner then
    handles ``DivergenceError`` / ``RunInterrupted`` raised from it, and summary flags
    ``diverged`` / ``*_diverged`` set to true.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = ExperimentConfig
    quick: ClassVar[dict] = {}

    def points(self, cfg) -> list:
        return [Point.make(self.name, dataclasses.asdict(cfg), cfg.seed)]

    def compute(self, point: Point, progress: bool = False):  # pragma: no cover - interface
        raise NotImplementedError

    def reduce(self, cfg, results: dict) -> tuple:  # pragma: no cover - interface
        raise NotImplementedError

    def render(self, cfg, results: dict, summary: dict) -> dict:
        return {}

    def estimate(self, cfg) -> dict:
        """Peak memory (``bytes``) and wall time (``seconds``) of a run, if known; default ``{}``."""
        return {}

    def run(self, cfg, out: RunDir, progress: bool) -> dict:
        """The contract pipeline into ``out`` (experiments not yet moved to the contract override
        this); returns the summary and sets ``summary["result"]``."""
        result, summary = _run_contract(self, cfg, out, progress, {"phase": "compute", "point": None})
        return {"result": result, **summary}

    @property
    def is_legacy(self) -> bool:
        """True for an experiment that overrides ``run`` (not yet on the contract)."""
        return type(self).run is not Experiment.run

    def make_config(self, quick: bool = False, overrides: dict | None = None, seed: int | None = None):
        """Defaults, then the quick preset, then ``--set`` overrides (strings are parsed by type).

        Every field -- not only the overridden ones -- passes the generic checks (module
        docstring) before the experiment's own ``validate``.
        """
        values = dict(self.quick) if quick else {}
        names = {f.name: f for f in fields(self.Config)}
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError("--set", f"overrides must be a dict, got {type(overrides).__name__}")
        for key, raw in (overrides or {}).items():
            if not isinstance(key, str) or key not in names:
                raise ConfigError(str(key), f"unknown field of {self.name}; fields: {', '.join(sorted(names))}")
            values[key] = parse_value(key, raw, names[key])
        if seed is not None:
            values["seed"] = parse_value("seed", seed, names["seed"])
        for key, f in names.items():
            if key in values:
                values[key] = check_value(self.Config, key, values[key], f)
        try:
            cfg = self.Config(**values)
        except ConfigError:
            raise
        except (TypeError, ValueError, OverflowError) as e:
            raise ConfigError("config", str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        for key, f in names.items():  # defaults too (a subclass default could be out of range)
            check_value(self.Config, key, getattr(cfg, key), f)
        try:
            cfg.validate()
        except ConfigError:
            raise
        except (ArithmeticError, TypeError, ValueError) as e:  # a validate() tripping over a value
            raise ConfigError("config", f"invalid combination of values ({type(e).__name__}: {e})") from None
        return cfg

    def check_budget(self, cfg, force: bool = False) -> dict:
        """Raise ``ConfigError`` when ``estimate(cfg)`` exceeds half the RAM or a day (unless ``force``)."""
        try:
            est = dict(self.estimate(cfg) or {})
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


# --------------------------------------------------------------------------------------------
# parsing and generic checks

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


def register(cls):
    inst = cls()
    if inst.name in REGISTRY:
        raise RuntimeError(f"duplicate experiment name {inst.name}")
    REGISTRY[inst.name] = inst
    return cls


def get(name: str) -> Experiment:
    from . import _all  # noqa: F401  (imports every experiment module)

    if not isinstance(name, str) or name not in REGISTRY:
        raise ConfigError("experiment", f"unknown experiment {name!r}; `mfnn list` shows the available ones")
    return REGISTRY[name]


def all_experiments() -> dict:
    from . import _all  # noqa: F401

    return dict(sorted(REGISTRY.items()))


# --------------------------------------------------------------------------------------------
# the runner


class RunFailed(RuntimeError):
    """A run stopped on an unexpected error; ``run_dir`` keeps its saves (``.partial``)."""

    def __init__(self, message: str, run_dir=None):
        self.run_dir = run_dir
        super().__init__(message)


def _diverged_flags(summary, depth: int = 0, prefix: str = "") -> list[str]:
    """Keys ``diverged`` / ``*_diverged`` set to true anywhere in a (legacy) summary."""
    found = []
    if depth > 6:
        return found
    if isinstance(summary, dict):
        for k, v in summary.items():
            name = f"{prefix}{k}"
            if isinstance(k, str) and (k == "diverged" or k.endswith("_diverged")) and v is True:
                found.append(name)
            elif isinstance(v, (dict, list)):
                found += _diverged_flags(v, depth + 1, name + ".")
    elif isinstance(summary, list):
        for i, v in enumerate(summary):
            found += _diverged_flags(v, depth + 1, f"{prefix}{i}.")
    return found


def _save_partial(run: RunDir, partial, name: str) -> str | None:
    """Best-effort save of the observables a solver carried in an exception (``.partial``)."""
    if partial is None:
        return None
    try:
        if hasattr(partial, "to_xarray"):
            ds = partial.to_xarray()
        else:
            import xarray as xr

            items = list(partial) if isinstance(partial, (list, tuple)) else None
            if not items or not all(isinstance(s, dict) for s in items):
                return None
            data = {}
            for k in items[0]:
                arr = np.stack([np.asarray(s[k]) for s in items])
                if arr.dtype.kind in "biuf":
                    data[str(k)] = (("save",) + tuple(f"{k}_dim{i}" for i in range(arr.ndim - 1)), arr)
            if not data:
                return None
            ds = xr.Dataset(data, attrs={"description": "saves made before the run stopped"})
        run.write_dataset(name, ds)
        return name
    except Exception:  # noqa: BLE001 - best effort: never mask the original stop
        return None


def _stop_check(state):
    signum = _signals.stop_requested()
    if signum is not None:
        raise RunInterrupted(f"interrupted by {_signals.signal_name(signum)}", signum=signum)


def run_experiment(name: str, *, out=None, quick=False, overrides=None, seed=None, progress=True,
                   overwrite=False, resume=False, force=False):
    """Validate everything, check the output location, then run into ``out`` (default
    results/<name>); returns the final run path.

    * Bad input raises ``ConfigError`` before anything is written (config, size estimate, ``out``).
    * The run writes into ``<out>.partial`` (marker first) under ``_signals.cooperative()``.
      Contract experiments write each point to ``points/<key>.nc`` as it completes; with
      ``resume`` the points already there are loaded instead of recomputed.
    * Divergence: ``summary.json`` with ``"result": "diverged"`` and where it stopped, figures from
      what was saved (plotting failures are recorded in ``render_errors``), the directory renamed
      to ``out`` (a finished, reproducible result), then ``DivergenceError`` is raised with
      ``.run_dir`` and ``.summary``.
    * Interruption (SIGINT/SIGTERM/KeyboardInterrupt): ``summary.json`` with ``"result":
      "interrupted"``, the phase and point; ``.partial`` kept; ``RunInterrupted`` re-raised with
      ``.run_dir`` and ``.signum``.
    * Any other error: ``summary.json`` with ``"result": "failed"`` and ``error.log`` (traceback)
      in ``.partial``; ``RunFailed`` raised (``ConfigError`` raised mid-run is re-raised as is).
    """
    from pathlib import Path

    exp = get(name)
    cfg = exp.make_config(quick=quick, overrides=overrides, seed=seed)
    exp.check_budget(cfg, force=force)
    out = Path("results") / name if out is None else out
    plan = plan_output(out, experiment=name, overwrite=overwrite, resume=resume)

    state = {"phase": "setup", "point": None, "n_points": None}
    start = time.time()
    run = None
    _signals.clear()
    import jax

    with _signals.cooperative(), jax.enable_x64(True):  # a whole run in float64 (no global switch)
        try:
            run = RunDir.open(plan, name)
            run.write_json("config.json", {"experiment": name, "quick": quick, "config": cfg,
                                           "versions": versions()})
            _stop_check(state)
            if exp.is_legacy:
                result, summary = _run_legacy(exp, cfg, run, progress, state)
            else:
                result, summary = _run_contract(exp, cfg, run, progress, state, resume=plan.resume)
            _stop_check(state)
        except KeyboardInterrupt as e:  # RunInterrupted included
            signum = getattr(e, "signum", None)
            if signum is None:
                signum = _signals.stop_requested()
            info = {"result": "interrupted", "signal": _signals.signal_name(signum), "phase": state["phase"],
                    "message": str(e) or "interrupted"}
            if state["point"] is not None:
                info["point"] = state["point"]
            if run is not None:
                saved = _save_partial(run, getattr(e, "partial", None), "interrupted_saves.nc")
                if saved:
                    info["saved"] = saved
                _write_summary(run, exp, name, quick, cfg, start, info)
            err = RunInterrupted(_interrupt_line(info, run), signum=signum)
            err.run_dir = run.path if run is not None else None
            err.summary = info
            raise err from None
        except ConfigError as e:
            if run is not None:
                _write_summary(run, exp, name, quick, cfg, start,
                               {"result": "failed", "phase": state["phase"], "error": str(e)})
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then re-raised as one line
            if os.environ.get("MFNN_DEBUG"):
                raise
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
            if run is None:
                raise RunFailed(f"{msg} (before anything was written)") from e
            try:
                (run.path / "error.log").write_text(traceback.format_exc())
            except OSError:
                pass
            _write_summary(run, exp, name, quick, cfg, start,
                           {"result": "failed", "phase": state["phase"], "point": state["point"], "error": msg})
            raise RunFailed(f"{msg} during {state['phase']}; saves and error.log kept in {run.path}",
                            run_dir=run.path) from e

        summary = _write_summary(run, exp, name, quick, cfg, start, {"result": result, **summary})
        path = run.finalize()
    if result == "diverged":
        where = summary.get("stopped_in") or summary.get("stopped_at") or summary.get("diverged_parts") \
            or summary.get("message")
        err = DivergenceError(f"run diverged ({_short(where)}); saves, figures and summary.json in {path}")
        err.run_dir = path
        err.summary = summary
        raise err
    return path


def _short(x, n: int = 160) -> str:
    s = x if isinstance(x, str) else repr(x)
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _interrupt_line(info: dict, run) -> str:
    where = f"during {info['phase']}"
    if "point" in info and isinstance(info["point"], dict):
        where += f" (point {info['point'].get('index', 0) + 1} of {info['point'].get('of')})"
    kept = f"; saves kept in {run.path} (--resume continues)" if run is not None else ""
    return f"interrupted by {info['signal']} {where}{kept}"


def _write_summary(run: RunDir, exp, name, quick, cfg, start, summary: dict) -> dict:
    full = {"experiment": name, "quick": quick, "seed": cfg.seed,
            "wall_seconds": round(time.time() - start, 2), **summary}
    try:
        run.write_json("summary.json", full)
    except (TypeError, ValueError) as e:  # a summary that cannot be serialized: keep the run's status
        full = {k: full[k] for k in ("experiment", "quick", "seed", "wall_seconds", "result")}
        full["summary_error"] = f"{type(e).__name__}: {e}"
        run.write_json("summary.json", full)
    return full


def _run_legacy(exp, cfg, run: RunDir, progress: bool, state: dict):
    state["phase"] = "compute"
    try:
        summary = exp.run(cfg, run, progress)
    except DivergenceError as e:
        info = {"phase": "compute", "message": str(e).splitlines()[0] if str(e) else "diverged",
                "stopped_at": str(e).splitlines()[0] if str(e) else "unknown"}
        saved = _save_partial(run, getattr(e, "partial", None), "diverged_saves.nc")
        if saved:
            info["saved"] = saved
        return "diverged", info
    if not isinstance(summary, dict):
        summary = {"summary": summary}
    flags = _diverged_flags(summary)
    if flags:
        return "diverged", {**summary, "diverged_parts": flags,
                            "stopped_at": summary.get("stopped_at") or f"{', '.join(flags)} set by the experiment"}
    return "successful", summary


def _call_compute(exp, point, progress: bool):
    """``compute(point, progress)``, or ``compute(point)`` for a compute without a progress argument."""
    import inspect

    try:
        params = inspect.signature(exp.compute).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        params = {}
    if "progress" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return exp.compute(point, progress=progress)
    return exp.compute(point)


def _load_point(path):
    import xarray as xr

    with xr.open_dataset(path, engine="scipy") as ds:
        return ds.load()


def _run_contract(exp, cfg, run: RunDir, progress: bool, state: dict, resume: bool = False):
    points = list(exp.points(cfg))
    results: dict = {}
    stopped = None
    state["phase"] = "compute"
    for i, point in enumerate(points):
        state["point"] = {"index": i, "of": len(points), "key": point.key}
        _stop_check(state)
        f = run.path / "points" / f"{point.key}.nc"
        ds = None
        if resume and f.is_file():
            try:
                ds = _load_point(f)
            except Exception:  # noqa: BLE001 - an unreadable save is recomputed
                ds = None
        if ds is None:
            ds = _call_compute(exp, point, progress)
            if str(ds.attrs.get("result", "")) == "interrupted":  # a solver stopped inside the point:
                run.write_dataset(f"points/{point.key}.interrupted.nc", ds)  # kept, but not resumed from
                signum = _signals.stop_requested()
                raise RunInterrupted(f"interrupted by {_signals.signal_name(signum)}", signum=signum)
            run.write_dataset(f"points/{point.key}.nc", ds)
        results[point.key] = ds
        if str(ds.attrs.get("result", "successful")) == "diverged":
            stopped = {"point": i, "of": len(points), "key": point.key, "params": point.params,
                       "message": str(ds.attrs.get("message", "non-finite values"))}
            break
    state["point"] = None
    _stop_check(state)

    summary: dict = {}
    state["phase"] = "reduce"
    try:
        reduced = exp.reduce(cfg, results)
        summary, data = reduced if isinstance(reduced, tuple) else (reduced, {})
        summary = dict(summary)
        for fname, ds in (data or {}).items():
            run.write_dataset(fname, ds)
    except (KeyboardInterrupt, ConfigError):
        raise
    except Exception as e:  # noqa: BLE001
        if stopped is None:
            raise
        summary = {"reduce_error": f"{type(e).__name__}: {e}"}
    _stop_check(state)

    state["phase"] = "render"
    render_errors = {}
    try:
        figs = exp.render(cfg, results, summary) or {}
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - plotting never loses a run
        figs = {}
        render_errors["render"] = f"{type(e).__name__}: {e}"
    figures = list(summary.get("figures", [])) if isinstance(summary.get("figures"), list) else []
    for stem, fig in figs.items():
        try:
            run.savefig(fig, stem)
            if f"{stem}.png" not in figures:
                figures.append(f"{stem}.png")
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001
            render_errors[stem] = f"{type(e).__name__}: {e}"
    summary["figures"] = figures
    if render_errors:
        summary["render_errors"] = render_errors
    state["phase"] = "finalize"
    summary["points"] = [p.key for p in points[: len(results)]]
    if stopped is not None:
        # where the run stopped (which point); the experiment's own "stopped_at" (a time) is kept
        summary["stopped_in"] = stopped
        return "diverged", summary
    return "successful", summary
