"""The experiment contract: a config dataclass with the paper's defaults, a ``--quick`` preset,
``points -> compute -> reduce -> render`` (docs/architecture.md, section 4) and the registry that
``mfnn list`` / ``mfnn run`` read (``REGISTRY``: experiment name -> instance, filled by ``register``).  Config parsing and validation live in
:mod:`mfnn.experiments.config`, the runner in :mod:`mfnn.experiments.runner`.

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

Nothing numerical lives here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError
from . import config

REGISTRY: dict[str, "Experiment"] = {}


def unit_field(default, unit: str | None):
    """A config field with its unit, declared next to it: ``eps: float = unit_field(1e-5, "time / step")``.

    Parameters
    ----------
    default : object
        the field's default (immutable: numbers, strings, tuples).
    unit : str or None
        what the value is measured in or counts ("time t", "neurons", "saves", ...); ``None`` for a
        dimensionless number, a choice or a flag (shown as "—" in the docs' experiment reference).

    Returns
    -------
    Field
        the field, with ``metadata["unit"]``.
    """
    return dataclasses.field(default=default, metadata={"unit": unit})


def field_units(config) -> dict:
    """Field name -> unit (``None``: dimensionless) of a config class or instance, from ``unit_field``.

    Parameters
    ----------
    config : type or ExperimentConfig
        an experiment's ``Config`` (class or instance).

    Returns
    -------
    dict
        every field of ``config``; a field declared without a unit maps to the string "?".
    """
    return {f.name: f.metadata.get("unit", "?") for f in dataclasses.fields(config)}


@dataclass(frozen=True)
class ExperimentConfig:
    """Base of every experiment's frozen config dataclass: ``seed``, the ``INF_OK`` and ``BOUNDS``
    class variables read by :mod:`mfnn.experiments.config`, and ``validate()`` for the rest.
    Fields declare their units with :func:`unit_field`."""

    seed: int = unit_field(0, None)

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
    * ``compute_seeds(points, progress)``: the same points under several seeds in one call
      (opt-in with ``vmap_seeds = True``; the sweep engine uses it for a grid point's seeds);
    * ``estimate(cfg)``: optional ``{"bytes": peak memory, "seconds": wall time on 2 cores,
      "field": the dominant config field}``; the runner refuses runs over half the physical
      memory or over a day unless forced.

    A compute may also raise ``DivergenceError`` (a solver that diverged before its first save;
    ``partial`` its saves, if any), and ``reduce`` may set ``summary["result"] = "diverged"``: both
    make the run diverged.  :func:`mfnn.experiments.runner.run_experiment` runs the pipeline.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = ExperimentConfig
    quick: ClassVar[dict] = {}
    vmap_seeds: ClassVar[bool] = False  # compute_seeds runs a point's seeds in one call (sweeps group them)

    def points(self, cfg) -> list:
        return [Point.make(self.name, dataclasses.asdict(cfg), cfg.seed)]

    def compute(self, point: Point, progress: bool = False):  # pragma: no cover - interface
        raise NotImplementedError

    def compute_seeds(self, points: list, progress: bool = False) -> list:
        """Compute ``points`` that differ only in their config's ``seed`` (the same point of one
        config under several seeds); returns one Dataset per point, in order, the same as
        ``[compute(p) for p in points]`` (to round-off).  An experiment whose seeds only change PRNG
        keys sets ``vmap_seeds = True`` and overrides this to run the seeds as vmapped replicas of
        one compiled call (and to share seed-independent work); the sweep engine then groups a grid
        point's seeds into one call.  Default: one point after the other."""
        from .runner import _call_compute

        return [_call_compute(self, p, progress) for p in points]

    def reduce(self, cfg, results: dict) -> tuple:  # pragma: no cover - interface
        raise NotImplementedError

    def render(self, cfg, results: dict, summary: dict) -> dict:
        return {}

    def estimate(self, cfg) -> dict:
        """Peak memory (``bytes``) and wall time (``seconds``) of a run, if known; default ``{}``."""
        return {}

    def make_config(self, quick: bool = False, overrides: dict | None = None, seed: int | None = None):
        """Defaults, then the ``quick`` preset, then ``--set`` overrides (strings parsed by type);
        every field passes the generic checks of :mod:`mfnn.experiments.config`, then ``validate``."""
        return config.build(self.Config, self.name, self.quick if quick else None, overrides, seed)


def register(cls):
    """Class decorator: instantiate an ``Experiment`` subclass and add it to ``REGISTRY`` under its ``name``."""
    inst = cls()
    if inst.name in REGISTRY:
        raise RuntimeError(f"duplicate experiment name {inst.name}")
    REGISTRY[inst.name] = inst
    return cls


def get(name: str) -> Experiment:
    """The registered experiment called ``name`` (``ConfigError`` on the field ``experiment`` if none)."""
    from . import _all  # noqa: F401  (imports every experiment module)

    if not isinstance(name, str) or name not in REGISTRY:
        raise ConfigError("experiment", f"unknown experiment {name!r}; `mfnn list` shows the available ones")
    return REGISTRY[name]


def all_experiments() -> dict:
    """Every registered experiment, name -> instance, sorted by name (imports every experiment module)."""
    from . import _all  # noqa: F401

    return dict(sorted(REGISTRY.items()))
