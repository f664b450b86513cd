"""PNAS 2018 Figure 4: a non-monotone activation where the DD predicts which initialization reaches
near-optimal risk and which stalls at a bad fixed point.

Isotropic data, Delta = 0.5, d = 320, N = 800, sigma(<w, x>), w_i^0 ~ N(0, kappa^2/d I_d), kappa in
{0.1, 0.4}.  The paper does not give its sigma; ours (``problem.shapes``) has a trap at r ~ 0.05, a
barrier at r ~ 0.33, the global minimum at r* ~ 1.36; ||w^0|| = kappa (1 +- 0.04) at d = 320 puts
kappa = 0.1 in the trap's basin and 0.4 beyond the barrier.

Step size.  SGD noise inflates ||w||^2 at a rate ~ 4 eps R E[sigma'^2] d (1 + Delta^2) per unit
time; in the trap (sigma' = 10, r^2 ~ 2.5e-3) eps = 1e-5 pushes kappa = 0.1 over the barrier by t
~ 0.1 (measured), eps = 1e-6 keeps it there (radius bias ~ 10%, risk ~ 0.5%).  t_max = 2: at t = 1
the kappa = 0.4 DD is 1.6e-3 above the global minimum, at t ~ 2 it has converged (2e6 steps per
kappa; 435 s in total for t_max = 1 on a heavily shared 2-core machine).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import xarray as xr

from ..analysis import radial_certificates, radial_global_min
from ..analysis.timegrid import log_save_times
from ..errors import check
from ..problem import GaussianInit, IsotropicGaussians, Problem, sigma_w
from ..problem.shapes import HALF_BREAKPOINTS, HALF_VALUES, check_even_shape, even_piecewise_linear
from ..solvers import RadialModel
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import DDFields, SGDFields, check_ranges, estimate_from, format_table, run_status, summary_status

CERT_KEYS = ("risk", "stationarity", "stationarity_rms", "gap", "support_gap", "risk_lower_bound",
             "r_argmin", "psi_min", "psi_mean")
GMIN_FIELDS = ("d", "delta", "dd_n_hermite", "half_breakpoints", "half_values")  # all the global min reads


@dataclass(frozen=True)
class Config(SGDFields, DDFields, ExperimentConfig):
    d: int = unit_field(320, "coordinates")
    delta: float = unit_field(0.5, None)
    kappas: tuple = unit_field((0.1, 0.4), None)
    eps: float = unit_field(1e-6, "time / step")
    t_max: float = unit_field(2.0, "time t")
    n_times: int = unit_field(16, "saves")
    dd_particles: int = unit_field(200, "particles")
    dd_n_hermite: int = unit_field(8, "Hermite terms")  # E[c^k] ~ d^{-k/2}: k < 8 is exact to ~1e-8 at d = 320
    half_breakpoints: tuple = unit_field(HALF_BREAKPOINTS, None)
    half_values: tuple = unit_field(HALF_VALUES, None)

    def validate(self):
        super().validate()
        check_ranges(self, {"d": "[2, 1e6]", "delta": "(0, 1)", "t_max": "(0, 1e6]", "n_times": "[2, 1e4]",
                            "dd_n_hermite": "[1, 64]"})
        check(1 <= len(self.kappas) <= 20 and all(0 < k <= 1e3 for k in self.kappas), "kappas",
              "need 1 to 20 values in (0, 1e3]")
        check_even_shape(self.half_breakpoints, self.half_values)

    def problem(self, kappa) -> Problem:
        return Problem(sigma_w(even_piecewise_linear(self.half_breakpoints, self.half_values)),
                       IsotropicGaussians(d=self.d, delta=self.delta), GaussianInit(kappa=kappa))


@register
class PnasFailure(Experiment):
    name = "pnas-failure"
    description = "PNAS 2018 Fig. 4: non-monotone sigma, kappa = 0.1 stalls at a bad fixed point, 0.4 converges"
    Config = Config
    # quick: a smoke test of the pipeline (d = 40, a few thousand steps), not the phenomenon
    quick = {"d": 40, "n_neurons": 100, "eps": 2e-5, "t_max": 0.05, "n_times": 4, "dd_particles": 20,
             "dd_n_hermite": 4}

    def points(self, cfg: Config) -> list:
        """The radial global minimum (independent of kappa), then one SGD + DD run per kappa."""
        params = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "kappas"}
        return ([Point.make(self.name, {"part": "global_min", **{k: params[k] for k in GMIN_FIELDS}}, cfg.seed)]
                + [Point.make(self.name, {"part": "run", **params, "kappa": float(k)}, cfg.seed) for k in cfg.kappas])

    def estimate(self, cfg: Config) -> dict:  # per kappa SGD (dominant) + a radial DD; a ~400-point QP
        return estimate_from(cfg.sgd_cost(cfg.d, cfg.t_max, cfg.n_times), cfg.dd_cost(cfg.n_times, cfg.dd_n_hermite),
                             len(cfg.kappas), extra_seconds=60.0)

    def compute(self, point: Point, progress: bool = False) -> xr.Dataset:
        p = dict(point.params)
        part, kappa = p.pop("part"), p.pop("kappa", 1.0)  # the global minimum does not depend on kappa
        cfg, problem = Config(**p), Config(**p).problem(kappa)
        if part == "global_min":
            g = radial_global_min(problem, "finite", n_hermite=cfg.dd_n_hermite)
            return xr.Dataset({"support_r": ("support", g["support_r"]), "support_w": ("support", g["support_w"])},
                              attrs={"part": part, **{k: float(g[k]) for k in ("risk", "lower_bound", "fw_gap")}})
        times = log_save_times(cfg.t_max, cfg.n_times, cfg.eps)
        sgd = cfg.sgd_solve(problem, times, jax.random.PRNGKey(point.seed), progress=progress)
        dd = cfg.dd_solve(problem, sgd.times, progress, n_hermite=cfg.dd_n_hermite)
        n = min(len(sgd.times), len(dd.times))
        model = RadialModel.from_problem(problem, "finite", cfg.dd_n_hermite)
        # the SGD neurons' radii (replica 0), read as a radial measure (rotation invariance holds in law)
        certs = {"dd": radial_certificates(model, dd.radii[n - 1]),
                 "sgd": radial_certificates(model, sgd.w_norm[n - 1, 0])}
        return xr.Dataset(
            {"sgd_risk": (("replica", "time"), sgd.risk[:n].T),
             "sgd_w_norm": (("replica", "time", "neuron"), sgd.w_norm[:n].swapaxes(0, 1)),
             "dd_risk": (("time",), dd.risk[:n]), "dd_radius": (("time", "particle"), dd.radii[:n])},
            coords={"time": sgd.times[:n]},
            attrs={"part": part, "kappa": float(kappa), **run_status(sgd.times[:n], sgd, dd),
                   **{f"cert_{s}_{k}": float(c[k]) for s, c in certs.items() for k in CERT_KEYS}})

    def reduce(self, cfg: Config, results: dict) -> tuple:
        gpoint, *runs = [results[p.key] for p in self.points(cfg)]
        gmin = float(gpoint.attrs["risk"])
        per_kappa, data = [], {}
        for ds in runs:
            per_kappa.append({
                "kappa": ds.attrs["kappa"], "sgd_final_risk": float(ds.sgd_risk.values[:, -1].mean()),
                "dd_final_risk": float(ds.dd_risk.values[-1]), "global_min_risk": gmin,
                "excess_dd_risk": float(ds.dd_risk.values[-1]) - gmin,
                "sgd_final_mean_w": float(ds.sgd_w_norm.values[:, -1].mean()),
                "dd_final_mean_r": float(ds.dd_radius.values[-1].mean()),
                "certificates_dd": {k: ds.attrs[f"cert_dd_{k}"] for k in CERT_KEYS},
                "certificates_sgd_radial": {k: ds.attrs[f"cert_sgd_{k}"] for k in CERT_KEYS},
                **summary_status(ds)})
            data[f"kappa_{ds.attrs['kappa']:g}.nc"] = xr.Dataset(
                ds.data_vars, attrs={"kappa": ds.attrs["kappa"],
                                     "description": "SGD (exact population risk) and radial DD (finite d)"})
        diverged = [r for r in per_kappa if r["result"] == "diverged"]
        return {"activation": {"half_breakpoints": list(cfg.half_breakpoints), "half_values": list(cfg.half_values),
                               "symmetry": "even: sigma(t) = g(|t|)"},
                "global_min": {**{k: float(gpoint.attrs[k]) for k in ("risk", "lower_bound", "fw_gap")},
                               "support_r": gpoint.support_r.values, "support_w": gpoint.support_w.values},
                "per_kappa": per_kappa, "result": "diverged" if diverged else "successful",
                **({"stopped_at": {f"kappa={r['kappa']:g}": r["stopped_at"] for r in diverged}} if diverged else {}),
                "figures": ["risk_and_norm.png"], "data": list(data)}, data

    def render(self, cfg: Config, results: dict, summary: dict) -> dict:
        from .plots import plot_risk_and_norm

        runs = {f"kappa={results[p.key].attrs['kappa']:g}": results[p.key] for p in self.points(cfg)[1:]}
        return {"risk_and_norm": plot_risk_and_norm(runs, summary["global_min"]["risk"], title=(
            f"PNAS Fig. 4: non-monotone sigma, d={cfg.d}, N={cfg.n_neurons}, Delta={cfg.delta}"))}

    @staticmethod
    def format_summary(summary: dict) -> str:
        cols = [("kappa", "kappa", ".3g"), ("SGD risk", "sgd_final_risk", ".5f"), ("DD risk", "dd_final_risk", ".5f"),
                ("DD stationarity", "certificates_dd.stationarity", ".2e"), ("DD gap", "certificates_dd.gap", ".4g"),
                ("DD supp gap", "certificates_dd.support_gap", ".4g"), ("SGD gap", "certificates_sgd_radial.gap", ".4g")]
        g = summary["global_min"]
        return (f"global min (radial, finite d): {g['risk']:.5f}  (lower bound {g['lower_bound']:.5f})\n"
                + format_table(summary["per_kappa"], cols))
