"""Config pieces shared by experiments: dataclass mixins with flat field names (``--set eps=...``).

A Config composes them by inheritance, ``ExperimentConfig`` last, and may redeclare a field to
change its default (the field keeps its place)::

    @dataclass(frozen=True)
    class Config(RampFields, SGDFields, DDFields, ExperimentConfig):
        d: int = 40
        replicas: int = 2            # SGDFields default is 1

Each mixin's ``validate`` checks its own fields and calls ``super().validate()``, so
``Config.validate`` runs them all once it calls ``super().validate()``.  The cost helpers return
rough (bytes, seconds) on 2 CPU cores for ``Experiment.estimate``.  Nothing numerical here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError, check
from ..problem import GaussianInit, IsotropicGaussians, Problem, ramp, sigma_w
from ..solvers import OnlineSGD, RadialDD, SaveAt, kept, solve

# Rough costs on 2 CPU cores, deliberately pessimistic (pnas-anisotropic at its defaults: 189 s for
# 1e6 replica-steps at N (d + 2) = 2.6e5, i.e. ~ 7e-10 s per N d; the quick presets: ~ 20 s of
# compilation): an online SGD step of N projection units in dimension d costs ~ 2e-6 s + 1.3e-9 s
# * N * d per replica; a DD right-hand side ~ 1e-8 s per particle and feature, ~ 1e4 evaluations
# per solve.  Peak memory: ~ 4 copies of the parameters plus the saved observables.  All terms
# grow monotonically with N, d, replicas, 1/eps, t_max, the particle and save counts.
SGD_STEP_S, SGD_UNIT_S, DD_UNIT_S, DD_EVALS, COMPILE_S = 2e-6, 1.3e-9, 1e-8, 1e4, 20.0


@dataclass(frozen=True)
class RampFields:
    """The PNAS 2018 ramp sigma (Fig. 1, 2): s1 for t <= t1, linear to s2 at t2, s2 beyond."""

    t1: float = 0.5
    t2: float = 1.5
    s1: float = -2.5
    s2: float = 7.5

    def activation(self):
        return ramp(self.t1, self.t2, self.s1, self.s2)

    def validate_ramp(self):
        check_ranges(self, {k: "[-1e3, 1e3]" for k in ("t1", "t2", "s1", "s2")})
        check(self.t2 > self.t1, "t2", f"must exceed t1={self.t1}")

    def validate(self):
        self.validate_ramp()
        super().validate()


@dataclass(frozen=True)
class SGDFields:
    """Finite-N online SGD (PNAS 2018 eq. 8): N neurons, step eps, independent replicas."""

    n_neurons: int = 800
    eps: float = 1e-5
    replicas: int = 1
    dtype: str = "float64"

    def sgd_method(self, **extra) -> OnlineSGD:
        return OnlineSGD(n_neurons=self.n_neurons, eps=self.eps, replicas=self.replicas, dtype=self.dtype, **extra)

    def sgd_solve(self, problem, times, key, observables=("risk", "w_norm"), progress=False, **extra):
        """``mfnn.solve`` of this SGD saved at ``times`` snapped to the step grid (``stats["steps"]``);
        a divergence keeps the saves before it (``kept``).  Arrays are (time, replica, ...)."""
        m = self.sgd_method(**extra)
        sol = kept(solve(problem, m, SaveAt(m.grid_times(times), observables), key=key, progress=progress, throw=False))
        sol.stats["steps"] = m.save_steps(sol.times)
        return sol

    def sgd_cost(self, d: int, t_max: float, n_saves: int, save_params: bool = False) -> tuple:
        """(bytes, seconds) of one SGD solve up to t_max (monotone in N, d, replicas, t_max/eps)."""
        units = float(self.replicas) * self.n_neurons
        saved = units * n_saves * (float(d) if save_params else 3.0)
        nbytes = 8.0 * (4.0 * units * (float(d) + 2.0) + saved)
        seconds = COMPILE_S + self.replicas * (t_max / self.eps) * (SGD_STEP_S + SGD_UNIT_S * self.n_neurons * float(d))
        return nbytes, seconds

    def validate(self):
        check_ranges(self, {"n_neurons": "[1, 1e8]", "eps": "(0, 1]", "replicas": "[1, 1e4]",
                            "dtype": ("float32", "float64")})
        super().validate()


@dataclass(frozen=True)
class DDFields:
    """A distributional-dynamics reference (PNAS 2018 eq. 13) on ``dd_particles`` quantile particles."""

    dd_particles: int = 4000
    dd_rtol: float = 1e-7

    def dd_cost(self, n_saves: int, n_features: int = 24, solves: int = 1) -> tuple:
        """(bytes, seconds) of ``solves`` DD solves with ``n_features`` features per particle."""
        m = float(self.dd_particles)
        nbytes = 8.0 * m * (n_saves + 8.0 * n_features)
        seconds = solves * (COMPILE_S + DD_EVALS * DD_UNIT_S * m * n_features)
        return nbytes, seconds

    def dd_solve(self, problem, times, progress=False, method=RadialDD, key=0, **extra):
        """``mfnn.solve`` of the DD ``method`` on ``dd_particles`` particles with ``dd_rtol`` (``kept``)."""
        m = method(n_particles=self.dd_particles, rtol=self.dd_rtol, **extra)
        return kept(solve(problem, m, times, key=key, progress=progress, throw=False))

    def validate_dd(self):
        check_ranges(self, {"dd_particles": "[10, 1e7]", "dd_rtol": "[1e-14, 1)"})

    def validate(self):
        self.validate_dd()
        super().validate()


def estimate_from(sgd: tuple, dd: tuple, count: int = 1, extra_seconds: float = 0.0) -> dict:
    """``Experiment.estimate`` from (bytes, seconds) of one SGD run and its DD reference(s), repeated
    ``count`` times (points run one after the other; memory is one point's).  ``field`` names the
    dominant size: n_neurons / dd_particles when memory passes 1 GB, else eps or dd_particles by time."""
    (sb, ss), (db, ds) = sgd, dd
    nbytes = sb + db
    if nbytes > 1e9:
        field = "n_neurons" if sb >= db else "dd_particles"
    else:
        field = "eps" if ss >= ds else "dd_particles"
    return {"bytes": nbytes, "seconds": count * (ss + ds) + extra_seconds, "field": field}


def parse_d(raw, field: str = "d"):
    """A dimension given as text: 'inf' / 'infinity' -> math.inf, an integer >= 2 -> int; else
    ConfigError(field).  (d = inf selects the d -> infinity reductions of the DD.)"""
    import math

    s = str(raw).strip().lower()
    if s in ("inf", "infinity", "+inf"):
        return math.inf
    try:
        d = int(s)
    except ValueError:
        raise ConfigError(field, f"use a positive integer or 'inf', got {raw!r}") from None
    check(2 <= d <= 10 ** 7, field, f"must be in [2, 1e7] or 'inf', got {raw!r}")
    return d


def check_ranges(cfg, ranges: dict) -> None:
    """``ranges``: field -> interval such as ``"[2, 1e6]"``, ``"(0, 1)"``, or a tuple of allowed values;
    ConfigError naming the first field outside its range (NaN and non-numbers are outside every interval)."""
    for field, spec in ranges.items():
        if isinstance(spec, tuple):
            v = getattr(cfg, field)
            check(v in spec, field, f"use one of {', '.join(map(repr, spec))}, got {v!r}")
            continue
        lo, hi = (float(x) for x in spec[1:-1].split(","))
        v = getattr(cfg, field)
        try:
            ok = (v > lo if spec[0] == "(" else v >= lo) and (v < hi if spec[-1] == ")" else v <= hi)
        except TypeError:
            ok = False
        check(bool(ok), field, f"must be in {spec}, got {v!r}")


def run_status(times, sgd, *dds) -> dict:
    """Dataset attrs of a computed point: ``result`` ("successful" or "diverged"), ``stopped_at``
    (if diverged: the last save time kept by every solver, ``times[-1]``), ``sgd_diverged`` and
    ``dd_diverged`` (0/1: netCDF attributes cannot be booleans).  ``None`` entries of ``dds`` are skipped."""
    sgd_div = int(sgd is not None and sgd.result == "diverged")
    dd_div = int(any(d.result == "diverged" for d in dds if d is not None))
    out = {"result": "diverged" if sgd_div or dd_div else "successful", "sgd_diverged": sgd_div, "dd_diverged": dd_div}
    if sgd_div or dd_div:
        out["stopped_at"] = float(times[-1]) if len(times) else 0.0
    return out


def summary_status(ds) -> dict:
    """The run-status entries of ``summary.json`` from a computed dataset's attrs (``run_status``)."""
    out = {"sgd_diverged": bool(ds.attrs.get("sgd_diverged", 0)), "dd_diverged": bool(ds.attrs.get("dd_diverged", 0)),
           "result": ds.attrs.get("result", "successful")}
    if out["result"] == "diverged":
        out["stopped_at"] = float(ds.attrs["stopped_at"])
        out["warning"] = "a solver diverged: results end at the last finite save"
    return out


def take(ds, prefix: str, description: str = "", drop=()):
    """The variables of ``ds`` named ``<prefix><name>``, renamed ``<name>``, with ``ds``'s coords
    (less ``drop``): splits one computed dataset into the per-solver files of a run."""
    import xarray as xr

    out = xr.Dataset({k[len(prefix):]: v for k, v in ds.data_vars.items() if k.startswith(prefix)})
    out = out.drop_vars([c for c in drop if c in out.coords])
    if description:
        out.attrs["description"] = description
    return out


def format_table(rows: list, columns: list) -> str:
    """Fixed-width text table for ``mfnn show``: ``columns`` = [(header, key, format)], a key ``"a.b"``
    reads ``row["a"]["b"]``; columns whose key is missing from the first row are left out."""
    def get(row, key):
        for part in key.split("."):
            row = row[part] if isinstance(row, dict) and part in row else None
        return row

    cols = [c for c in columns if rows and get(rows[0], c[1]) is not None]
    width = [max(10, len(h)) for h, _, _ in cols]
    lines = [" ".join(f"{h:>{w}}" for (h, _, _), w in zip(cols, width))]
    for r in rows:
        lines.append(" ".join(f"{get(r, k):>{w}{f}}" for (_, k, f), w in zip(cols, width)))
    return "\n".join(lines)


# --- pieces of the scaling experiments (pnas-error-scaling, mmm-dimension-free) ---------------

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
class ReplicaFields:
    """Replicas of an online SGD run and the engine of ``OnlineSGD`` (scaling experiments; the
    number of neurons and the step are their sweep fields)."""

    replicas: int = 8
    engine: str = "auto"

    def validate_sgd(self) -> None:
        check(2 <= self.replicas <= 4096, "replicas", f"must be in [2, 4096] (fluctuations), got {self.replicas}")
        check(self.engine in ("auto", "generic", "blocked"), "engine",
              f"use auto, generic or blocked, got {self.engine!r}")


def gap_point(point, progress: bool = False):
    """The dataset of one point of an SGD -> DD gap sweep: the DD reference risk (``kind`` "dd")
    or the replicas of one SGD run (``kind`` "sgd"), keyed by the point's own seed."""
    import jax

    from ..analysis.gap_points import dd_risk_point, sgd_risk_point

    problem, p = pop_isotropic_problem(point.params)
    kind, times = p.pop("kind"), p.pop("times")
    if kind == "dd":
        return dd_risk_point(problem, times, n_particles=p["dd_particles"], rtol=p["dd_rtol"], progress=progress)
    return sgd_risk_point(problem, times, key=jax.random.PRNGKey(point.seed), progress=progress, **p)
