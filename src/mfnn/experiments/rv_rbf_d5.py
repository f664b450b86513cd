"""RV 2018 Fig. 1: Gaussian RBF units with centres on S^4(sqrt 5), 3-spin target at d = 5, loss vs n.

Per width n (``inits`` initializations vmapped): gradient flow with f and phi used directly in place
of F and K (RV eq. 4.5, ``mode="direct"``: no Monte Carlo sample, no sampling floor), or eq. 2.1 on
a fixed sample of ``n_mc`` points (``mode="fixed"``); centres on the sphere by tangent projection and
renormalization; Langevin noise ``thermal`` for the first ``thermal_fraction`` of the steps (the
paper's protocol; its amplitude is not stated).  Final test loss vs n with the fitted slope; f and
f_n on the slice sqrt(d)(sin t cos p, sin t sin p, cos t, 0, 0) (Fig. 1) and on the great circle
x_0 = sqrt(d) cos t, x_1 = sqrt(d) sin t (Fig. 4).  Paper: dt = 1e-3, 2e5 steps (T = 200); default
dt = 2e-3, 1e5 steps (same T; stable at n <= 128).  ``dt = 0`` takes the mode's step ``DEFAULT_DT``:
the direct flow is ~70x stiffer than the Monte Carlo one (phi(y, y) = 1 against K(y, y) =
E phi(x, y)^2 ~ 0.013 at d = 5, alpha = 1), so the fixed-mode step 0.5 makes its Euler steps
unstable (the energy grows, the sphere projection keeps the run finite: the loss stalls).
``energy_increase``: the largest relative rise of the energy between saves (< 0: descent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.particle_systems import great_circle, loss_table, n_exponent, sphere_slice
from ..errors import check
from ..problem.regression import network_values
from ..solvers import ParticleFlow, Phase
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import check_range, check_sweep
from .rv_pieces import (announce, direct_seconds, divergence, rbf_problem, run_point, schedule_of, sgd_seconds,
                        spin_seeds)
from .rv_plots import figure, plot_loss_vs_n

DEFAULT_DT = {"direct": 2e-3, "fixed": 0.5, "sgd": 0.5}  # dt = 0: the mode's stable step (module docstring)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    d: int = unit_field(5, "coordinates")
    n_particles: tuple = unit_field((8, 16, 32, 64, 128), "particles")
    inits: int = unit_field(4, "initializations")
    mode: str = unit_field("direct", None)
    alpha: float = unit_field(1.0, None)
    rbf_sign: str = unit_field("gaussian", None)
    dt: float = unit_field(0.0, "time / step")
    steps: int = unit_field(100000, "steps")
    thermal: float = unit_field(1e-4, None)
    thermal_fraction: float = unit_field(0.5, None)
    n_mc: int = unit_field(2000, "samples")
    n_test: int = unit_field(100000, "samples")
    n_saves: int = unit_field(9, "saves")
    slice_points: int = unit_field(48, "points")

    def validate(self):
        check_sweep(self, "n_particles", 1, 2**20)
        check_range(self, d=(3, 100), inits=(1, 10**4), alpha=(1e-6, 1e3), dt=(0.0, 10.0), steps=(2, 10**9),
                    thermal=(0.0, 1e3), thermal_fraction=(0.0, 0.99), n_mc=(1, 10**8), n_test=(10, 10**8),
                    n_saves=(2, 10**4), slice_points=(4, 1000))
        for f, ok in (("mode", ("fixed", "direct", "sgd")), ("rbf_sign", ("gaussian", "as_printed"))):
            check(getattr(self, f) in ok, f, f"use one of {list(ok)}, got {getattr(self, f)!r}")

    def step(self) -> float:
        return self.dt or DEFAULT_DT[self.mode]

    def phases(self):
        k, dt = int(self.steps * self.thermal_fraction), self.step()
        hot = [Phase(k, dt, self.n_mc, self.thermal)] if k else []
        return tuple(hot + [Phase(self.steps - k, dt, self.n_mc)])


@register
class RvRbfD5(Experiment):
    name = "rv-rbf-d5"
    description = "RV 2018 Fig. 1: RBF units on the sphere at d=5, 3-spin target: final loss vs n and level sets"
    Config = Config
    quick = {"n_particles": (8, 16, 32), "inits": 2, "steps": 3000, "dt": 2e-3, "n_mc": 400, "n_test": 5000, "n_saves": 4,
             "slice_points": 24}

    def estimate(self, cfg):
        sec = sum(direct_seconds(cfg.inits, n, cfg.d, cfg.steps, cfg.n_test, cfg.n_saves) if cfg.mode == "direct" else
                  sgd_seconds(cfg.inits, n, cfg.d, [(cfg.steps, cfg.n_mc)], cfg.n_test, cfg.n_saves) for n in cfg.n_particles)
        announce(self.name, sec)
        rows = max(cfg.n_particles) if cfg.mode == "direct" else cfg.n_mc
        return {"bytes": 8.0 * cfg.inits * max(cfg.n_particles) * (6 * rows + 4096 * 2), "seconds": sec, "field": "n_mc"}

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
        return run_point(prob, m, np.unique(p["steps"]), ("loss", "batch_loss", "energy", "sphere_error", "params"),
                         point.seed, progress)

    def reduce(self, cfg, results):
        ds = list(results.values())
        ns = [int(x.attrs["n"]) for x in ds]
        rows = loss_table(ns, [x.loss.values[-1] for x in ds])
        fit = n_exponent(rows)
        big = ds[int(np.argmax(ns))]
        prob = rbf_problem(cfg.d, spin_seeds(cfg.seed, 1), cfg.alpha, cfg.rbf_sign)
        theta = {k[7:]: big[k].values[-1, 0] for k in big.data_vars if k.startswith("params/")}
        t, ph, x = sphere_slice(cfg.d, cfg.slice_points)
        tc, xc = great_circle(cfg.d, 4 * cfg.slice_points)
        f, fn = (lambda z: np.asarray(prob.task.target.values(z))), (lambda z: np.asarray(network_values(prob.unit, theta, z)[1]))
        shape = (cfg.slice_points, cfg.slice_points)
        level = xr.Dataset({"f": (("t", "p"), f(x).reshape(shape)), "f_n": (("t", "p"), fn(x).reshape(shape)),
                            "f_circle": (("s",), f(xc)), "f_n_circle": (("s",), fn(xc))},
                           coords={"t": t, "p": ph, "s": tc}, attrs={"n": max(ns)})
        rise = [float(np.max(np.diff(x.energy.values, axis=0) / np.abs(x.energy.values[:-1]))) for x in ds]
        summary = {
            "label": "RV 2018 Fig. 1: final test loss of RBF units (centres on the sphere) vs n, 3-spin d=5",
            "n_exponent": None if fit is None else {k: fit[k] for k in ("value", "ci_low", "ci_high")},
            "n_exponent_r2": None if fit is None else fit["r2"], "table": rows,
            "schedule": schedule_of(ds[0]), "mode": cfg.mode, "rbf_sign": cfg.rbf_sign,
            "sphere_error_max": float(max(np.max(x.sphere_error.values) for x in ds)),
            "energy_increase": {str(n): r for n, r in zip(ns, rise)},  # max relative rise between saves (<= 0: descent)
            "measures": f"test loss ({cfg.n_test} points) after {cfg.steps} steps at dt={cfg.step():g} "
                        f"(time {cfg.steps * cfg.step():g}), mode {cfg.mode}, mean over {cfg.inits} initializations",
            "seconds": {str(n): x.attrs["seconds"] for n, x in zip(ns, ds)},
            "figures": ["rbf_d5.png"], "data": ["rbf_d5_loss.nc", "rbf_d5_levelsets.nc"],
        }
        summary.update(divergence(results))
        loss = xr.Dataset({"loss": (("n", "init"), np.array([x.loss.values[-1] for x in ds]))}, coords={"n": ns})
        return summary, {"rbf_d5_loss.nc": loss, "rbf_d5_levelsets.nc": level}

    def render(self, cfg, results, summary):
        fig, ax = figure(4, f"RV 2018 Figs. 1 and 4: RBF units, d={cfg.d}; {summary['measures']}", 3.6)
        rows, fit = summary["table"], summary["n_exponent"]
        lv = self.reduce(cfg, results)[1]["rbf_d5_levelsets.nc"]
        levels = np.linspace(-1, 1, 13) * float(np.max(np.abs(lv.f.values)))  # one colour scale for f and f_n
        for a, k in zip(ax[:2], ("f", "f_n")):
            a.contourf(lv.p.values, lv.t.values, lv[k].values, levels=levels, cmap="RdBu_r", extend="both")
            a.set_title(f"{k} on the Fig. 1 slice" + (f" (n={lv.attrs['n']})" if k == "f_n" else ""), fontsize=8)
            a.set(xlabel="p", ylabel="t")
        ax[2].plot(lv.s.values, lv.f_circle.values, "k-", label="f")
        ax[2].plot(lv.s.values, lv.f_n_circle.values, "C3--", label=f"f_n (n={lv.attrs['n']})")
        ax[2].set(title="great circle x0 = sqrt(d) cos t, x1 = sqrt(d) sin t", xlabel="t")
        ax[2].legend(fontsize=7)
        if fit is not None:
            n, y = np.array([r["n"] for r in rows], float), np.array([r["loss_mean"] for r in rows], float)
            fit = {**fit, "intercept": float(np.mean(np.log(y) - fit["value"] * np.log(n)))}
        plot_loss_vs_n(ax[3], rows, fit)
        return {"rbf_d5": fig}
