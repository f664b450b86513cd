"""mfnn.analysis.scaling (log-log exponent fits, gap statistics) and the pnas-error-scaling experiment."""

import json

import numpy as np
import pytest

from mfnn.analysis.scaling import exponent_summary, gap_statistics, loglog_fit
from mfnn.errors import ConfigError
from mfnn.experiments import get, run_experiment


def _synthetic(n_points, p, noise, rng):
    x = np.geomspace(10.0, 10.0 ** 4, n_points)
    y = 0.3 * x ** p * np.exp(noise * rng.standard_normal(n_points))
    return x, y


def test_loglog_fit_exact_power_law():
    x = np.geomspace(1, 1000, 7)
    f = loglog_fit(x, 2.0 * x ** -0.5)
    assert abs(f["value"] + 0.5) < 1e-12 and abs(np.exp(f["intercept"]) - 2.0) < 1e-10
    assert f["ci_high"] - f["ci_low"] < 1e-8 and f["r2"] > 1 - 1e-12


def test_loglog_fit_ci_coverage_and_width():
    """Known exponent -1/2 with lognormal noise: the 95% t-interval covers the truth in ~95% of
    draws (binomial 3-sigma band for 400 draws), and the mean width shrinks with more points
    (on a fixed x-range stderr ~ n^{-1/2}; for few points the t quantile t_{n-2} falls too)."""
    rng = np.random.default_rng(0)
    p, noise, trials = -0.5, 0.2, 400
    widths = {}
    for n in (4, 16, 64):
        cover, w = 0, []
        for _ in range(trials):
            f = loglog_fit(*_synthetic(n, p, noise, rng))
            cover += f["ci_low"] <= p <= f["ci_high"]
            w.append(f["ci_high"] - f["ci_low"])
            assert f["ci_low"] <= f["value"] <= f["ci_high"]
        rate = cover / trials
        assert abs(rate - 0.95) < 3 * np.sqrt(0.95 * 0.05 / trials), (n, rate)
        widths[n] = float(np.mean(w))
    assert widths[4] > 2 * widths[16]
    assert 1.6 < widths[16] / widths[64] < 2.8  # ~ sqrt(64/16) * t_14 / t_62 = 2.15


def test_loglog_fit_rejects_bad_input():
    with pytest.raises(ConfigError):
        loglog_fit([1, 2], [1, 2])
    with pytest.raises(ConfigError):
        loglog_fit([1, 2, 3], [1, 0, 2])
    assert set(exponent_summary(loglog_fit([1, 2, 4], [1, 2, 4.1]))) == {"value", "ci_low", "ci_high"}


def test_gap_statistics_triangle_inequality():
    rng = np.random.default_rng(1)
    ref = np.linspace(1.5, 1.0, 6)
    risk = ref[None] + 0.05 + 0.02 * rng.standard_normal((8, 6))
    s = gap_statistics(risk, ref)
    assert s["gap"].shape == (8,) and s["fluct"].shape == (8,)
    assert np.all(s["gap"] <= s["fluct"] + s["bias"] + 1e-15)
    assert abs(s["bias"] - np.max(np.abs(risk.mean(0) - ref))) < 1e-15
    # a pure offset is all bias, no fluctuation
    s0 = gap_statistics(np.tile(ref + 0.1, (3, 1)), ref)
    assert np.allclose(s0["gap"], 0.1) and np.allclose(s0["fluct"], 0.0) and abs(s0["bias"] - 0.1) < 1e-12


@pytest.mark.slow  # 40 s; reduce/render/fits of this experiment are in the fast tier (test_gap_points.py)
def test_pnas_error_scaling_quick(tmp_path):
    p = run_experiment("pnas-error-scaling", out=tmp_path / "e", quick=True, progress=False)
    s = json.loads((p / "summary.json").read_text())
    for k in ("n_exponent", "eps_exponent", "n_exponent_fluctuation", "n_exponent_bias",
              "eps_exponent_fluctuation", "eps_exponent_bias"):
        f = s[k]
        assert set(f) == {"value", "ci_low", "ci_high"}
        assert all(np.isfinite(v) for v in f.values())
        assert f["ci_low"] <= f["value"] <= f["ci_high"]
    assert s["n_exponent_bound"] == -0.5 and s["eps_exponent_bound"] == 0.5
    assert s["n_exponent"]["value"] < 0 < s["eps_exponent"]["value"]  # gap falls with N, grows with eps
    # the per-replica gap is bounded by fluctuation + bias (triangle inequality, replica-averaged)
    for sw in (s["n_sweep"], s["eps_sweep"]):
        assert all(g <= f + b + 1e-12 for g, f, b in zip(sw["gap_mean"], sw["fluct_mean"], sw["bias"]))
    for ext in ("png", "svg"):
        assert (p / f"error_scaling.{ext}").exists()
    assert (p / "error_scaling.nc").exists()


def test_pnas_error_scaling_config_validation():
    exp = get("pnas-error-scaling")
    with pytest.raises(ConfigError, match="eps"):
        exp.make_config(overrides={"eps_small": "3e-5"})
    with pytest.raises(ConfigError, match="n_neurons"):
        exp.make_config(overrides={"n_neurons": "64,32,128"})
    with pytest.raises(ConfigError, match="d"):
        exp.make_config(overrides={"d": "5"})
