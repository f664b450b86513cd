"""PNAS 2018 Figure 3: anisotropic Gaussians (variable selection), ReLU units with offset.

y = +-1, x | y ~ N(0, diag((1 + y Delta)^2 I_s0, I_{d-s0})); unit a relu(<w, x> + b), (a, b, w) all
trained; step s_k = eps xi(k eps), xi(t) = (t0 + t)^(-p) (the paper's t^(-1/4), regularized at 0).
SGD (exact population risk R_N) against the reduced DD in (a, b, r1 = ||w_1:s0||, r2 =
||w_s0+1:d||): the paper's d = inf reduction and (by default) the exact finite-d angular average.
Defaults where the paper is silent [configurable]: Delta = 0.5, kappa = 1, a ~ N(0.1, 0.1^2), b = 0,
eps = 2e-4, t_max = 100 (5e5 steps per replica; SGD r1, r2 from parameter snapshots, 82 MB).

Measured at the defaults (seed 0, 2 replicas, 189 s on a loaded 2-core CPU): a plateau (R = 0.994
at t = 0, 0.957 at t = 4.6; SGD and both DDs within 5e-3 up to t = 15), then a drop.  The d = inf DD
reaches R ~ 1e-12; the d = 320 DD levels off at 0.041 (the output fluctuates with ||x_1:s0||) and
SGD follows it (0.0459 +- 1e-4 at t = 100: the O(1/N) term of R_N).  Means at t = 100 (SGD / DD
d = inf): a 1.10 / 1.14, b 0.055 / -0.009, r1 1.94 / 1.88, r2 0.69 / 0.50: r2 drifts up in SGD only
after t ~ 10, SGD noise on the d - s0 = 260 irrelevant coordinates, d(r2^2)/dt ~ 4 eps xi
E[(y - yhat)^2 a^2 1{z > 0}] (d - s0) ~ 2e-3 at R = 0.046 (smaller eps removes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import xarray as xr

from ..analysis.compare import block_norm_means, max_abs_gap, risk_table
from ..analysis.timegrid import log_save_times
from ..numerics.schedules import PowerLaw
from ..problem import GaussianInit, Problem, ProjectionUnit, relu
from ..problem.anisotropic import AnisotropicGaussians
from ..solvers import AnisotropicDD
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import DDFields, SGDFields, check_ranges, estimate_from, format_table, run_status, summary_status, take

MEANS = ("a", "b", "r1", "r2")


@dataclass(frozen=True)
class Config(SGDFields, DDFields, ExperimentConfig):
    d: int = unit_field(320, "coordinates")
    s0: int = unit_field(60, "coordinates")
    delta: float = unit_field(0.5, None)
    kappa: float = unit_field(1.0, None)
    a_mean: float = unit_field(0.1, None)
    a_std: float = unit_field(0.1, None)
    b_mean: float = unit_field(0.0, None)
    b_std: float = unit_field(0.0, None)
    eps: float = unit_field(2e-4, "time / step")
    xi_p: float = unit_field(0.25, None)
    xi_t0: float = unit_field(1.0, "time t")
    t_max: float = unit_field(100.0, "time t")
    n_times: int = unit_field(20, "saves")
    replicas: int = unit_field(2, "replicas")
    dd_rtol: float = unit_field(1e-6, None)
    dd_finite: bool = unit_field(True, None)
    dd_hermite: int = unit_field(6, "Hermite terms")
    engine: str = unit_field("auto", None)

    def validate(self):
        super().validate()  # the pieces' fields first: the ranges below may use them
        check_ranges(self, {"d": "[2, 1e6]", "s0": f"[1, {self.d})", "delta": "(0, 1)", "kappa": "(0, 1e3]",
                            "a_mean": "[-1e3, 1e3]", "b_mean": "[-1e3, 1e3]", "a_std": "[0, 1e3]", "b_std": "[0, 1e3]",
                            "xi_p": "[0, 10]", "xi_t0": "(0, 1e6]", "n_times": "[2, 1e4]",
                            "dd_hermite": "[1, 64]", "engine": ("auto", "generic", "blocked")})
        check_ranges(self, {"t_max": f"[{self.n_times * self.eps:.6g}, 1e6]"})  # at least n_times SGD steps

    def problem(self) -> Problem:
        init = GaussianInit(kappa=self.kappa, a_mean=self.a_mean, a_std=self.a_std, b_mean=self.b_mean,
                            b_std=self.b_std)
        return Problem(ProjectionUnit(relu(), trained=("a", "b", "w")),
                       AnisotropicGaussians(d=self.d, s0=self.s0, delta=self.delta), init)


@register
class PnasAnisotropic(Experiment):
    name = "pnas-anisotropic"
    description = "PNAS 2018 Fig. 3: anisotropic Gaussians, ReLU a*relu(<w,x>+b), SGD risk vs reduced DD"
    Config = Config
    quick = {"d": 40, "s0": 10, "n_neurons": 100, "eps": 1e-3, "t_max": 20.0, "n_times": 8, "replicas": 2,
             "dd_particles": 400, "dd_finite": False, "engine": "generic"}  # generic: faster compile, same iterates

    def estimate(self, cfg: Config) -> dict:  # SGD with snapshots at every save, reduced DD(s)
        return estimate_from(cfg.sgd_cost(cfg.d + 2, cfg.t_max, cfg.n_times, save_params=True),
                             cfg.dd_cost(cfg.n_times, (cfg.dd_hermite + 1) ** 2, 2 if cfg.dd_finite else 1))

    def compute(self, point: Point, progress: bool = False) -> xr.Dataset:
        cfg = Config(**point.params)
        problem, xi, key = cfg.problem(), PowerLaw(p=cfg.xi_p, t0=cfg.xi_t0), jax.random.PRNGKey(point.seed)
        times = log_save_times(cfg.t_max, cfg.n_times, cfg.eps)
        sgd = cfg.sgd_solve(problem, times, key, ("risk", "params"), progress, xi=xi, engine=cfg.engine)
        params = {k[7:]: v.swapaxes(0, 1) for k, v in sgd.ys.items() if k.startswith("params/")}
        means = block_norm_means(params, cfg.s0)  # (replica, time); the snapshots are dropped
        kw = dict(method=AnisotropicDD, xi=xi, key=jax.random.fold_in(key, 7))
        dd = cfg.dd_solve(problem, sgd.times, progress, d_interaction="inf", **kw)
        ddf = (cfg.dd_solve(problem, sgd.times, progress, d_interaction="finite", n_hermite=cfg.dd_hermite, **kw)
               if cfg.dd_finite else None)
        n = min(len(sgd.times), len(dd.times), len(ddf.times) if ddf is not None else len(dd.times))
        vs = {"sgd_risk": (("replica", "time"), sgd.risk[:n].T),
              **{f"sgd_mean_{k}": (("replica", "time"), means[k][:, :n]) for k in MEANS},
              "dd_risk": (("time",), dd.risk[:n]), "dd_dissipation": (("time",), dd.dissipation[:n]),
              **{f"dd_mean_{k}": (("time",), dd.ys[k][:n].mean(axis=1)) for k in MEANS}}
        if ddf is not None:
            vs["dd_risk_finite_d"] = (("time",), ddf.risk[:n])
            vs.update({f"dd_mean_{k}_finite_d": (("time",), ddf.ys[k][:n].mean(axis=1)) for k in MEANS})
        return xr.Dataset(vs, coords={"time": sgd.times[:n], "step": ("time", sgd.stats["steps"][:n])},
                          attrs=run_status(sgd.times[:n], sgd, dd, ddf))

    def reduce(self, cfg: Config, results: dict) -> tuple:
        (ds,) = results.values()
        fin = "dd_risk_finite_d" in ds
        refs = {"dd_risk": ds.dd_risk.values, **({"dd_risk_finite_d": ds.dd_risk_finite_d.values} if fin else {})}
        table = risk_table(ds.time.values, ds.sgd_risk.values, refs)
        final_means = {"sgd": {k: float(ds[f"sgd_mean_{k}"].values[:, -1].mean()) for k in MEANS},
                       "dd": {k: float(ds[f"dd_mean_{k}"].values[-1]) for k in MEANS}}
        if fin:
            final_means["dd_finite_d"] = {k: float(ds[f"dd_mean_{k}_finite_d"].values[-1]) for k in MEANS}
        summary = {
            "table": table, "final": table[-1], "final_means": final_means,
            "max_abs_gap_d_inf": max_abs_gap(ds.sgd_risk.values, ds.dd_risk.values),
            "max_abs_gap_finite_d": max_abs_gap(ds.sgd_risk.values, ds.dd_risk_finite_d.values) if fin else None,
            **summary_status(ds), "figures": ["risk.png", "means.png"], "data": ["sgd.nc", "dd.nc"]}
        return summary, {
            "sgd.nc": take(ds, "sgd_", "online SGD: exact population risk R_N and neuron means of a, b, r1, r2"),
            "dd.nc": take(ds, "dd_", "reduced DD in (a, b, r1, r2); d = inf unless suffixed finite_d", drop=("step",))}

    def render(self, cfg: Config, results: dict, summary: dict) -> dict:
        from .plots import plot_means, plot_risk_replicas

        (ds,) = results.values()
        curves = {"reduced DD, d = inf": ds.dd_risk.values}
        if "dd_risk_finite_d" in ds:
            curves[f"reduced DD, d = {cfg.d}"] = ds.dd_risk_finite_d.values
        t = ds.time.values
        return {"risk": plot_risk_replicas(t, ds.sgd_risk.values, curves, title=(
                    f"PNAS Fig. 3: d={cfg.d}, s0={cfg.s0}, N={cfg.n_neurons}, Delta={cfg.delta}, "
                    f"xi=({cfg.xi_t0:g}+t)^-{cfg.xi_p:g}, eps={cfg.eps:g}")),
                "means": plot_means(t, {k: ds[f"sgd_mean_{k}"].values for k in MEANS},
                                    {k: ds[f"dd_mean_{k}"].values for k in MEANS},
                                    title="neuron means: SGD (+) vs reduced DD at d = inf (lines)")}

    @staticmethod
    def format_summary(summary: dict) -> str:
        cols = [("t", "t", ".4g"), ("SGD risk", "sgd_risk", ".5f"), ("+-std", "sgd_risk_std", ".2e"),
                ("DD d=inf", "dd_risk", ".5f"), ("DD fin d", "dd_risk_finite_d", ".5f")]
        return "\n".join([format_table(summary["table"], cols)] + [
            f"final means ({src}): " + ", ".join(f"{k}={v:.4g}" for k, v in vals.items())
            for src, vals in summary["final_means"].items()])
