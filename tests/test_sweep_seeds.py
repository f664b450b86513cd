"""Seeds of a point in one compiled call (issue 10, item 4): stacked keys in ``OnlineSGD``, the
``Experiment.compute_seeds`` opt-in, and the sweep engine grouping a point's seeds.

Every check is value for value.  A vmapped lane computes the same operations on the same numbers as
the run alone, but XLA's CPU kernels may associate a sum differently for S*R lanes than for R lanes
(measured: parameters and risk of the blocked engine differ by at most 2.2e-16 after 150 steps, the
generic engine's parameters are bitwise equal), so equality is asserted to ``RTOL = 1e-13`` (about
500 ulps; a wrong key, lane or step shows at O(1)) and distinct seeds must differ at O(1)."""

from __future__ import annotations

import numpy as np
import pytest

import mfnn
from mfnn.errors import ConfigError
from mfnn.solvers import split_replicas, stack_keys

D = 5
RTOL, ATOL = 1e-13, 1e-15


def _problem(constraint=None):
    unit = mfnn.ProjectionUnit("tanh", trained=("a", "b", "w"))
    init = mfnn.GaussianInit(kappa=1.0, a_mean=0.3, a_std=1.0, b_std=0.5)
    return mfnn.Problem(unit, mfnn.IsotropicGaussians(d=D, delta=0.5), init)


@pytest.mark.parametrize("extra", [pytest.param({}, marks=pytest.mark.slow),  # the blocked engine: a longer compile
                                   {"beta": 50.0, "lam": 0.01, "engine": "generic"}], ids=["blocked", "noisy-generic"])
def test_stacked_keys_equal_separate_runs(extra):
    prob = _problem()
    m = mfnn.OnlineSGD(n_neurons=12, eps=2e-3, replicas=2, **extra)
    times = m.grid_times([0.0, 0.1, 0.3])
    save = mfnn.SaveAt(times, ("risk", "w_norm", "a"))
    seeds = [3, 11, 2**31 + 5]
    stacked = mfnn.solve(prob, m, save, key=stack_keys(seeds))
    assert stacked.risk.shape == (3, 6) and stacked.w_norm.shape == (3, 6, 12)
    parts = split_replicas(stacked, len(seeds))
    for seed, part in zip(seeds, parts):
        alone = mfnn.solve(prob, m, save, key=seed)
        np.testing.assert_array_equal(part.times, alone.times)
        for name in ("risk", "w_norm", "a"):
            np.testing.assert_allclose(part.ys[name], alone.ys[name], rtol=RTOL, atol=ATOL, err_msg=f"{seed}, {name}")
    # distinct seeds give distinct runs (the split does not hand out one lane three times)
    assert np.max(np.abs(parts[0].w_norm - parts[1].w_norm)) > 1e-2


def test_seed_helpers_refuse_bad_input():
    with pytest.raises(ConfigError) as e:
        stack_keys([])
    assert e.value.field == "seeds"
    with pytest.raises(ConfigError) as e:
        stack_keys([-1])
    assert e.value.field == "seeds"
    sol = mfnn.solvers.Solution(times=np.zeros(1), ys={"risk": np.zeros((1, 4))}, dims={"risk": ("time", "replica")})
    with pytest.raises(ConfigError) as e:
        split_replicas(sol, 3)
    assert e.value.field == "n_seeds"


# ----------------------------------------------------------------------------- the engine (JAX-free toy)


def _toy_sweep(tmp_path, name, **kw):
    import sweep_toy
    from mfnn.sweeps import SweepSpec, run_sweep

    sweep_toy.SweepToySeeds.BATCHES.clear()
    spec = SweepSpec(experiment="sweep-toy-seeds", grid={"x": [1.0, 3.0]}, seeds=[0, 1, 2, 5],
                     imports=("sweep_toy",), overrides=kw.pop("overrides", {}))
    res = run_sweep(spec, tmp_path / name, executor="serial", progress=False, **kw)
    return res, list(sweep_toy.SweepToySeeds.BATCHES)


def test_engine_groups_seeds_and_tables_match_one_by_one(tmp_path):
    import pandas as pd

    from mfnn.sweeps.collect import collect

    res, batches = _toy_sweep(tmp_path, "batched")
    assert res.exit_code == 0 and res.jobs == 2 and res.count("done") == 8
    assert batches == [4, 4, 4, 4]  # 2 grid points x 2 experiment points, each with its 4 seeds at once
    one, batches1 = _toy_sweep(tmp_path, "single", seed_batch=1)
    assert one.exit_code == 0 and one.jobs == 8 and batches1 == [1] * 16
    tabs = [pd.read_parquet(collect(tmp_path / n)[0]) for n in ("batched", "single")]
    tabs = [t.drop(columns=["wall_seconds"]).sort_values(["key", "output"]).reset_index(drop=True) for t in tabs]
    assert len(tabs[0]) == 8 * 2 and tabs[0]["seed"].nunique() == 4  # one row per seed and output
    pd.testing.assert_frame_equal(tabs[0], tabs[1], check_exact=True)
    # a rerun finds every point done and computes nothing
    again, batches2 = _toy_sweep(tmp_path, "batched")
    assert again.skipped == 8 and again.results == [] and batches2 == []


def test_a_failing_batch_runs_its_points_alone(tmp_path):
    res, batches = _toy_sweep(tmp_path, "fail", overrides={"fail_at": 3.0})
    assert res.exit_code == 1 and res.count("done") == 4 and len(res.failed) == 4
    assert all("toy failure at x=3.0" in r["error"] for r in res.failed)
    assert batches == [4, 4]  # x = 1 batched; x = 3 raised, then each seed alone raised again


def test_seed_jobs_and_bad_seed_batch(tmp_path):
    from types import SimpleNamespace

    from mfnn.sweeps.engine import seed_jobs

    pts = [SimpleNamespace(index={"x": 0}, seed=s) for s in range(8)]
    assert [len(j) for j in seed_jobs(pts, None, 2)] == [4, 4]   # every worker gets a job
    assert [len(j) for j in seed_jobs(pts, None, 1)] == [8]
    assert [len(j) for j in seed_jobs(pts, 3, 2)] == [3, 3, 2]
    more = pts + [SimpleNamespace(index={"x": 1}, seed=s) for s in range(8)]
    assert [len(j) for j in seed_jobs(more, None, 2)] == [8, 8]
    assert all(len({p.index["x"] for p in j}) == 1 for j in seed_jobs(more, 5, 4))  # never across grid points
    with pytest.raises(ConfigError) as e:
        _toy_sweep(tmp_path, "bad", seed_batch=0)
    assert e.value.field == "--seed-batch" and not (tmp_path / "bad").exists()
    from click.testing import CliRunner

    from mfnn.cli import main

    out = tmp_path / "cli"
    r = CliRunner().invoke(main, ["sweep", "sweep-toy-seeds", "--import", "sweep_toy", "--grid", "x=1,2", "--seeds", "3",
                                  "--executor", "serial", "--seed-batch", "0", "--out", str(out), "--no-progress"])
    assert r.exit_code == 2 and "--seed-batch" in r.output and not out.exists()
    r = CliRunner().invoke(main, ["sweep", "sweep-toy-seeds", "--import", "sweep_toy", "--grid", "x=1,2", "--seeds", "3",
                                  "--executor", "serial", "--seed-batch", "2", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0 and "6 done" in r.output, r.output


# ----------------------------------------------------------------------------- a real experiment


@pytest.mark.slow
def test_pnas_isotropic_compute_seeds_equals_compute():
    """pnas-isotropic's opt-in: three seeds in one vmapped SGD call (and one DD solve) give the
    datasets ``compute`` gives seed by seed."""
    import jax

    from mfnn.experiments.base import get

    exp = get("pnas-isotropic")
    assert exp.vmap_seeds
    small = {"t_max": 0.5, "n_times": 3, "panel_times": (0.0, 0.5), "dd_particles": 60, "n_neurons": 30}
    points = [exp.points(exp.make_config(quick=True, overrides=small, seed=s))[0] for s in (0, 1, 7)]
    with jax.enable_x64(True):
        together = exp.compute_seeds(points)
        alone = [exp.compute(p) for p in points]
    for a, b in zip(together, alone):
        assert a.attrs == b.attrs and set(a.data_vars) == set(b.data_vars)
        np.testing.assert_array_equal(a.time.values, b.time.values)
        for name in b.data_vars:
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=RTOL, atol=ATOL, err_msg=name)
    assert np.max(np.abs(together[0].sgd_risk.values - together[1].sgd_risk.values)) > 1e-3


@pytest.mark.slow  # a spawn pool of 2 workers (start-up of two interpreters importing mfnn)
def test_grouped_seeds_on_a_process_pool_match_serial(tmp_path):
    import pandas as pd

    from mfnn.sweeps import SweepSpec, run_sweep
    from mfnn.sweeps.collect import collect

    spec = SweepSpec(experiment="sweep-toy-seeds", grid={"x": [1.0, 3.0]}, seeds=[0, 1, 2, 5], imports=("sweep_toy",))
    pool = run_sweep(spec, tmp_path / "pool", executor="local", workers=2, progress=False)
    assert pool.exit_code == 0 and pool.jobs == 2 and pool.count("done") == 8
    assert len({r["pid"] for r in pool.results}) >= 1 and all(r["pid"] for r in pool.results)
    serial = run_sweep(spec, tmp_path / "serial", executor="serial", progress=False, seed_batch=1)
    tabs = [pd.read_parquet(collect(tmp_path / n)[0]).drop(columns=["wall_seconds"]).sort_values(["key", "output"])
            .reset_index(drop=True) for n in ("pool", "serial")]
    assert serial.jobs == 8
    pd.testing.assert_frame_equal(tabs[0], tabs[1], check_exact=True)
