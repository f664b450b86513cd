"""Config pieces shared by experiments: frozen dataclass mixins with flat field names.

A ``Config`` composes them by inheritance (``class Config(ExperimentConfig, RampFields, ...)``) and
may redeclare a field to change its default; flat names keep ``--set t1=0.4`` working.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check
from ..problem import GaussianInit, IsotropicGaussians, Problem, ramp, sigma_w


def check_range(cfg, **bounds) -> None:
    """ConfigError unless finite and lo <= value <= hi for each ``name=(lo, hi)`` (every element of a tuple)."""
    for name, (lo, hi) in bounds.items():
        v = getattr(cfg, name)
        vals = v if isinstance(v, tuple) else (v,)
        ok = all(isinstance(x, (int, float)) and math.isfinite(x) and lo <= x <= hi for x in vals)
        check(ok, name, f"must be finite, got {v!r}" if math.isinf(hi - lo) else f"must be in [{lo:g}, {hi:g}], got {v!r}")


def check_finite(cfg, names) -> None:
    """ConfigError naming the first field of ``names`` that is NaN or +-inf."""
    check_range(cfg, **{n: (-math.inf, math.inf) for n in names})


def check_sweep(cfg, name, lo, hi, min_len: int = 3, increasing: bool = True) -> None:
    """ConfigError unless the tuple field holds >= min_len values in [lo, hi] (increasing)."""
    v = getattr(cfg, name)
    check(isinstance(v, tuple) and len(v) >= min_len, name, f"need >= {min_len} values, got {v!r}")
    check_range(cfg, **{name: (lo, hi)})
    check(not increasing or all(b > a for a, b in zip(v, v[1:])), name, f"must be increasing, got {v!r}")


def check_save_grid(t_max: float, n_times: int, steps, field: str = "eps") -> None:
    """ConfigError unless every SGD step divides the save interval t_max / (n_times - 1)."""
    interval = t_max / (n_times - 1)
    for e in steps:
        check(abs(interval / e - round(interval / e)) < 1e-6, field,
              f"step {e} must divide the save interval {interval} (SGD saves at whole steps)")


def dominant_field(cfg, grow=(), shrink=()) -> str:
    """The size field furthest above (``grow``: N, d) or below (``shrink``: a step) its default,
    tuples by their extreme element: the field ``Experiment.estimate`` names when it refuses a run."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    ratio = {}
    for name in grow:
        v, d0 = getattr(cfg, name), defaults[name]
        ratio[name] = (max(v) / max(d0)) if isinstance(v, tuple) else v / d0
    for name in shrink:
        v, d0 = getattr(cfg, name), defaults[name]
        ratio[name] = (min(d0) / min(v)) if isinstance(v, tuple) else d0 / v
    return max(ratio, key=ratio.get)


@dataclass(frozen=True)
class RampFields:
    """The PNAS 2018 ramp sigma(t1, t2, s1, s2) (defaults: PNAS Fig. 1, slope 10)."""
    t1: float = 0.5
    t2: float = 1.5
    s1: float = -2.5
    s2: float = 7.5

    def activation(self):
        return ramp(self.t1, self.t2, self.s1, self.s2)

    def validate_ramp(self) -> None:
        check_finite(self, ("t1", "t2", "s1", "s2"))
        check(self.t2 > self.t1, "t2", f"must exceed t1={self.t1}")


@dataclass(frozen=True)
class IsotropicFields(RampFields):
    """PNAS 2018 isotropic Gaussians y = +-1, x | y ~ N(0, (1 + y delta)^2 I_d), unit sigma(<w, x>)
    with only w trained, w^0 ~ N(0, kappa^2/d I_d)."""

    delta: float = 0.8
    kappa: float = 0.8
    n_hermite: int = 24

    def problem_params(self, d: int, n_hermite: int | None = None) -> dict:
        """The flat parameters of :func:`isotropic_problem` (what a ``Point`` stores)."""
        return {"d": int(d), "delta": self.delta, "kappa": self.kappa, "t1": self.t1, "t2": self.t2,
                "s1": self.s1, "s2": self.s2, "n_hermite": int(self.n_hermite if n_hermite is None else n_hermite)}

    def validate_isotropic(self) -> None:
        self.validate_ramp()
        check_finite(self, ("delta", "kappa"))
        check(0 < self.delta < 1, "delta", f"must be in (0, 1), got {self.delta}")
        check(self.kappa > 0, "kappa", f"must be > 0, got {self.kappa}")
        check(4 <= self.n_hermite <= 256, "n_hermite", f"must be in [4, 256], got {self.n_hermite}")


def isotropic_problem(d, delta, kappa, t1, t2, s1, s2, n_hermite) -> Problem:
    """The problem of :class:`IsotropicFields` from its flat parameters."""
    return Problem(sigma_w(ramp(t1, t2, s1, s2)), IsotropicGaussians(d=int(d), delta=delta, n_hermite=int(n_hermite)),
                   GaussianInit(kappa=kappa))


def fmt_ci(fit) -> str:
    """``value [ci_low, ci_high]`` of an exponent fit (3 decimals), ``n/a`` for None."""
    return "n/a" if fit is None else f"{fit['value']:.3f} [{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]"


PROBLEM_KEYS = ("d", "delta", "kappa", "t1", "t2", "s1", "s2", "n_hermite")


def pop_isotropic_problem(params: dict) -> tuple:
    """(problem, the other parameters) from a point's params holding :data:`PROBLEM_KEYS`."""
    rest = dict(params)
    return isotropic_problem(**{k: rest.pop(k) for k in PROBLEM_KEYS}), rest


def divergence_summary(labelled: dict) -> dict:
    """``{"result": "diverged", "stopped_at": {label: t}}`` for the datasets (label -> Dataset) whose
    ``attrs["result"]`` is "diverged"; ``{}`` when none is."""
    stopped = {k: ds.attrs["stopped_at"] for k, ds in labelled.items() if ds.attrs.get("result") == "diverged"}
    return {"result": "diverged", "stopped_at": stopped} if stopped else {}


@dataclass(frozen=True)
class SGDFields:
    """Replicas of an online SGD run and the engine of ``SGDConfig``."""

    replicas: int = 8
    engine: str = "auto"

    def validate_sgd(self) -> None:
        check(2 <= self.replicas <= 4096, "replicas", f"must be in [2, 4096] (fluctuations), got {self.replicas}")
        check(self.engine in ("auto", "generic", "blocked"), "engine",
              f"use auto, generic or blocked, got {self.engine!r}")


@dataclass(frozen=True)
class DDFields:
    """Quantile particles and relative tolerance of a DD reference solve."""

    dd_particles: int = 1000
    dd_rtol: float = 1e-7

    def validate_dd(self) -> None:
        check(10 <= self.dd_particles <= 10**6, "dd_particles", f"must be in [10, 1e6], got {self.dd_particles}")
        check(math.isfinite(self.dd_rtol) and 1e-14 <= self.dd_rtol < 1, "dd_rtol",
              f"must be in [1e-14, 1), got {self.dd_rtol}")
