"""Sweep engine overhead: 32 small points of pnas-isotropic (--quick, shortened: t_max = 1, 4 saves,
100 DD particles) varying eps (8 values) and seed (4), run

* serially in this process (``--executor serial``),
* on the local spawn pool with 2 workers (``--executor local --workers 2``),
* on a Dask LocalCluster with 2 single-threaded worker processes (``--executor dask --workers 2``).

Printed per executor: wall time, the sum of the points' own times (each point's ``run_point``
time: the experiment run, its compute, reduce, figures and writes), the overhead per point
``(wall * workers - sum of point times) / points`` (idle and start-up worker time counts as
overhead), the JAX traces (compilations) per worker process and how many points traced at all,
and the speedup of the pool over serial.  Targets (issue 10): one compilation per distinct shape
per worker, pool speedup >= 1.6 on 2 cores, overhead < 0.5 s per point.

    PYTHONPATH=src python benchmarks/sweep_overhead.py [--points-per-eps 4] [--skip-dask]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from mfnn.sweeps import SweepSpec, run_sweep  # noqa: E402

EPS = [1e-4, 1.25e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4, 4e-4, 5e-4]
SMALL = {"t_max": 1.0, "n_times": 4, "panel_times": (0.0, 1.0), "dd_particles": 100}


def measure(executor: str, workers: int, seeds: int, root: str) -> dict:
    spec = SweepSpec(experiment="pnas-isotropic", quick=True, grid={"eps": EPS}, seeds=list(range(seeds)),
                     overrides=dict(SMALL))
    out = os.path.join(root, executor)
    t0 = time.perf_counter()
    res = run_sweep(spec, out, executor=executor, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    assert res.exit_code == 0, [r for r in res.results if r["status"] != "done"]
    n = len(res.results)
    work = sum(r["seconds"] for r in res.results)
    by_pid = collections.defaultdict(int)
    for r in res.results:
        by_pid[r["pid"]] += r["traces"]
    return {"executor": executor, "workers": workers, "points": n, "wall": wall, "work": work,
            "overhead_per_point": (wall * workers - work) / n, "traces_per_worker": dict(by_pid),
            "points_that_traced": sum(r["traces"] > 0 for r in res.results),
            "median_point": float(np.median([r["seconds"] for r in res.results]))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-per-eps", type=int, default=4, help="seeds per eps (4: 32 points)")
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="mfnn-sweep-bench-")
    rows = []
    try:
        for ex, w in [("serial", 1), ("local", 2)] + ([] if args.skip_dask else [("dask", 2)]):
            r = measure(ex, w, args.points_per_eps, root)
            rows.append(r)
            print(f"{ex:>7} x{w}: {r['points']} points, wall {r['wall']:7.1f} s, points' own time {r['work']:7.1f} s "
                  f"(median {r['median_point']:.2f} s), overhead {r['overhead_per_point']:+.2f} s/point, "
                  f"traces per worker {sorted(r['traces_per_worker'].values())}, "
                  f"points that traced {r['points_that_traced']}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    serial = rows[0]["wall"]
    for r in rows[1:]:
        print(f"speedup of {r['executor']} x{r['workers']} over serial: {serial / r['wall']:.2f}")
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
