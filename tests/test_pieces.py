"""Config pieces and bookkeeping helpers of experiments/pieces.py (validation, status, tables)."""

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from mfnn.errors import ConfigError
from mfnn.experiments.pieces import (check_ranges, estimate_from, format_table, parse_d, run_status, summary_status,
                                     take)


@pytest.mark.parametrize("value,ok", [(0.0, False), (1e-9, True), (1.0, True), (1.0000001, False),
                                      (math.nan, False), (math.inf, False), ("0.5", False), (None, False)])
def test_check_ranges_half_open(value, ok):
    cfg = SimpleNamespace(eps=value)
    if ok:
        check_ranges(cfg, {"eps": "(0, 1]"})
    else:
        with pytest.raises(ConfigError) as e:
            check_ranges(cfg, {"eps": "(0, 1]"})
        assert e.value.field == "eps" and "(0, 1]" in str(e.value)


def test_check_ranges_closed_and_choices():
    check_ranges(SimpleNamespace(d=2, engine="auto"), {"d": "[2, 1e6]", "engine": ("auto", "generic")})
    for cfg, field in ((SimpleNamespace(d=1, engine="auto"), "d"), (SimpleNamespace(d=2, engine="gpu"), "engine")):
        with pytest.raises(ConfigError) as e:
            check_ranges(cfg, {"d": "[2, 1e6]", "engine": ("auto", "generic")})
        assert e.value.field == field


def test_parse_d():
    assert parse_d("inf") == math.inf and parse_d(" Infinity ") == math.inf and parse_d("40") == 40
    for bad in ("1", "-3", "abc", "1.5", "nan", str(10 ** 12)):
        with pytest.raises(ConfigError) as e:
            parse_d(bad, field="sgd_d")
        assert e.value.field == "sgd_d"


def test_run_status_and_summary_status():
    ok, div = SimpleNamespace(result="successful"), SimpleNamespace(result="diverged")
    assert run_status([0.0, 1.0], ok, ok, None) == {"result": "successful", "sgd_diverged": 0, "dd_diverged": 0}
    st = run_status(np.array([0.0, 0.5]), ok, None, div)
    assert st == {"result": "diverged", "sgd_diverged": 0, "dd_diverged": 1, "stopped_at": 0.5}
    s = summary_status(xr.Dataset(attrs=st))
    assert s["result"] == "diverged" and s["stopped_at"] == 0.5 and s["dd_diverged"] is True and "warning" in s
    assert summary_status(xr.Dataset()) == {"sgd_diverged": False, "dd_diverged": False, "result": "successful"}


def test_take_splits_by_prefix():
    ds = xr.Dataset({"sgd_risk": ("time", [1.0, 2.0]), "dd_risk": ("time", [3.0, 4.0]), "dd_radius": ("time", [5.0, 6.0])},
                    coords={"time": [0.0, 1.0], "step": ("time", [0, 10])})
    dd = take(ds, "dd_", "reference", drop=("step",))
    assert set(dd.data_vars) == {"risk", "radius"} and "step" not in dd.coords and dd.attrs["description"] == "reference"
    np.testing.assert_array_equal(take(ds, "sgd_").risk.values, [1.0, 2.0])
    assert "step" in take(ds, "sgd_").coords


def test_format_table_nested_and_missing_columns():
    rows = [{"t": 0.0, "c": {"gap": 0.5}}, {"t": 1.0, "c": {"gap": 0.25}}]
    text = format_table(rows, [("t", "t", ".2f"), ("gap", "c.gap", ".3f"), ("absent", "nope", ".1f")])
    lines = text.splitlines()
    assert len(lines) == 3 and "absent" not in lines[0] and lines[2].split() == ["1.00", "0.250"]


def test_estimate_from_is_monotone_and_names_the_dominant_field():
    small = estimate_from((1e6, 10.0), (1e5, 5.0), count=2, extra_seconds=1.0)
    assert small == {"bytes": 1.1e6, "seconds": 31.0, "field": "eps"}
    assert estimate_from((1e6, 1.0), (1e5, 5.0))["field"] == "dd_particles"
    assert estimate_from((1e10, 1.0), (1e5, 5.0))["field"] == "n_neurons"
    assert estimate_from((1e5, 1.0), (1e10, 5.0))["field"] == "dd_particles"

    @dataclass(frozen=True)
    class C:
        n_neurons: int = 100
        eps: float = 1e-3
        replicas: int = 1
        dtype: str = "float64"

    from mfnn.experiments.pieces import SGDFields

    cost = lambda **kw: SGDFields.sgd_cost(C(**kw), 10, 1.0, 5)  # noqa: E731
    base = cost()
    for kw in ({"n_neurons": 200}, {"replicas": 2}):  # more units: more memory and more time
        assert all(b > a for a, b in zip(base, cost(**kw))), kw
    smaller_eps = cost(eps=1e-4)  # 10x the steps: same memory, more time
    assert smaller_eps[0] == base[0] and smaller_eps[1] > base[1]
