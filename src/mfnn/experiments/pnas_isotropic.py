"""PNAS 2018 Figure 1: isotropic Gaussians, SGD histograms of ||w_i|| vs the radial DD density.

Data y = +-1, x | y ~ N(0, (1 + y Delta)^2 I_d); unit sigma(<w, x>) with the piecewise-linear
ramp sigma(t1, t2, s1, s2); w_i^0 ~ N(0, kappa^2/d I_d); xi = 1.

Step size.  SGD tracks the DD when the per-unit-time growth of ||w||^2 from SGD noise,
~ 4 eps E[(y - yhat)^2 sigma'(<w,x>)^2 ||x||^2] ~ 4 eps * R * slope^2 * P(ramp) * d (1+Delta^2),
is small against r^2.  With slope 10, d = 40 this is ~ 10^4 eps R per unit time, so eps = 1e-5
gives ~0.1 R per unit time while r^2 grows from 0.6 to ~19: a few-percent bias in r over the
run.  The paper's eps is of order 1e-6 (10x more steps); eps is a config field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import numpy as np
import xarray as xr

from ..analysis.compare import histogram_vs_density, max_abs_gap, risk_table
from ..analysis.timegrid import log_save_times, nearest_indices
from ..errors import check
from ..problem import GaussianInit, IsotropicGaussians, Problem, sigma_w
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import DDFields, RampFields, SGDFields, check_ranges, estimate_from, run_status, summary_status, take

RENDER_ONLY = ("bins",)  # fields that do not enter compute (and so not the point key)


@dataclass(frozen=True)
class Config(RampFields, SGDFields, DDFields, ExperimentConfig):
    d: int = unit_field(40, "coordinates")
    delta: float = unit_field(0.8, None)
    kappa: float = unit_field(0.8, None)
    eps: float = unit_field(1e-5, "time / step")
    t_max: float = unit_field(30.0, "time t")
    n_times: int = unit_field(24, "saves")
    panel_times: tuple = unit_field((0.0, 1.0, 5.0, 10.0, 30.0), "time t")
    replicas: int = unit_field(2, "replicas")
    dd_inf: bool = unit_field(True, None)
    bins: int = unit_field(40, "bins")

    def validate(self):
        super().validate()  # the pieces' fields first: the ranges below may use them
        check_ranges(self, {"d": "[2, 1e7]", "delta": "(0, 1)", "kappa": "(0, 1e3]", "t_max": "(0, 1e6]",
                            "n_times": "[2, 1e4]", "bins": "[2, 1e4]"})
        check(1 <= len(self.panel_times) <= 20 and all(0 <= t <= self.t_max for t in self.panel_times),
              "panel_times", f"need 1 to 20 times in [0, t_max={self.t_max}]")

    def problem(self) -> Problem:
        return Problem(sigma_w(self.activation()), IsotropicGaussians(d=self.d, delta=self.delta),
                       GaussianInit(kappa=self.kappa))

    def save_times(self) -> np.ndarray:
        return log_save_times(self.t_max, self.n_times, self.eps, extra=self.panel_times)


def histograms(cfg: Config, ds: xr.Dataset) -> xr.Dataset:
    """SGD histograms of ||w_i|| (replicas pooled) and the DD density on common bins at the panel times."""
    idx = nearest_indices(ds.time.values, cfg.panel_times)
    sgd = np.moveaxis(ds.sgd_w_norm.values[:, idx], 1, 0)  # (panel, replica, neuron)
    edges, sgd_hist, dd_hist = histogram_vs_density(sgd, ds.dd_radius.values[idx], cfg.bins)
    return xr.Dataset({"sgd_density": (("panel", "bin"), sgd_hist), "dd_density": (("panel", "bin"), dd_hist)},
                      coords={"panel_time": ("panel", ds.time.values[idx]), "bin_left": ("bin", edges[:-1]),
                              "bin_right": ("bin", edges[1:])})


@register
class PnasIsotropic(Experiment):
    name = "pnas-isotropic"
    description = "PNAS 2018 Fig. 1: isotropic Gaussians, SGD ||w|| histograms and risk vs the radial DD"
    Config = Config
    vmap_seeds = True  # seeds only change the SGD keys: compute_seeds vmaps them, solves the DD once
    quick = {"d": 10, "n_neurons": 100, "eps": 1e-4, "t_max": 4.0, "n_times": 10,
             "panel_times": (0.0, 1.0, 4.0), "replicas": 2, "dd_particles": 400, "bins": 20}

    def points(self, cfg: Config) -> list:
        params = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RENDER_ONLY}
        return [Point.make(self.name, params, cfg.seed)]

    def estimate(self, cfg: Config) -> dict:
        # SGD up to t_max (dominant) plus one or two radial DD solves with 24 Hermite features
        n_saves = cfg.n_times + len(cfg.panel_times)
        return estimate_from(cfg.sgd_cost(cfg.d, cfg.t_max, n_saves), cfg.dd_cost(n_saves, 24, 2 if cfg.dd_inf else 1))

    def compute(self, point: Point, progress: bool = False) -> xr.Dataset:
        cfg, problem = Config(**point.params), Config(**point.params).problem()
        sgd = cfg.sgd_solve(problem, cfg.save_times(), jax.random.PRNGKey(point.seed), progress=progress)
        return self._dataset(cfg, problem, sgd, progress)

    def compute_seeds(self, points: list, progress: bool = False) -> list:
        cfg = Config(**points[0].params)
        check(all(Config(**{**p.params, "seed": cfg.seed}) == cfg for p in points), "seed",
              "compute_seeds takes points that differ only in their seed")
        problem = cfg.problem()
        seeds = [p.seed for p in points]
        sgds = cfg.sgd_solve_seeds(problem, cfg.save_times(), seeds, progress=progress) if seeds[1:] else None
        if sgds is None:  # one point, or a lane diverged: each seed alone keeps its own saves
            return [self.compute(p, progress) for p in points]
        dds = cfg.dd_pair(problem, sgds[0].times, progress, cfg.dd_inf)
        return [self._dataset(Config(**p.params), problem, sgd, progress, dds) for p, sgd in zip(points, sgds)]

    def _dataset(self, cfg, problem, sgd, progress, dds=None) -> xr.Dataset:
        dd, dd_inf = dds or cfg.dd_pair(problem, sgd.times, progress, cfg.dd_inf)
        n = min(len(sgd.times), len(dd.times), len(dd_inf.times) if dd_inf is not None else len(dd.times))
        ds = xr.Dataset(
            {"sgd_risk": (("replica", "time"), sgd.risk[:n].T),
             "sgd_w_norm": (("replica", "time", "neuron"), sgd.w_norm[:n].swapaxes(0, 1)),
             "dd_risk": (("time",), dd.risk[:n]), "dd_radius": (("time", "particle"), dd.radii[:n]),
             "dd_dissipation": (("time",), dd.dissipation[:n])},
            coords={"time": sgd.times[:n], "step": ("time", sgd.stats["steps"][:n])},
            attrs=run_status(sgd.times[:n], sgd, dd, dd_inf))
        if dd_inf is not None:
            ds["dd_risk_d_inf"] = (("time",), dd_inf.risk[:n])
        return ds

    def reduce(self, cfg: Config, results: dict) -> tuple:
        (ds,) = results.values()
        sgd_ds = take(ds, "sgd_", "finite-N online SGD: exact population risk R_N and ||w_i||")
        dd_ds = take(ds, "dd_", "radial DD (finite-d interaction), quantile particles of rhobar_t", drop=("step",))
        table = risk_table(ds.time.values, ds.sgd_risk.values, {"dd_risk": ds.dd_risk.values}, gap_to="dd_risk")
        summary = {
            "table": table, "final": table[-1], "max_abs_gap": max_abs_gap(ds.sgd_risk.values, ds.dd_risk.values),
            "dd_risk_d_inf_final": float(ds.dd_risk_d_inf.values[-1]) if "dd_risk_d_inf" in ds else None,
            **summary_status(ds),
            "figures": ["histograms.png", "risk.png"], "data": ["sgd.nc", "dd.nc", "histograms.nc"],
        }
        return summary, {"sgd.nc": sgd_ds, "dd.nc": dd_ds, "histograms.nc": histograms(cfg, ds)}

    def render(self, cfg: Config, results: dict, summary: dict) -> dict:
        from .plots import plot_histogram_panels, plot_risk_curves

        (ds,) = results.values()
        curves = {"DD (finite d)": ds.dd_risk.values}
        if "dd_risk_d_inf" in ds:
            curves["DD (d = inf)"] = ds.dd_risk_d_inf.values
        return {
            "histograms": plot_histogram_panels(histograms(cfg, ds),
                                                title=f"PNAS Fig. 1: d={cfg.d}, N={cfg.n_neurons}, Delta={cfg.delta}"),
            "risk": plot_risk_curves(ds.time.values, ds.sgd_risk.values, curves,
                                     title=f"risk: SGD (N={cfg.n_neurons}, {cfg.replicas} replicas) vs DD"),
        }

    @staticmethod
    def format_summary(summary: dict) -> str:
        return "\n".join([f"{'t':>10} {'SGD risk':>12} {'+-std':>10} {'DD risk':>12} {'gap':>10}"] + [
            f"{r['t']:>10.4g} {r['sgd_risk']:>12.5f} {r['sgd_risk_std']:>10.2e} {r['dd_risk']:>12.5f} {r['gap']:>10.2e}"
            for r in summary["table"]])
