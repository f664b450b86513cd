"""RV 2018 section 3 (eqs. 3.13-3.16): SGD losses collapse on the temperature theta = dt/P.

At fixed n, SGD (RV eq. 3.1) over a grid of (dt, P), every run to the same time T (T/dt steps),
``seeds`` independent runs per (dt, P) (vmapped replicas, one 3-spin realization).  The limiting SDE
dZ = -n grad l dt + sqrt(theta) dB depends on (dt, P) only through theta, so the final losses
(averaged over the last ``tail`` of the saves) should depend on theta alone.  ``collapse``:
``spread_equal_theta`` (RMS spread of log loss within equal-theta groups) against
``spread_across_theta`` (spread of the group means).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.particle_systems import collapse_spread
from ..solvers import ParticleFlow, Phase
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import check_range, check_sweep
from .rv_pieces import announce, divergence, run_point, sgd_seconds, spin_seeds, spin_sigmoid_problem
from .rv_plots import figure


@dataclass(frozen=True)
class Config(ExperimentConfig):
    d: int = unit_field(5, "coordinates")
    n: int = unit_field(32, "particles")
    dts: tuple = unit_field((0.05, 0.1, 0.2, 0.4), "time / step")
    batches: tuple = unit_field((1, 2, 4), "samples / step")
    t_final: float = unit_field(200.0, "time t")
    seeds: int = unit_field(8, "seeds")
    n_test: int = unit_field(5000, "samples")
    n_saves: int = unit_field(9, "saves")
    tail: float = unit_field(0.25, None)

    def validate(self):
        check_sweep(self, "dts", 1e-9, 10.0, min_len=2)
        check_sweep(self, "batches", 1, 2**20, min_len=2)
        check_range(self, d=(2, 100), n=(1, 2**20), t_final=(1e-6, 1e9), seeds=(2, 10**5), n_test=(10, 10**8),
                    n_saves=(3, 10**4), tail=(0.01, 1.0))

    def grid(self):
        return [(float(dt), int(p)) for dt in self.dts for p in self.batches]

    def save_steps(self, dt):
        return np.unique(np.linspace(0, round(self.t_final / dt), self.n_saves).astype(np.int64))


@register
class RvTemperature(Experiment):
    name = "rv-temperature"
    description = "RV 2018 SGD temperature: final loss over a (dt, P) grid collapses on theta = dt/P"
    Config = Config
    quick = {"dts": (0.1, 0.4), "batches": (1, 4), "t_final": 60.0, "seeds": 4, "n_test": 2000, "n_saves": 5}

    def estimate(self, cfg):
        sec = sum(sgd_seconds(cfg.seeds, cfg.n, cfg.d, [(cfg.t_final / dt, p)], cfg.n_test, cfg.n_saves)
                  for dt, p in cfg.grid())
        announce(self.name, sec)
        return {"bytes": 8.0 * cfg.seeds * cfg.n * (max(cfg.batches) * 6 + cfg.d * 4), "seconds": sec, "field": "t_final"}

    def points(self, cfg):
        return [Point.make(self.name, {"n": cfg.n, "d": cfg.d, "dt": dt, "P": p, "seeds": cfg.seeds, "n_test": cfg.n_test,
                                       "seed_a": spin_seeds(cfg.seed, 1)[0], "steps": cfg.save_steps(dt).tolist()},
                           cfg.seed) for dt, p in cfg.grid()]

    def compute(self, point, progress=False):
        p = point.params
        m = ParticleFlow(n_particles=p["n"], phases=(Phase(p["steps"][-1], p["dt"], p["P"]),), mode="sgd",
                         n_test=p["n_test"], replicas=p["seeds"])
        ds = run_point(spin_sigmoid_problem(p["d"], [p["seed_a"]]), m, p["steps"], ("loss", "temperature"), point.seed,
                       progress)
        return ds.assign_attrs(dt=p["dt"], P=p["P"])

    def reduce(self, cfg, results):
        rows = []
        for ds in results.values():
            k = max(1, int(round(cfg.tail * (ds.sizes["time"] - 1))))
            per_seed = ds.loss.values[-k:].mean(axis=0)
            rows.append({"dt": ds.attrs["dt"], "P": ds.attrs["P"], "theta": float(ds.temperature.values[-1]),
                         "loss_mean": float(per_seed.mean()), "loss_std": float(per_seed.std(ddof=1)),
                         "steps": int(ds.step.values[-1])})
        collapse = collapse_spread([r["theta"] for r in rows], [r["loss_mean"] for r in rows])
        # seed noise of one config's log mean loss, for scale
        collapse["seed_spread"] = float(np.sqrt(np.mean([(r["loss_std"] / r["loss_mean"]) ** 2 / cfg.seeds for r in rows])))
        summary = {"label": "RV 2018: final SGD loss vs (dt, P) and the temperature theta = dt/P", "table": rows,
                   "collapse": collapse, "n": cfg.n, "d": cfg.d, "t_final": cfg.t_final,
                   "schedule": [{"dt": r["dt"], "batch": r["P"], "steps": r["steps"], "temperature": r["theta"]} for r in rows],
                   "figures": ["temperature.png"], "data": ["temperature.nc"]}
        summary.update(divergence(results))
        ds = xr.Dataset({k: (("config",), [r[k] for r in rows]) for k in ("dt", "P", "theta", "loss_mean", "loss_std")})
        return summary, {"temperature.nc": ds}

    def render(self, cfg, results, summary):
        fig, ax = figure(2, f"RV 2018 SGD temperature, sigmoid n={cfg.n}, 3-spin d={cfg.d}, T={cfg.t_final:g}")
        rows = summary["table"]
        for p in sorted({r["P"] for r in rows}):
            rs = [r for r in rows if r["P"] == p]
            ax[0].errorbar([r["dt"] for r in rs], [r["loss_mean"] for r in rs], [r["loss_std"] for r in rs], marker="o",
                           label=f"P={p}")
            ax[1].errorbar([r["theta"] for r in rs], [r["loss_mean"] for r in rs], [r["loss_std"] for r in rs],
                           marker="o", ls="", label=f"P={p}")
        for a, xl in ((ax[0], "dt"), (ax[1], "theta = dt/P")):
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlabel(xl)
            a.set_ylabel("final test loss")
            a.legend(fontsize=7)
        c = summary["collapse"]
        ax[1].set_title(f"spread at equal theta {c['spread_equal_theta']:.3f} vs across {c['spread_across_theta']:.3f}",
                        fontsize=8)
        return {"temperature": fig}
