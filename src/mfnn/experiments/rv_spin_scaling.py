"""RV 2018 Figs. 2-3: sigmoid units on the spherical 3-spin target, SGD with the quench, loss vs n.

Per width n (one point; the realizations of a_pqr run as vmapped replicas): SGD (RV eq. 3.1) with
P = floor(n/5) for ``steps`` steps, then the quench P = floor((n/5)^2) (capped at ``quench_batch_max``,
0 = no cap) for ``quench_steps``; the final test loss (RV eq. 4.8 on ``n_test`` points) and the two
signed errors of Fig. 3 against n, with the fitted log-log slope and its 95% interval.

The paper's schedule (dt = 1e-3, 2e6 + 2e5 steps, uncapped quench: ``--set dt=0.001 steps=2000000
quench_steps=200000 quench_batch_max=0 n_test=100000``) is days on 2 cores; the default trains
5e4 + 5e3 steps at dt = 0.2 with the quench capped at P = 2048 (about 6 minutes on 2 quiet cores):
it measures the loss after a fixed training time T = 11000, which still decreases with n but is not
the converged error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.particle_systems import loss_table, n_exponent
from ..errors import check
from ..solvers import ParticleFlow, quench
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import check_range, check_sweep
from .rv_pieces import announce, divergence, run_point, schedule_of, sgd_seconds, spin_seeds, spin_sigmoid_problem
from .rv_plots import figure, plot_curves, plot_loss_vs_n


@dataclass(frozen=True)
class Config(ExperimentConfig):
    d: int = unit_field(10, "coordinates")
    n_particles: tuple = unit_field((32, 64, 128, 256, 512, 1024), "particles")
    realizations: int = unit_field(4, "targets")
    dt: float = unit_field(0.2, "time / step")
    steps: int = unit_field(50000, "steps")
    quench_steps: int = unit_field(5000, "steps")
    quench_batch_max: int = unit_field(2048, "samples / step")
    n_test: int = unit_field(20000, "samples")
    n_saves: int = unit_field(22, "saves")
    curve_n: int = unit_field(256, "particles")
    dtype: str = unit_field("float32", None)

    def validate(self):
        check_sweep(self, "n_particles", 5, 2**20)
        check_range(self, d=(2, 100), realizations=(1, 1000), dt=(1e-9, 10.0), steps=(1, 10**9), quench_steps=(0, 10**9),
                    quench_batch_max=(0, 2**24), n_test=(10, 10**8), n_saves=(2, 10**4), curve_n=(1, 2**20))
        check(self.dtype in ("float32", "float64"), "dtype", f"use float32 or float64, got {self.dtype!r}")

    def phases(self, n):
        p = quench(n, self.steps, max(self.quench_steps, 1), self.dt)
        cap = self.quench_batch_max
        if cap and p[1].batch > cap:
            p = (p[0], type(p[1])(p[1].steps, p[1].dt, cap))
        return p if self.quench_steps else p[:1]

    def save_steps(self):
        total = self.steps + self.quench_steps
        return np.unique(np.concatenate([np.linspace(0, self.steps, self.n_saves - 1), [total]]).astype(np.int64))


@register
class RvSpinScaling(Experiment):
    name = "rv-spin-scaling"
    description = "RV 2018 Figs. 2-3: sigmoid units on the 3-spin target, SGD + quench, final loss vs n (slope, 95% CI)"
    Config = Config
    quick = {"d": 6, "n_particles": (16, 32, 64), "realizations": 2, "steps": 1000, "quench_steps": 100,
             "n_test": 2000, "n_saves": 5, "curve_n": 64}

    def estimate(self, cfg):
        sec = sum(sgd_seconds(cfg.realizations, n, cfg.d, [(p.steps, p.batch) for p in cfg.phases(n)], cfg.n_test,
                              cfg.n_saves, quiet=True) for n in cfg.n_particles)
        announce(self.name, sec)
        nmax, pmax = max(cfg.n_particles), max(cfg.phases(max(cfg.n_particles))[-1].batch, 4096)
        return {"bytes": 8.0 * cfg.realizations * (6 * nmax * pmax + cfg.d ** 3 + nmax * cfg.d * 4), "seconds": sec,
                "field": "quench_batch_max"}

    def points(self, cfg):
        return [Point.make(self.name, {"n": int(n), "d": cfg.d, "seeds": spin_seeds(cfg.seed, cfg.realizations),
                                       "phases": [(p.steps, float(p.dt), p.batch) for p in cfg.phases(n)],
                                       "steps": cfg.save_steps().tolist(), "n_test": cfg.n_test, "dtype": cfg.dtype},
                           cfg.seed) for n in cfg.n_particles]

    def compute(self, point, progress=False):
        from ..solvers import Phase

        p = point.params
        m = ParticleFlow(n_particles=p["n"], phases=tuple(Phase(*ph) for ph in p["phases"]), mode="sgd",
                         n_test=p["n_test"], replicas=len(p["seeds"]), dtype=p["dtype"])
        return run_point(spin_sigmoid_problem(p["d"], p["seeds"]), m, p["steps"],
                         ("loss", "signed_pos", "signed_neg", "batch_loss", "temperature"), point.seed, progress)

    def reduce(self, cfg, results):
        ds = list(results.values())
        ns = [int(x.attrs["n"]) for x in ds]
        last = lambda x, k: x[k].values[-1]  # noqa: E731
        rows = loss_table(ns, [last(x, "loss") for x in ds],
                          {k: [last(x, k) for x in ds] for k in ("signed_pos", "signed_neg")})
        fit = n_exponent(rows)
        summary = {
            "label": "RV 2018 Fig. 3: final test loss of sigmoid networks on the 3-spin target vs n",
            "n_exponent": None if fit is None else {k: fit[k] for k in ("value", "ci_low", "ci_high")},
            "n_exponent_r2": None if fit is None else fit["r2"],
            "table": rows, "schedule": {str(n): schedule_of(x) for n, x in zip(ns, ds)},
            "measures": (f"test loss ({cfg.n_test} points) after {cfg.steps}+{cfg.quench_steps} steps at dt={cfg.dt:g} "
                         f"(time {cfg.dt * (cfg.steps + cfg.quench_steps):g}); quench batch capped at "
                         f"{cfg.quench_batch_max or 'no cap'}; mean over {cfg.realizations} realizations of a_pqr"),
            "seconds": {str(n): x.attrs["seconds"] for n, x in zip(ns, ds)}, "d": cfg.d,
            "figures": ["spin_scaling.png"], "data": ["spin_scaling.nc"],
        }
        summary.update(divergence(results))
        data = xr.concat([x.drop_vars("time").swap_dims(time="step") for x in ds], dim="n", join="outer")
        return summary, {"spin_scaling.nc": data.assign_coords(n=ns)}

    def render(self, cfg, results, summary):
        rows, fit = summary["table"], summary["n_exponent"]
        fig, ax = figure(3, f"RV 2018 sigmoid units, 3-spin d={cfg.d}: {summary['measures']}", 4.2)
        by = {int(x.attrs["n"]): x for x in results.values()}
        x = by.get(cfg.curve_n, next(iter(by.values())))
        plot_curves(ax[0], x.step.values, {f"batch loss n={x.attrs['n']} (r={r})": x.batch_loss.values[:, r]
                                           for r in range(x.batch_loss.shape[1])})
        ax[0].axvline(cfg.steps, color="k", ls=":", lw=0.8)
        plot_loss_vs_n(ax[1], rows, None if fit is None else {**fit, "intercept": _intercept(rows, fit)})
        for key, lab in (("signed_pos", "E Θ(f)(f - f_n)"), ("signed_neg", "-E Θ(-f)(f - f_n)")):
            sign = 1 if key == "signed_pos" else -1
            ax[2].plot([r["n"] for r in rows], [sign * r[key] for r in rows], "o-", label=lab)
        ax[2].set_xscale("log")
        ax[2].set_xlabel("n")
        ax[2].legend(fontsize=7)
        return {"spin_scaling": fig}


def _intercept(rows, fit):
    n = np.array([r["n"] for r in rows], float)
    y = np.array([r["loss_mean"] for r in rows], float)
    return float(np.mean(np.log(y) - fit["value"] * np.log(n)))
