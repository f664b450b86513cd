"""Executors give the same collected table as the serial one, value for value: a spawn process
pool, a real Dask ``LocalCluster`` (2 worker processes) and submitit's local executor (the code
path of SLURM job arrays).  Any ``concurrent.futures.Executor`` can be passed in directly."""

from __future__ import annotations

import concurrent.futures as cf
import os
from pathlib import Path

import pandas as pd
import pytest

import sweep_toy  # noqa: F401
from mfnn.sweeps import SweepSpec, run_sweep
from mfnn.sweeps.collect import collect, table

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _workers_find_the_toy(monkeypatch):
    # worker processes (spawn, Dask nannies, submitit jobs) import sweep_toy from the tests directory
    src = str(TESTS.parent / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, str(TESTS), os.environ.get("PYTHONPATH", "")]))


def _spec():
    return SweepSpec(experiment="sweep-toy", grid={"x": [0.5, 1.5, 2.5]}, zipped=[{"n": [3, 5]}], seeds=[0, 1],
                     imports=("sweep_toy",))


def _table(path):
    t = table(path).drop(columns=["wall_seconds"])
    return t.sort_values(["key", "output"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def serial_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "sw"
    res = run_sweep(_spec(), out, executor="serial", progress=False)
    assert res.exit_code == 0 and res.count("done") == 12
    return _table(out)


def _same(a, b):
    assert len(a) == len(b) == 12 * 4
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.slow  # the fast tier runs a pool in test_sweep_runner.py
def test_process_pool_equals_serial(tmp_path, serial_table):
    out = tmp_path / "sw"
    res = run_sweep(_spec(), out, executor="local", workers=2, progress=False)
    assert res.exit_code == 0
    _same(_table(out), serial_table)


def test_any_concurrent_futures_executor(tmp_path, serial_table):
    with cf.ThreadPoolExecutor(2) as ex:
        res = run_sweep(_spec(), tmp_path / "sw", executor=ex, progress=False)
    assert res.exit_code == 0
    _same(_table(tmp_path / "sw"), serial_table)


@pytest.mark.slow
def test_dask_local_cluster_equals_serial(tmp_path, serial_table):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed (pip install 'mfnn[dask]')")
    out = tmp_path / "sw"
    res = run_sweep(_spec(), out, executor="dask", workers=2, progress=False)
    assert res.exit_code == 0 and res.count("done") == 12
    _same(_table(out), serial_table)
    collect(out)
    assert (out / "table.parquet").is_file() and (out / "dataset.nc").is_file()


@pytest.mark.slow
def test_submitit_local_executor(tmp_path, serial_table):
    pytest.importorskip("submitit", reason="submitit is not installed (pip install 'mfnn[slurm]')")
    out = tmp_path / "sw"
    spec = SweepSpec(experiment="sweep-toy", grid={"x": [0.5, 2.5]}, zipped=[{"n": [5]}], seeds=[1],
                     imports=("sweep_toy",))  # 2 of the serial sweep's points: one job array of 2 jobs
    res = run_sweep(spec, out, executor="slurm-local", progress=False)
    assert res.exit_code == 0 and res.count("done") == 2, [r for r in res.results if r["status"] != "done"]
    got = _table(out)
    want = serial_table[serial_table.key.isin(set(got.key))].reset_index(drop=True)
    assert len(got) == 2 * 4
    pd.testing.assert_frame_equal(got.drop(columns=["n"]), want.drop(columns=["n"]), check_exact=True)
    assert any((out / ".submitit").iterdir())  # the job array's logs
