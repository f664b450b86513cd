"""PNAS 2018 SGD -> DD error bound, measured: sup_t |R_N - R(rho_t)| against N and against eps.

Problem: PNAS Fig. 1 (isotropic Gaussians, d = 40, Delta = kappa = 0.8, ramp of slope 10, only w
trained).  Points: the radial DD reference R(rho_t) and one SGD point (``replicas`` runs of the exact
R_N(theta^k)) per distinct (N, eps) of an N-sweep at eps_small and an eps-sweep at n_large.  The
bound (PNAS 2018 Thm 3) ~ sqrt(max(1/N, eps)) has exponents -1/2 in N and +1/2 in eps; ``reduce``
fits the replica mean of the per-replica gap and its fluctuation / bias parts (``gap_points``: why).

Measured (seed 0, 2 loaded cores): default (503 s, before per-point seeds): n_exponent -0.985
[-1.136, -0.833], eps_exponent 0.915 [0.743, 1.086]; --quick (95 s): -0.87 [-1.26, -0.48], 0.89.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.gap_points import fit_or_none, gap_table, sweep_means
from ..analysis.scaling import exponent_summary
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import (DDFields, IsotropicFields, ReplicaFields, check_range, check_save_grid, check_sweep,
                     divergence_summary, dominant_field, gap_point)
from .scaling_plots import plot_gap_sweeps


@dataclass(frozen=True)
class Config(ExperimentConfig, IsotropicFields, ReplicaFields, DDFields):
    dd_particles: int = unit_field(1000, "particles")
    d: int = unit_field(40, "coordinates")
    n_hermite: int = unit_field(16, "Hermite terms")
    n_neurons: tuple = unit_field((64, 128, 256, 512, 1024), "neurons")  # N-sweep at eps = eps_small
    eps_small: float = unit_field(1e-4, "time / step")
    eps_sweep: tuple = unit_field((5e-4, 1e-3, 2e-3, 4e-3), "time / step")    # eps-sweep at N = n_large
    n_large: int = unit_field(2048, "neurons")
    t_max: float = unit_field(0.5, "time t")
    n_times: int = unit_field(6, "saves")

    def validate(self):
        self.validate_isotropic(), self.validate_sgd(), self.validate_dd()
        check_sweep(self, "n_neurons", 2, 10**7)
        check_sweep(self, "eps_sweep", 1e-12, 1.0)
        # d >= 10: the Hermite truncation of the exact R_N assumes small cosines
        check_range(self, d=(10, 10**6), eps_small=(1e-12, 1.0), n_large=(2, 10**7), t_max=(1e-12, 1e6),
                    n_times=(2, 10**4))
        check_save_grid(self.t_max, self.n_times, (self.eps_small,) + tuple(self.eps_sweep))

    def times(self):
        return np.linspace(0.0, self.t_max, self.n_times)

    def grid(self):
        """(N, eps, sweep) rows in the order of error_scaling.nc."""
        return ([(int(n), float(self.eps_small), "N") for n in self.n_neurons]
                + [(int(self.n_large), float(e), "eps") for e in self.eps_sweep])


@register
class PnasErrorScaling(Experiment):
    name = "pnas-error-scaling"
    description = ("PNAS 2018 SGD->DD bound: sup_t |R_N - R(rho_t)| vs N (small eps) and vs eps (large N), "
                   "fitted exponents next to sqrt(max(1/N, eps))")
    Config = Config
    quick = {"n_neurons": (32, 128, 512), "eps_small": 1e-4, "eps_sweep": (1e-3, 2.5e-3, 5e-3), "n_large": 512,
             "t_max": 0.2, "n_times": 5, "replicas": 6, "dd_particles": 300, "dd_rtol": 1e-6, "engine": "generic"}

    def estimate(self, cfg):
        # SGD: ~30 flops per neuron-coordinate per step and replica at ~1e9 flop/s on 2 cores, plus
        # ~20 s compile per point; peak memory: the N x N cosine matrix of the exact R_N and the
        # parameters, per replica.  DD: ~ M^2 n_hermite per right-hand side, ~1e3 evaluations.
        rows = cfg.grid()
        sec = sum(cfg.t_max / e * cfg.replicas * 30.0 * n * cfg.d / 1e9 + 20.0 for n, e, _ in rows)
        sec += cfg.dd_particles ** 2 * cfg.n_hermite * 1e3 / 1e9
        nmax = max(n for n, _, _ in rows)
        mem = 8.0 * cfg.replicas * (3 * nmax ** 2 + 4 * nmax * cfg.d) + 8.0 * cfg.dd_particles ** 2 * 4
        field = dominant_field(cfg, grow=("n_neurons", "n_large", "d", "replicas"), shrink=("eps_small", "eps_sweep"))
        return {"bytes": mem, "seconds": sec, "field": field}

    def points(self, cfg):
        base = {**cfg.problem_params(cfg.d), "times": cfg.times().tolist()}
        dd = Point.make(self.name, {"kind": "dd", **base, "dd_particles": cfg.dd_particles, "dd_rtol": cfg.dd_rtol},
                        cfg.seed)
        sgd = {(n, e): Point.make(self.name, {"kind": "sgd", **base, "n_neurons": n, "eps": e,
                                              "replicas": cfg.replicas, "engine": cfg.engine}, cfg.seed)
               for n, e, _ in cfg.grid()}
        return [dd, *sgd.values()]

    def compute(self, point, progress=False):
        return gap_point(point, progress)

    def reduce(self, cfg, results):
        pts = self.points(cfg)
        dd = results[pts[0].key]
        by = {(p.params["n_neurons"], p.params["eps"]): results[p.key] for p in pts[1:]}
        rows, times = cfg.grid(), cfg.times()
        tab = gap_table([by[(n, e)].risk.values for n, e, _ in rows], dd.dd_risk.values, len(times))
        iN, iE = [i for i, r in enumerate(rows) if r[2] == "N"], [i for i, r in enumerate(rows) if r[2] == "eps"]
        sN, sE = sweep_means(tab, iN), sweep_means(tab, iE)
        Ns, eps = [rows[i][0] for i in iN], [rows[i][1] for i in iE]
        fits = {f"{k}{s}": fit_or_none(x, sw[v]) for k, x, sw in (("n", Ns, sN), ("eps", eps, sE))
                for s, v in (("", "gap_mean"), ("_fluct", "fluct_mean"), ("_bias", "bias"))}
        ds = xr.Dataset(
            {"risk": (("point", "replica", "time"), tab["risk"]), "gap": (("point", "replica"), tab["gap"]),
             "fluct": (("point", "replica"), tab["fluct"]), "bias": (("point",), tab["bias"]),
             "dd_risk": (("time",), tab["reference"])},
            coords={"point": np.arange(len(rows)), "n_neurons": ("point", [r[0] for r in rows]),
                    "eps": ("point", [r[1] for r in rows]), "sweep": ("point", [r[2] for r in rows]), "time": times},
            attrs={"description": "SGD exact population risk R_N per replica vs the radial DD risk R(rho_t); "
                                  "gap = sup_t |R_N - R(rho_t)| per replica (PNAS 2018 Thm 3 quantity)"})
        ex = lambda f: None if f is None else exponent_summary(f)  # noqa: E731
        summary = {
            "label": "PNAS 2018 SGD->DD error bound sqrt(max(1/N, eps)): measured exponents",
            "quantity": "replica mean of the per-replica sup over save times (t=0 included) of |R_N - R(rho_t)|",
            "n_exponent": ex(fits["n"]), "eps_exponent": ex(fits["eps"]),
            "n_exponent_bound": -0.5, "eps_exponent_bound": 0.5,
            **{f"{k}_exponent_{name}": ex(fits[f"{k}_{s}"])
               for k in ("n", "eps") for s, name in (("fluct", "fluctuation"), ("bias", "bias"))},
            "fit_r2": {k: (None if v is None else v["r2"]) for k, v in fits.items()},
            "n_sweep": {"eps": cfg.eps_small, "n_neurons": Ns, **sN},
            "eps_sweep": {"n_neurons": cfg.n_large, "eps": eps, **sE},
            "dd_risk": tab["reference"].tolist(), "times": times.tolist(), "d": cfg.d, "sgd_runs": len(pts) - 1,
            "sgd_seconds": {f"N={n},eps={e:g}": v.attrs["seconds"] for (n, e), v in by.items()},
            "figures": ["error_scaling.png"], "data": ["error_scaling.nc"],
        }
        summary.update(divergence_summary({"dd": dd, **{f"N={n},eps={e:g}": v for (n, e), v in by.items()}}))
        return summary, {"error_scaling.nc": ds}

    def render(self, cfg, results, summary):
        n, e = summary["n_sweep"], summary["eps_sweep"]
        return {"error_scaling": plot_gap_sweeps(
            [(n["n_neurons"], n, fit_or_none(n["n_neurons"], n["gap_mean"]), "N", f"vs N at eps = {cfg.eps_small:g}",
              ((-0.5, "bound slope -1/2"), (-1.0, "slope -1 (1/N bias)"))),
             (e["eps"], e, fit_or_none(e["eps"], e["gap_mean"]), "eps", f"vs eps at N = {cfg.n_large}",
              ((0.5, "bound slope +1/2"), (1.0, "slope +1 (O(eps) drift)")))],
            f"PNAS SGD -> DD error, isotropic Gaussians d={cfg.d}, T={cfg.t_max:g} (bound ~ sqrt(max(1/N, eps)))")}

    @staticmethod
    def format_summary(summary: dict) -> str:
        rows = [summary["label"]]
        for k, b in (("n_exponent", -0.5), ("eps_exponent", 0.5)):
            for part in ("", "_fluctuation", "_bias"):
                f = summary[k + part]
                txt = "n/a" if f is None else f"{f['value']:.3f}  95% CI [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"
                rows.append(f"{k:>14}: {txt}  (bound {b:+.1f})" if not part else f"{'':>16}{part[1:]}: {txt}")
        return "\n".join(rows)
