"""CLI: one-line errors with non-zero exit and nothing written; a real end-to-end quick run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mfnn.cli import main

BAD_INPUTS = [
    (["run", "no-such-experiment"], "experiment"),
    (["run", "pnas-isotropic", "--set", "delta=1.5"], "delta"),
    (["run", "pnas-isotropic", "--set", "d=abc"], "d"),
    (["run", "pnas-isotropic", "--set", "n_neurons=0"], "n_neurons"),
    (["run", "pnas-isotropic", "--set", "eps=-1e-5"], "eps"),
    (["run", "pnas-isotropic", "--set", "unknown_field=3"], "unknown_field"),
    (["run", "pnas-isotropic", "--set", "novalue"], "--set"),
    (["run", "pnas-isotropic", "--set", "panel_times=0,1e6"], "panel_times"),
    (["run", "pnas-isotropic", "--set", "eps=inf"], "eps"),
    (["run", "pnas-isotropic", "--set", "n_neurons=٣٠"], "n_neurons"),
    (["run", "pnas-isotropic", "--set", "n_neurons=30", "--set", "n_neurons=40"], "n_neurons"),
    (["run", "pnas-isotropic", "--set", "n_neurons=1000000000000"], "n_neurons"),
    (["run", "pnas-isotropic", "--seed", "100000000000000000000000"], "seed"),
    (["run", "pnas-isotropic", "--bogus-option"], "usage"),
]


@pytest.mark.parametrize("args,field", BAD_INPUTS)
def test_bad_input_one_line_nonzero_nothing_written(tmp_path, args, field):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, args + ["--out", str(out)])
    assert res.exit_code == 2
    lines = [l for l in res.output.strip().splitlines() if l]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("mfnn: error: ") and field in lines[0]
    assert not out.exists() and not Path(str(out) + ".partial").exists()
    assert list(tmp_path.iterdir()) == []


def test_list_names_every_experiment():
    res = CliRunner().invoke(main, ["list"])
    assert res.exit_code == 0
    assert "pnas-isotropic" in res.output


def test_show_rejects_non_run_directory(tmp_path):
    res = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert res.exit_code == 2 and "summary.json" in res.output


def test_quick_run_end_to_end(tmp_path):
    """`mfnn run pnas-isotropic --quick` through the installed entry point, then `mfnn show`."""
    out = tmp_path / "iso"
    exe = Path(sys.executable).with_name("mfnn")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mfnn.cli"]
    env = dict(os.environ)
    proc = subprocess.run(cmd + ["run", "pnas-isotropic", "--quick", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not Path(str(out) + ".partial").exists()
    for name in (".mfnn-run", "config.json", "summary.json", "sgd.nc", "dd.nc", "histograms.nc",
                 "histograms.png", "risk.png", "histograms.svg", "risk.svg"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["seed"] == 0 and "jax" in cfg["versions"] and cfg["quick"] is True
    summary = json.loads((out / "summary.json").read_text())
    assert summary["result"] == "successful"
    table = summary["table"]
    assert len(table) >= 5 and set(table[0]) >= {"t", "sgd_risk", "sgd_risk_std", "dd_risk"}
    sgd = np.array([r["sgd_risk"] for r in table])
    dd = np.array([r["dd_risk"] for r in table])
    assert np.all(np.isfinite(sgd)) and np.all(np.isfinite(dd))
    # the DD is a gradient flow: its risk never increases (to integration tolerance)
    assert np.all(np.diff(dd) <= 1e-9)
    # quick preset N = 100: SGD sits above the DD by the O(1/N) self-interaction term
    # (~0.14 at t = 0, E[sigma^2]-scale / N) plus O(sqrt(eps)) noise: a 0.25 band is 2x that
    assert np.max(np.abs(sgd - dd)) < 0.25
    # the risk falls substantially over the run in both
    assert dd[-1] < 0.6 * dd[0] and sgd[-1] < 0.6 * sgd[0]
    # histogram data: densities integrate to ~1 over the bins
    import xarray as xr

    with xr.open_dataset(out / "histograms.nc", engine="scipy") as h:
        widths = (h.bin_right - h.bin_left).values
        np.testing.assert_allclose((h.sgd_density.values * widths).sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_allclose((h.dd_density.values * widths).sum(axis=1), 1.0, atol=1e-9)
    shown = subprocess.run(cmd + ["show", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert shown.returncode == 0 and "SGD risk" in shown.stdout
    # a second run into the same directory is refused without --overwrite, and nothing changes
    again = subprocess.run(cmd + ["run", "pnas-isotropic", "--quick", "--out", str(out)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "out" in again.stderr
    assert json.loads((out / "summary.json").read_text()) == summary
