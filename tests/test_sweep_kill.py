"""SIGKILL the sweep driver mid-sweep, rerun the same command: only the missing points run, and the
collected table holds every point exactly once.  The same with one point made to fail (it is
recorded as failed, the others complete, the exit status says so)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}"}


def _args(out, executor, fail):
    return [sys.executable, "-m", "mfnn.cli", "sweep", "sweep-toy", "--import", "sweep_toy", "--grid", "x=1,2,3,4,5,6",
            "--seeds", "2", "--set", "sleep=0.4", "--set", f"fail_at={3 if fail else -1}", "--executor", executor,
            "--workers", "2", "--no-progress", "--out", str(out)]


def _done(out) -> int:
    pts = out / "points"
    if not pts.is_dir():
        return 0
    return sum((p / "summary.json").is_file() for p in pts.iterdir() if p.is_dir() and "." not in p.name)


def _kill_rerun(tmp_path, executor, fail):
    out = tmp_path / "sw"
    drv = subprocess.Popen(_args(out, executor, fail), env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _done(out) < 3 and time.time() < deadline and drv.poll() is None:
        time.sleep(0.05)
    assert drv.poll() is None, "the sweep finished before it could be killed"
    os.kill(drv.pid, signal.SIGKILL)
    drv.wait(timeout=30)
    n_killed = _done(out)
    assert 3 <= n_killed < 12
    r = subprocess.run(_args(out, executor, fail), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == (1 if fail else 0), r.stderr
    from mfnn.sweeps.collect import collect, status_lines

    want = "done: 10, running: 0, failed: 2, pending: 0" if fail else "done: 12, running: 0, failed: 0, pending: 0"
    assert status_lines(out)[-1] == want
    collect(out)
    tab = pd.read_parquet(out / "table.parquet")
    ys = tab[tab.output == "y"]
    assert not ys.duplicated(["key"]).any() and len(ys) == (10 if fail else 12)
    assert sorted(set(ys.x)) == ([1, 2, 4, 5, 6] if fail else [1, 2, 3, 4, 5, 6])
    # the points done before the kill were not recomputed (orphaned pool workers may finish theirs)
    m = re.search(r"12 points in .*: (\d+) already done, (?:(\d+) done)?(?:, )?(?:(\d+) failed)?", r.stdout)
    assert m, r.stdout
    skipped, done, failed = (int(g or 0) for g in m.groups())
    assert skipped >= n_killed and skipped + done + failed == 12, r.stdout
    dirs = [p.name for p in (out / "points").iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    assert len(dirs) == len(set(dirs)) == (10 if fail else 12)


def test_sigkill_serial_driver_then_rerun_with_a_failing_point(tmp_path):
    _kill_rerun(tmp_path, "serial", True)


@pytest.mark.slow
def test_sigkill_serial_driver_then_rerun(tmp_path):
    _kill_rerun(tmp_path, "serial", False)


@pytest.mark.slow
def test_sigkill_pool_driver_then_rerun(tmp_path):
    """The driver of a 2-worker spawn pool is killed: orphaned workers may finish their point; the
    rerun waits on the point locks and never computes a point twice."""
    _kill_rerun(tmp_path, "local", True)


@pytest.mark.slow
def test_sigint_stops_the_sweep_with_130_and_rerun_finishes(tmp_path):
    out = tmp_path / "sw"
    drv = subprocess.Popen(_args(out, "serial", False), env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while _done(out) < 2 and time.time() < deadline and drv.poll() is None:
        time.sleep(0.05)
    os.kill(drv.pid, signal.SIGINT)
    _, err = drv.communicate(timeout=60)
    assert drv.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("mfnn: error: run: ") and "interrupted" in err
    n = _done(out)
    assert n < 12
    r = subprocess.run(_args(out, "serial", False), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"{n} already done" in r.stdout, r.stdout + r.stderr


def _children(pid: int) -> list:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


@pytest.mark.slow
def test_sigkill_of_a_pool_worker_loses_only_its_points(tmp_path):
    out = tmp_path / "sw"
    drv = subprocess.Popen(_args(out, "local", False), env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while _done(out) < 2 and time.time() < deadline and drv.poll() is None:
        time.sleep(0.05)
    workers = [c for c in _children(drv.pid) if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = drv.communicate(timeout=240)
    assert drv.returncode == 1 and "rerun" in err, err
    r = subprocess.run(_args(out, "local", False), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from mfnn.sweeps.collect import status_lines, table

    assert status_lines(out)[-1] == "done: 12, running: 0, failed: 0, pending: 0"
    ys = table(out).query("output == 'y'")
    assert len(ys) == 12 and not ys.duplicated(["key"]).any()
