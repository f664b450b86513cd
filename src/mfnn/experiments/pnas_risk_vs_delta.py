"""PNAS 2018 Figure 2: asymptotic risk versus Delta for the isotropic task.

For each Delta on a grid: the long-time radial DD risk (at ``dd_t_long``, line; the DD is cheap, so
it runs far past the SGD horizon, and its certificates say whether it has reached a fixed
point), the DD risk at the SGD horizon t_max, finite-N SGD risk at t_max (symbols,
``replicas`` runs per point), and the convex global minimum inf_rho R(rho) over radial measures
(``analysis.radial_global_min``, dashed; independent of any dynamics).  Same sigma as Fig. 1 (the
ramp (t1, t2, s1, s2)), no offset, a_i = 1.

``d`` is a string field: an integer (DD, global minimum AND SGD at that d) or "inf" (the d = inf
reduction for the DD and the global minimum; SGD cannot run at d = inf and then runs at the finite
``sgd_d``).  Step size: eps = 1e-5 as in pnas-isotropic at d = 40 (SGD noise grows like
eps d slope^2: a few-percent radius bias over t = 10).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import numpy as np
import xarray as xr

from ..analysis import radial_certificates, radial_global_min
from ..analysis.compare import replica_stats
from ..analysis.timegrid import extend_geometric, log_save_times
from ..errors import check
from ..problem import GaussianInit, IsotropicGaussians, Problem, sigma_w
from ..solvers import RadialModel
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import DDFields, RampFields, SGDFields, check_ranges, estimate_from, format_table, parse_d, run_status

NC_VARS = ("dd_risk", "dd_risk_at_t_max", "sgd_risk", "sgd_risk_std", "global_min_risk", "global_min_lower_bound",
           "dd_stationarity", "dd_gap")


@dataclass(frozen=True)
class Config(RampFields, SGDFields, DDFields, ExperimentConfig):
    INF_OK: ClassVar[tuple] = ("d",)  # d = "inf": the d -> infinity reduction
    d: str = unit_field("40", "coordinates")
    sgd_d: int = unit_field(40, "coordinates")
    deltas: tuple = unit_field((0.2, 0.35, 0.5, 0.65, 0.8), None)
    kappa: float = unit_field(0.8, None)
    t_max: float = unit_field(10.0, "time t")
    dd_t_long: float = unit_field(2000.0, "time t")
    n_times: int = unit_field(12, "saves")
    dd_particles: int = unit_field(400, "particles")
    n_hermite: int = unit_field(16, "Hermite terms")

    def validate(self):
        super().validate()
        parse_d(self.d)
        check(isinstance(self.sgd_d, int) and 2 <= self.sgd_d <= 10 ** 7, "sgd_d",
              f"must be an integer in [2, 1e7], got {self.sgd_d!r}")
        check(1 <= len(self.deltas) <= 50 and all(0 < x < 1 for x in self.deltas), "deltas", "need 1 to 50 values in (0, 1)")
        check_ranges(self, {"kappa": "(0, 1e3]", "t_max": "(0, 1e6]", "dd_t_long": f"[{self.t_max}, 1e8]",
                            "n_times": "[2, 1e4]", "n_hermite": "[1, 64]"})

    @property
    def d_sgd(self) -> int:
        return self.sgd_d if math.isinf(parse_d(self.d)) else int(parse_d(self.d))

    @property
    def d_interaction(self) -> str:
        return "inf" if math.isinf(parse_d(self.d)) else "finite"

    def problem(self, delta) -> Problem:
        return Problem(sigma_w(self.activation()), IsotropicGaussians(d=self.d_sgd, delta=delta),
                       GaussianInit(kappa=self.kappa))


@register
class PnasRiskVsDelta(Experiment):
    name = "pnas-risk-vs-delta"
    description = "PNAS 2018 Fig. 2: long-time risk vs Delta (DD, SGD, convex global minimum)"
    Config = Config
    # quick: a smoke test (d = 10, 2 Deltas, t = 0.5), far from the long-time limit
    quick = {"d": "10", "sgd_d": 10, "deltas": (0.4, 0.8), "n_neurons": 100, "eps": 1e-4, "t_max": 0.5,
             "dd_t_long": 5.0, "n_times": 4, "dd_particles": 30, "n_hermite": 4}

    def points(self, cfg: Config) -> list:
        params = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "deltas"}
        return [Point.make(self.name, {**params, "delta": float(x)}, cfg.seed) for x in cfg.deltas]

    def estimate(self, cfg: Config) -> dict:  # per Delta: SGD (dominant) + a long radial DD + a QP
        return estimate_from(cfg.sgd_cost(cfg.d_sgd, cfg.t_max, cfg.n_times), cfg.dd_cost(cfg.n_times + 8, cfg.n_hermite),
                             len(cfg.deltas), extra_seconds=30.0 * len(cfg.deltas))

    def compute(self, point: Point, progress: bool = False) -> xr.Dataset:
        p = dict(point.params)
        delta = p.pop("delta")
        cfg = Config(**p)
        problem, di = cfg.problem(delta), cfg.d_interaction
        sgd = cfg.sgd_solve(problem, log_save_times(cfg.t_max, cfg.n_times, cfg.eps), jax.random.PRNGKey(point.seed),
                            ("risk",), progress)
        # the DD starts from rho_0 = N(0, kappa^2/d_sgd I) (radii kappa chi_d / sqrt(d)) in both cases
        dd = cfg.dd_solve(problem, np.concatenate([sgd.times, extend_geometric(sgd.times[-1], cfg.dd_t_long)]),
                          progress, d_interaction=di, n_hermite=cfg.n_hermite)
        gmin = radial_global_min(problem, di, n_hermite=cfg.n_hermite)
        cert = radial_certificates(RadialModel.from_problem(problem, di, cfg.n_hermite), dd.radii[-1])
        n = min(len(sgd.times), len(dd.times))
        return xr.Dataset(
            {"sgd_risk": (("replica", "time"), sgd.risk[:n].T), "dd_risk": (("dd_time",), dd.risk)},
            coords={"time": sgd.times[:n], "dd_time": dd.times},
            attrs={"delta": float(delta), "dd_t_long": float(dd.times[-1]), "dd_risk_at_t_max": float(dd.risk[n - 1]),
                   "global_min_risk": float(gmin["risk"]), "global_min_lower_bound": float(gmin["lower_bound"]),
                   "global_min_fw_gap": float(gmin["fw_gap"]), "dd_stationarity": cert["stationarity"],
                   "dd_gap": cert["gap"], "t_final": float(sgd.times[n - 1]), **run_status(sgd.times[:n], sgd, dd)})

    def reduce(self, cfg: Config, results: dict) -> tuple:
        table = []
        for ds in (results[p.key] for p in self.points(cfg)):
            mean, std = replica_stats(ds.sgd_risk.values[:, -1:])
            a = ds.attrs
            table.append({"delta": a["delta"], "dd_risk": float(ds.dd_risk.values[-1]), "dd_t_long": a["dd_t_long"],
                          "dd_risk_at_t_max": a["dd_risk_at_t_max"], "sgd_risk": float(mean[0]),
                          "sgd_risk_std": float(std[0]),
                          **{k: a[k] for k in ("global_min_risk", "global_min_lower_bound", "global_min_fw_gap",
                                               "dd_stationarity", "dd_gap", "t_final")},
                          "diverged": a["result"] == "diverged", "result": a["result"],
                          **({"stopped_at": a["stopped_at"]} if "stopped_at" in a else {})})
        ds = xr.Dataset({k: (("delta",), np.asarray([r[k] for r in table], dtype=float)) for k in NC_VARS},
                        coords={"delta": np.asarray(cfg.deltas, dtype=float)},
                        attrs={"d": cfg.d, "sgd_d": cfg.d_sgd, "t_max": cfg.t_max})
        diverged = {f"delta={r['delta']:g}": r["stopped_at"] for r in table if r["diverged"]}
        return {"d": cfg.d, "sgd_d": cfg.d_sgd, "d_interaction": cfg.d_interaction, "table": table,
                "result": "diverged" if diverged else "successful",
                **({"stopped_at": diverged, "warning": "a solver diverged: see stopped_at"} if diverged else {}),
                "figures": ["risk_vs_delta.png"], "data": ["risk_vs_delta.nc"]}, {"risk_vs_delta.nc": ds}

    def render(self, cfg: Config, results: dict, summary: dict) -> dict:
        from .plots import plot_risk_vs_delta

        return {"risk_vs_delta": plot_risk_vs_delta(
            summary["table"], f"DD (d={cfg.d}), t={cfg.dd_t_long:g}", f"DD (d={cfg.d}), t={cfg.t_max:g}",
            f"SGD (d={cfg.d_sgd}, N={cfg.n_neurons})", title="PNAS Fig. 2: risk vs Delta")}

    @staticmethod
    def format_summary(summary: dict) -> str:
        cols = [("Delta", "delta", ".3g"), ("DD(t_long)", "dd_risk", ".4e"), ("DD(t_max)", "dd_risk_at_t_max", ".4e"),
                ("SGD(t_max)", "sgd_risk", ".4e"), ("global min", "global_min_risk", ".4e"),
                ("DD stat.", "dd_stationarity", ".2e"), ("DD gap", "dd_gap", ".2e")]
        return f"d = {summary['d']} (SGD at d = {summary['sgd_d']})\n" + format_table(summary["table"], cols)
