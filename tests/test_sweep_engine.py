"""Sweep engine: spec validation (nothing written on bad input), restartable content-hashed storage,
failures isolated per point, status and collection (tidy table, dataset with mean/std/count over
seeds).  Uses the JAX-free toy experiment of ``sweep_toy.py``."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import xarray as xr

import sweep_toy  # noqa: F401  (registers "sweep-toy")
from mfnn.errors import ConfigError
from mfnn.sweeps import SweepSpec, run_sweep
from mfnn.sweeps.collect import collect, status, status_lines



def _spec(**kw):
    base = dict(experiment="sweep-toy", grid={"x": [1.0, 2.0, 4.0]}, seeds=[0, 1, 2], imports=("sweep_toy",))
    return SweepSpec(**{**base, **kw})


def _cli(*args):
    """The CLI in this process (click's runner: exit code and stderr)."""
    from click.testing import CliRunner

    from mfnn.cli import main

    return CliRunner().invoke(main, list(args))


def test_grid_forms_and_keys():
    from mfnn.sweeps.spec import parse_grid, parse_seeds

    assert parse_grid("eps", "logspace(1e-6,1e-4,3)") == pytest.approx([1e-6, 1e-5, 1e-4], rel=1e-12)
    assert parse_grid("n", "logspace(100,400,3)", "int") == [100, 200, 400]
    assert parse_grid("n", "range(2,8,2)", "int") == [2, 4, 6]
    assert parse_grid("x", "linspace(0,1,3)") == [0.0, 0.5, 1.0]
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("4,7") == [4, 7]
    pts = SweepSpec.from_cli("sweep-toy", ["x=1,2"], ["n=1,2,3", "sleep=0,0,0"], "2", imports=["sweep_toy"]).resolve()
    assert len(pts) == 2 * 3 * 2 and len({p.key for p in pts}) == len(pts)
    # the key is a content hash of the resolved config: the same point from another grid has the same key
    again = {p.key for p in SweepSpec(experiment="sweep-toy", grid={"x": [2.0]}, zipped=[{"n": [1, 2, 3], "sleep": [0.0] * 3}],
                                      seeds=[0, 1]).resolve()}
    assert again < {p.key for p in pts}


@pytest.mark.parametrize("args, field", [
    (["--grid", "nope=1,2"], "nope"),                 # unknown field
    (["--grid", "x=1,abc"], "x"),                     # bad value
    (["--grid", "x=500"], "x"),                       # out of range (validate)
    (["--grid", "x="], "x"),                          # empty list
    (["--grid", "x=logspace(0,1,3)"], "x"),           # logspace needs positive bounds
    (["--zip", "x=1,2", "--zip", "n=1,2,3"], "x"),    # zipped lengths differ
    (["--grid", "x=1", "--seeds", "0"], "seeds"),     # no seeds
    (["--grid", "x=1", "--set", "x=2"], "x"),         # both swept and fixed
])
def test_bad_specs_one_line_exit_2_nothing_written(tmp_path, args, field):
    out = tmp_path / "sw"
    r = _cli("sweep", "sweep-toy", "--import", "sweep_toy", "--executor", "serial", "--out", str(out), *args)
    assert r.exit_code == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mfnn: error: {field}:"), r.stderr
    assert not out.exists()


def test_malformed_toml_and_unknown_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('experiment = "sweep-toy"\n[grid\nx = [1, 2]\n')
    r = _cli("sweep", "--spec", str(bad), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("mfnn: error: --spec:") and "not valid TOML" in r.stderr
    with pytest.raises(ConfigError, match="^colour"):
        SweepSpec.from_dict({"experiment": "sweep-toy", "colour": 1})
    with pytest.raises(ConfigError, match="^x: empty grid"):
        SweepSpec.from_dict({"experiment": "sweep-toy", "grid": {"x": []}})
    assert not (tmp_path / "o").exists()


def test_toml_spec_equals_cli_spec(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('experiment = "sweep-toy"\nimports = ["sweep_toy"]\nseeds = 2\nquick = true\n'
                 '[set]\nsleep = 0.0\n[grid]\nx = "logspace(1, 4, 3)"\n[[zip]]\nn = [1, 2]\nfail_at = [-1.0, -2.0]\n')
    a = SweepSpec.from_toml(f).resolve()
    b = SweepSpec.from_cli("sweep-toy", ["x=logspace(1,4,3)"], ["n=1,2", "fail_at=-1,-2"], "2", {"sleep": "0"},
                           quick=True).resolve()
    assert [p.key for p in a] == [p.key for p in b]


def test_serial_sweep_failures_status_collect_and_rerun(tmp_path):
    out = tmp_path / "sw"
    spec = _spec(overrides={"fail_at": 4.0})
    res = run_sweep(spec, out, executor="serial", progress=False)
    assert res.exit_code == 1 and len(res.failed) == 3 and res.count("done") == 6
    st = status(out)
    assert st["counts"] == {"done": 6, "running": 0, "failed": 3, "pending": 0}
    failed = [d for _, s, d in st["points"] if s == "failed"]
    assert all("toy failure at x=4.0" in d for d in failed)
    assert status_lines(out)[-1] == "done: 6, running: 0, failed: 3, pending: 0"
    # the failed point's traceback is in its own directory
    p = next(p for p, s, _ in st["points"] if s == "failed")
    assert "Traceback" in (out / "points" / f"{p['key']}.partial" / "error.log").read_text()

    tpath, dpath = collect(out)
    tab = pd.read_parquet(tpath)
    assert set(tab["output"]) == {"y", "spread.max", "spread.min", "n_out"}
    assert len(tab) == 6 * 4 and not tab.duplicated(["key", "output"]).any()
    ds = xr.open_dataset(dpath).load()
    assert list(ds.x.values) == [1.0, 2.0, 4.0] and list(ds.y_count.values) == [3, 3, 0]
    # mean and sample std over seeds from the table itself
    y1 = tab[(tab.output == "y") & (tab.x == 1.0)].value.to_numpy()
    assert ds.y_mean.values[0] == pytest.approx(y1.mean(), rel=1e-14)
    assert ds.y_std.values[0] == pytest.approx(y1.std(ddof=1), rel=1e-12)
    # y = x^2 n + N(0, 0.01^2 / n) mean: the means are within 5 standard errors of x^2 n (n = 4)
    assert abs(ds.y_mean.values[1] - 16.0) < 5 * 0.01 / np.sqrt(4 * 3)

    # rerun with the failure fixed (a different spec: refused) / the same spec: only the failed ones run
    with pytest.raises(ConfigError, match="^out: .* different sweep"):
        run_sweep(_spec(), out, executor="serial", progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir() if p.is_dir() and "." not in p.name}
    res2 = run_sweep(spec, out, executor="serial", progress=False)
    assert res2.skipped == 6 and len(res2.results) == 3 and res2.exit_code == 1
    after = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir() if p.name in before}
    assert after == before  # done points untouched


def test_refuses_foreign_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "data.txt").write_text("mine")
    with pytest.raises(ConfigError, match="^out: .*not an mfnn sweep"):
        run_sweep(_spec(), tmp_path / "x", executor="serial", progress=False)
    assert (tmp_path / "x" / "data.txt").read_text() == "mine"
