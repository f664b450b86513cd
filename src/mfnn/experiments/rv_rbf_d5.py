"""RV 2018 Fig. 1: Gaussian RBF units with centres on S^4(sqrt 5), 3-spin target at d = 5, loss vs n.

Per width n (one point, ``inits`` independent initializations vmapped): gradient flow on E = n l
(RV eq. 2.1) with Monte Carlo F and K on a fixed sample of ``n_mc`` points (``mode="fixed"``; the
paper's "f and phi used directly" form eq. 4.5 by ``--set mode=direct``), centres kept on the sphere by
tangent projection and renormalization, Langevin noise ``thermal`` for the first ``thermal_fraction``
of the steps (the paper's protocol; amplitude not stated there: a configurable default).  Final
test loss (``n_test`` points) vs n with the fitted slope, and the level sets of f and f_n on the
slice x = sqrt(d)(sin t cos p, sin t sin p, cos t, 0, 0).  The paper's schedule: dt = 1e-3, 2e5 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.particle_systems import loss_table, n_exponent, sphere_slice
from ..errors import check
from ..problem.regression import network_values
from ..solvers import ParticleFlow, Phase
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import check_range, check_sweep
from .rv_pieces import announce, divergence, rbf_problem, run_point, schedule_of, sgd_seconds, spin_seeds
from .rv_plots import figure, plot_loss_vs_n


@dataclass(frozen=True)
class Config(ExperimentConfig):
    d: int = unit_field(5, "coordinates")
    n_particles: tuple = unit_field((8, 16, 32, 64, 128), "particles")
    inits: int = unit_field(4, "initializations")
    mode: str = unit_field("fixed", None)
    alpha: float = unit_field(1.0, None)
    rbf_sign: str = unit_field("gaussian", None)
    dt: float = unit_field(0.5, "time / step")
    steps: int = unit_field(4000, "steps")
    thermal: float = unit_field(1e-4, None)
    thermal_fraction: float = unit_field(0.5, None)
    n_mc: int = unit_field(2000, "samples")
    n_test: int = unit_field(100000, "samples")
    n_saves: int = unit_field(9, "saves")
    slice_points: int = unit_field(48, "points")

    def validate(self):
        check_sweep(self, "n_particles", 1, 2**20)
        check_range(self, d=(3, 100), inits=(1, 10**4), alpha=(1e-6, 1e3), dt=(1e-9, 10.0), steps=(2, 10**9),
                    thermal=(0.0, 1e3), thermal_fraction=(0.0, 0.99), n_mc=(1, 10**8), n_test=(10, 10**8),
                    n_saves=(2, 10**4), slice_points=(4, 1000))
        for f, ok in (("mode", ("fixed", "direct", "sgd")), ("rbf_sign", ("gaussian", "as_printed"))):
            check(getattr(self, f) in ok, f, f"use one of {list(ok)}, got {getattr(self, f)!r}")

    def phases(self):
        k = int(self.steps * self.thermal_fraction)
        hot = [Phase(k, self.dt, self.n_mc, self.thermal)] if k else []
        return tuple(hot + [Phase(self.steps - k, self.dt, self.n_mc)])


@register
class RvRbfD5(Experiment):
    name = "rv-rbf-d5"
    description = "RV 2018 Fig. 1: RBF units on the sphere at d=5, 3-spin target: final loss vs n and level sets"
    Config = Config
    quick = {"n_particles": (8, 16, 32), "inits": 2, "steps": 600, "n_mc": 400, "n_test": 5000, "n_saves": 4,
             "slice_points": 24}

    def estimate(self, cfg):
        sec = sum(sgd_seconds(cfg.inits, n, cfg.d, [(cfg.steps, cfg.n_mc)], cfg.n_test, cfg.n_saves) for n in cfg.n_particles)
        announce(self.name, sec)
        return {"bytes": 8.0 * cfg.inits * max(cfg.n_particles) * (6 * cfg.n_mc + 4096 * 2), "seconds": sec, "field": "n_mc"}

    def points(self, cfg):
        return [Point.make(self.name, {"n": int(n), "d": cfg.d, "seed_a": spin_seeds(cfg.seed, 1)[0], "inits": cfg.inits,
                                       "mode": cfg.mode, "alpha": cfg.alpha, "rbf_sign": cfg.rbf_sign, "n_mc": cfg.n_mc,
                                       "phases": [(p.steps, float(p.dt), p.batch, float(p.temperature)) for p in cfg.phases()],
                                       "n_test": cfg.n_test, "steps": np.linspace(0, cfg.steps, cfg.n_saves).astype(int).tolist()},
                           cfg.seed) for n in cfg.n_particles]

    def compute(self, point, progress=False):
        p = point.params
        m = ParticleFlow(n_particles=p["n"], phases=tuple(Phase(*ph) for ph in p["phases"]), mode=p["mode"],
                         n_mc=p["n_mc"], n_test=p["n_test"], replicas=p["inits"])
        prob = rbf_problem(p["d"], [p["seed_a"]], p["alpha"], p["rbf_sign"])
        return run_point(prob, m, np.unique(p["steps"]), ("loss", "batch_loss", "sphere_error", "params"), point.seed, progress)

    def reduce(self, cfg, results):
        ds = list(results.values())
        ns = [int(x.attrs["n"]) for x in ds]
        rows = loss_table(ns, [x.loss.values[-1] for x in ds])
        fit = n_exponent(rows)
        big = ds[int(np.argmax(ns))]
        prob = rbf_problem(cfg.d, spin_seeds(cfg.seed, 1), cfg.alpha, cfg.rbf_sign)
        t, ph, x = sphere_slice(cfg.d, cfg.slice_points)
        theta = {k[7:]: big[k].values[-1, 0] for k in big.data_vars if k.startswith("params/")}
        shape = (cfg.slice_points, cfg.slice_points)
        level = xr.Dataset({"f": (("t", "p"), np.asarray(prob.task.target.values(x)).reshape(shape)),
                            "f_n": (("t", "p"), np.asarray(network_values(prob.unit, theta, x)[1]).reshape(shape))},
                           coords={"t": t, "p": ph}, attrs={"n": max(ns)})
        summary = {
            "label": "RV 2018 Fig. 1: final test loss of RBF units (centres on the sphere) vs n, 3-spin d=5",
            "n_exponent": None if fit is None else {k: fit[k] for k in ("value", "ci_low", "ci_high")},
            "n_exponent_r2": None if fit is None else fit["r2"], "table": rows,
            "schedule": schedule_of(ds[0]), "mode": cfg.mode, "rbf_sign": cfg.rbf_sign,
            "sphere_error_max": float(max(np.max(x.sphere_error.values) for x in ds)),
            "measures": f"test loss ({cfg.n_test} points) after {cfg.steps} steps at dt={cfg.dt:g}, mode {cfg.mode}, "
                        f"mean over {cfg.inits} initializations",
            "seconds": {str(n): x.attrs["seconds"] for n, x in zip(ns, ds)},
            "figures": ["rbf_d5.png"], "data": ["rbf_d5_loss.nc", "rbf_d5_levelsets.nc"],
        }
        summary.update(divergence(results))
        loss = xr.Dataset({"loss": (("n", "init"), np.array([x.loss.values[-1] for x in ds]))}, coords={"n": ns})
        return summary, {"rbf_d5_loss.nc": loss, "rbf_d5_levelsets.nc": level}

    def render(self, cfg, results, summary):
        import xarray as xr_

        fig, ax = figure(3, f"RV 2018 Fig. 1: RBF units, d={cfg.d}; {summary['measures']}", 4.0)
        rows, fit = summary["table"], summary["n_exponent"]
        lv = self._level(cfg, results, xr_)
        for a, k in zip(ax[:2], ("f", "f_n")):
            a.contourf(lv["p"], lv["t"], lv[k], levels=12, cmap="RdBu_r")
            a.set_title(f"{k} on the slice" + (f" (n={lv['n']})" if k == "f_n" else ""), fontsize=8)
            a.set_xlabel("p")
            a.set_ylabel("t")
        if fit is not None:
            n, y = np.array([r["n"] for r in rows], float), np.array([r["loss_mean"] for r in rows], float)
            fit = {**fit, "intercept": float(np.mean(np.log(y) - fit["value"] * np.log(n)))}
        plot_loss_vs_n(ax[2], rows, fit)
        return {"rbf_d5": fig}

    def _level(self, cfg, results, xr_):
        _, data = self.reduce(cfg, results)
        lv = data["rbf_d5_levelsets.nc"]
        return {"p": lv.p.values, "t": lv.t.values, "f": lv.f.values, "f_n": lv.f_n.values, "n": lv.attrs["n"]}
