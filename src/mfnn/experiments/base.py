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


@dataclass(frozen=True)
class ExperimentConfig:
    """Base of every experiment's frozen config dataclass: ``seed``, the ``INF_OK`` and ``BOUNDS``
    class variables read by :mod:`mfnn.experiments.config`, and ``validate()`` for the rest."""

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

    A compute may also raise ``DivergenceError`` (a solver that diverged before its first save;
    ``partial`` its saves, if any), and ``reduce`` may set ``summary["result"] = "diverged"``: both
    make the run diverged.  :func:`mfnn.experiments.runner.run_experiment` runs the pipeline.
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
