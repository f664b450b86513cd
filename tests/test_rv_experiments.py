"""The four RV 2018 experiments end to end (--quick), their config validation, and the two
statistical claims behind them on tiny problems (loss decreasing in n; the SGD temperature dt/P)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mfnn
from mfnn.errors import ConfigError
from mfnn.experiments import get, run_experiment
from mfnn.experiments.rv_pieces import spin_sigmoid_problem
from mfnn.solvers import ParticleFlow, Phase


def _run(name, tmp_path):
    out = run_experiment(name, out=tmp_path / name, quick=True, progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["result"] == "successful"
    for f in s["figures"]:
        assert (out / f).exists()
    return s


@pytest.mark.slow  # 27-63 s on 2 loaded cores
def test_rv_temperature_quick(tmp_path):
    s = _run("rv-temperature", tmp_path)
    assert set(s["collapse"]) >= {"spread_equal_theta", "spread_across_theta"}
    for r in s["table"]:
        assert r["theta"] == pytest.approx(r["dt"] / r["P"], rel=1e-12)
    assert all(np.isfinite(r["loss_mean"]) for r in s["table"])


@pytest.mark.slow
def test_rv_spin_scaling_quick(tmp_path):
    s = _run("rv-spin-scaling", tmp_path)
    assert {"n_exponent", "table", "schedule"} <= set(s)
    assert {"n", "loss_mean", "loss_std", "signed_pos", "signed_neg"} <= set(s["table"][0])
    sched = s["schedule"]["16"]
    assert [p["batch"] for p in sched] == [3, 9] and sched[1]["temperature"] == pytest.approx(sched[1]["dt"] / 9)


@pytest.mark.slow
def test_rv_rbf_d5_quick(tmp_path):
    s = _run("rv-rbf-d5", tmp_path)
    assert {"n_exponent", "table", "schedule"} <= set(s) and s["sphere_error_max"] < 1e-12
    assert s["mode"] == "direct" and max(s["energy_increase"].values()) < 1e-3  # a stable step: descent


@pytest.mark.slow
def test_rv_fluctuations_quick(tmp_path):
    s = _run("rv-fluctuations", tmp_path)
    assert {"n", "t", "n_var"} <= set(s["table"][0]) and set(s["self_healing_ratio"]) == {"8", "32"}


def test_rv_configs_refuse_bad_values():
    for name, field, value in (("rv-spin-scaling", "n_particles", "(0, 4, 8)"), ("rv-temperature", "batches", "(0, 2)"),
                               ("rv-rbf-d5", "dt", "-1"), ("rv-fluctuations", "inits", "1"),
                               ("rv-spin-scaling", "dtype", "float16"), ("rv-rbf-d5", "mode", "bogus"),
                               ("rv-rbf-d5", "rbf_sign", "minus")):
        with pytest.raises(ConfigError, match=field):
            get(name).make_config(overrides={field: value})


def test_spin_scaling_default_fits_the_budget_and_the_paper_schedule_is_refused():
    """The default's quiet-machine estimate is within the issue's 20 minutes (the estimate sums the
    calibrated rates of ``rv_pieces``: 354 s measured, 5.9 min estimated); the paper's schedule
    (2e6 + 2e5 steps, uncapped quench) is estimated at more than a day and refused without --force."""
    exp = get("rv-spin-scaling")
    assert exp.estimate(exp.make_config())["seconds"] < 20 * 60
    paper = {"dt": "0.001", "steps": "2000000", "quench_steps": "200000", "quench_batch_max": "0", "n_test": "100000"}
    assert exp.estimate(exp.make_config(overrides=paper))["seconds"] > 24 * 3600


@pytest.mark.slow
def test_final_loss_decreases_with_n_at_fixed_budget():
    """Tiny problem (sigmoid units, 3-spin d = 4, fixed-sample gradient flow, same steps): the mean
    final test loss over 16 seeds at n = 128 is below n = 4 by more than 3 standard errors (one-sided
    significance 0.1%).  n = 4 against 32 with 12 seeds separated by only 3.75 s.e.; the wider ratio
    and the extra seeds give 4.8 s.e. (measured 2026-12-03; 174 s at load ~20)."""
    prob = spin_sigmoid_problem(4, [5])
    out = {}
    for n in (4, 128):
        m = ParticleFlow(n_particles=n, phases=(Phase(800, 0.2),), mode="fixed", n_mc=1000, n_test=4000, replicas=16)
        out[n] = mfnn.solve(prob, m, m.times_at([0, 800]), key=3).loss[-1]
    se = np.sqrt(out[4].var(ddof=1) / 16 + out[128].var(ddof=1) / 16)
    print("separation in standard errors:", (out[4].mean() - out[128].mean()) / se)
    assert out[4].mean() - out[128].mean() > 3 * se, out


@pytest.mark.slow
def test_equal_temperature_agrees_and_four_times_the_temperature_does_not():
    """SGD (RV eq. 3.1) to the same time T: (dt, P) = (0.1, 1) and (0.2, 2) share theta = 0.1 and their
    mean final losses agree within 3 combined standard errors (16 seeds); (0.4, 1) at theta = 0.4 differs
    by more than 3.  The loss is averaged over the last quarter of the run to reduce the SGD noise."""
    prob = spin_sigmoid_problem(5, [1])
    res = {}
    for dt, P in ((0.1, 1), (0.2, 2), (0.4, 1)):
        steps = int(round(200 / dt))
        m = ParticleFlow(n_particles=32, phases=(Phase(steps, dt, P),), n_test=3000, replicas=16)
        sol = mfnn.solve(prob, m, m.times_at(np.linspace(0.75 * steps, steps, 5).astype(int)), key=7)
        v = sol.loss.mean(axis=0)
        res[(dt, P)] = (v.mean(), v.std(ddof=1) / 4)
    (a, sa), (b, sb), (c, sc) = res[(0.1, 1)], res[(0.2, 2)], res[(0.4, 1)]
    assert abs(a - b) < 3 * np.hypot(sa, sb), res
    assert abs(c - 0.5 * (a + b)) > 3 * np.hypot(sc, 0.5 * np.hypot(sa, sb)), res
