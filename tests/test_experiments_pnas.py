"""End-to-end --quick runs of pnas-failure and pnas-risk-vs-delta (smoke tests of the pipeline:
the quick presets are far too short to show the phenomena; the numbers are checked for sanity)."""

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr

from mfnn.errors import ConfigError
from mfnn.experiments import get, run_experiment


def test_pnas_isotropic_points_estimate_and_truncated_reduce(tmp_path):
    """Content keys, cost estimates, and reduce/render on a run cut short by a divergence."""
    exp = get("pnas-isotropic")
    cfg = exp.make_config(quick=True)
    (p,) = exp.points(cfg)
    # render-only fields do not change the point (nor its random stream); compute fields and seed do
    assert exp.points(dataclasses.replace(cfg, bins=7))[0].key == p.key
    assert exp.points(dataclasses.replace(cfg, n_neurons=101))[0].key != p.key
    assert exp.points(dataclasses.replace(cfg, seed=1))[0].seed != p.seed
    est = exp.estimate(cfg)
    assert est["seconds"] < 600 and est["bytes"] < 1e8
    big = exp.estimate(dataclasses.replace(cfg, eps=1e-12))
    assert big["seconds"] > 1e6 and big["field"] == "eps"  # 4e12 steps: weeks at least
    assert exp.estimate(dataclasses.replace(cfg, n_neurons=10 ** 8))["bytes"] > 1e10
    # a truncated dataset (as a diverged run leaves it: two saves) reduces and renders
    t = np.array([0.0, 0.01])
    ds = xr.Dataset({"sgd_risk": (("replica", "time"), [[1.0, np.nan], [1.1, 1.0]]),
                     "sgd_w_norm": (("replica", "time", "neuron"), np.ones((2, 2, 5))),
                     "dd_risk": (("time",), [1.0, 0.9]), "dd_radius": (("time", "particle"), np.ones((2, 4))),
                     "dd_dissipation": (("time",), [1.0, 1.0])},
                    coords={"time": t, "step": ("time", [0, 100])},
                    attrs={"result": "diverged", "stopped_at": 0.01, "sgd_diverged": 1, "dd_diverged": 0})
    summary, data = exp.reduce(cfg, {p.key: ds})
    assert summary["result"] == "diverged" and summary["stopped_at"] == 0.01 and summary["sgd_diverged"]
    assert set(data) == {"sgd.nc", "dd.nc", "histograms.nc"}
    figs = exp.render(cfg, {p.key: ds}, summary)
    for stem, fig in figs.items():
        fig.savefig(tmp_path / f"{stem}.png")


@pytest.mark.slow  # 19-22 s: quick end-to-end run (its keys and bad input stay in the fast tier)
def test_pnas_failure_quick(tmp_path):
    path = run_experiment("pnas-failure", out=tmp_path / "fail", quick=True, progress=False)
    s = json.loads((path / "summary.json").read_text())
    assert (path / "risk_and_norm.png").exists() and (path / "kappa_0.1.nc").exists()
    assert [r["kappa"] for r in s["per_kappa"]] == [0.1, 0.4]
    g = s["global_min"]
    assert g["lower_bound"] <= g["risk"] + 1e-12
    for r in s["per_kappa"]:
        c = r["certificates_dd"]
        for key in ("stationarity", "gap", "support_gap", "risk_lower_bound"):
            assert key in c
        assert c["gap"] >= 0
        # convexity: R - 2 gap <= inf R <= global min (section 4)
        assert c["risk_lower_bound"] <= g["risk"] + 1e-9
        assert r["dd_final_risk"] >= g["lower_bound"] - 1e-9
    # kappa = 0.1 falls into the trap at r ~ 0.05 within t ~ 0.03 (even at d = 40): a fixed point
    # with a clearly positive gap
    bad = s["per_kappa"][0]["certificates_dd"]
    assert bad["stationarity"] < 1e-3 and bad["gap"] > 0.5
    assert "gap" in get("pnas-failure").format_summary(s)


def test_pnas_failure_points_are_content_keyed():
    """Adding a kappa adds one point and leaves the others (keys, seeds, hence random streams) alone;
    the global-minimum point depends only on what the global minimum reads."""
    exp = get("pnas-failure")
    cfg = exp.make_config(quick=True)
    base = exp.points(cfg)
    more = exp.points(dataclasses.replace(cfg, kappas=(0.1, 0.25, 0.4)))
    assert len(base) == 3 and len(more) == 4
    assert {p.key for p in base} < {p.key for p in more}
    assert len({p.seed for p in more}) == 4
    assert exp.points(dataclasses.replace(cfg, eps=1e-5, n_neurons=7))[0].key == base[0].key
    assert exp.points(dataclasses.replace(cfg, delta=0.4))[0].key != base[0].key
    for bad, field in (({"half_values": "1,2"}, "half_values"), ({"half_breakpoints": "0.5,0.2,1,2"}, "half_breakpoints"),
                       ({"kappas": "0,0.4"}, "kappas"), ({"eps": "nan"}, "eps"), ({"dd_n_hermite": "0"}, "dd_n_hermite")):
        with pytest.raises(ConfigError) as e:
            exp.make_config(overrides=bad)
        assert e.value.field == field
    assert exp.estimate(dataclasses.replace(cfg, eps=1e-12))["seconds"] > 86400  # 5e10 steps per kappa: days


@pytest.mark.parametrize("overrides", [pytest.param({}, marks=pytest.mark.slow), {"d": "inf"}])  # finite d: 40 s
def test_pnas_risk_vs_delta_quick(tmp_path, overrides):
    path = run_experiment("pnas-risk-vs-delta", out=tmp_path / "rvd", quick=True, progress=False,
                          overrides=overrides)
    s = json.loads((path / "summary.json").read_text())
    assert (path / "risk_vs_delta.png").exists() and (path / "risk_vs_delta.nc").exists()
    assert s["d"] == overrides.get("d", "10") and s["sgd_d"] == 10
    assert s["d_interaction"] == ("inf" if overrides else "finite")
    assert [r["delta"] for r in s["table"]] == [0.4, 0.8]
    for r in s["table"]:
        assert {"delta", "dd_risk", "sgd_risk", "global_min_risk"} <= set(r)
        # no dynamics beats the convex global minimum (up to its certified lower bound)
        assert r["dd_risk"] >= r["global_min_lower_bound"] - 1e-9
        assert r["sgd_risk"] > 0


@pytest.mark.parametrize("bad", ["0", "-3", "abc", "1.5"])
def test_pnas_risk_vs_delta_bad_d(bad):
    with pytest.raises(ConfigError) as e:
        get("pnas-risk-vs-delta").make_config(overrides={"d": bad})
    assert e.value.field == "d"


def test_pnas_anisotropic_divergence_keeps_saves(tmp_path):
    """eps = 0.5 with large output weights blows SGD up within a few steps: the run still writes
    its data and figures into the final directory (no .partial), ends at the last finite save, says
    so in the summary, raises DivergenceError (CLI exit 3) and ``mfnn show`` reports it."""
    from click.testing import CliRunner

    from mfnn.cli import main
    from mfnn.errors import DivergenceError

    path = tmp_path / "div"
    with pytest.raises(DivergenceError) as e:
        run_experiment("pnas-anisotropic", out=path, quick=True, progress=False,
                       overrides={"eps": "0.5", "a_mean": "5", "n_neurons": "20", "dd_particles": "20"})
    assert e.value.run_dir == path and not (tmp_path / "div.partial").exists()
    shown = CliRunner().invoke(main, ["show", str(path)])
    assert shown.exit_code == 0 and "RESULT: DIVERGED" in shown.output
    s = json.loads((path / "summary.json").read_text())
    assert s["result"] == "diverged" and s["sgd_diverged"] and "warning" in s
    times = [r["t"] for r in s["table"]]
    assert 1 <= len(times) < 8 and s["stopped_at"] == times[-1]  # quick asks for 8 save times
    assert all(np.isfinite(r["sgd_risk"]) for r in s["table"])
    with xr.open_dataset(path / "sgd.nc", engine="scipy") as ds:
        assert ds.sizes["time"] == len(times)
    for name in ("risk.png", "means.png", "dd.nc"):
        assert (path / name).stat().st_size > 0
    (point,) = (path / "points").iterdir()
    with xr.open_dataset(point, engine="scipy") as ds:
        assert ds.attrs["result"] == "diverged" and ds.attrs["stopped_at"] == times[-1]


def test_pnas_risk_vs_delta_reduce_with_a_diverged_point(tmp_path):
    """One Delta diverged after its first save: reduce tabulates both, flags that one with where it
    stopped, and the figure renders (the diverged SGD risk is the last finite save)."""
    exp = get("pnas-risk-vs-delta")
    cfg = exp.make_config(quick=True)
    results = {}
    for p, div in zip(exp.points(cfg), (False, True)):
        nt = 1 if div else 4
        attrs = {"delta": p.params["delta"], "dd_t_long": 5.0, "dd_risk_at_t_max": 0.5, "global_min_risk": 0.1,
                 "global_min_lower_bound": 0.09, "global_min_fw_gap": 1e-9, "dd_stationarity": 1e-3, "dd_gap": 0.01,
                 "t_final": 0.0 if div else 0.5, "result": "diverged" if div else "successful",
                 "sgd_diverged": int(div), "dd_diverged": 0, **({"stopped_at": 0.0} if div else {})}
        results[p.key] = xr.Dataset({"sgd_risk": (("replica", "time"), np.linspace(1, 0.6, nt)[None]),
                                     "dd_risk": (("dd_time",), np.linspace(1, 0.4, 6))},
                                    coords={"time": np.linspace(0, 0.5, nt), "dd_time": np.linspace(0, 5, 6)},
                                    attrs=attrs)
    summary, data = exp.reduce(cfg, results)
    assert summary["result"] == "diverged" and summary["stopped_at"] == {"delta=0.8": 0.0}
    assert [r["diverged"] for r in summary["table"]] == [False, True]
    assert summary["table"][0]["sgd_risk"] == pytest.approx(0.6) and summary["table"][1]["sgd_risk"] == 1.0
    np.testing.assert_allclose(data["risk_vs_delta.nc"].dd_risk.values, [0.4, 0.4])
    exp.render(cfg, results, summary)["risk_vs_delta"].savefig(tmp_path / "f.png")
