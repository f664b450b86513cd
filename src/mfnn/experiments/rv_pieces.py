"""Shared pieces of the Rotskoff-Vanden-Eijnden 2018 experiments (``rv-*``): building the problems of
RV section 4, running one ``ParticleFlow`` point into an ``xarray.Dataset``, and the cost model.
Nothing numerical here (the numerics are in ``mfnn.problem``, ``mfnn.solvers.particle_flow`` and
``mfnn.analysis.particle_systems``)."""

from __future__ import annotations

import json
import sys

import numpy as np

from ..problem import (GaussianInit, Problem, RBFUnit, Regression, SigmoidUnit, Sphere, SphereInit, SphereInputs,
                       ThreeSpin)
from ..solvers import ParticleFlow, SaveAt, solve

# Measured on 2 loaded cores (load ~ 8): an SGD step of sigmoid units costs ~ 1.2e-9 s per
# (replica * batch * n * d) in float32 (forward + backward: ~ 6 flops each), plus ~ 30 s of
# compilation per point; test-loss evaluations ~ 3e-9 s per (replica * n_test * n * d) per save.
# A step of the direct flow (RV eq. 4.5): ~ 5e-5 s of overhead plus ~ 3.6e-9 s per replica * n^2 * d
# (measured 0.075 ms at n = 8 and 1.1 ms at n = 128 with 4 replicas, load ~ 8).
UNIT_S, TEST_S, COMPILE_S, DIRECT_STEP_S = 1.2e-9, 3e-9, 30.0, 5e-5
# rv-spin-scaling on 2 quiet cores (float32, sigmoid units, d = 10, 4 realizations): a step costs
# QUIET_STEP_S + QUIET_UNIT_S per (replica * batch * n * d), a point QUIET_COMPILE_S to compile and
# QUIET_TEST_S per (replica * n_test * n * d) per save.  The unit rate is fitted to two whole quiet
# runs of the experiment made before this step was last sped up (10000 + 1000 steps: 127 s;
# 50000 + 5000 steps: 354 s; their difference is step work only), the step overhead to 3000-step
# runs at n = 64, P = 12 (40 us of CPU per step at load 6.5), compile and test to the rest of 127 s.  Per-step costs of ParticleFlow alone at
# load 7-8 (n = 64, 256, 1024; P = n/5 over 3000 steps, P = 2048 over 300): 0.18-0.8 ns per unit
# at P = n/5, 0.3-0.4 ns at P = 2048, i.e. 1-2x the quiet rate.  The 50000 + 5000 default run at
# load 6-9 took 648 s against 354 s estimated.
QUIET_STEP_S, QUIET_UNIT_S, QUIET_COMPILE_S, QUIET_TEST_S = 2.5e-5, 2.1e-10, 8.0, 6.3e-10


def spin_seeds(seed: int, k: int) -> list:
    """Seeds of the k realizations of a_pqr of a run with seed ``seed``."""
    return [int(seed) * 1000 + r for r in range(k)]


def spin_sigmoid_problem(d: int, seeds) -> Problem:
    """RV section 4.2: sigmoid units, 3-spin target, x uniform on S^{d-1}(sqrt d); w ~ N(0, I/d),
    b ~ N(0, 1), c ~ N(0, 1) (not stated in the paper: configurable defaults)."""
    return Problem(SigmoidUnit(), Regression(SphereInputs(d), ThreeSpin.draw(d, seeds)),
                   init=GaussianInit(kappa=1.0, b_std=1.0))


def rbf_problem(d: int, seeds, alpha: float, rbf_sign: str) -> Problem:
    """RV section 4.1: RBF units with centres on S^{d-1}(sqrt d), 3-spin target; y uniform on the
    sphere, c ~ N(0, 1) (not stated in the paper: configurable defaults)."""
    return Problem(RBFUnit(alpha=alpha, rbf_sign=rbf_sign), Regression(SphereInputs(d), ThreeSpin.draw(d, seeds)),
                   init=SphereInit("y", base=GaussianInit()), constraint=Sphere("y", radius=float(np.sqrt(d))))


def run_point(problem: Problem, method: ParticleFlow, steps, observables, seed: int, progress: bool = False):
    """Solve at the step counts ``steps``; a Dataset with a ``step`` coordinate and attrs ``result``,
    ``message``, ``seconds``, ``schedule`` (JSON: one row per phase, temperature = dt/P) and,
    when diverged, ``stopped_at`` (the last step kept)."""
    steps = np.asarray(steps, np.int64)
    sol = solve(problem, method, SaveAt(method.times_at(steps), observables=tuple(observables)), key=int(seed) % 2**32,
                progress=progress, throw=False)
    ds = sol.to_xarray().assign_coords(step=("time", steps[: len(sol.times)]))
    ds.attrs.update(result=sol.result, message=sol.message, seconds=float(sol.stats["wall_seconds"]),
                    schedule=json.dumps(method.schedule()), n=int(method.n_particles))
    if sol.result != "successful":
        ds.attrs["stopped_at"] = int(steps[len(sol.times) - 1]) if len(sol.times) else 0
    return ds


def schedule_of(ds) -> list:
    return json.loads(ds.attrs["schedule"])


def sgd_seconds(replicas: int, n: int, d: int, phases, n_test: int, n_saves: int, quiet: bool = False) -> float:
    """Rough wall time of one point: steps * batch * n * d per replica, the test loss at every save, compile
    (rates on loaded cores; ``quiet``: the quiet-machine rates of rv-spin-scaling, with a per-step overhead)."""
    work = sum(s * p for s, p in phases) * float(replicas) * n * d
    if quiet:
        return (QUIET_COMPILE_S + QUIET_STEP_S * sum(s for s, _ in phases) + QUIET_UNIT_S * work
                + QUIET_TEST_S * replicas * n_test * n * d * n_saves)
    return COMPILE_S + UNIT_S * work + TEST_S * replicas * n_test * n * d * n_saves


def direct_seconds(replicas: int, n: int, d: int, steps: int, n_test: int, n_saves: int) -> float:
    """Rough wall time of one point of the direct flow (RV eq. 4.5): n^2 pair terms per step, no sample."""
    return (COMPILE_S + steps * (DIRECT_STEP_S + UNIT_S * 3 * replicas * n * n * d)
            + TEST_S * replicas * n_test * n * d * n_saves)


def announce(name: str, seconds: float) -> None:
    """Print the estimated wall time of a long run before it starts (stderr)."""
    if seconds > 60:
        print(f"{name}: estimated wall time {seconds / 60:.1f} min on 2 cores", file=sys.stderr)


def divergence(results: dict) -> dict:
    """``{"result": "diverged", "stopped_at": {n: step}}`` when a point diverged, else ``{}``."""
    bad = {str(ds.attrs.get("n")): ds.attrs.get("stopped_at") for ds in results.values() if ds.attrs.get("result") != "successful"}
    return {"result": "diverged", "stopped_at": bad} if bad else {}
