"""A tiny experiment for the sweep tests (no JAX): registered by importing this module
(``--import sweep_toy`` / ``imports = ["sweep_toy"]``; workers import it too).

``y = x**2 * n + noise`` with noise ~ N(0, 0.01^2) from the point's seed; a point with
``x == fail_at`` raises (a failing point); ``sleep`` seconds of wall time per point."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from mfnn.errors import check
from mfnn.experiments.base import REGISTRY, Experiment, ExperimentConfig, register


@dataclass(frozen=True)
class Config(ExperimentConfig):
    x: float = 1.0
    n: int = 4
    fail_at: float = -1.0
    sleep: float = 0.0

    def validate(self):
        check(0 <= self.x <= 100, "x", f"must be in [0, 100], got {self.x}")
        check(1 <= self.n <= 1000, "n", f"must be in [1, 1000], got {self.n}")
        check(0 <= self.sleep <= 60, "sleep", "must be in [0, 60]")


class SweepToy(Experiment):
    name = "sweep-toy"
    description = "test experiment: y = x^2 n + noise"
    Config = Config
    quick = {"n": 2}

    def compute(self, point, progress=False):
        p = point.params
        if p["x"] == p["fail_at"]:
            raise RuntimeError(f"toy failure at x={p['x']}")
        time.sleep(p["sleep"])
        noise = np.random.default_rng(point.seed).normal(0, 0.01, size=p["n"])
        return xr.Dataset({"y": (("i",), p["x"] ** 2 * p["n"] + noise)})

    def reduce(self, cfg, results):
        (ds,) = results.values()
        y = ds.y.values
        return {"y": float(y.mean()), "spread": {"max": float(y.max()), "min": float(y.min())}, "n_out": cfg.n,
                "label": "text is skipped"}, {"toy.nc": ds}

    def render(self, cfg, results, summary):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3, 2))
        (ds,) = results.values()
        ax.plot(ds.y.values, "o")
        return {"toy": fig}


if "sweep-toy" not in REGISTRY:
    register(SweepToy)


@dataclass(frozen=True)
class MultiConfig(ExperimentConfig):
    xs: tuple = (1.0, 2.0, 3.0, 4.0)
    diverge_at: float = -1.0

    def validate(self):
        check(1 <= len(self.xs) <= 100, "xs", "need 1 to 100 values")


class SweepToyMulti(Experiment):
    """Several points (one per x); a point with x == diverge_at reports a divergence."""

    name = "sweep-toy-multi"
    description = "test experiment: several points"
    Config = MultiConfig

    def points(self, cfg):
        from mfnn.experiments.base import Point

        return [Point.make(self.name, {"x": x, "diverge_at": cfg.diverge_at}, cfg.seed) for x in cfg.xs]

    def compute(self, point, progress=False):
        x = point.params["x"]
        y = x ** 2 + np.random.default_rng(point.seed).normal(0, 0.01, size=3)
        status = "diverged" if x == point.params["diverge_at"] else "successful"
        return xr.Dataset({"y": (("i",), y)}, attrs={"result": status, "message": "toy divergence"})

    def reduce(self, cfg, results):
        return {"ys": [float(ds.y.values.mean()) for ds in results.values()]}, {}


if "sweep-toy-multi" not in REGISTRY:
    register(SweepToyMulti)


class SweepToySeeds(Experiment):
    """``vmap_seeds``: two points per config (x and 2x), ``compute_seeds`` draws every seed's noise
    in one call (the same numbers as ``compute``) and records the batch sizes in ``BATCHES``;
    ``x == fail_at`` raises (in a batch too)."""

    name = "sweep-toy-seeds"
    description = "test experiment: seeds computed together"
    Config = Config
    vmap_seeds = True
    BATCHES: list = []

    def points(self, cfg):
        from mfnn.experiments.base import Point

        return [Point.make(self.name, {**cfg.__dict__, "x": cfg.x * k}, cfg.seed) for k in (1, 2)]

    def compute(self, point, progress=False):
        return self.compute_seeds([point])[0]

    def compute_seeds(self, points, progress=False):
        p = points[0].params
        if p["x"] == p["fail_at"] or p["x"] == 2 * p["fail_at"]:
            raise RuntimeError(f"toy failure at x={p['x']}")
        SweepToySeeds.BATCHES.append(len(points))
        noise = [np.random.default_rng(q.seed).normal(0, 0.01, size=p["n"]) for q in points]
        return [xr.Dataset({"y": (("i",), q.params["x"] ** 2 * p["n"] + e)}) for q, e in zip(points, noise)]

    def reduce(self, cfg, results):
        y1, y2 = (float(ds.y.values.mean()) for ds in results.values())
        return {"y1": y1, "y2": y2}, {}


if "sweep-toy-seeds" not in REGISTRY:
    register(SweepToySeeds)
