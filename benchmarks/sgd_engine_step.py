"""Microseconds per online-SGD step of ``mfnn.solve(problem, OnlineSGD(...), times)`` (engine auto, float64, one replica,
PNAS Fig. 1 size: N = 800, d = 40, ramp sigma): the difference of a 60000-step and a 2048-step
run over the difference in steps (compile and fixed costs cancel), best of 3.

To compare two versions of mfnn in one session (an A/B of the engine), run it alternately with
``PYTHONPATH=<checkout>/src`` pointing at each tree:

    PYTHONPATH=src python benchmarks/sgd_engine_step.py
"""

import time

import jax

jax.config.update("jax_enable_x64", True)

import mfnn  # noqa: E402

problem = mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), mfnn.IsotropicGaussians(d=40, delta=0.8), mfnn.GaussianInit(kappa=0.8))


def run(steps: int) -> float:
    method = mfnn.OnlineSGD(n_neurons=800, eps=1e-5, replicas=1)
    t = time.perf_counter()
    mfnn.solve(problem, method, mfnn.SaveAt((0.0, steps * 1e-5), "risk"), key=jax.random.PRNGKey(0))
    return time.perf_counter() - t


run(2048), run(60000)  # compile both save grids
best = min(run(60000) - run(2048) for _ in range(3))
print(f"{best / (60000 - 2048) * 1e6:.2f} us/step")
