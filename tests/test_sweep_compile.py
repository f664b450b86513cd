"""A sweep over a scalar field (eps) of a real experiment compiles once per shape: the numbers are
traced leaves of the compiled programs (docs/architecture.md section 1), so in one worker the
first point traces its programs and every later point reuses them (0 traces).  Counted with
JAX's trace events (one per jit cache miss), as in test_compile_count.py."""

from __future__ import annotations

import pytest

from mfnn.sweeps import SweepSpec, run_sweep


@pytest.mark.slow  # the first point compiles the SGD and radial-DD programs (~30-70 s on 2 loaded cores)
def test_eps_sweep_compiles_once_per_shape(tmp_path):
    # shapes (n_neurons, dd_particles) no other test uses: earlier tests in this process compiled the
    # quick pnas-isotropic programs, and a cache hit on the first point would hide its compilations
    spec = SweepSpec(experiment="pnas-isotropic", quick=True, grid={"eps": [1e-4, 2e-4, 4e-4, 8e-4]}, seeds=[0],
                     overrides={"t_max": 1.0, "panel_times": (0.0, 1.0), "n_times": 4, "dd_particles": 101,
                                "n_neurons": 37})
    res = run_sweep(spec, tmp_path / "sw", executor="serial", progress=False)
    assert res.exit_code == 0
    traces = [r["traces"] for r in res.results]
    assert traces[0] > 0, "the counter must see the first point's compilations"
    assert traces[1:] == [0, 0, 0], traces
    # the points differ in eps (so the runs really differ) and the later ones are much faster
    secs = [r["seconds"] for r in res.results]
    assert max(secs[1:]) < secs[0]
