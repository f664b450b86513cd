"""Demonstration of Theorem 1(A) of Mei-Misiakiewicz-Montanari (COLT 2019): dimension-free bounds.

The paper has no experiments; this is a library-designed demonstration on the isotropic Gaussian
task of PNAS 2018 (only w trained: fixed coefficients, Theorem 1(A)), whose DD is solved exactly by
the radial reduction; the ramp has a mild slope 2 (s1 = -1, s2 = 1) so that runs are short.

    sup_k |R_N(theta^k) - R(rho_{k eps})| <= K e^{KT} [ (sqrt(log N) + z)/sqrt(N)
                                                       + (sqrt(D + log N) + z) sqrt(eps) ]   (Thm 1(A))

Points: per d in ``dims`` the radial DD reference, and one SGD point (``replicas`` runs of the
exact R_N) per distinct (N, eps) of an N-sweep at ``eps`` and an eps-sweep at the largest N.
``reduce`` fits per d the N-exponent of the replica-mean gap (theory -1/2 up to sqrt(log N)), the
prefactor mean_N gap sqrt(N) (does not grow with d), the eps-exponent and gap / sqrt(d eps).
The trained-second-layer setting (Theorem 1(B)) is exercised by ``mmm-kernel-limit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.gap_points import fit_or_none, gap_table
from ..analysis.scaling import exponent_summary
from ..errors import check
from .base import Experiment, ExperimentConfig, Point, register, unit_field
from .pieces import (DDFields, IsotropicFields, ReplicaFields, check_range, check_save_grid, check_sweep,
                     divergence_summary, dominant_field, gap_point)
from .scaling_plots import plot_dimension_free


@dataclass(frozen=True)
class Config(ExperimentConfig, IsotropicFields, ReplicaFields, DDFields):
    dd_particles: int = unit_field(1000, "particles")
    dims: tuple = unit_field((5, 15, 50), "coordinates")
    n_neurons: tuple = unit_field((16, 32, 64, 128, 256, 512), "neurons")
    eps: float = unit_field(2e-5, "time / step")
    eps_sweep: tuple = unit_field((1e-4, 5e-4, 2.5e-3, 1e-2), "time / step")
    t_max: float = unit_field(1.0, "time t")
    n_times: int = unit_field(11, "saves")
    replicas: int = unit_field(16, "replicas")
    s1: float = unit_field(-1.0, None)
    s2: float = unit_field(1.0, None)
    dd_rtol: float = unit_field(1e-6, None)
    n_hermite: int = unit_field(24, "Hermite terms")  # exact R_N for d >= 10 (|cos| ~ d^-1/2); d < 10 keeps 64

    def validate(self):
        self.validate_isotropic(), self.validate_sgd(), self.validate_dd()
        check_sweep(self, "dims", 2, 10**6, min_len=2, increasing=False)
        check_range(self, eps=(1e-12, 1.0), t_max=(1e-12, 1e6), n_times=(2, 10**4))
        check(max(self.dims) >= 10 * min(self.dims), "dims", "must span at least a factor 10")
        check_sweep(self, "n_neurons", 1, 10**7)
        check_sweep(self, "eps_sweep", 1e-12, 1.0, increasing=False)
        check_save_grid(self.t_max, self.n_times, (self.eps,) + tuple(self.eps_sweep))

    def times(self):
        return np.linspace(0.0, self.t_max, self.n_times)

    def sgd_grid(self):
        """(N, eps) of the N-sweep, then of the eps-sweep at the largest N."""
        return [(int(n), float(self.eps)) for n in self.n_neurons] + [(int(self.n_neurons[-1]), float(e))
                                                                      for e in self.eps_sweep]


@register
class MMMDimensionFree(Experiment):
    name = "mmm-dimension-free"
    description = ("COLT 2019 Thm 1(A) demonstration (no figure in the paper): sup_t |R_N - R(rho_t)| vs N "
                   "for several d (dimension-free N^-1/2) and vs eps (sqrt(d eps))")
    Config = Config
    # quick: 2 dims x (3 N + 2 extra eps) = 10 SGD points (the eps-sweep's first point is the N-sweep's
    # largest-N run: same content, same key, computed once), T = 0.2, 6 replicas vmapped per point
    quick = {"dims": (5, 50), "n_neurons": (16, 64, 256), "eps": 2e-4, "eps_sweep": (2e-4, 2e-3, 1e-2),
             "t_max": 0.2, "n_times": 5, "replicas": 6, "dd_particles": 200, "dd_rtol": 1e-5, "engine": "generic"}

    def estimate(self, cfg):
        # as pnas-error-scaling: ~30 flops per neuron-coordinate per SGD step and replica at ~1e9
        # flop/s, ~20 s compile per point; memory: the N x N cosine matrix of the exact R_N per replica
        sec = sum(cfg.t_max / e * cfg.replicas * 30.0 * n * d / 1e9 + 20.0 for d in cfg.dims for n, e in cfg.sgd_grid())
        sec += len(cfg.dims) * cfg.dd_particles ** 2 * 64 * 1e3 / 1e9
        mem = 8.0 * cfg.replicas * (3 * max(cfg.n_neurons) ** 2 + 4 * max(cfg.n_neurons) * max(cfg.dims))
        field = dominant_field(cfg, grow=("n_neurons", "dims", "replicas"), shrink=("eps", "eps_sweep"))
        return {"bytes": mem + 32.0 * cfg.dd_particles ** 2, "seconds": sec, "field": field}

    def points(self, cfg):
        out = []
        for d in cfg.dims:
            base = {**cfg.problem_params(d, cfg.n_hermite if d >= 10 else 64), "times": cfg.times().tolist()}
            out.append(Point.make(self.name, {"kind": "dd", **base, "dd_particles": cfg.dd_particles,
                                              "dd_rtol": cfg.dd_rtol}, cfg.seed))
            out += list({(n, e): Point.make(self.name, {"kind": "sgd", **base, "n_neurons": n, "eps": e,
                                                        "replicas": cfg.replicas, "engine": cfg.engine}, cfg.seed)
                         for n, e in cfg.sgd_grid()}.values())
        return out

    def compute(self, point, progress=False):
        return gap_point(point, progress)

    def reduce(self, cfg, results):
        by = {(p.params["d"], p.params["kind"], p.params.get("n_neurons"), p.params.get("eps")): results[p.key]
              for p in self.points(cfg)}
        dims, Ns, eps, grid = list(cfg.dims), list(cfg.n_neurons), list(cfg.eps_sweep), cfg.sgd_grid()
        times = cfg.times()
        tabs = [gap_table([by[(d, "sgd", n, e)].risk.values for n, e in grid], by[(d, "dd", None, None)].dd_risk.values,
                          len(times)) for d in dims]
        gaps = np.stack([t["gap"] for t in tabs])  # (d, grid row, replica)
        g_n, g_e = gaps[:, :len(Ns)], gaps[:, len(Ns):]
        ds = xr.Dataset({"gap_n": (("d", "n_neurons", "replica"), g_n), "gap_eps": (("d", "eps", "replica"), g_e),
                         "dd_risk": (("d", "time"), np.stack([t["reference"] for t in tabs]))},
                        coords={"d": dims, "n_neurons": Ns, "eps": eps, "time": times},
                        attrs={"description": "sup_{t<=T} |R_N(theta^k) - R(rho_t)| per replica (COLT 2019 Thm 1(A) "
                                              "demonstration); gap_n at eps=%g, gap_eps at N=%d" % (cfg.eps, Ns[-1])})
        mean_n, mean_e = np.nanmean(g_n, -1), np.nanmean(g_e, -1)
        n_exp = {str(d): fit_or_none(Ns, mean_n[i]) for i, d in enumerate(dims)}
        eps_exp = {str(d): fit_or_none(eps, mean_e[i]) for i, d in enumerate(dims)}
        ex = lambda f: None if f is None else exponent_summary(f)  # noqa: E731
        lists = lambda a: {str(d): [float(v) for v in a[i]] for i, d in enumerate(dims)}  # noqa: E731
        summary = {
            "label": "demonstration of COLT 2019 Theorem 1(A) (the paper has no experiments)",
            "n_exponent": {k: ex(v) for k, v in n_exp.items()}, "n_exponent_theory": -0.5,
            "n_prefactor": {str(d): float(np.mean(mean_n[i] * np.sqrt(Ns))) for i, d in enumerate(dims)},
            "eps_exponent": {k: ex(v) for k, v in eps_exp.items()},
            "gap_over_sqrt_d_eps": lists(mean_e / np.sqrt(np.outer(dims, eps))),
            "gap_n_mean": lists(mean_n), "gap_eps_mean": lists(mean_e),
            "gap_n_sem": lists(np.nanstd(g_n, -1, ddof=1) / np.sqrt(cfg.replicas)),
            "n_neurons": Ns, "eps_sweep": eps, "eps": cfg.eps, "sgd_runs": len(results) - len(dims),
            "figures": ["dimension_free.png"], "data": ["gaps.nc"]}
        summary.update(divergence_summary({(f"d={k[0]}" + ("" if k[1] == "dd" else f",N={k[2]},eps={k[3]:g}")): v
                                           for k, v in by.items()}))
        return summary, {"gaps.nc": ds}

    def render(self, cfg, results, summary):
        return {"dimension_free": plot_dimension_free(summary, list(cfg.dims), cfg.n_neurons, cfg.eps_sweep, cfg.eps)}

    @staticmethod
    def format_summary(summary: dict) -> str:
        rows = [summary["label"], f"{'d':>6} {'N exponent':>11} {'95% CI':>18} {'prefactor':>10} {'eps exponent':>13}"]
        for d, f in summary["n_exponent"].items():
            e, nan = summary["eps_exponent"][d], {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
            f, e = f or nan, e or nan
            rows.append(f"{d:>6} {f['value']:>11.3f} [{f['ci_low']:>7.3f},{f['ci_high']:>7.3f}] "
                        f"{summary['n_prefactor'][d]:>10.4f} {e['value']:>13.3f}")
        return "\n".join(rows)
