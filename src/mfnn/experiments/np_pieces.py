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

__all__ = ["NPFields", "np_problem", "problem_params", "step_cost", "point_cost"]


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


# The time model (seconds on 2 quiet cores).  Calibrated 2026-12-03 on this project's 2-core
# machine, shared (load average 1.4-8 while measuring), from CPU time (time.process_time) around
# warm compiled calls, which the load inflates far less than wall time:
# * a full-batch step of MultilayerSGD (float64, 2 replicas, batch 128, d = 10) ran at 63-75
#   GFLOP per CPU-second from (L, n) = (3, 256) to (5, 4096), with no visible per-step overhead;
#   on 2 quiet cores XLA's GEMMs use both (wall = CPU / 2 measured at load ~1.4, n = 512-1024);
# * a whole np-degeneracy point outside its steps (init, compile, observers, increments) cost
#   2.5-2.9 CPU-s at depth 3 and 4.5-6 at depth 5, +1.2 for a collapsed model, +~1.2e-7 s per
#   hidden-to-hidden weight entry and replica (n = 256-2048), mostly on one core; the online-SGD
#   points of np-global-convergence (21 saves) 5-6 CPU-s each: hence 0.2 s per save.
# Checked: np-degeneracy widths 256..2048 155 s predicted, 149 s measured on 2 quiet cores; the
# CPU time of all points (load 6-7) of np-width-convergence 36 s (predicted 36 s), --quick 15 s
# (21 s), np-global-convergence 11.5 s (11.7 s); a depth-5 width-4096 point 85 CPU-s (73 s).
CPU_FLOPS = 70e9   # float64 FLOP per CPU-second of a multilayer step
CORES = 2


def step_cost(depth: int, width: int, d: int, batch: int, replicas: int) -> float:
    """Seconds per step on 2 quiet cores: forward + backward ~ 6 B n^2 FLOP per hidden-to-hidden
    layer and 6 B n (d + 1) for the first layer, at ``CPU_FLOPS`` per CPU-second spread over
    ``CORES`` cores, plus 0.1 ms per replica (see the calibration note above)."""
    flops = 6.0 * batch * (width * width * max(depth - 2, 0) + width * (d + 1))
    return replicas * (flops / CPU_FLOPS + 1e-4) / CORES


def point_cost(depth: int, width: int, replicas: int, collapsed: bool = False, saves: int = 3) -> float:
    """Seconds of one run outside its steps: ``compile_cost(depth)`` (+ ``compile_cost(2)`` for a
    collapsed model), 0.2 s per save (the driver compiles one scan per distinct block of save
    intervals and evaluates the observers) and ~1.2e-7 s per hidden-to-hidden weight entry and
    replica (initialization, the initial weights kept, the increment and rank diagnostics)."""
    return (compile_cost(depth) + (compile_cost(2) if collapsed else 0.0) + 0.2 * saves
            + 1.2e-7 * replicas * max(depth - 2, 1) * width ** 2)


def compile_cost(depth: int) -> float:
    """Seconds to trace and compile one depth-``depth`` run (with 3 saves: 2.5-2.9 CPU-s measured
    at depth 3, 4.5-5.8 at depth 5)."""
    return 1.0 * (depth - 1)


def fmt(fit) -> str:
    return "n/a" if fit is None else f"{fit['value']:+.3f} [{fit['ci_low']:+.3f}, {fit['ci_high']:+.3f}]"


def nan_free(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)
