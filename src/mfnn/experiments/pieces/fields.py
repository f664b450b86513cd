"""Config mixins of the PNAS runs: the ramp activation, an online SGD run, a DD reference.

A Config composes them by inheritance, ``ExperimentConfig`` last (see ``pieces/__init__.py``).
The cost helpers return rough (bytes, seconds) on 2 CPU cores for ``Experiment.estimate``;
``sgd_solve`` / ``dd_solve`` run the solvers the fields describe through ``mfnn.solve``.
``COMPILE_S`` is the compile time (seconds) those estimates charge once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import check
from ...problem import ramp
from ...solvers import OnlineSGD, RadialDD, SaveAt, kept, solve, split_replicas, stack_keys
from .checks import check_ranges
from ..base import unit_field

__all__ = ["COMPILE_S", "DDFields", "RampFields", "SGDFields", "estimate_from"]

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

    t1: float = unit_field(0.5, None)
    t2: float = unit_field(1.5, None)
    s1: float = unit_field(-2.5, None)
    s2: float = unit_field(7.5, None)

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

    n_neurons: int = unit_field(800, "neurons")
    eps: float = unit_field(1e-5, "time / step")
    replicas: int = unit_field(1, "replicas")
    dtype: str = unit_field("float64", None)

    def sgd_method(self, **extra) -> OnlineSGD:
        return OnlineSGD(n_neurons=self.n_neurons, eps=self.eps, replicas=self.replicas, dtype=self.dtype, **extra)

    def sgd_solve(self, problem, times, key, observables=("risk", "w_norm"), progress=False, **extra):
        """``mfnn.solve`` of this SGD saved at ``times`` snapped to the step grid (``stats["steps"]``);
        a divergence keeps the saves before it (``kept``).  Arrays are (time, replica, ...)."""
        m = self.sgd_method(**extra)
        sol = kept(solve(problem, m, SaveAt(m.grid_times(times), observables), key=key, progress=progress, throw=False))
        sol.stats["steps"] = m.save_steps(sol.times)
        return sol

    def sgd_solve_seeds(self, problem, times, seeds, observables=("risk", "w_norm"), progress=False, **extra):
        """``sgd_solve`` for each of ``seeds`` (int keys) in one compiled call: the seeds' keys stacked
        (``stack_keys``), their runs vmapped as seeds x replicas, the solution split per seed
        (``split_replicas``; the same numbers as one call per seed, to round-off).  Returns the list of
        solutions, or None when the batched run did not succeed (a divergence stops every lane at
        once, so the caller runs the seeds one by one to keep each seed's own saves)."""
        m = self.sgd_method(**extra)
        sol = solve(problem, m, SaveAt(m.grid_times(times), observables), key=stack_keys(seeds), progress=progress,
                    throw=False)
        if sol.result != "successful":
            if sol.result == "interrupted":
                kept(sol)  # raises RunInterrupted
            return None
        parts = split_replicas(sol, len(seeds))
        for part in parts:
            part.stats["steps"] = m.save_steps(part.times)
        return parts

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

    dd_particles: int = unit_field(4000, "particles")
    dd_rtol: float = unit_field(1e-7, None)

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

    def dd_pair(self, problem, times, progress=False, d_inf=True) -> tuple:
        """``(finite-d DD, d = inf DD or None)``: the radial DD at ``times`` with the finite-d interaction
        and, when ``d_inf``, with ``d_interaction="inf"`` (PNAS 2018 eq. 13 and its d -> inf limit)."""
        dd = self.dd_solve(problem, times, progress)
        return dd, (self.dd_solve(problem, times, progress, d_interaction="inf") if d_inf else None)

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
