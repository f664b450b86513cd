"""mfnn.analysis.gap_points: per-point SGD/DD risks, gap tables on truncated runs, robust fits;
and the experiments built on them reducing/rendering a grid cut short by divergence."""

import jax
import numpy as np
import pytest
import xarray as xr

from mfnn.analysis.gap_points import fit_or_none, frac_sup_at_start, gap_table, sgd_risk_point, sweep_means
from mfnn.analysis.scaling import gap_statistics
from mfnn.experiments import get
from mfnn.experiments.pieces import isotropic_problem


def test_gap_table_matches_gap_statistics_and_handles_truncation():
    """Full-length rows equal gap_statistics; a truncated row takes the sup over its saved prefix
    (so it can only be <= the sup of the full row it is a prefix of); an empty row is NaN."""
    rng = np.random.default_rng(3)
    ref = np.linspace(1.5, 1.0, 6)
    full = ref[None] + 0.05 + 0.03 * rng.standard_normal((5, 6))
    tab = gap_table([full, full[:, :3], np.zeros((5, 0))], ref)
    s = gap_statistics(full, ref)
    np.testing.assert_allclose(tab["gap"][0], s["gap"], rtol=0, atol=0)
    np.testing.assert_allclose(tab["fluct"][0], s["fluct"], rtol=0, atol=0)
    s3 = gap_statistics(full[:, :3], ref[:3])
    np.testing.assert_allclose(tab["gap"][1], s3["gap"], rtol=0, atol=0)
    assert np.all(tab["gap"][1] <= tab["gap"][0])
    assert np.all(np.isnan(tab["gap"][2])) and np.isnan(tab["bias"][2])
    assert list(tab["n_saved"]) == [6, 3, 0]
    assert np.all(np.isnan(tab["risk"][1, :, 3:])) and tab["risk"].shape == (3, 5, 6)
    m = sweep_means(tab, [0, 1, 2])
    assert abs(m["gap_mean"][0] - s["gap"].mean()) < 1e-15
    assert abs(m["gap_sem"][0] - s["gap"].std(ddof=1) / np.sqrt(5)) < 1e-15
    assert np.isnan(m["gap_mean"][2])


def test_frac_sup_at_start():
    ref = np.zeros(4)
    risk = np.array([[[3.0, 1, 1, 1], [0.0, 2, 0, 0], [1.0, 1, 1, 5]]])  # sup at t0, t1, t3
    assert frac_sup_at_start(risk, ref)[0] == pytest.approx(1 / 3)


def test_fit_or_none_drops_unusable_points():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    y = 3.0 * x ** -0.5
    f = fit_or_none(x, np.where(x == 4.0, np.nan, y))  # 4 usable points: exact power law
    assert abs(f["value"] + 0.5) < 1e-12 and f["n_points"] == 4
    assert fit_or_none(x, np.array([1.0, np.nan, 0.0, -1.0, 2.0])) is None


def test_sgd_risk_point_equals_solve():
    """The per-point dataset is exactly the SGD solve's risk for the same key (no reseeding)."""
    from mfnn.solvers import OnlineSGD, solve

    problem = isotropic_problem(10, 0.8, 0.8, 0.5, 1.5, -1.0, 1.0, 16)
    times = [0.0, 0.02, 0.04]
    ds = sgd_risk_point(problem, times, n_neurons=8, eps=0.01, replicas=2, key=jax.random.PRNGKey(5),
                        engine="generic")
    sol = solve(problem, OnlineSGD(n_neurons=8, eps=0.01, replicas=2, engine="generic"), times,
                key=jax.random.PRNGKey(5))
    np.testing.assert_array_equal(ds.risk.values, sol.risk.T)
    assert ds.attrs["result"] == "successful" and ds.risk.dims == ("replica", "time")


def _fake_results(exp, cfg, stop_at):
    """Synthetic point datasets: R_N = R(rho_t) + c / sqrt(N) + eps, with SGD points whose eps is
    in ``stop_at`` cut after 2 saves and flagged diverged (no solver runs)."""
    results = {}
    for p in exp.points(cfg):
        times = np.asarray(p.params["times"])
        ref = 1.0 + np.exp(-times)
        if p.params["kind"] == "dd":
            results[p.key] = xr.Dataset({"dd_risk": ("time", ref)}, coords={"time": times},
                                        attrs={"result": "successful"})
            continue
        n, e = p.params["n_neurons"], p.params["eps"]
        rng = np.random.default_rng(p.seed)
        risk = ref[None] + (1 + 0.1 * rng.standard_normal((p.params["replicas"], times.size))) * (n ** -0.5 + e)
        attrs = {"result": "successful", "seconds": 0.0}
        if e in stop_at:
            risk, times = risk[:, :2], times[:2]
            attrs.update(result="diverged", stopped_at=float(times[-1]))
        results[p.key] = xr.Dataset({"risk": (("replica", "time"), risk)}, coords={"time": times}, attrs=attrs)
    return results


@pytest.mark.parametrize("name", ["pnas-error-scaling", "mmm-dimension-free"])
def test_reduce_and_render_survive_divergence(name, tmp_path):
    exp = get(name)
    cfg = exp.make_config(quick=True)
    big_eps = max(cfg.eps_sweep)
    summary, data = exp.reduce(cfg, _fake_results(exp, cfg, {big_eps}))
    assert summary["result"] == "diverged"
    assert list(summary["stopped_at"].values()) == [pytest.approx(cfg.t_max / (cfg.n_times - 1))] * len(
        summary["stopped_at"])
    figs = exp.render(cfg, {}, summary)
    for stem, fig in figs.items():
        fig.savefig(tmp_path / f"{stem}.png")
    for fname, ds in data.items():
        ds.to_netcdf(tmp_path / fname, engine="scipy")


def test_estimate_is_monotone_and_names_the_field():
    for name, field, big in (("pnas-error-scaling", "n_large", 10**7), ("mmm-dimension-free", "eps", 1e-12)):
        exp = get(name)
        base = exp.estimate(exp.make_config())
        huge = exp.estimate(exp.make_config(overrides={field: str(big)}))
        assert huge["field"] == field
        assert huge["bytes"] >= base["bytes"] and huge["seconds"] > 100 * base["seconds"]


@pytest.mark.parametrize("name,field,raw", [
    ("pnas-error-scaling", "delta", "nan"), ("pnas-error-scaling", "s2", "inf"), ("pnas-error-scaling", "d", "1000000000000"),
    ("pnas-error-scaling", "replicas", "100000"), ("mmm-dimension-free", "eps", "nan"),
    ("mmm-dimension-free", "dd_rtol", "0"), ("mmm-kernel-limit", "n_neurons", "1000000000"),
    ("mmm-kernel-limit", "alphas", "1,nan,3,4"), ("mmm-kernel-limit", "dt", "inf")])
def test_configs_reject_hostile_input(name, field, raw):
    from mfnn.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        get(name).make_config(overrides={field: raw})
    assert e.value.field == field


@pytest.mark.parametrize("name,field,extra", [("pnas-error-scaling", "n_neurons", "16,32,128,512"),
                                              ("mmm-dimension-free", "eps_sweep", "2e-4,1e-3,2e-3,1e-2"),
                                              ("mmm-kernel-limit", "alphas", "1,2,4,16,64,256")])
def test_adding_a_grid_point_keeps_the_other_points(name, field, extra):
    """Point keys (hence seeds and random streams) depend on content only, not on the loop index."""
    exp = get(name)
    before = {p.key: p.seed for p in exp.points(exp.make_config(quick=True))}
    after = {p.key: p.seed for p in exp.points(exp.make_config(quick=True, overrides={field: extra}))}
    assert len(after) > len(before) and all(after.get(k) == s for k, s in before.items())
