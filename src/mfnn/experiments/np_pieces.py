"""Config pieces of the Nguyen–Pham experiments (np-*): the flat fields of a multilayer problem and
its construction from a point's parameters.  Nothing numerical here.

The zero-signal pitfall (Nguyen–Pham v3 / Pham–Nguyen ICLR 2021 discussion of i.i.d. deep nets):
with an odd activation (tanh), a symmetric zero-mean first layer, no bias and zero-mean output
weights, E_{C_1} tanh(<w_1, x>) = 0, so the mean-field forward signal h_2 and the backward mean
signal vanish; at depth >= 4 the limit then starts at a stationary point and finite networks move
only by O(n^{-1/2}) fluctuations, which makes every spread look "degenerate" for the wrong reason.
These experiments avoid it by default with a first-layer bias of non-zero mean (``bias_mean``,
b_1 ~ N(bias_mean, 1)), non-zero middle-layer means (``mid_mean``, i.i.d. init) and output weights
with a non-zero mean (uniform on [out_mean - out_width, out_mean + out_width]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check
from ..problem import (CorrelatedEmbedding, IIDEmbedding, MultilayerProblem, TeacherNetwork, digits_task,
                       multilayer)
from .pieces import check_range
from .base import unit_field

__all__ = ["NPFields", "np_problem", "problem_params", "step_cost"]


@dataclass(frozen=True)
class NPFields:
    """A teacher task (d, teacher_units, noise) or the digits, a tanh network with a first-layer
    bias, trained by full-batch GD (``n_train`` samples) or online SGD (``batch_size``)."""

    d: int = unit_field(10, "coordinates")
    teacher_units: int = unit_field(4, "neurons")
    noise: float = unit_field(0.0, None)
    n_train: int = unit_field(256, "samples")
    eps: float = unit_field(0.1, "time / step")
    t_max: float = unit_field(2.0, "time t")
    n_times: int = unit_field(5, "saves")
    bias_mean: float = unit_field(0.5, None)
    mid_mean: float = unit_field(1.0, None)
    out_mean: float = unit_field(0.5, None)
    out_width: float = unit_field(1.0, None)
    label_dim: int = unit_field(16, "labels")
    replicas: int = unit_field(2, "replicas")
    dtype: str = unit_field("float64", None)

    def validate_np(self):
        check_range(self, d=(1, 10**4), teacher_units=(1, 10**4), noise=(0, 100), n_train=(8, 10**6),
                    eps=(1e-6, 10.0), t_max=(1e-6, 1e6), n_times=(2, 1000), bias_mean=(-100, 100),
                    mid_mean=(-100, 100), out_mean=(-100, 100), out_width=(0, 100), label_dim=(1, 1024), replicas=(1, 64))
        check(self.dtype in ("float32", "float64"), "dtype", f"use float32 or float64, got {self.dtype!r}")
        steps = self.t_max / self.eps
        check(abs(steps - round(steps)) < 1e-6 * max(1.0, steps), "eps", f"must divide t_max = {self.t_max}")

    def times(self):
        import numpy as np

        return np.linspace(0.0, self.t_max, self.n_times)

    def base_params(self) -> dict:
        return {k: getattr(self, k) for k in ("d", "teacher_units", "noise", "n_train", "eps", "t_max", "n_times",
                                               "bias_mean", "mid_mean", "out_mean", "out_width", "label_dim", "replicas", "dtype")}


def problem_params(cfg, **extra) -> dict:
    """The params of a point: the config's ``base_params()``, its seed, and ``extra`` (depth, width, ...)."""
    return {**cfg.base_params(), "seed": cfg.seed, **extra}


def np_problem(p: dict) -> MultilayerProblem:
    """The problem of a point: ``p`` holds the ``NPFields`` values, ``depth``, ``width``,
    ``init`` ("iid" / "correlated") and ``task`` ("teacher" / "digits")."""
    if p.get("task", "teacher") == "digits":
        task = digits_task(n=p["n_train"], seed=p["seed"])
    else:
        task = TeacherNetwork.random(d=p["d"], units=p["teacher_units"], noise=p["noise"], seed=p["seed"])
    net = multilayer(d=task.d, depth=p["depth"], width=p["width"], biases=(1,))
    if p.get("init", "iid") == "iid":
        emb = IIDEmbedding(bias_mean=p["bias_mean"], mid_mean=p["mid_mean"], out_mean=p["out_mean"],
                           out_width=p["out_width"])
    else:
        emb = CorrelatedEmbedding(label_dim=p["label_dim"], bias_mean=p["bias_mean"], out_mean=p["out_mean"],
                                  out_width=p["out_width"])
    return MultilayerProblem(net, task, emb)


def step_cost(depth: int, width: int, d: int, batch: int, replicas: int) -> float:
    """Seconds per step on 2 loaded cores (~15 GFLOP/s in float64: measured 19 GFLOP/s for a depth-5,
    width-2048, 2-replica np-degeneracy point at load ~10; benchmarks/multilayer_step.py):
    forward + backward ~ 6 B n^2 per hidden-to-hidden layer, 6 B n d for the first layer."""
    flops = 6.0 * batch * (width * width * max(depth - 2, 0) + width * (d + 1))
    return replicas * (flops / 15e9 + 2e-4)


def compile_cost(depth: int) -> float:
    return 8.0 + 3.0 * depth


def fmt(fit) -> str:
    return "n/a" if fit is None else f"{fit['value']:+.3f} [{fit['ci_low']:+.3f}, {fit['ci_high']:+.3f}]"


def nan_free(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)
