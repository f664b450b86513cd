"""Experiment framework: a config dataclass with the paper's defaults, a ``--quick`` preset,
a ``run`` that calls solvers and writes into a ``RunDir``, and a registry for the CLI.

An experiment module defines::

    @dataclass(frozen=True)
    class Config(ExperimentConfig):
        d: int = 40
        ...

    @register
    class MyExperiment(Experiment):
        name = "my-experiment"
        description = "one line for `mfnn list`"
        Config = Config
        quick = {"d": 10, ...}            # overrides applied by --quick

        def run(self, cfg, out, progress):  # -> summary dict (written to summary.json)
            ...

Nothing numerical lives here.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..errors import ConfigError
from ..io import RunDir, versions

REGISTRY: dict[str, "Experiment"] = {}


@dataclass(frozen=True)
class ExperimentConfig:
    seed: int = 0

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
      ``points/<key>.nc`` as soon as it is done);
    * ``reduce(cfg, results)``: ``results`` maps point key -> Dataset; returns ``(summary,
      data)`` with ``data`` a dict file name -> Dataset written into the run directory;
    * ``render(cfg, results, summary)``: dict stem -> matplotlib figure (PNG + SVG).

    Experiments not yet moved to this contract override ``run`` instead.
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

    def run(self, cfg, out: RunDir, progress: bool) -> dict:
        results = {}
        for point in self.points(cfg):
            results[point.key] = ds = self.compute(point, progress)
            out.write_dataset(f"points/{point.key}.nc", ds)
        summary, data = self.reduce(cfg, results)
        for fname, ds in data.items():
            out.write_dataset(fname, ds)
        for stem, fig in self.render(cfg, results, summary).items():
            out.savefig(fig, stem)
        return summary

    def make_config(self, quick: bool = False, overrides: dict | None = None, seed: int | None = None):
        """Defaults, then the quick preset, then ``--set`` overrides (strings are parsed by type)."""
        values = dict(self.quick) if quick else {}
        names = {f.name: f for f in fields(self.Config)}
        for key, raw in (overrides or {}).items():
            if key not in names:
                raise ConfigError(key, f"unknown field of {self.name}; fields: {', '.join(sorted(names))}")
            values[key] = parse_value(key, raw, names[key])
        if seed is not None:
            values["seed"] = seed
        try:
            cfg = self.Config(**values)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError("config", str(e)) from None
        cfg.validate()
        return cfg


def parse_value(key: str, raw: Any, field: dataclasses.Field):
    """Parse a ``--set key=value`` string using the field's default type."""
    if not isinstance(raw, str):
        return raw
    default = field.default if field.default is not dataclasses.MISSING else None
    if default is None and field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = field.default_factory()  # type: ignore[misc]
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            items = [s for s in raw.strip("()[]").split(",") if s.strip()]
            kind = type(default[0]) if default else float
            return tuple(kind(s) if kind is not str else s.strip() for s in items)
        return raw
    except ValueError:
        kind = type(default).__name__ if default is not None else "value"
        raise ConfigError(key, f"cannot parse {raw!r} as {kind}") from None


def register(cls):
    inst = cls()
    if inst.name in REGISTRY:
        raise RuntimeError(f"duplicate experiment name {inst.name}")
    REGISTRY[inst.name] = inst
    return cls


def get(name: str) -> Experiment:
    from . import _all  # noqa: F401  (imports every experiment module)

    if name not in REGISTRY:
        raise ConfigError("experiment", f"unknown experiment {name!r}; `mfnn list` shows the available ones")
    return REGISTRY[name]


def all_experiments() -> dict:
    from . import _all  # noqa: F401

    return dict(sorted(REGISTRY.items()))


def run_experiment(name: str, *, out=None, quick=False, overrides=None, seed=None, progress=True,
                   overwrite=False):
    """Validate everything, then run into ``out`` (default results/<name>); returns the run path.

    Config errors are raised before anything is written.  The run writes into ``<out>.partial``
    and renames it to ``<out>`` at the end; an exception leaves ``<out>.partial`` with what was saved.
    """
    from pathlib import Path

    exp = get(name)
    cfg = exp.make_config(quick=quick, overrides=overrides, seed=seed)
    out = Path(out) if out is not None else Path("results") / name
    if out.exists() and not overwrite:
        raise ConfigError("out", f"{out} already exists (pass --overwrite or choose another --out)")
    run = RunDir.create(out, overwrite=True)
    run.write_json("config.json", {"experiment": name, "quick": quick, "config": cfg, "versions": versions()})
    start = time.time()
    summary = exp.run(cfg, run, progress)
    summary = {"experiment": name, "quick": quick, "seed": cfg.seed, "wall_seconds": round(time.time() - start, 2),
               **summary}
    run.write_json("summary.json", summary)
    return run.finalize(overwrite=overwrite)
