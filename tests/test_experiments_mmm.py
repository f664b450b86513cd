"""End-to-end --quick runs of the COLT 2019 demonstration experiments."""

import json

import pytest

from mfnn.experiments import get, run_experiment
from mfnn.errors import ConfigError


def _summary(path):
    return json.loads((path / "summary.json").read_text())


def test_mmm_kernel_limit_quick(tmp_path):
    """alpha-scaled flow vs linearized dynamics: the erf student's gap must fall at least as fast as
    the Thm 4 bound 1/alpha (CI upper end < -0.9; the measured value is ~ -2, see the module note),
    and the W2 displacement like 1/alpha (lazy regime: CI contains ~ -1 within 0.1)."""
    p = run_experiment("mmm-kernel-limit", out=tmp_path / "mmm-kernel-limit", quick=True, progress=False)
    s = _summary(p)
    f = s["alpha_exponent"]
    assert set(f) >= {"value", "ci_low", "ci_high"}
    assert f["ci_low"] <= f["value"] <= f["ci_high"]
    assert f["ci_high"] < -0.9
    w2 = s["by_activation"]["erf"]["w2_alpha_exponent"]["value"]
    assert abs(w2 + 1.0) < 0.1
    for stem in ("gap_vs_time", "gap_vs_alpha", "lazy_to_rich"):
        assert (p / f"{stem}.png").exists() and (p / f"{stem}.svg").exists()
    assert (p / "flow_erf.nc").exists()
    assert "demonstration" in s["label"]


@pytest.mark.slow  # quick preset: 10 SGD compilations + 2 DD solves, 150 s measured under load ~10 on 2 cores
def test_mmm_dimension_free_quick(tmp_path):
    p = run_experiment("mmm-dimension-free", out=tmp_path / "mmm-dimension-free", quick=True, progress=False)
    s = _summary(p)
    assert set(s["n_exponent"]) == {"5", "50"}
    for v in s["n_exponent"].values():
        assert set(v) == {"value", "ci_low", "ci_high"} and v["ci_low"] <= v["value"] <= v["ci_high"]
        assert v["value"] < 0  # the gap falls with N
    assert set(s["n_prefactor"]) == {"5", "50"}
    # the N-part does not grow with d: prefactor at d = 50 no larger than 1.5x the d = 5 one
    assert s["n_prefactor"]["50"] < 1.5 * s["n_prefactor"]["5"]
    assert (p / "dimension_free.png").exists() and (p / "gaps.nc").exists()


def test_mmm_configs_validate():
    with pytest.raises(ConfigError, match="dims"):
        get("mmm-dimension-free").make_config(overrides={"dims": "5,10"})
    with pytest.raises(ConfigError, match="n_neurons"):
        get("mmm-kernel-limit").make_config(overrides={"n_neurons": "101"})
    with pytest.raises(ConfigError, match="eps"):
        get("mmm-dimension-free").make_config(overrides={"eps": "3e-5"})
