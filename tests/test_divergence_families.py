"""A diverging run in each experiment family, end to end through the CLI (in-process): exit 3,
one line, a complete ``summary.json`` saying ``"result": "diverged"`` and where it stopped,
figures drawn from what was saved, and ``mfnn show`` reporting it.

The PNAS family (SGD + DD) diverges for real in ``test_experiments_pnas.py`` (pnas-anisotropic,
eps = 0.5).  Here the scaling family's SGD produces NaN from its first step (the exact population
risk is replaced by NaN, which is what a blow-up of the parameters gives) and one alpha-flow of
the kernel family stops after its second save.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import pytest
from click.testing import CliRunner

from mfnn.cli import main
from mfnn.problem import population


def _run(args):
    res = CliRunner().invoke(main, args)
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("mfnn: error")]
    return res, lines


def _check_diverged(out, res, lines, figure):
    assert res.exit_code == 3, res.output[-2000:]
    assert len(lines) == 1 and "diverged" in lines[0]
    s = json.loads((out / "summary.json").read_text())
    assert s["result"] == "diverged" and (s.get("stopped_at") or s.get("stopped_in"))
    assert (out / f"{figure}.png").stat().st_size > 0
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert shown.exit_code == 0 and "RESULT: DIVERGED" in shown.output


@pytest.mark.slow  # 22 s: a whole quick sweep
def test_scaling_family_sgd_divergence_exits_3(tmp_path, monkeypatch):
    real = population.GaussianProjectionTerms.risk
    monkeypatch.setattr(population.GaussianProjectionTerms, "risk",
                        staticmethod(lambda task, unit, theta: real(task, unit, theta) * jnp.nan))
    out = tmp_path / "scaling"
    res, lines = _run(["run", "pnas-error-scaling", "--quick", "--no-progress", "--out", str(out),
                       "--set", "n_neurons=16,32,64", "--set", "n_large=64", "--set", "replicas=2",
                       "--set", "dd_particles=50"])
    _check_diverged(out, res, lines, "error_scaling")


@pytest.mark.slow  # 14 s: a whole quick run
def test_kernel_family_flow_divergence_exits_3(tmp_path, monkeypatch):
    import mfnn.experiments.mmm_kernel_limit as mod

    real = mod.alpha_flow_point

    def flow_that_stops(*args, **kwargs):
        ds = real(*args, **kwargs)
        if ds.attrs["alpha"] != 4.0:
            return ds
        ds = ds.isel(time=slice(0, 2))
        ds.attrs.update(result="diverged", stopped_at=float(ds.time[-1]))
        return ds

    monkeypatch.setattr(mod, "alpha_flow_point", flow_that_stops)
    out = tmp_path / "kernel"
    res, lines = _run(["run", "mmm-kernel-limit", "--quick", "--no-progress", "--out", str(out)])
    _check_diverged(out, res, lines, "gap_vs_alpha")
