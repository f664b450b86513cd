"""``mfnn run`` maps an experiment's compute over its points on the sweep engine's executors
(``--executor local --workers 2``) with the same results, point by point and in the summary, as
in one process; divergence and ``--resume`` behave the same."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xarray as xr

import sweep_toy  # noqa: F401
from mfnn.errors import DivergenceError
from mfnn.experiments.runner import run_experiment
from mfnn.io import read_json

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _workers_find_the_toy(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)]))


def _points(path):
    return {p.name: xr.open_dataset(p, engine="scipy").load() for p in sorted((path / "points").glob("*.nc"))}


@pytest.mark.slow  # spawns a 2-worker pool (20-50 s on 2 loaded cores)
def test_divergence_on_a_pool_like_in_one_process(tmp_path):
    for ex, out in ((None, "serial"), ("local", "pool")):
        with pytest.raises(DivergenceError):
            run_experiment("sweep-toy-multi", out=tmp_path / out, progress=False, overrides={"diverge_at": "3"},
                           executor=ex, workers=2)
    a, b = (read_json(tmp_path / o / "summary.json") for o in ("serial", "pool"))
    assert a["result"] == b["result"] == "diverged"
    assert a["stopped_in"] == b["stopped_in"] and a["stopped_in"]["point"] == 2 and a["ys"] == b["ys"]
    assert a["points"] == b["points"]  # point order kept
    pa, pb = _points(tmp_path / "serial"), _points(tmp_path / "pool")
    assert list(pa) == list(pb) and len(pa) == 4
    for k in pa:  # the same numbers, point by point
        xr.testing.assert_identical(pa[k], pb[k])
