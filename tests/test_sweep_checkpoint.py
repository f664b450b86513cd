"""Checkpoint and resume of a long SGD run reproduce the uninterrupted run bit for bit.

The run is interrupted (the cooperative stop flag, as SIGINT sets it) after a few blocks of save
intervals; inside ``checkpointing`` the driver wrote the solver state and the saves at the stop;
the second call continues from there (fewer blocks run) and its saves equal those of an
uninterrupted run exactly (``np.array_equal``, not a tolerance: same blocks, same compiled program)."""

from __future__ import annotations

import signal

import numpy as np
import pytest

import mfnn
from mfnn import _signals
from mfnn.errors import RunInterrupted
from mfnn.solvers import _segments
from mfnn.solvers._checkpoint import checkpointing


def _setup():
    problem = mfnn.Problem(mfnn.sigma_w(mfnn.ramp()), mfnn.IsotropicGaussians(d=5, delta=0.5, n_hermite=8),
                           mfnn.GaussianInit(kappa=0.8))
    method = mfnn.OnlineSGD(n_neurons=17, eps=2e-3, engine="generic")
    return problem, method, np.linspace(0.0, 2.0, 41)  # 40 intervals of 25 steps


def _stop_after(monkeypatch, n_blocks):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return int(signal.SIGINT) if calls["n"] >= n_blocks else None

    monkeypatch.setattr(_segments._signals, "stop_requested", stop)
    return calls


def test_resumed_sgd_run_is_bit_for_bit_the_uninterrupted_one(tmp_path, monkeypatch):
    problem, method, times = _setup()
    full = mfnn.solve(problem, method, times, key=7, block=4)
    assert full.ok and len(full.times) == 41

    calls = _stop_after(monkeypatch, 3)
    with checkpointing(tmp_path / "ck", every_seconds=3600.0):  # written at the interrupt, not by the clock
        with pytest.raises(RunInterrupted) as info:
            mfnn.solve(problem, method, times, key=7, block=4)
    assert len(info.value.partial.times) == 12 and (tmp_path / "ck" / "solve-0.ckpt").is_file()
    monkeypatch.setattr(_segments._signals, "stop_requested", lambda: None)

    blocks = {"n": 0}
    orig = _segments.run_segments

    def counting(step_block, *a, **k):
        def sb(st, inp):
            blocks["n"] += 1
            return step_block(st, inp)
        return orig(sb, *a, **k)

    monkeypatch.setattr(mfnn.solvers._driver, "run_segments", counting)
    with checkpointing(tmp_path / "ck", every_seconds=3600.0):
        resumed = mfnn.solve(problem, method, times, key=7, block=4)
    assert blocks["n"] == 11 - 3  # ceil(41 / 4) = 11 blocks, 3 done before the stop
    assert resumed.ok and np.array_equal(resumed.times, full.times)
    for name in full.ys:
        assert np.array_equal(resumed.ys[name], full.ys[name]), name
    # a checkpoint of another problem is not used (fingerprint): a different eps starts from scratch
    other = mfnn.OnlineSGD(n_neurons=17, eps=1e-3, engine="generic")
    blocks["n"] = 0
    with checkpointing(tmp_path / "ck", every_seconds=3600.0):
        mfnn.solve(problem, other, times, key=7, block=4)
    assert blocks["n"] == 11
    assert calls["n"] >= 3


@pytest.mark.slow  # three in-process runs of pnas-isotropic (one compilation, ~1-2 min on 2 loaded cores)
def test_mfnn_run_resume_continues_from_the_checkpoint(tmp_path, monkeypatch):
    import xarray as xr

    from mfnn.experiments.runner import run_experiment

    kw = dict(quick=True, progress=False, overrides={"t_max": "2", "n_times": "12", "panel_times": "0,2",
                                                     "dd_particles": "100"})
    full = run_experiment("pnas-isotropic", out=tmp_path / "full", **kw)
    calls = _stop_after(monkeypatch, 4)
    with pytest.raises(RunInterrupted):
        run_experiment("pnas-isotropic", out=tmp_path / "cut", **kw)
    ck = list((tmp_path / "cut.partial" / "checkpoints").rglob("solve-*.ckpt"))
    assert ck and calls["n"] >= 4 and not list((tmp_path / "cut.partial" / "points").glob("*.nc"))
    monkeypatch.setattr(_segments._signals, "stop_requested", lambda: None)
    resumed = run_experiment("pnas-isotropic", out=tmp_path / "cut", resume=True, **kw)
    assert not (resumed / "checkpoints").exists()
    for name in ("sgd.nc", "dd.nc"):
        a = xr.open_dataset(full / name, engine="scipy").load()
        b = xr.open_dataset(resumed / name, engine="scipy").load()
        xr.testing.assert_identical(a, b)  # bit for bit
