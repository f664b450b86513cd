"""Nguyen–Pham 2020 (v3 abstract; Pham–Nguyen ICLR 2021 sec. 1): i.i.d. initialization
degenerates at depth >= 4, correlated (bidirectionally diverse) initializations do not.

Depth L in ``depths`` (weight layers), ``inits`` "iid" / "correlated", equal prefix-coupled widths
``widths``, tanh hidden layers with a first-layer bias, identity output, squared loss, full-batch
mean-field GD on a teacher task.  At t = t_max: the slope of sd_i = mean_x std_j H_i(x, j)
(absolute spread) against n per hidden layer, with 95% intervals over (width, seed) pairs; the
structure of the middle-layer increments; the effective rank of H_i.  Expected: the i.i.d. layers
2..L-2 (L >= 4) collapse like n^{-1/2}; depth 3 and correlated nets keep O(1) spreads.

Zero-signal pitfall (see ``np_pieces`` and docs/architecture.md): with tanh, a symmetric
first layer, no bias and zero-mean output weights the limit of a deep i.i.d. net starts at a
stationary point; avoided by a first-layer bias of mean ``bias_mean`` != 0 and output weights of
mean ``out_mean`` != 0 (both validated non-zero).

Two more diagnostics (theory §7): the explicit two-layer baseline (same first-layer width, bias,
task and training; ``loss_table`` rows with init "baseline"), since a collapsed deep net still
fits; and the distance of every i.i.d. L >= 4 run to its collapsed model
(``analysis.multilayer_collapse``; ``reduced_model_distance``, RMS over neurons).

Default widths 256..2048: 149 s on 2 quiet cores (seed 0, 2026-12-03).  Width 4096 stays out of
the default: with it the model says 343 s quiet, but the one run (``--set widths=256,512,1024,2048,4096``,
2 shared cores at load 6-8) used 755 CPU-s, i.e. ~6-9 min quiet, too close to the 10-minute budget
without a quiet measurement.  That run measured: slopes of
sd_i vs n, i.i.d. L = 4 layer 2 -0.505 [-0.528, -0.482], L = 5 layers 2, 3 -0.507 [-0.525, -0.489],
-0.550 [-0.577, -0.524]; depth 3 (both inits) and correlated L = 4 between -0.03 and +0.02;
correlated L = 5 layer 2 -0.12 [-0.23, -0.02] (layer 3 +0.15).  Collapsed-model RMS distance
0.079 -> 0.020 (n = 256 -> 4096), slope -0.49 [-0.51, -0.47] (L = 4 and 5 alike).  At n = 4096
the i.i.d. increments are row + constant (layer 2: 1.00), constant (L = 5 layer 3: 0.999),
column + constant (layer L-1: 1.00).  Final losses at n = 4096: baseline 0.0126,
L = 3 i.i.d. 0.0166, L = 4 i.i.d. 0.0187, L = 5 i.i.d. 0.0186, correlated L = 3, 4 0.017, 0.023,
L = 5 0.053 +- 0.014 (replicas apart).  --quick (depth 4, widths 32-128): i.i.d. layer 2 -0.52
[-0.61, -0.43], correlated -0.07; collapsed-model distance 0.223 / 0.157 / 0.115; 263 s at load 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.multilayer import degeneracy_run, degeneracy_tables
from ..errors import check
from ..solvers import MultilayerSGD
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .np_plots import degeneracy_figure
from .np_pieces import NPFields, fmt, np_problem, point_cost, problem_params, step_cost
from .pieces import check_sweep, divergence_summary, dominant_field


@dataclass(frozen=True)
class Config(ExperimentConfig, NPFields):
    depths: tuple = unit_field((3, 4, 5), "layers")
    inits: tuple = unit_field(("iid", "correlated"), None)
    widths: tuple = unit_field((256, 512, 1024, 2048), "neurons / layer")
    n_probe: int = unit_field(128, "samples")
    n_train: int = unit_field(128, "samples")
    eps: float = unit_field(0.2, "time / step")
    t_max: float = unit_field(10.0, "time t")
    n_times: int = unit_field(3, "saves")
    replicas: int = unit_field(2, "replicas")

    def validate(self):
        self.validate_np()
        check_sweep(self, "widths", 2, 2**14)
        check_sweep(self, "depths", 2, 12, min_len=1)
        check(len(self.inits) >= 1 and all(i in ("iid", "correlated") for i in self.inits), "inits",
              f"use 'iid' and/or 'correlated', got {self.inits!r}")
        check(self.bias_mean != 0 and self.out_mean != 0, "bias_mean",
              "bias_mean and out_mean must be non-zero (the zero-signal pitfall: module docstring)")
        check(2 <= self.n_probe <= 4096, "n_probe", f"must be in [2, 4096], got {self.n_probe}")


def reduced(depth: int, init: str) -> bool:
    """Whether a point also runs its collapsed model (i.i.d., depth >= 4: theory diagnostic 5)."""
    return init == "iid" and depth >= 4


@register
class NpDegeneracy(Experiment):
    name = "np-degeneracy"
    description = "Nguyen-Pham: i.i.d. deep nets (L >= 4) collapse (sd_i ~ n^-1/2), depth 3 / correlated do not"
    Config = Config
    quick = {"depths": (4,), "inits": ("iid", "correlated"), "widths": (32, 64, 128), "n_train": 64,
             "n_probe": 32, "n_times": 2, "replicas": 2}

    def grid(self, cfg):
        deep = [(L, i, int(n)) for L in cfg.depths for i in cfg.inits for n in cfg.widths]
        return deep + [(2, "baseline", int(n)) for n in cfg.widths]

    def estimate(self, cfg):
        steps = cfg.t_max / cfg.eps
        sec = sum(steps * step_cost(L, n, cfg.d, cfg.n_train, cfg.replicas) + point_cost(L, n, cfg.replicas, reduced(L, i), cfg.n_times)
                  for L, i, n in self.grid(cfg))
        nmax, Lmax = max(cfg.widths), max(cfg.depths)
        mem = 8.0 * cfg.replicas * 6 * nmax * nmax * max(Lmax - 2, 1)
        return {"bytes": mem, "seconds": sec, "field": dominant_field(cfg, grow=("widths", "depths", "replicas"))}

    def points(self, cfg):
        return [Point.make(self.name, problem_params(cfg, depth=L, init=i, width=n, n_probe=cfg.n_probe), cfg.seed)
                for L, i, n in self.grid(cfg)]

    def compute(self, point, progress=False):
        p = point.params
        m = MultilayerSGD(eps=p["eps"], full_batch=True, n_train=p["n_train"], n_probe=p["n_probe"],
                          replicas=p["replicas"], dtype=p["dtype"], keep_init=True)
        times = np.linspace(0.0, p["t_max"], p["n_times"])
        prob = np_problem({**p, "init": "iid" if p["init"] == "baseline" else p["init"]})
        ds = degeneracy_run(prob, m, times, key=point.seed, progress=progress, reduced=reduced(p["depth"], p["init"]))
        return ds.assign_attrs(depth=p["depth"], init=p["init"], width=p["width"])

    def reduce(self, cfg, results):
        res = {(p.params["depth"], p.params["init"], p.params["width"]): results[p.key] for p in self.points(cfg)
               if p.key in results}
        tabs = degeneracy_tables(res, cfg.depths, cfg.inits, cfg.widths)
        table = tabs["table"]
        ds = xr.Dataset.from_dataframe(__import__("pandas").DataFrame(table)) if table else xr.Dataset()
        summary = {"label": "Nguyen-Pham degeneracy: slope of sd_i = mean_x std_j H_i(x, j) against width",
                   **tabs, "t_max": cfg.t_max, "widths": list(cfg.widths),
                   "expected": "iid L>=4 layers 2..L-2: slope -1/2; depth 3 and correlated: slope ~ 0; "
                               "reduced-model distance ~ n^-1/2; a low loss (vs the two-layer baseline) is no detector",
                   "figures": ["degeneracy.png"], "data": ["degeneracy.nc"]}
        summary.update(divergence_summary({f"L={k[0]},{k[1]},n={k[2]}": v for k, v in res.items()}))
        return summary, {"degeneracy.nc": ds}

    def render(self, cfg, results, summary):
        return {"degeneracy": degeneracy_figure(cfg.depths, cfg.inits, summary)}

    @staticmethod
    def format_summary(summary: dict) -> str:
        return "\n".join([summary["label"]] + [f"  L={r['depth']} {r['init']:>10} layer {r['layer']}: {fmt(r if r['value'] is not None else None)}"
                                               for r in summary["sd_slopes"]]
                         + [f"  collapsed-model distance (RMS) L={r['depth']} n={r['width']}: {r['rms']:.4f}"
                            for r in summary.get("reduced_model_distance", [])])
