"""Demonstration of Theorem 1(A) of Mei-Misiakiewicz-Montanari (COLT 2019): dimension-free bounds.

The paper has no experiments; this is a library-designed demonstration (section 8, items 1-2 of
theory/kernel-limit-and-bounds.md), on the isotropic Gaussian task whose DD is solved exactly by
the radial reduction (``solve_radial_dd``; quantile particles, exact finite-d angular average):
y = +-1, x | y ~ N(0, (1 + y Delta)^2 I_d), unit sigma(<w, x>) with only w trained (fixed
coefficients, Theorem 1(A)), sigma the ramp with a mild slope (default t1=0.5, t2=1.5,
s1=-1, s2=1: slope 2, so runs are short), w^0 ~ N(0, kappa^2/d I_d), xi = 1.

Theorem 1(A):  sup_k |R_N(theta^k) - R(rho_{k eps})| <= K e^{KT} [ (sqrt(log N) + z)/sqrt(N)
                                                                 + (sqrt(D + log N) + z) sqrt(eps) ].

Measured (``R_N`` is the exact population risk of the SGD iterate, ``R(rho_t)`` the DD's):

1. N-sweep at a small eps for each d in ``dims`` (spanning >= 10x): gap(N, d) = replica mean of
   sup_{t <= T} |R_N - R(rho_t)|; a log-log least-squares fit over N gives ``n_exponent[d]``
   with a 95% t-interval (theory: -1/2 up to sqrt(log N)); ``n_prefactor[d]`` = mean over N of
   gap * sqrt(N) shows that the N-part does not grow with d.
2. eps-sweep at the largest N for each d: the step-size term grows like sqrt(d eps); reported as
   the fitted eps exponent per d (theory: 1/2 once this term dominates) and the ratios
   gap / sqrt(d eps) (roughly constant across d when the eps-term dominates).

The trained-second-layer setting (Theorem 1(B)/4(B): a and w trained) is exercised in the
``mmm-kernel-limit`` experiment: the radial DD used here needs fixed a.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import xarray as xr

from ..errors import check
from ..problem import GaussianInit, IsotropicGaussians, Problem, ramp, sigma_w
from ..analysis.scaling import exponent_summary, gap_sweep, loglog_fit
from ..solvers import solve_radial_dd
from .base import Experiment, ExperimentConfig, register


@dataclass(frozen=True)
class Config(ExperimentConfig):
    dims: tuple = (5, 15, 50)
    n_neurons: tuple = (16, 32, 64, 128, 256, 512)
    eps: float = 2e-5
    eps_sweep: tuple = (1e-4, 5e-4, 2.5e-3, 1e-2)
    t_max: float = 1.0
    n_times: int = 11
    replicas: int = 16
    delta: float = 0.8
    kappa: float = 0.8
    t1: float = 0.5
    t2: float = 1.5
    s1: float = -1.0
    s2: float = 1.0
    dd_particles: int = 1000
    dd_rtol: float = 1e-6
    engine: str = "auto"  # SGDConfig.engine; "generic" compiles much faster (used by --quick)
    n_hermite: int = 24  # Hermite terms of the exact R_N for d >= 10 (|cos| ~ d^-1/2); d < 10 keeps 64

    def validate(self):
        check(len(self.dims) >= 2 and all(d >= 2 for d in self.dims), "dims", "need >= 2 dimensions >= 2")
        check(max(self.dims) >= 10 * min(self.dims), "dims", "must span at least a factor 10")
        check(len(self.n_neurons) >= 3 and all(n >= 1 for n in self.n_neurons)
              and all(b > a for a, b in zip(self.n_neurons, self.n_neurons[1:])), "n_neurons",
              "need >= 3 increasing positive integers")
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        check(len(self.eps_sweep) >= 3 and all(e > 0 for e in self.eps_sweep), "eps_sweep",
              "need >= 3 positive step sizes")
        check(self.t_max > 0, "t_max", f"must be > 0, got {self.t_max}")
        check(self.n_times >= 2, "n_times", f"must be >= 2, got {self.n_times}")
        check(self.replicas >= 2, "replicas", f"must be >= 2, got {self.replicas}")
        check(0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
        check(self.kappa > 0, "kappa", f"must be > 0, got {self.kappa}")
        check(self.t2 > self.t1, "t2", f"must exceed t1={self.t1}")
        check(self.engine in ("auto", "generic", "blocked"), "engine", f"use auto, generic or blocked, got {self.engine!r}")
        check(self.n_hermite >= 4, "n_hermite", f"must be >= 4, got {self.n_hermite}")
        check(self.dd_particles >= 10, "dd_particles", f"must be >= 10, got {self.dd_particles}")
        for e in (self.eps,) + tuple(self.eps_sweep):
            gap = self.t_max / (self.n_times - 1)
            check(abs(gap / e - round(gap / e)) < 1e-6, "eps",
                  f"step {e} must divide the save interval {gap} (SGD saves at whole steps)")

    def problem(self, d: int) -> Problem:
        act = ramp(self.t1, self.t2, self.s1, self.s2)
        K = int(self.n_hermite) if d >= 10 else 64
        return Problem(sigma_w(act), IsotropicGaussians(d=int(d), delta=self.delta, n_hermite=K),
                       GaussianInit(kappa=self.kappa))


@register
class MMMDimensionFree(Experiment):
    name = "mmm-dimension-free"
    description = ("COLT 2019 Thm 1(A) demonstration (no figure in the paper): sup_t |R_N - R(rho_t)| vs N "
                   "for several d (dimension-free N^-1/2) and vs eps (sqrt(d eps))")
    Config = Config
    # quick: 2 dims x (3 N + 2 extra eps) = 10 SGD compilations (the eps-sweep's first point is the
    # N-sweep's largest-N run), T = 0.2, 6 replicas vmapped per call
    quick = {"dims": (5, 50), "n_neurons": (16, 64, 256), "eps": 2e-4, "eps_sweep": (2e-4, 2e-3, 1e-2),
             "t_max": 0.2, "n_times": 5, "replicas": 6, "dd_particles": 200, "dd_rtol": 1e-5, "engine": "generic"}

    def run(self, cfg: Config, out, progress: bool) -> dict:
        times = np.linspace(0.0, cfg.t_max, cfg.n_times)
        dims, Ns, eps_grid = list(cfg.dims), list(cfg.n_neurons), list(cfg.eps_sweep)
        gaps = np.zeros((len(dims), len(Ns), cfg.replicas))
        gaps_eps = np.zeros((len(dims), len(eps_grid), cfg.replicas))
        dd_risk = np.zeros((len(dims), len(times)))
        key = jax.random.PRNGKey(cfg.seed)
        runs = 0
        for i, d in enumerate(dims):
            problem = cfg.problem(d)
            dd = solve_radial_dd(problem, times, n_particles=cfg.dd_particles, rtol=cfg.dd_rtol, progress=progress)
            check(not dd.diverged, "dd", f"radial DD diverged at d={d}")
            dd_risk[i] = dd.risk
            # N-sweep at eps, then the eps-sweep at the largest N (a repeated (N, eps) pair is reused)
            points = [(N, cfg.eps) for N in Ns] + [(Ns[-1], e) for e in eps_grid]
            sw = gap_sweep(problem, dd.risk, times, points, replicas=cfg.replicas, key=jax.random.fold_in(key, i),
                           engine=cfg.engine, progress=progress, label=f"at d={d}")
            gaps[i], gaps_eps[i] = sw.gap[:len(Ns)], sw.gap[len(Ns):]
            runs += sw.runs

        ds = xr.Dataset(
            {"gap_n": (("d", "n_neurons", "replica"), gaps),
             "gap_eps": (("d", "eps", "replica"), gaps_eps),
             "dd_risk": (("d", "time"), dd_risk)},
            coords={"d": dims, "n_neurons": Ns, "eps": eps_grid, "time": times},
            attrs={"description": "sup_{t<=T} |R_N(theta^k) - R(rho_t)| per replica (COLT 2019 Thm 1(A) "
                                  "demonstration); gap_n at eps=%g, gap_eps at N=%d" % (cfg.eps, Ns[-1])})
        out.write_dataset("gaps.nc", ds)

        mean_n, mean_e = gaps.mean(-1), gaps_eps.mean(-1)
        sem_n = gaps.std(-1, ddof=1) / np.sqrt(cfg.replicas)
        n_exp = {str(d): loglog_fit(Ns, mean_n[i]) for i, d in enumerate(dims)}
        eps_exp = {str(d): loglog_fit(eps_grid, mean_e[i]) for i, d in enumerate(dims)}
        prefactor = {str(d): float(np.mean(mean_n[i] * np.sqrt(Ns))) for i, d in enumerate(dims)}
        ratio = {str(d): [float(g / np.sqrt(d * e)) for g, e in zip(mean_e[i], eps_grid)] for i, d in enumerate(dims)}

        from .plots import plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        ax = axes[0]
        for i, d in enumerate(dims):
            f = n_exp[str(d)]
            ax.errorbar(Ns, mean_n[i], yerr=sem_n[i], fmt="o", color=f"C{i}", capsize=2,
                        label=f"d={d}: slope {f['value']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}]")
            ax.plot(Ns, np.exp(f["intercept"]) * np.asarray(Ns, float) ** f["value"], "-", color=f"C{i}")
        ax.plot(Ns, mean_n[:, 0].mean() * (np.asarray(Ns, float) / Ns[0]) ** -0.5, "k:", label="slope -1/2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("sup_t |R_N - R(rho_t)|")
        ax.set_title(f"N-term at eps={cfg.eps:g}")
        ax.legend(frameon=False, fontsize=7)
        ax = axes[1]
        for i, d in enumerate(dims):
            ax.plot(np.sqrt(d * np.asarray(eps_grid)), mean_e[i], "-o", color=f"C{i}", label=f"d={d}")
        xs = np.sqrt(max(dims) * np.asarray(eps_grid))
        ax.plot(xs, mean_e[-1, -1] * xs / xs[-1], "k:", label="slope 1 in sqrt(d eps)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sqrt(d eps)")
        ax.set_ylabel("sup_t |R_N - R(rho_t)|")
        ax.set_title(f"step-size term at N={Ns[-1]}")
        ax.legend(frameon=False, fontsize=7)
        fig.suptitle("Thm 1(A) demonstration: dimension-free N-term, sqrt(d eps) step term")
        fig.tight_layout()
        out.savefig(fig, "dimension_free")

        return {
            "label": "demonstration of COLT 2019 Theorem 1(A) (the paper has no experiments)",
            "n_exponent": {k: exponent_summary(v) for k, v in n_exp.items()},
            "n_exponent_theory": -0.5,
            "n_prefactor": prefactor,
            "eps_exponent": {k: exponent_summary(v) for k, v in eps_exp.items()},
            "gap_over_sqrt_d_eps": ratio,
            "gap_n_mean": {str(d): [float(g) for g in mean_n[i]] for i, d in enumerate(dims)},
            "gap_eps_mean": {str(d): [float(g) for g in mean_e[i]] for i, d in enumerate(dims)},
            "n_neurons": Ns, "eps_sweep": eps_grid, "eps": cfg.eps, "sgd_runs": runs,
            "figures": ["dimension_free.png"],
            "data": ["gaps.nc"],
        }

    @staticmethod
    def format_summary(summary: dict) -> str:
        rows = [summary["label"], f"{'d':>6} {'N exponent':>11} {'95% CI':>18} {'prefactor':>10} {'eps exponent':>13}"]
        for d, f in summary["n_exponent"].items():
            e = summary["eps_exponent"][d]
            rows.append(f"{d:>6} {f['value']:>11.3f} [{f['ci_low']:>7.3f},{f['ci_high']:>7.3f}] "
                        f"{summary['n_prefactor'][d]:>10.4f} {e['value']:>13.3f}")
        return "\n".join(rows)
