"""PNAS 2018 Figure 2 (theory notes section 7.2): asymptotic risk versus Delta for the isotropic task.

For each Delta on a grid: the long-time radial DD risk (at ``dd_t_long``, line; the DD is cheap, so
it runs far past the SGD horizon, and its certificates say whether it has reached a fixed
point), the DD risk at the SGD horizon t_max, finite-N SGD risk at t_max (symbols,
``replicas`` runs per point), and the convex global minimum inf_rho R(rho) over radial measures
(``analysis.radial_global_min``, dashed; independent of any dynamics, section 7.1).  Same sigma
as Fig. 1 (the ramp (t1, t2, s1, s2)), no offset, a_i = 1.

``d`` is a string field: a positive integer (DD, global minimum AND SGD at that d) or "inf" (the
d = infinity reduction of section 7.1 for the DD and the global minimum; SGD cannot run at
d = inf and then runs at the finite ``sgd_d``).  Step size: eps = 1e-5 as in pnas-isotropic at
d = 40 (section 5: SGD noise grows like eps d slope^2, a few-percent radius bias over t = 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np
import xarray as xr

from ..analysis import radial_certificates, radial_global_min
from ..errors import ConfigError, check
from ..problem import GaussianInit, IsotropicGaussians, Problem, ramp, sigma_w
from ..solvers import RadialModel, SGDConfig, simulate_sgd, solve_radial_dd
from .base import Experiment, ExperimentConfig, register


def parse_d(raw) -> float:
    """'inf' / 'infinity' -> math.inf, a positive integer string -> int; else ConfigError('d')."""
    s = str(raw).strip().lower()
    if s in ("inf", "infinity", "+inf"):
        return math.inf
    try:
        d = int(s)
    except ValueError:
        raise ConfigError("d", f"use a positive integer or 'inf', got {raw!r}") from None
    if d < 2:
        raise ConfigError("d", f"must be >= 2 or 'inf', got {raw!r}")
    return d


@dataclass(frozen=True)
class Config(ExperimentConfig):
    d: str = "40"
    sgd_d: int = 40
    deltas: tuple = (0.2, 0.35, 0.5, 0.65, 0.8)
    n_neurons: int = 800
    kappa: float = 0.8
    eps: float = 1e-5
    t_max: float = 10.0
    dd_t_long: float = 2000.0
    n_times: int = 12
    replicas: int = 1
    dd_particles: int = 400
    dd_rtol: float = 1e-7
    n_hermite: int = 16
    t1: float = 0.5
    t2: float = 1.5
    s1: float = -2.5
    s2: float = 7.5
    dtype: str = "float64"

    def validate(self):
        parse_d(self.d)
        check(isinstance(self.sgd_d, int) and self.sgd_d >= 2, "sgd_d", f"must be an integer >= 2, got {self.sgd_d!r}")
        check(len(self.deltas) >= 1 and all(0 < x < 1 for x in self.deltas), "deltas", "need values in (0, 1)")
        check(self.n_neurons >= 1, "n_neurons", f"must be >= 1, got {self.n_neurons}")
        check(self.kappa > 0, "kappa", f"must be > 0, got {self.kappa}")
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        check(self.t_max > 0, "t_max", f"must be > 0, got {self.t_max}")
        check(self.dd_t_long >= self.t_max, "dd_t_long", f"must be >= t_max={self.t_max}, got {self.dd_t_long}")
        check(self.n_times >= 2, "n_times", f"must be >= 2, got {self.n_times}")
        check(self.replicas >= 1, "replicas", f"must be >= 1, got {self.replicas}")
        check(self.dd_particles >= 10, "dd_particles", f"must be >= 10, got {self.dd_particles}")
        check(self.n_hermite >= 1, "n_hermite", f"must be >= 1, got {self.n_hermite}")
        check(self.t2 > self.t1, "t2", f"must exceed t1={self.t1}")
        check(self.dtype in ("float32", "float64"), "dtype", f"use float32 or float64, got {self.dtype!r}")

    @property
    def d_value(self):
        return parse_d(self.d)

    @property
    def d_sgd(self) -> int:
        return self.sgd_d if math.isinf(self.d_value) else int(self.d_value)

    @property
    def d_interaction(self) -> str:
        return "inf" if math.isinf(self.d_value) else "finite"

    def problem(self, delta) -> Problem:
        return Problem(sigma_w(ramp(self.t1, self.t2, self.s1, self.s2)),
                       IsotropicGaussians(d=self.d_sgd, delta=delta), GaussianInit(kappa=self.kappa))

    def save_times(self) -> np.ndarray:
        grid = np.geomspace(self.t_max / 10 ** 3, self.t_max, self.n_times - 1)
        return np.unique(np.round(np.concatenate([[0.0], grid]) / self.eps) * self.eps)


@register
class PnasRiskVsDelta(Experiment):
    name = "pnas-risk-vs-delta"
    description = "PNAS 2018 Fig. 2: long-time risk vs Delta (DD, SGD, convex global minimum)"
    Config = Config
    # quick: a smoke test (d = 10, 2 Deltas, t = 0.5), far from the long-time limit
    quick = {"d": "10", "sgd_d": 10, "deltas": (0.4, 0.8), "n_neurons": 100, "eps": 1e-4, "t_max": 0.5, "dd_t_long": 5.0,
             "n_times": 4, "dd_particles": 30, "n_hermite": 4}

    def run(self, cfg: Config, out, progress: bool) -> dict:
        times = cfg.save_times()
        table, curves = [], []
        for i, delta in enumerate(cfg.deltas):
            problem = cfg.problem(delta)
            sgd = simulate_sgd(problem, SGDConfig(n_neurons=cfg.n_neurons, eps=cfg.eps, times=tuple(times),
                                                  replicas=cfg.replicas, dtype=cfg.dtype),
                               jax.random.fold_in(jax.random.PRNGKey(cfg.seed), i), progress=progress)
            # the DD starts from rho_0 = N(0, kappa^2/d_sgd I) (radii kappa chi_d / sqrt(d)) in both cases
            n = len(sgd.times)
            long = np.geomspace(sgd.times[-1], cfg.dd_t_long, 8)[1:] if cfg.dd_t_long > sgd.times[-1] else []
            dd = solve_radial_dd(problem, np.concatenate([sgd.times, long]), n_particles=cfg.dd_particles,
                                 rtol=cfg.dd_rtol, d_interaction=cfg.d_interaction, n_hermite=cfg.n_hermite,
                                 progress=progress)
            gmin = radial_global_min(problem, cfg.d_interaction, n_hermite=cfg.n_hermite)
            model = RadialModel.from_problem(problem, cfg.d_interaction, cfg.n_hermite)
            n = min(n, len(dd.times))
            cert = radial_certificates(model, dd.radii[-1])
            sgd_final = sgd.risk[:, n - 1]
            table.append({
                "delta": float(delta),
                "dd_risk": float(dd.risk[-1]),
                "dd_t_long": float(dd.times[-1]),
                "dd_risk_at_t_max": float(dd.risk[n - 1]),
                "sgd_risk": float(sgd_final.mean()),
                "sgd_risk_std": float(sgd_final.std(ddof=1)) if cfg.replicas > 1 else 0.0,
                "global_min_risk": float(gmin["risk"]),
                "global_min_lower_bound": float(gmin["lower_bound"]),
                "global_min_fw_gap": float(gmin["fw_gap"]),
                "dd_stationarity": cert["stationarity"],
                "dd_gap": cert["gap"],
                "t_final": float(sgd.times[n - 1]),
                "diverged": bool(sgd.diverged or dd.diverged),
            })
            curves.append((sgd.times[:n], sgd.risk[:, :n].mean(axis=0), dd.risk[:n]))
        ds = xr.Dataset(
            {k: (("delta",), np.asarray([row[k] for row in table], dtype=float))
             for k in ("dd_risk", "dd_risk_at_t_max", "sgd_risk", "sgd_risk_std", "global_min_risk", "global_min_lower_bound",
                       "dd_stationarity", "dd_gap")},
            coords={"delta": np.asarray(cfg.deltas, dtype=float)},
            attrs={"d": cfg.d, "sgd_d": cfg.d_sgd, "t_max": cfg.t_max},
        )
        out.write_dataset("risk_vs_delta.nc", ds)
        out.savefig(self._figure(cfg, table), "risk_vs_delta")
        return {"d": cfg.d, "sgd_d": cfg.d_sgd, "d_interaction": cfg.d_interaction, "table": table,
                "figures": ["risk_vs_delta.png"], "data": ["risk_vs_delta.nc"]}

    @staticmethod
    def _figure(cfg, table):
        from .plots import plt

        fig, ax = plt.subplots(figsize=(5.5, 4.0))
        x = [r["delta"] for r in table]
        ax.plot(x, [r["dd_risk"] for r in table], "-", color="C3", label=f"DD (d={cfg.d}), t={cfg.dd_t_long:g}")
        ax.plot(x, [r["dd_risk_at_t_max"] for r in table], ":", color="C3", label=f"DD (d={cfg.d}), t={cfg.t_max:g}")
        ax.errorbar(x, [r["sgd_risk"] for r in table], yerr=[r["sgd_risk_std"] for r in table], fmt="o",
                    color="C0", ms=5, label=f"SGD (d={cfg.d_sgd}, N={cfg.n_neurons})")
        ax.plot(x, [max(r["global_min_risk"], 1e-16) for r in table], "--", color="k",
                label="inf R (convex global min)")
        ax.set_yscale("log")
        ax.set_xlabel("Delta")
        ax.set_ylabel("risk")
        ax.legend(frameon=False, fontsize=8)
        ax.set_title("PNAS Fig. 2: risk vs Delta")
        fig.tight_layout()
        return fig

    @staticmethod
    def format_summary(summary: dict) -> str:
        rows = [f"d = {summary['d']} (SGD at d = {summary['sgd_d']})",
                f"{'Delta':>6} {'DD(t_long)':>11} {'DD(t_max)':>11} {'SGD(t_max)':>11} {'global min':>11} "
                f"{'DD stat.':>10} {'DD gap':>10}"]
        for r in summary["table"]:
            rows.append(f"{r['delta']:>6.3g} {r['dd_risk']:>11.4e} {r['dd_risk_at_t_max']:>11.4e} {r['sgd_risk']:>11.4e} "
                        f"{r['global_min_risk']:>11.4e} {r['dd_stationarity']:>10.2e} {r['dd_gap']:>10.2e}")
        return "\n".join(rows)
