"""Nguyen–Pham 2020 Theorem 3 (ICLR 2021 Thm 3): a width-n network, coupled to the mean-field
limit through a neuronal embedding, stays within ~ n^{-1/2} (up to logs) of it on [0, T].

Mean-field proxy: the reference run at ``ref_width`` (the largest width, full-batch GD, the same
step).  Smaller widths are prefix-coupled to it (same key: the same training set and the leading
neurons' labels), so the distance between neuron j of a width-n run and neuron j of the reference
measures the finite-width error on one sample path: sup over save times, layers and neurons
(``distance_sup``) and its RMS-over-neurons variant (``distance_rms``).  Fitted log-log slope with
a 95% interval per task (teacher network; scikit-learn digits when installed, else skipped with a
note).  Loss curves at all widths show the collapse.  i.i.d. initialization, depth 3 (two hidden
layers, tanh, first-layer bias of mean ``bias_mean`` against the zero-signal pitfall: ``np_pieces``).

Measured (seed 0, 2 cores at load ~12): default (239 s): teacher sup slope -0.40 [-0.55, -0.26],
rms -0.54 [-0.79, -0.30]; digits sup -0.40 [-0.62, -0.18], rms -0.47 [-0.55, -0.38].  CPU time
of the points (2026-12-03, load 6-7): default 36 s (estimate 36 s on 2 quiet cores), --quick 15 s
(estimate 21 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.multilayer import width_convergence, width_slope
from ..errors import check
from ..solvers import MultilayerSGD
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .np_pieces import NPFields, fmt, np_problem, point_cost, problem_params, step_cost
from .pieces import check_sweep, divergence_summary, dominant_field


def _has_sklearn() -> bool:
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


@dataclass(frozen=True)
class Config(ExperimentConfig, NPFields):
    tasks: tuple = unit_field(("teacher", "digits"), None)
    depth: int = unit_field(3, "layers")
    widths: tuple = unit_field((64, 128, 256, 512), "neurons / layer")
    ref_width: int = unit_field(2048, "neurons / layer")

    def validate(self):
        self.validate_np()
        check_sweep(self, "widths", 2, 2**14)
        check(isinstance(self.ref_width, int) and self.ref_width >= 2 * max(self.widths) and self.ref_width <= 2**14,
              "ref_width", f"must be an integer >= 2 * max(widths) = {2 * max(self.widths)} and <= 16384")
        check(isinstance(self.depth, int) and 2 <= self.depth <= 8, "depth", f"must be in [2, 8], got {self.depth}")
        check(len(self.tasks) >= 1 and all(t in ("teacher", "digits") for t in self.tasks), "tasks",
              f"use 'teacher' and/or 'digits', got {self.tasks!r}")


@register
class NpWidthConvergence(Experiment):
    name = "np-width-convergence"
    description = "Nguyen-Pham Thm 3: prefix-coupled distance to the mean-field proxy vs width (~ n^-1/2)"
    Config = Config
    quick = {"widths": (32, 64, 128), "ref_width": 256, "n_train": 64, "t_max": 1.0, "n_times": 3, "replicas": 1}

    def active_tasks(self, cfg):
        return [t for t in cfg.tasks if t != "digits" or _has_sklearn()]

    def estimate(self, cfg):
        steps = cfg.t_max / cfg.eps
        sec = 0.0
        for t in cfg.tasks:
            d = 64 if t == "digits" else cfg.d
            for n in tuple(cfg.widths) + (cfg.ref_width,):
                sec += steps * step_cost(cfg.depth, n, d, cfg.n_train, cfg.replicas) + point_cost(cfg.depth, n, cfg.replicas, saves=cfg.n_times)
        mem = 8.0 * cfg.replicas * cfg.ref_width ** 2 * max(cfg.depth - 2, 1) * (cfg.n_times + 4)
        return {"bytes": mem, "seconds": sec, "field": dominant_field(cfg, grow=("ref_width", "widths", "replicas"))}

    def points(self, cfg):
        return [Point.make(self.name, problem_params(cfg, task=t, depth=cfg.depth, width=cfg.widths[0],
                                                     widths=list(cfg.widths), ref_width=cfg.ref_width), cfg.seed)
                for t in self.active_tasks(cfg)]

    def compute(self, point, progress=False):
        p = point.params
        m = MultilayerSGD(eps=p["eps"], full_batch=True, n_train=p["n_train"], replicas=p["replicas"], dtype=p["dtype"])
        times = np.linspace(0.0, p["t_max"], p["n_times"])
        ds = width_convergence(np_problem(p), m, tuple(p["widths"]), p["ref_width"], times, key=point.seed,
                               progress=progress)
        return ds.assign_attrs(task=p["task"])

    def reduce(self, cfg, results):
        exps, exps_rms, table, data = {}, {}, [], {}
        for p in self.points(cfg):
            ds = results.get(p.key)
            if ds is None:
                continue
            t = p.params["task"]
            exps[t] = width_slope(ds.width.values, ds.distance_sup.values)
            exps_rms[t] = width_slope(ds.width.values, ds.distance_rms.values)
            for i, n in enumerate(ds.width.values):
                table.append({"task": t, "width": int(n), "distance_sup": float(ds.distance_sup.values[i].mean()),
                              "distance_rms": float(ds.distance_rms.values[i].mean()),
                              "final_loss": float(ds.loss.values[i, -1].mean())})
            data[f"width_convergence_{t}.nc"] = ds
        skipped = [t for t in cfg.tasks if t not in self.active_tasks(cfg)]
        summary = {"label": "Nguyen-Pham width convergence: distance to the mean-field proxy vs width",
                   "width_exponent": exps, "width_exponent_rms": exps_rms, "table": table,
                   "expected_exponent": -0.5, "ref_width": cfg.ref_width, "depth": cfg.depth,
                   "skipped_tasks": {t: "scikit-learn not installed (pip install 'mfnn[data]')" for t in skipped},
                   "figures": ["width_convergence.png"], "data": sorted(data)}
        summary.update(divergence_summary({p.params["task"]: results[p.key] for p in self.points(cfg) if p.key in results}))
        return summary, data

    def render(self, cfg, results, summary):
        import matplotlib.pyplot as plt

        tasks = sorted({r["task"] for r in summary["table"]})
        fig, axes = plt.subplots(2, max(len(tasks), 1), figsize=(4.5 * max(len(tasks), 1), 7), squeeze=False)
        for j, t in enumerate(tasks):
            rows = [r for r in summary["table"] if r["task"] == t]
            w = [r["width"] for r in rows]
            for key in ("distance_sup", "distance_rms"):
                axes[0, j].loglog(w, [r[key] for r in rows], "o-", label=key)
            axes[0, j].loglog(w, rows[0]["distance_sup"] * (np.asarray(w) / w[0]) ** -0.5, "k:", label="n^-1/2")
            axes[0, j].set(title=f"{t}: slope {fmt(summary['width_exponent'].get(t))}", xlabel="width n")
            axes[0, j].legend(fontsize=7)
            ds = next((results[p.key] for p in self.points(cfg) if p.params["task"] == t and p.key in results), None)
            if ds is not None:
                for i, n in enumerate(ds.width.values):
                    axes[1, j].plot(ds.time.values[: ds.loss.shape[1]], ds.loss.values[i].mean(axis=1), label=f"n={n}")
                axes[1, j].set(xlabel="t", ylabel="test loss", title="loss curves collapse")
                axes[1, j].legend(fontsize=7)
        fig.tight_layout()
        return {"width_convergence": fig}

    @staticmethod
    def format_summary(summary: dict) -> str:
        return "\n".join([summary["label"]] + [f"  {t}: sup slope {fmt(f)}  rms slope {fmt(summary['width_exponent_rms'].get(t))}"
                                               for t, f in summary["width_exponent"].items()])
