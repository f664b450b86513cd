"""Sweep engine overhead: 32 small points of pnas-isotropic (--quick, shortened: t_max = 1, 4 saves,
100 DD particles) varying eps (8 values) and seed (4), run

* serially in this process (``--executor serial``),
* on the local spawn pool with 2 workers (``--executor local --workers 2``),
* on a Dask LocalCluster with 2 single-threaded worker processes (``--executor dask --workers 2``).

Printed per executor: wall time; the sum of the points' own wall times and CPU times (each point's
``run_point``: the experiment run, its compute, reduce, figures and writes; CPU time of its process,
all threads); the cores the points actually got (CPU seconds / wall seconds, summed over workers);
the overhead per point ``(wall * workers - sum of point times) / points`` (idle and start-up worker
time counts as overhead); the XLA compile seconds and JAX traces per worker process; the load
average before and after.  For the serial run, the CPU seconds of this process's threads by name
(the main Python thread vs XLA's Eigen and LLVM threads) show how many cores a serial point uses.
Then the speedup of the pool over serial, and its steady-state value (workers x the serial median
point time / the pool's median point time: the speedup once every process has warmed up, which a
sweep approaches when its points outweigh one warm-up per worker).  Targets (issue 10): one compilation per distinct shape
per worker, pool speedup >= 1.6 on 2 cores, overhead < 0.5 s per point.

pnas-isotropic opts into ``vmap_seeds``: by default a grid point's seeds run as vmapped replicas of
one call (``--seed-batch 1``: one call per seed, as before).

    PYTHONPATH=src python benchmarks/sweep_overhead.py [--points-per-eps 4] [--skip-dask] [--seed-batch K]
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


def thread_cpu() -> dict:
    """CPU seconds of this process's threads, summed by thread name (Linux /proc)."""
    out: dict = collections.defaultdict(float)
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for t in tids:
        try:
            s = open(f"/proc/self/task/{t}/stat").read()
        except OSError:
            continue
        name, rest = s[s.index("(") + 1:s.rindex(")")], s[s.rindex(")") + 2:].split()
        out[name] += (int(rest[11]) + int(rest[12])) / tick
    return dict(out)


def measure(executor: str, workers: int, seeds: int, root: str, seed_batch) -> dict:
    spec = SweepSpec(experiment="pnas-isotropic", quick=True, grid={"eps": EPS}, seeds=list(range(seeds)),
                     overrides=dict(SMALL))
    out = os.path.join(root, executor)
    load0, th0 = os.getloadavg()[0], thread_cpu()
    t0 = time.perf_counter()
    res = run_sweep(spec, out, executor=executor, workers=workers, progress=False, seed_batch=seed_batch)
    wall = time.perf_counter() - t0
    th1 = thread_cpu()
    assert res.exit_code == 0, [r for r in res.results if r["status"] != "done"]
    n = len(res.results)
    work = sum(r["seconds"] for r in res.results)
    cpu = sum(r.get("cpu_seconds", 0.0) for r in res.results)
    by_pid, comp = collections.defaultdict(int), collections.defaultdict(float)
    for r in res.results:
        by_pid[r["pid"]] += r["traces"]
        comp[r["pid"]] += r.get("compile_seconds", 0.0)
    threads = {k: th1.get(k, 0.0) - th0.get(k, 0.0) for k in th1} if executor == "serial" else {}
    first = {}  # CPU seconds of each worker's first call (imports, traces, compilations: its warm-up)
    for r in res.results:
        first.setdefault(r["pid"], r.get("cpu_seconds", 0.0))
    return {"executor": executor, "workers": workers, "points": n, "jobs": res.jobs, "wall": wall, "work": work,
            "cpu": cpu, "overhead_per_point": (wall * workers - work) / n, "traces_per_worker": dict(by_pid),
            "compile_per_worker": dict(comp), "points_that_traced": sum(r["traces"] > 0 for r in res.results),
            "median_point": float(np.median([r["seconds"] for r in res.results])),
            "median_cpu": float(np.median([r.get("cpu_seconds", 0.0) for r in res.results])),
            "load": (load0, os.getloadavg()[0]), "threads": threads, "first_cpu": first}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-per-eps", type=int, default=4, help="seeds per eps (4: 32 points)")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--seed-batch", type=int, default=None, help="seeds per vmapped call (default: auto; 1: off)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="mfnn-sweep-bench-")
    rows = []
    print(f"cpu count {os.cpu_count()}, load average at start {os.getloadavg()}", flush=True)
    try:
        for ex, w in [("serial", 1), ("local", 2)] + ([] if args.skip_dask else [("dask", 2)]):
            r = measure(ex, w, args.points_per_eps, root, args.seed_batch)
            rows.append(r)
            print(f"{ex:>7} x{w}: {r['points']} points in {r['jobs']} calls, wall {r['wall']:7.1f} s, "
                  f"points' own time {r['work']:7.1f} s (median {r['median_point']:.2f} s), "
                  f"CPU {r['cpu']:7.1f} s (median {r['median_cpu']:.2f} s/point), "
                  f"cores used {r['cpu'] / r['wall']:.2f}, overhead {r['overhead_per_point']:+.2f} s/point, "
                  f"traces per worker {sorted(r['traces_per_worker'].values())}, "
                  f"XLA compile s per worker {sorted(round(v, 1) for v in r['compile_per_worker'].values())}, "
                  f"points that traced {r['points_that_traced']}, load {r['load'][0]:.2f} -> {r['load'][1]:.2f}",
                  flush=True)
            print(f"         CPU s of each worker's first point (warm-up): "
                  f"{sorted(round(v, 1) for v in r['first_cpu'].values())}", flush=True)
            if r["threads"]:
                top = sorted(r["threads"].items(), key=lambda kv: -kv[1])[:4]
                print("         serial CPU seconds by thread: " + ", ".join(f"{k} {v:.1f}" for k, v in top), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    serial = rows[0]["wall"]
    for r in rows[1:]:
        print(f"speedup of {r['executor']} x{r['workers']} over serial: {serial / r['wall']:.2f} "
              f"(CPU seconds: serial {rows[0]['cpu']:.1f}, {r['executor']} {r['cpu']:.1f}); steady state "
              f"(workers x serial median / {r['executor']} median, i.e. without each process's warm-up): "
              f"{r['workers'] * rows[0]['median_point'] / r['median_point']:.2f}")
    print(f"cpu count {os.cpu_count()}, load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
