"""Fault hardening of run directories, the experiment runner and the CLI (issue: hostile input).

In-process tests use a small dummy experiment registered for the test (points -> compute ->
reduce -> render, with each way a point can fail); the subprocess tests interrupt a real ``mfnn run pnas-isotropic --quick`` with SIGINT / SIGTERM / SIGKILL.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from mfnn import _signals
from mfnn.cli import main
from mfnn.errors import ConfigError, DivergenceError, RunInterrupted, check
from mfnn.experiments import base
from mfnn.experiments.base import Experiment, ExperimentConfig, Point
from mfnn.experiments.runner import RunFailed, run_experiment
from mfnn.io import MARKER, RunDir, plan_output, read_json, write_json


# ----------------------------------------------------------------------------------------------
# dummy experiments


@dataclass(frozen=True)
class DummyConfig(ExperimentConfig):
    n_points: int = 3
    scale: float = 1.0
    diverge_at: int = 1000
    mode: str = "nan"  # how point diverge_at fails: nan (NaN saves), raise (DivergenceError), bug; or flag
    fail_render: bool = False
    cost_seconds: float = 1.0

    INF_OK: ClassVar[tuple] = ("scale",)

    def validate(self):
        check(self.n_points >= 1, "n_points", f"must be >= 1, got {self.n_points}")


class Dummy(Experiment):
    """Each point: risk(t) = scale * (1 + t) at t = 0..3.  Point ``diverge_at`` fails by ``mode``:
    "nan" -- NaN from t = 2 and ``attrs["result"] = "diverged"``; "raise" -- ``DivergenceError`` with
    two partial saves; "bug" -- ``ZeroDivisionError``.  Mode "flag": ``reduce`` says diverged."""

    name = "test-dummy"
    description = "contract dummy"
    Config = DummyConfig
    calls: ClassVar[list] = []
    interrupt_at: ClassVar[int] = -1  # not a config field: a resumed run has the same point keys

    def points(self, cfg):
        return [Point.make(self.name, {"i": i, "scale": cfg.scale, "diverge": int(i == cfg.diverge_at),
                                       "mode": cfg.mode}, cfg.seed)
                for i in range(cfg.n_points)]

    def compute(self, point, progress=False):
        Dummy.calls.append(point.params["i"])
        if point.params["i"] == Dummy.interrupt_at:  # as if Ctrl-C came while this point computed
            os.kill(os.getpid(), signal.SIGINT)
        risk = point.params["scale"] * (1.0 + np.arange(4.0))
        attrs = {}
        if point.params["diverge"] and point.params["mode"] == "raise":
            raise DivergenceError("SGD produced NaN at step 7", partial=[{"risk": np.array(1.0)}] * 2)
        if point.params["diverge"] and point.params["mode"] == "bug":
            raise ZeroDivisionError("boom")
        if point.params["diverge"] and point.params["mode"] == "nan":
            risk[2:] = np.nan
            attrs = {"result": "diverged", "message": "non-finite risk at save 2 (t = 2)"}
        return xr.Dataset({"risk": ("time", risk)}, coords={"time": np.arange(4.0)}, attrs=attrs)

    def reduce(self, cfg, results):
        finals = [float(ds.risk.values[np.isfinite(ds.risk.values)][-1]) for ds in results.values()]
        data = xr.Dataset({"final_risk": ("point", np.array(finals))})
        flag = {"result": "diverged", "stopped_at": "flagged by reduce"} if cfg.mode == "flag" else {}
        return {"final_risk": finals, "n": len(finals), **flag}, {"finals.nc": data}

    def render(self, cfg, results, summary):
        if cfg.fail_render:
            raise ValueError("Data has no positive values, and therefore cannot be log-scaled.")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        for ds in results.values():
            ax.plot(ds.time, ds.risk)
        return {"risk": fig}

    def estimate(self, cfg):
        return {"seconds": cfg.cost_seconds * cfg.n_points, "field": "cost_seconds"}


@pytest.fixture
def dummies():
    base.REGISTRY.pop(Dummy.name, None)
    base.register(Dummy)
    Dummy.calls.clear()
    Dummy.interrupt_at = -1
    yield
    Dummy.interrupt_at = -1
    base.REGISTRY.pop(Dummy.name, None)


def _files(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------
# run directories


def test_contract_run_writes_marker_points_summary_and_figures(dummies, tmp_path):
    out = run_experiment("test-dummy", out=tmp_path / "r", progress=False)
    assert out == tmp_path / "r" and not (tmp_path / "r.partial").exists()
    marker = json.loads((out / MARKER).read_text())
    assert marker["experiment"] == "test-dummy" and "mfnn" in marker and "created" in marker
    s = read_json(out / "summary.json")
    assert s["result"] == "successful" and s["final_risk"] == [4.0, 4.0, 4.0]
    assert len(list((out / "points").glob("*.nc"))) == 3 and (out / "finals.nc").is_file()
    assert (out / "risk.png").stat().st_size > 0 and (out / "risk.svg").is_file()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(dummies, tmp_path, umask):
    old = os.umask(umask)
    try:
        out = run_experiment("test-dummy", out=tmp_path / "r", progress=False)
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    for p in out.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == want, p


def test_overwrite_refuses_a_foreign_directory_and_leaves_it_untouched(dummies, tmp_path):
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("my own work")
    (d / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = _files(d)
    with pytest.raises(ConfigError) as e:
        run_experiment("test-dummy", out=d, overwrite=True, progress=False)
    assert e.value.field == "out" and "not an mfnn run" in str(e.value)
    assert _files(d) == before and not (tmp_path / "mine.partial").exists()
    # the CLI: one line, exit 2, still untouched
    res = CliRunner().invoke(main, ["run", "test-dummy", "--out", str(d), "--overwrite"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("mfnn: error: out: ")
    assert _files(d) == before


def test_overwrite_replaces_an_mfnn_run(dummies, tmp_path):
    out = run_experiment("test-dummy", out=tmp_path / "r", progress=False)
    with pytest.raises(ConfigError) as e:
        run_experiment("test-dummy", out=out, progress=False, overrides={"scale": "2"})
    assert e.value.field == "out"
    assert read_json(out / "summary.json")["final_risk"] == [4.0] * 3
    run_experiment("test-dummy", out=out, progress=False, overrides={"scale": "2"}, overwrite=True)
    assert read_json(out / "summary.json")["final_risk"] == [8.0] * 3


@pytest.mark.parametrize("bad", ["", ".", "/", "~", "..", "file", "file/below", "dangling", "x" * 300,
                                 "/proc/mfnn-test"])
def test_bad_output_locations_refused_before_anything_is_written(dummies, tmp_path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = sorted(os.listdir(tmp_path))
    out = os.path.expanduser(bad)
    with pytest.raises(ConfigError) as e:
        run_experiment("test-dummy", out=out, overwrite=True, progress=False)
    assert e.value.field == "out" and "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == before and Dummy.calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_parent_refused(dummies, tmp_path):  # pragma: no cover - CI runs as a user
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ConfigError) as e:
            run_experiment("test-dummy", out=ro / "r", progress=False)
        assert e.value.field == "out"
    finally:
        ro.chmod(0o755)


def test_stale_partial_reported_then_overwrite_or_resume_decides(dummies, tmp_path):
    out = tmp_path / "r"
    Dummy.interrupt_at = 1
    with pytest.raises(RunInterrupted) as e:
        run_experiment("test-dummy", out=out, progress=False, overrides={"n_points": "4"})
    Dummy.interrupt_at = -1
    part = tmp_path / "r.partial"
    assert e.value.signum == signal.SIGINT and e.value.run_dir == part
    s = read_json(part / "summary.json")
    assert s["result"] == "interrupted" and s["signal"] == "SIGINT" and s["phase"] == "compute"
    assert s["point"]["index"] == 2 and s["point"]["of"] == 4  # stopped before the third point
    assert len(list((part / "points").glob("*.nc"))) == 2 and not out.exists()
    assert Dummy.calls == [0, 1]
    before = _files(part)
    # a plain rerun reports the stale partial and touches nothing
    with pytest.raises(ConfigError, match="stale partial run") as e2:
        run_experiment("test-dummy", out=out, progress=False, overrides={"n_points": "4"})
    assert e2.value.field == "out" and _files(part) == before
    # --resume computes only the missing points and finishes
    Dummy.calls.clear()
    path = run_experiment("test-dummy", out=out, progress=False, overrides={"n_points": "4"}, resume=True)
    assert Dummy.calls == [2, 3] and path == out and not part.exists()
    assert read_json(out / "summary.json")["result"] == "successful"
    assert len(list((out / "points").glob("*.nc"))) == 4


def test_overwrite_discards_a_marked_stale_partial_only(dummies, tmp_path):
    part = tmp_path / "r.partial"
    part.mkdir()
    (part / "keep.txt").write_text("foreign")
    with pytest.raises(ConfigError) as e:
        run_experiment("test-dummy", out=tmp_path / "r", overwrite=True, progress=False)
    assert e.value.field == "out" and (part / "keep.txt").read_text() == "foreign"
    write_json(part / MARKER, {"mfnn": "0", "experiment": "test-dummy", "created": "x"})
    run_experiment("test-dummy", out=tmp_path / "r", overwrite=True, progress=False)
    assert not part.exists() and (tmp_path / "r" / "summary.json").is_file()


def test_resume_refuses_a_partial_of_another_experiment(dummies, tmp_path):
    part = tmp_path / "r.partial"
    part.mkdir()
    write_json(part / MARKER, {"mfnn": "0", "experiment": "pnas-isotropic", "created": "x"})
    with pytest.raises(ConfigError, match="pnas-isotropic") as e:
        run_experiment("test-dummy", out=tmp_path / "r", resume=True, progress=False)
    assert e.value.field == "out"


def test_nan_and_inf_round_trip_through_mfnn_json(tmp_path):
    obj = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float64("nan"), "d": "text", "e": np.bool_(True)}
    write_json(tmp_path / "x.json", obj)
    json.loads((tmp_path / "x.json").read_text())  # strict JSON: any reader accepts it
    back = read_json(tmp_path / "x.json")
    assert math.isnan(back["a"]) and math.isnan(back["c"]) and back["b"][:2] == [math.inf, -math.inf]
    assert back["b"][2] == 1.5 and back["d"] == "text" and back["e"] is True


def test_plan_output_checks_name_length_against_the_filesystem(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    plan_output(tmp_path / ("a" * (name_max - len(".partial"))), experiment="x")
    with pytest.raises(ConfigError):
        plan_output(tmp_path / ("a" * (name_max - len(".partial") + 1)), experiment="x")


# ----------------------------------------------------------------------------------------------
# divergence, plotting failures, unexpected errors


def test_contract_divergence_finishes_with_summary_figures_and_exit_3(dummies, tmp_path):
    with pytest.raises(DivergenceError) as e:
        run_experiment("test-dummy", out=tmp_path / "r", progress=False, overrides={"diverge_at": "1"})
    out = tmp_path / "r"
    assert e.value.run_dir == out and not (tmp_path / "r.partial").exists()
    s = read_json(out / "summary.json")
    assert s["result"] == "diverged" and s["stopped_in"]["point"] == 1 and s["stopped_in"]["of"] == 3
    assert "non-finite risk at save 2" in s["stopped_in"]["message"]
    assert s["final_risk"] == [4.0, 2.0, 4.0]  # the diverged point reduced up to its last finite save
    assert (out / "risk.png").stat().st_size > 0 and "risk.png" in s["figures"]
    assert Dummy.calls == [0, 1, 2]  # the independent points after it still run
    assert [d["point"] for d in s["diverged_points"]] == [1]
    res = CliRunner().invoke(main, ["run", "test-dummy", "--out", str(tmp_path / "c"), "--set", "diverge_at=0"])
    assert res.exit_code == 3, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mfnn: error: run: run diverged")
    shown = CliRunner().invoke(main, ["show", str(tmp_path / "c")])
    assert shown.exit_code == 0 and "RESULT: DIVERGED" in shown.output


def test_a_point_interrupted_inside_is_kept_but_not_resumed_from(dummies, tmp_path, monkeypatch):
    real = Dummy.compute

    def compute(self, point):  # no progress argument: the runner adapts
        ds = real(self, point)
        if point.params["i"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # recorded by cooperative(); the solver stops inside
            ds.attrs["result"] = "interrupted"
        return ds

    monkeypatch.setattr(Dummy, "compute", compute)
    with pytest.raises(RunInterrupted) as e:
        run_experiment("test-dummy", out=tmp_path / "r", progress=False)
    assert e.value.signum == signal.SIGTERM
    part = tmp_path / "r.partial"
    assert len(list((part / "points").glob("*.interrupted.nc"))) == 1
    assert len([p for p in (part / "points").glob("*.nc") if ".interrupted" not in p.name]) == 1
    assert read_json(part / "summary.json")["signal"] == "SIGTERM"
    monkeypatch.setattr(Dummy, "compute", real)
    Dummy.calls.clear()
    run_experiment("test-dummy", out=tmp_path / "r", progress=False, resume=True)
    assert Dummy.calls == [1, 2]


def test_plotting_failure_is_recorded_not_fatal(dummies, tmp_path):
    out = run_experiment("test-dummy", out=tmp_path / "r", progress=False, overrides={"fail_render": "true"})
    s = read_json(out / "summary.json")
    assert s["result"] == "successful" and "log-scaled" in s["render_errors"]["render"]
    with pytest.raises(DivergenceError):
        run_experiment("test-dummy", out=tmp_path / "d", progress=False,
                       overrides={"fail_render": "true", "diverge_at": "0"})
    s = read_json(tmp_path / "d" / "summary.json")
    assert s["result"] == "diverged" and "render" in s["render_errors"]


def test_divergence_raised_inside_compute_keeps_its_partial_saves(dummies, tmp_path):
    with pytest.raises(DivergenceError) as e:
        run_experiment("test-dummy", out=tmp_path / "r", progress=False,
                       overrides={"mode": "raise", "diverge_at": "1"})
    out = tmp_path / "r"
    assert e.value.run_dir == out and not (tmp_path / "r.partial").exists()
    s = read_json(out / "summary.json")
    assert s["result"] == "diverged" and s["stopped_in"]["point"] == 1 and "step 7" in s["stopped_in"]["message"]
    assert len(list((out / "points").glob("*.nc"))) == 2  # what the run saved is kept, the others ran
    assert (out / s["stopped_in"]["saved"]).is_file() and s["stopped_in"]["saved"] == "diverged_saves.nc"
    with xr.open_dataset(out / "diverged_saves.nc", engine="scipy") as ds:
        assert ds.sizes["save"] == 2
    assert s["final_risk"] == [4.0, 4.0] and Dummy.calls == [0, 1, 2]  # reduced over the other points


def test_divergence_flagged_by_reduce(dummies, tmp_path):
    with pytest.raises(DivergenceError):
        run_experiment("test-dummy", out=tmp_path / "r", progress=False, overrides={"mode": "flag"})
    s = read_json(tmp_path / "r" / "summary.json")
    assert s["result"] == "diverged" and s["stopped_at"] == "flagged by reduce"
    assert s["final_risk"] == [4.0] * 3 and len(list((tmp_path / "r" / "points").glob("*.nc"))) == 3


def test_unexpected_error_keeps_partial_with_error_log(dummies, tmp_path):
    with pytest.raises(RunFailed) as e:
        run_experiment("test-dummy", out=tmp_path / "r", progress=False, overrides={"mode": "bug", "diverge_at": "1"})
    part = tmp_path / "r.partial"
    assert e.value.run_dir == part and "ZeroDivisionError: boom" in str(e.value)
    s = read_json(part / "summary.json")
    assert s["result"] == "failed" and s["phase"] == "compute" and s["point"]["index"] == 1
    assert "Traceback" in (part / "error.log").read_text() and len(list((part / "points").glob("*.nc"))) == 1
    res = CliRunner().invoke(main, ["run", "test-dummy", "--out", str(tmp_path / "q"), "--set", "mode=bug",
                                    "--set", "diverge_at=0"])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output


# ----------------------------------------------------------------------------------------------
# validation and the size guard


def test_size_guard_names_the_field_and_force_skips_it(dummies, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        run_experiment("test-dummy", overrides={"cost_seconds": "1e5"}, progress=False)
    assert e.value.field == "cost_seconds" and "days" in str(e.value) and "--force" in str(e.value)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Dummy, "estimate", lambda self, cfg: {"bytes": 1e30, "field": "n_points"})
    with pytest.raises(ConfigError, match="memory") as e:
        run_experiment("test-dummy", progress=False)
    assert e.value.field == "n_points" and list(tmp_path.iterdir()) == []
    path = run_experiment("test-dummy", progress=False, force=True)
    assert read_json(path / "summary.json")["result"] == "successful"


def test_inf_only_where_the_config_documents_it(dummies):
    exp = base.get("test-dummy")
    assert exp.make_config(overrides={"scale": "inf"}).scale == math.inf
    for v in ("nan", "-nan"):
        with pytest.raises(ConfigError) as e:
            exp.make_config(overrides={"scale": v})
        assert e.value.field == "scale"
    with pytest.raises(ConfigError) as e:
        exp.make_config(overrides={"cost_seconds": "inf"})
    assert e.value.field == "cost_seconds"


def test_python_values_checked_and_numpy_integers_accepted(dummies):
    exp = base.get("test-dummy")
    assert exp.make_config(overrides={"n_points": np.int64(5)}).n_points == 5
    assert exp.make_config(overrides={"scale": np.float32(0.5)}).scale == 0.5
    for field, v in [("n_points", True), ("n_points", 2.5), ("n_points", None), ("scale", "x"),
                     ("fail_render", 1), ("seed", -1), ("seed", 2**32), ("n_points", 2**31)]:
        with pytest.raises(ConfigError) as e:
            exp.make_config(overrides={field: v})
        assert e.value.field == field, (field, v)


def test_ascii_numbers_and_integer_forms():
    exp = base.get("pnas-isotropic")
    assert exp.make_config(overrides={"n_neurons": "1e3"}).n_neurons == 1000
    assert exp.make_config(overrides={"panel_times": "(0, 1, 30)"}).panel_times == (0.0, 1.0, 30.0)
    for v in ("٣٠", "３０", "3\u00a00", "1_000", "0x10", "30.5", "1e400"):
        with pytest.raises(ConfigError) as e:
            exp.make_config(overrides={"n_neurons": v})
        assert e.value.field == "n_neurons", v


# ----------------------------------------------------------------------------------------------
# mfnn show


CORRUPT = {
    "list": "[]", "null": "null", "number": "3", "string": '"hello"', "not json": "{oops",
    "deep list": "[" * 100000 + "]" * 100000,
    "deep in a summary": '{"experiment": "pnas-isotropic", "table": ' + "[" * 50000 + "]" * 50000 + "}",
    "no experiment": '{"table": []}',
    "strings for numbers": '{"experiment": "pnas-isotropic", "table": [{"t": "zero", "sgd_risk": "x", '
                           '"sgd_risk_std": [], "dd_risk": {}, "gap": null}]}',
    "binary": b"\xff\xfe\x00garbage",
    "odd types": '{"experiment": "pnas-isotropic", "result": 7, "render_errors": 3, "stopped_at": {"a": []}}',
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_show_on_a_corrupt_summary_is_one_line_exit_2(tmp_path, kind):
    text = CORRUPT[kind]
    (tmp_path / "summary.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    res = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert res.exit_code == 2, (kind, res.output)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mfnn: error: directory: "), res.output


def test_show_missing_summary_and_partial_hint(tmp_path):
    res = CliRunner().invoke(main, ["show", str(tmp_path / "r")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    (tmp_path / "r.partial").mkdir()
    res = CliRunner().invoke(main, ["show", str(tmp_path / "r")])
    assert res.exit_code == 2 and "r.partial" in res.output and len(res.output.strip().splitlines()) == 1


def test_show_prints_nan_written_by_mfnn(tmp_path):
    row = {"t": 0.0, "sgd_risk": math.nan, "sgd_risk_std": 0.0, "dd_risk": 1.0, "gap": math.nan}
    write_json(tmp_path / "summary.json", {"experiment": "pnas-isotropic", "quick": True, "seed": 0,
                                           "wall_seconds": 1.0, "result": "successful", "table": [row]})
    res = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert res.exit_code == 0 and "nan" in res.output and "SGD risk" in res.output


def test_show_says_interrupted(dummies, tmp_path):
    Dummy.interrupt_at = 0
    with pytest.raises(RunInterrupted):
        run_experiment("test-dummy", out=tmp_path / "r", progress=False)
    res = CliRunner().invoke(main, ["show", str(tmp_path / "r.partial")])
    assert res.exit_code == 0 and "RESULT: INTERRUPTED" in res.output


def test_cli_usage_errors_are_one_line():
    for args in (["run"], ["run", "pnas-isotropic", "--bogus"], ["nope"], ["run", "pnas-isotropic", "--seed", "1e30"],
                 ["run", "pnas-isotropic", "--seed", "-1"], ["run", "pnas-isotropic", "--seed", "abc"],
                 ["run", "pnas-isotropic", "--set", "eps=1e-4", "--set", "eps=1e-4"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mfnn: error: "), (args, res.output)


def test_registration_is_automatic():
    names = set(base.all_experiments())
    import mfnn.experiments as pkg
    import pkgutil

    import importlib
    import inspect

    mods = {m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")}
    from mfnn.experiments import _all

    assert {m.__name__.rsplit(".", 1)[1] for m in _all.MODULES} >= mods - {"base", "config", "runner", "plots"}  # the scan imports them
    # every module that defines an experiment registered it (helper modules define none)
    defining = {m for m in mods if any(issubclass(c, base.Experiment) and c is not base.Experiment
                                       and c.__module__ == f"mfnn.experiments.{m}"
                                       for _, c in inspect.getmembers(importlib.import_module(f"mfnn.experiments.{m}"),
                                                                      inspect.isclass))}
    assert len(defining) >= 7
    # (tests may register experiments of their own, e.g. the sweep tests' toy: only mfnn's count here)
    assert {type(e).__module__.rsplit(".", 1)[1] for n, e in base.REGISTRY.items()
            if n in names and type(e).__module__.startswith("mfnn.experiments.")} >= defining


def test_signal_handlers_record_inside_cooperative_and_raise_outside():
    _signals.clear()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with _signals.handled():
        with _signals.cooperative():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert _signals.stop_requested() == signal.SIGTERM
            with pytest.raises(RunInterrupted):  # a second signal insists
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
        _signals.clear()
        with pytest.raises(RunInterrupted) as e:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
        assert e.value.signum == signal.SIGTERM
    _signals.clear()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ----------------------------------------------------------------------------------------------
# real interruptions of a quick run (subprocess)

SGD_STEPS = re.compile(r"SGD N=\d+ x\d+:\s+\d+%\|[^|]*\|\s*[0-9.]+k?/")
SGD_STARTED = re.compile(r"SGD N=\d+ x\d+:\s+\d+%\|[^|]*\|\s*(?:[1-9][0-9.]*|0\.0*[1-9][0-9]*)k?/")


def _cli():
    exe = Path(sys.executable).with_name("mfnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mfnn.cli"]


def _run_until(tmp_path, sig, when, eps="2e-5"):
    """Start a quick pnas-isotropic run, send ``sig`` at ``when`` ("compile": right after
    config.json is written; "sgd": once the SGD progress bar shows steps done; "dd": once the
    radial DD bar appears), and return (returncode, stderr, out)."""
    out = tmp_path / "iso"
    # small sizes; eps = 2e-5 makes the SGD phase long enough to be hit (quick's 1e-4 to reach the DD)
    cmd = _cli() + ["run", "pnas-isotropic", "--quick", "--out", str(out), "--set", "n_neurons=40",
                    "--set", "dd_particles=100", "--set", f"eps={eps}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="80")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    err_chunks = []

    def pump():
        while True:
            b = proc.stderr.read1(4096)
            if not b:
                break
            err_chunks.append(b)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    part = Path(str(out) + ".partial")
    deadline = time.time() + 400
    sent = False
    while time.time() < deadline and proc.poll() is None:
        text = b"".join(err_chunks).decode(errors="replace")
        ready = {"compile": (part / "config.json").is_file(),
                 "sgd": SGD_STARTED.search(text) is not None,
                 "dd": "radial DD" in text}[when]
        if ready:
            proc.send_signal(sig)
            sent = True
            break
        time.sleep(0.05)
    assert sent, "the run ended before the signal could be sent: " + b"".join(err_chunks).decode()[-2000:]
    try:
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    t.join(timeout=10)
    return proc.returncode, b"".join(err_chunks).decode(errors="replace"), out


@pytest.mark.parametrize("sig,when,code", [
    (signal.SIGINT, "compile", 130), (signal.SIGINT, "sgd", 130), (signal.SIGTERM, "compile", 143),
    (signal.SIGINT, "dd", 130)])  # the DD phase is where Ctrl-C used to end in a segmentation fault
def test_signal_exits_cleanly_and_keeps_the_partial(tmp_path, sig, when, code):
    rc, err, out = _run_until(tmp_path, sig, when, eps="1e-4" if when == "dd" else "2e-5")
    assert rc == code, err[-3000:]
    assert "Traceback" not in err and "Fatal Python error" not in err and "Segmentation" not in err
    last = err.strip().splitlines()[-1]
    assert "mfnn: error: run: interrupted by " + ("SIGINT" if sig == signal.SIGINT else "SIGTERM") in last
    part = Path(str(out) + ".partial")
    assert part.is_dir() and not out.exists()
    assert (part / MARKER).is_file() and (part / "config.json").is_file()
    s = read_json(part / "summary.json")
    assert s["result"] == "interrupted" and s["phase"] == "compute"
    if when in ("sgd", "dd"):
        # the saves made before the stop are in the run directory
        name = s.get("saved")
        assert name and (part / name).is_file()
        with xr.open_dataset(part / name, engine="scipy") as ds:
            # a Solution's saves (dimension time) or a legacy solver's list of saves (save)
            n_saves = ds.sizes["time"] if "time" in ds.sizes else ds.sizes["save"]
            assert n_saves >= 1 and np.all(np.isfinite(ds["risk"].values))


def test_sigkill_keeps_saves_and_is_not_marked_finished(tmp_path):
    rc, err, out = _run_until(tmp_path, signal.SIGKILL, "compile")
    assert rc == -signal.SIGKILL
    part = Path(str(out) + ".partial")
    assert not out.exists() and part.is_dir()
    assert (part / MARKER).is_file() and (part / "config.json").is_file()
    assert not (part / "summary.json").exists()  # never marked finished
    before = _files(part)
    # the next run reports it instead of deleting it
    with pytest.raises(ConfigError, match="stale partial run") as e:
        run_experiment("pnas-isotropic", out=out, quick=True, progress=False)
    assert e.value.field == "out" and _files(part) == before


def test_sigint_during_startup_imports_is_one_line():
    """Ctrl-C while JAX and the experiments are still being imported (about 1 s after start):
    ``import mfnn`` is lazy, so the CLI's handlers are already installed; exit 130, no traceback."""
    out = Path(tempfile.mkdtemp()) / "iso"
    proc = subprocess.Popen(_cli() + ["run", "pnas-isotropic", "--quick", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    text = err.decode(errors="replace")
    assert proc.returncode == 130, text[-2000:]
    assert "Traceback" not in text and "Segmentation" not in text
    assert len([ln for ln in text.splitlines() if ln.startswith("mfnn: error")]) == 1
