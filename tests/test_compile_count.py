"""A sweep over numbers compiles once (architecture contract: problems and methods are pytrees
whose numbers are traced leaves; compiled programs are cached on structure only).

We count JAX trace events (the ``traces`` fixture of conftest.py: one per jit cache miss,
whether or not the persistent compilation cache then finds the executable).  The first solve of a
series traces (the count is > 0, so the counter works); the next four values of the same number
must not trace anything.
"""

from __future__ import annotations

import dataclasses

import pytest

import mfnn

def _problem(delta=0.5, kappa=0.8, alpha=1.0):
    return mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), mfnn.IsotropicGaussians(d=6, delta=delta, n_hermite=8),
                        mfnn.GaussianInit(kappa=kappa), alpha=alpha)


# each sweep has its own number of neurons (a structure no other test compiled), so that its
# first solve must trace and the counter is shown to work
SWEEPS = {
    "delta": lambda v: (_problem(delta=v), mfnn.OnlineSGD(n_neurons=11, eps=1e-2, engine="generic")),
    "kappa": lambda v: (_problem(kappa=v), mfnn.OnlineSGD(n_neurons=12, eps=1e-2, engine="generic")),
    "eps": lambda v: (_problem(), mfnn.OnlineSGD(n_neurons=13, eps=v, engine="generic")),
    "alpha": lambda v: (_problem(alpha=v), mfnn.OnlineSGD(n_neurons=14, eps=1e-2, engine="generic")),
    "lam": lambda v: (_problem(), mfnn.OnlineSGD(n_neurons=15, eps=1e-2, lam=v, engine="generic")),
}
VALUES = {"delta": [0.3, 0.4, 0.5, 0.6, 0.7], "kappa": [0.5, 0.6, 0.7, 0.8, 0.9],
          "eps": [1e-2, 2e-2, 5e-3, 3e-2, 4e-3], "alpha": [1.0, 2.0, 4.0, 8.0, 16.0],
          "lam": [0.01, 0.02, 0.03, 0.04, 0.05]}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_sgd_sweep_over_a_number_compiles_once(name, traces):
    counts, sols = [], []
    for v in VALUES[name]:
        problem, method = SWEEPS[name](v)
        counts.append(traces(lambda: sols.append(
            mfnn.solve(problem, method, mfnn.SaveAt(times=[0.0, 0.1, 0.2]), key=1))))
    assert counts[0] > 0, "the trace counter saw nothing: the test would not detect recompiles"
    assert counts[1:] == [0, 0, 0, 0], f"{name}: traces per solve after the first: {counts}"
    risks = [s.risk[-1, 0] for s in sols]
    assert len(set(risks)) == 5, "the five values must give five different runs"


def test_blocked_engine_sweep_over_delta_compiles_once(traces):
    """The fast path (blocked engine, the default for projection units) too."""
    counts, risks = [], []
    for delta in (0.3, 0.45, 0.6):
        problem = _problem(delta=delta)
        method = mfnn.OnlineSGD(n_neurons=16, eps=1e-2)
        counts.append(traces(lambda: risks.append(mfnn.solve(problem, method, [0.0, 0.2], key=2).risk[-1, 0])))
    assert counts[0] > 0 and counts[1:] == [0, 0], counts
    assert len(set(risks)) == 3


def test_structure_change_does_recompile(traces):
    """Changing a static field (the number of neurons) is a new structure: it must trace again."""
    problem = _problem()
    mfnn.solve(problem, mfnn.OnlineSGD(n_neurons=16, eps=1e-2, engine="generic"), [0.0, 0.1], key=0)
    n = traces(lambda: mfnn.solve(problem, mfnn.OnlineSGD(n_neurons=17, eps=1e-2, engine="generic"),
                                   [0.0, 0.1], key=0))
    assert n > 0
    # and replacing a number through dataclasses.replace keeps the structure
    other = dataclasses.replace(problem, task=dataclasses.replace(problem.task, delta=0.55))
    assert traces(lambda: mfnn.solve(other, mfnn.OnlineSGD(n_neurons=17, eps=1e-2, engine="generic"),
                                      [0.0, 0.1], key=0)) == 0
