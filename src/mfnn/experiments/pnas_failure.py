"""PNAS 2018 Figure 4 (theory notes section 7.4): a non-monotone activation where the DD predicts
which initialization reaches near-optimal risk and which stalls at a bad fixed point.

Isotropic data (section 7.1), Delta = 0.5, d = 320, N = 800, unit sigma(<w, x>), w_i^0 ~
N(0, kappa^2/d I_d) with kappa in {0.1, 0.4}.  The paper does not give its sigma; this one is OURS.

Designed activation (even, bounded, piecewise linear; values at |t| = breakpoint):

    |t|      0     0.1    0.3    1.0    2.0   (flat beyond)
    sigma   -0.5   0.5   -1.5   -1.5    3.5

Why it fails for small kappa.  At d = inf a point mass delta_r has risk
R(delta_r) = (1/2)(1 - m(1.5 r))^2 + (1/2)(1 + m(0.5 r))^2 (section 7.1, tau_+- = 1 +- Delta), and
2 psi'(r; delta_r) = d/dr R(delta_r), so every critical point of r -> R(delta_r) is a DD fixed point.
The small bump sigma(0.1) = 0.5 makes R(delta_r) have a local minimum at r ~ 0.05 (R ~ 0.77: the
tau_+ class sees the bump, the tau_- class sees sigma(0) = -0.5); the dip to -1.5 on [0.3, 1]
raises a barrier (R ~ 2 at r ~ 0.33); beyond it m(1.5 r) -> +1 on the rise to 3.5 while
m(0.5 r) ~ -1 sits in the dip, so the global minimum (R ~ 0.007 at d = inf, ~0.01 at d = 320) is
a single radius r* ~ 1.36.  w ~ N(0, kappa^2/d I) has ||w|| = kappa (1 +- 0.04) at d = 320: kappa
= 0.1 starts inside the trap's basin, kappa = 0.4 beyond the barrier.  The stalled state is a fixed
point (psi' ~ 0 on its support) but not a minimizer: psi(.; rho) is lower near r*, gap ~ 0.98
(section 4).  This design came from scanning R(delta_r) and the d = inf radial DD over shapes.

Step size (section 5).  SGD noise inflates ||w||^2 at a rate ~ 4 eps R E[sigma'^2] d (1 + Delta^2)
per unit time; in the trap sigma' = 10 on every pre-activation and r^2 ~ 2.5e-3, so eps = 1e-5
pushes the kappa = 0.1 run over the barrier within t ~ 0.1 (measured): the SGD then does NOT track
the DD.  eps = 1e-6 keeps it in the trap (radius bias ~ 10%, risk bias ~ 0.5%).  Horizon
t_max = 2: at t = 1 the kappa = 0.4 DD is still 1.6e-3 above the global minimum (gap 0.0096),
at t ~ 2 it has converged.  That is 2 x 10^6 steps per kappa (a few minutes each on 2 idle
CPU cores; measured 435 s in total for t_max = 1 on a heavily shared machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import xarray as xr

from ..analysis import radial_certificates, radial_global_min
from ..errors import check
from ..problem import GaussianInit, IsotropicGaussians, PiecewiseLinear, Problem, sigma_w
from ..solvers import RadialModel, SGDConfig, simulate_sgd, solve_radial_dd
from .base import Experiment, ExperimentConfig, register

# sigma on |t| (mirrored to t < 0): knots at 0 and at these breakpoints, flat beyond the last
HALF_BREAKPOINTS = (0.1, 0.3, 1.0, 2.0)
HALF_VALUES = (-0.5, 0.5, -1.5, -1.5, 3.5)  # sigma(0), sigma(0.1), sigma(0.3), sigma(1), sigma(2)


def even_piecewise_linear(half_breakpoints, half_values) -> PiecewiseLinear:
    """sigma(t) = g(|t|), g piecewise linear through (0, v_0), (b_j, v_{j+1}), flat beyond b_last."""
    b = tuple(float(x) for x in half_breakpoints)
    v = tuple(float(x) for x in half_values)
    bp = tuple(-x for x in reversed(b)) + (0.0,) + b
    vals = tuple(reversed(v[1:])) + (v[0],) + v[1:]
    return PiecewiseLinear(bp, vals, name="even_piecewise_linear")


@dataclass(frozen=True)
class Config(ExperimentConfig):
    d: int = 320
    delta: float = 0.5
    n_neurons: int = 800
    kappas: tuple = (0.1, 0.4)
    eps: float = 1e-6
    t_max: float = 2.0
    n_times: int = 16
    replicas: int = 1
    dd_particles: int = 200
    dd_n_hermite: int = 8  # E[c^k] ~ d^{-k/2}: k < 8 is exact to ~1e-8 at d = 320
    dd_rtol: float = 1e-7
    half_breakpoints: tuple = HALF_BREAKPOINTS
    half_values: tuple = HALF_VALUES
    dtype: str = "float64"

    def validate(self):
        check(self.d >= 2, "d", f"must be >= 2, got {self.d}")
        check(0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
        check(self.n_neurons >= 1, "n_neurons", f"must be >= 1, got {self.n_neurons}")
        check(len(self.kappas) >= 1 and all(k > 0 for k in self.kappas), "kappas", "need positive values")
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        check(self.t_max > 0, "t_max", f"must be > 0, got {self.t_max}")
        check(self.n_times >= 2, "n_times", f"must be >= 2, got {self.n_times}")
        check(self.replicas >= 1, "replicas", f"must be >= 1, got {self.replicas}")
        check(self.dd_particles >= 10, "dd_particles", f"must be >= 10, got {self.dd_particles}")
        check(self.dd_n_hermite >= 1, "dd_n_hermite", f"must be >= 1, got {self.dd_n_hermite}")
        check(len(self.half_values) == len(self.half_breakpoints) + 1, "half_values",
              "need one value at 0 plus one per breakpoint")
        check(all(b > 0 for b in self.half_breakpoints)
              and all(b2 > b1 for b1, b2 in zip(self.half_breakpoints, self.half_breakpoints[1:])),
              "half_breakpoints", "must be positive and strictly increasing")
        check(self.dtype in ("float32", "float64"), "dtype", f"use float32 or float64, got {self.dtype!r}")

    def activation(self) -> PiecewiseLinear:
        return even_piecewise_linear(self.half_breakpoints, self.half_values)

    def problem(self, kappa) -> Problem:
        return Problem(sigma_w(self.activation()), IsotropicGaussians(d=self.d, delta=self.delta),
                       GaussianInit(kappa=kappa))

    def save_times(self) -> np.ndarray:
        grid = np.geomspace(self.t_max / 10 ** 3, self.t_max, self.n_times - 1)
        return np.unique(np.round(np.concatenate([[0.0], grid]) / self.eps) * self.eps)


_CERT_KEYS = ("risk", "stationarity", "stationarity_rms", "gap", "support_gap", "risk_lower_bound",
              "r_argmin", "psi_min", "psi_mean")


@register
class PnasFailure(Experiment):
    name = "pnas-failure"
    description = "PNAS 2018 Fig. 4: non-monotone sigma, kappa = 0.1 stalls at a bad fixed point, 0.4 converges"
    Config = Config
    # quick: a smoke test of the pipeline (d = 40, a few thousand steps), not the phenomenon
    quick = {"d": 40, "n_neurons": 100, "eps": 2e-5, "t_max": 0.05, "n_times": 4, "dd_particles": 20,
             "dd_n_hermite": 4}

    def run(self, cfg: Config, out, progress: bool) -> dict:
        times = cfg.save_times()
        base = cfg.problem(cfg.kappas[0])
        model = RadialModel.from_problem(base, "finite", cfg.dd_n_hermite)
        gmin = radial_global_min(base, "finite", n_hermite=cfg.dd_n_hermite)
        runs, per_kappa = {}, []
        for i, kappa in enumerate(cfg.kappas):
            problem = cfg.problem(kappa)
            sgd = simulate_sgd(problem, SGDConfig(n_neurons=cfg.n_neurons, eps=cfg.eps, times=tuple(times),
                                                  replicas=cfg.replicas, dtype=cfg.dtype),
                               jax.random.fold_in(jax.random.PRNGKey(cfg.seed), i), progress=progress)
            dd = solve_radial_dd(problem, sgd.times, n_particles=cfg.dd_particles, rtol=cfg.dd_rtol,
                                 n_hermite=cfg.dd_n_hermite, progress=progress)
            n = min(len(sgd.times), len(dd.times))
            runs[kappa] = (sgd, dd, n)
            cert_dd = radial_certificates(model, dd.radii[n - 1])
            # the SGD neurons' radii, read as a radial measure (rotation invariance holds only in law)
            cert_sgd = radial_certificates(model, sgd.w_norm[0, n - 1])
            per_kappa.append({
                "kappa": float(kappa),
                "sgd_final_risk": float(sgd.risk[:, n - 1].mean()),
                "dd_final_risk": float(dd.risk[n - 1]),
                "global_min_risk": float(gmin["risk"]),
                "excess_dd_risk": float(dd.risk[n - 1] - gmin["risk"]),
                "sgd_final_mean_w": float(sgd.w_norm[:, n - 1].mean()),
                "dd_final_mean_r": float(dd.radii[n - 1].mean()),
                "certificates_dd": {k: cert_dd[k] for k in _CERT_KEYS},
                "certificates_sgd_radial": {k: cert_sgd[k] for k in _CERT_KEYS},
                "sgd_diverged": bool(sgd.diverged),
                "dd_diverged": bool(dd.diverged),
            })
            ds = xr.Dataset(
                {"sgd_risk": (("replica", "time"), sgd.risk[:, :n]),
                 "sgd_w_norm": (("replica", "time", "neuron"), sgd.w_norm[:, :n]),
                 "dd_risk": (("time",), dd.risk[:n]), "dd_radius": (("time", "particle"), dd.radii[:n])},
                coords={"time": sgd.times[:n]},
                attrs={"kappa": float(kappa), "description": "SGD (exact population risk) and radial DD (finite d)"},
            )
            out.write_dataset(f"kappa_{kappa:g}.nc", ds)
        out.savefig(self._figure(cfg, runs, gmin["risk"]), "risk_and_norm")
        return {
            "activation": {"half_breakpoints": list(cfg.half_breakpoints), "half_values": list(cfg.half_values),
                           "symmetry": "even: sigma(t) = g(|t|)"},
            "global_min": {"risk": float(gmin["risk"]), "lower_bound": float(gmin["lower_bound"]),
                           "fw_gap": float(gmin["fw_gap"]), "support_r": gmin["support_r"],
                           "support_w": gmin["support_w"]},
            "per_kappa": per_kappa,
            "figures": ["risk_and_norm.png"],
            "data": [f"kappa_{k:g}.nc" for k in cfg.kappas],
        }

    @staticmethod
    def _figure(cfg, runs, gmin_risk):
        from .plots import plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for j, (kappa, (sgd, dd, n)) in enumerate(runs.items()):
            t = sgd.times[:n]
            pos = t > 0
            col = f"C{j}"
            ax1.plot(t[pos], sgd.risk[:, :n].mean(axis=0)[pos], "o", color=col, ms=4, label=f"SGD kappa={kappa:g}")
            ax1.plot(t[pos], dd.risk[:n][pos], "-", color=col, label=f"DD kappa={kappa:g}")
            ax2.plot(t[pos], sgd.w_norm[:, :n].mean(axis=(0, 2))[pos], "o", color=col, ms=4)
            ax2.plot(t[pos], dd.radii[:n].mean(axis=1)[pos], "-", color=col)
        ax1.axhline(gmin_risk, color="k", ls="--", lw=1, label="inf R (radial global min)")
        for ax in (ax1, ax2):
            ax.set_xscale("log")
            ax.set_xlabel("t = k eps")
        ax1.set_yscale("log")
        ax1.set_ylabel("population risk")
        ax2.set_ylabel("mean ||w||")
        ax1.legend(frameon=False, fontsize=8)
        fig.suptitle(f"PNAS Fig. 4: non-monotone sigma, d={cfg.d}, N={cfg.n_neurons}, Delta={cfg.delta}")
        fig.tight_layout()
        return fig

    @staticmethod
    def format_summary(summary: dict) -> str:
        g = summary["global_min"]
        rows = [f"global min (radial, finite d): {g['risk']:.5f}  (lower bound {g['lower_bound']:.5f})",
                f"{'kappa':>6} {'SGD risk':>10} {'DD risk':>10} {'DD stationarity':>16} {'DD gap':>10} "
                f"{'DD supp gap':>12} {'SGD gap':>10}"]
        for r in summary["per_kappa"]:
            c, s = r["certificates_dd"], r["certificates_sgd_radial"]
            rows.append(f"{r['kappa']:>6.3g} {r['sgd_final_risk']:>10.5f} {r['dd_final_risk']:>10.5f} "
                        f"{c['stationarity']:>16.2e} {c['gap']:>10.4g} {c['support_gap']:>12.4g} {s['gap']:>10.4g}")
        return "\n".join(rows)
