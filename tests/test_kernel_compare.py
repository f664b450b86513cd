"""mfnn.kernel.compare: teacher data, the linearized reference (eq. 17), the alpha-flow point and the
comparison (COLT 2019 Thm 4)."""

import jax
import numpy as np
import pytest
import scipy.linalg
import xarray as xr

from mfnn.kernel import empirical_kernel
from mfnn.kernel.compare import (alpha_flow_point, compare_flows, kernel_instance, kernel_limit_fits,
                                 linearized_reference, teacher_data)


def _instance(act="erf", n_neurons=64):
    return kernel_instance(act, ("a", "w"), kappa=1.0, d=3, n_neurons=n_neurons, n_train=8, n_test=5,
                           teacher_units=3, data_key=jax.random.PRNGKey(1), init_key=jax.random.PRNGKey(2))


def test_teacher_data_bounded_and_reproducible():
    """|f| <= sum_k |c_k| = sqrt(K) with c_k = +-1/sqrt(K); the same key gives the same data."""
    a = teacher_data(jax.random.PRNGKey(0), 4, 200, 50, 9)
    b = teacher_data(jax.random.PRNGKey(0), 4, 200, 50, 9)
    assert a["x"].shape == (200, 4) and a["y"].shape == (200,) and a["y_test"].shape == (50,)
    assert float(np.max(np.abs(a["y"]))) <= 3.0
    np.testing.assert_array_equal(np.asarray(a["y"]), np.asarray(b["y"]))


def test_linearized_reference_is_the_matrix_exponential():
    """u*_t = expm(-H t/n) y (eq. 17) with H the finite-N kernel at theta^0; ||u*_t|| is
    non-increasing (H is PSD); the erf student also gets the population-kernel residual."""
    unit, init, data, theta0 = _instance()
    times = np.array([0.0, 0.5, 2.0])
    ref = linearized_reference(unit, init, theta0, data, times)
    H = np.asarray(empirical_kernel(unit, theta0, data["x"]))
    y = np.asarray(data["y"])
    for k, t in enumerate(times):
        np.testing.assert_allclose(ref.u_star.values[k], scipy.linalg.expm(-H * t / 8) @ y, rtol=1e-9, atol=1e-12)
    norms = np.linalg.norm(ref.u_star.values, axis=1)
    assert np.all(np.diff(norms) <= 1e-14)
    assert "u_star_pop" in ref and ref.u_star_pop.shape == (3, 8)
    np.testing.assert_allclose(ref.u_star_pop.values[0], y, rtol=0, atol=1e-12)


def test_alpha_flow_approaches_the_linearized_dynamics():
    """The gap ||u^alpha_t - u*_t|| falls at least as fast as the Thm 4 bound 1/alpha between
    alpha = 8 and alpha = 64 (ratio > 8 minus a 20% margin; measured ~ alpha^-2 gives ~ 64), the
    W2 displacement falls ~ 1/alpha (ratio in [6, 10]) and u^alpha_0 = y (antithetic pairs)."""
    unit, init, data, theta0 = _instance()
    times = np.array([0.0, 0.5, 1.0])
    ref = linearized_reference(unit, init, theta0, data, times)
    flows = [alpha_flow_point(unit, theta0, data, a, times, dt=0.05) for a in (8.0, 64.0)]
    ds = compare_flows(ref, flows, [8.0, 64.0])
    np.testing.assert_allclose(ds.residual.values[:, 0], np.tile(np.asarray(data["y"]), (2, 1)), atol=1e-12)
    g = ds.gap.values[:, -1]
    assert g[0] / g[1] > 6.4
    w = ds.w2_bound.values[:, -1]
    assert 6.0 < w[0] / w[1] < 10.0
    assert ds.gap_population.shape == (2, 3) and ds.attrs["cond_H"] >= 1.0


def _synthetic_flow(alpha, times, n=4, m=3, stop=None):
    u = np.outer(np.exp(-times), np.ones(n)) + alpha ** -2.0
    ds = xr.Dataset({"residual": (("time", "train"), u), "pred_test": (("time", "test"), np.zeros((times.size, m))),
                     "w2_bound": (("time",), times / alpha)}, coords={"time": times},
                    attrs={"alpha": alpha, "result": "successful"})
    return ds if stop is None else ds.isel(time=slice(0, stop)).assign_attrs(result="diverged")


def test_compare_flows_fits_and_divergence_padding():
    """Synthetic residuals u*_t + alpha^-2: gap = alpha^-2 exactly, W2 = t/alpha; a flow cut after
    2 saves is NaN-padded and drops out of the fits (4 usable alphas remain)."""
    times = np.linspace(0.0, 2.0, 5)
    ref = xr.Dataset({"u_star": (("time", "train"), np.outer(np.exp(-times), np.ones(4))),
                      "kernel_pred_test": (("time", "test"), np.zeros((5, 3)))}, coords={"time": times},
                     attrs={"cond_H": 10.0})
    alphas = [1.0, 2.0, 4.0, 8.0, 16.0]
    flows = [_synthetic_flow(a, times, stop=2 if a == 4.0 else None) for a in alphas]
    ds = compare_flows(ref, flows, alphas)
    assert np.all(np.isnan(ds.gap.values[2, 2:])) and np.isfinite(ds.gap.values[2, :2]).all()
    fits = kernel_limit_fits(ds, t_fit=2.0, alpha_fit_min=1.0)
    assert fits["alpha_exponent"]["value"] == pytest.approx(-2.0, abs=1e-12)
    assert fits["alpha_exponent"]["n_points"] == 4
    assert fits["w2_alpha_exponent"]["value"] == pytest.approx(-1.0, abs=1e-12)
    assert fits["gap_at_t_fit"]["2"] == pytest.approx(0.25, rel=1e-12)


def test_kernel_limit_experiment_reduces_and_renders_a_diverged_flow(tmp_path):
    """Synthetic point datasets for the quick grid (no solver runs): one flow cut after 2 saves
    makes summary.json say where it stopped, and reduce/render still produce every output."""
    from mfnn.experiments import get

    exp = get("mmm-kernel-limit")
    cfg = exp.make_config(quick=True)
    times = cfg.times()
    results = {}
    for p in exp.points(cfg):
        if p.params["kind"] == "linearized":
            results[p.key] = xr.Dataset({"u_star": (("time", "train"), np.outer(np.exp(-times), np.ones(cfg.n_train))),
                                         "kernel_pred_test": (("time", "test"), np.zeros((times.size, cfg.n_test)))},
                                        coords={"time": times}, attrs={"cond_H": 5.0})
        else:
            a = p.params["alpha"]
            stop = 2 if (a == 16.0 and p.params["activation"] == "relu") else None
            results[p.key] = _synthetic_flow(a, times, cfg.n_train, cfg.n_test, stop)
            if stop:
                results[p.key].attrs["stopped_at"] = float(times[1])
    summary, data = exp.reduce(cfg, results)
    assert summary["result"] == "diverged" and summary["stopped_at"] == {"relu,alpha=16": float(times[1])}
    assert summary["alpha_exponent"]["value"] == pytest.approx(-2.0, abs=1e-12)
    assert summary["by_activation"]["relu"]["alpha_exponent"]["n_points"] == 3  # alphas 4, 64, 256
    for stem, fig in exp.render(cfg, results, summary).items():
        fig.savefig(tmp_path / f"{stem}.png")
    assert set(data) == {"flow_erf.nc", "flow_relu.nc"}
