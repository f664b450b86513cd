"""Sweep engine overhead: 32 small points of pnas-isotropic (--quick, shortened: t_max = 1, 4 saves,
100 DD particles) varying eps (8 values) and seed (4), run

* serially in one process (``--executor serial``),
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
sweep approaches when its points outweigh one warm-up per worker).

Each run is a fresh Python process (so serial pays its own warm-up too, like every worker) with
its own JAX persistent compilation cache (``$MFNN_JAX_CACHE``, one directory per executor: the
serial driver and the pool's single-threaded workers compile with different XLA flags, which are
part of the cache key): **cold** starts from an empty directory (what the first sweep ever pays),
**warm** reruns the same sweep into a new directory with the cache the cold run wrote (every later
sweep).  Both speedups are printed with the compile-or-load seconds (XLA compile, or loading the
executable from the cache), tracing and lowering seconds, and cache hits of each worker; the last
line is the pool speedup in the last state run (warm by default).  On a loaded machine the wall
times say little (the processes get what the other jobs leave); the CPU-second ratio printed next
to each speedup is the one to compare across loads.  Targets (issue 10): one compilation per distinct shape
per worker, pool speedup >= 1.6 on 2 cores, overhead < 0.5 s per point.

pnas-isotropic opts into ``vmap_seeds``: by default a grid point's seeds run as vmapped replicas of
one call (``--seed-batch 1``: one call per seed, as before).

    PYTHONPATH=src python benchmarks/sweep_overhead.py [--points-per-eps 4] [--skip-dask] [--seed-batch K]
        [--states cold,warm]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, SRC)

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
    from mfnn.sweeps import SweepSpec, run_sweep

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
    hits, stages = collections.defaultdict(int), collections.defaultdict(lambda: collections.defaultdict(float))
    for r in res.results:
        by_pid[r["pid"]] += r["traces"]
        comp[r["pid"]] += r.get("compile_seconds", 0.0)
        hits[r["pid"]] += r.get("cache_hits", 0)
        for k, v in r.get("jax_seconds", {}).items():
            stages[r["pid"]][k] += v
    threads = {k: th1.get(k, 0.0) - th0.get(k, 0.0) for k in th1} if executor == "serial" else {}
    first = {}  # CPU seconds of each worker's first call (imports, traces, compilations: its warm-up)
    for r in res.results:
        first.setdefault(r["pid"], r.get("cpu_seconds", 0.0))
    return {"executor": executor, "workers": workers, "points": n, "jobs": res.jobs, "wall": wall, "work": work,
            "cpu": cpu, "overhead_per_point": (wall * workers - work) / n, "traces_per_worker": dict(by_pid),
            "compile_per_worker": dict(comp), "hits_per_worker": dict(hits),
            "stages_per_worker": {k: dict(v) for k, v in stages.items()}, "points_that_traced": sum(r["traces"] > 0 for r in res.results),
            "median_point": float(np.median([r["seconds"] for r in res.results])),
            "median_cpu": float(np.median([r.get("cpu_seconds", 0.0) for r in res.results])),
            "load": (load0, os.getloadavg()[0]), "threads": threads, "first_cpu": first}


def child(args) -> None:
    """One measurement in this (fresh) process: ``--child EXECUTOR``; the result as JSON on the last line."""
    r = measure(args.child, 1 if args.child == "serial" else 2, args.points_per_eps, args.root, args.seed_batch)
    r["traces_per_worker"] = {str(k): v for k, v in r["traces_per_worker"].items()}
    for key in ("compile_per_worker", "hits_per_worker", "stages_per_worker", "first_cpu"):
        r[key] = {str(k): v for k, v in r[key].items()}
    print("RESULT " + json.dumps(r), flush=True)


def run_child(executor: str, cache: str, root: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", executor, "--root", root,
           "--points-per-eps", str(args.points_per_eps)] + (["--seed-batch", str(args.seed_batch)]
                                                             if args.seed_batch is not None else [])
    env = {**os.environ, "MFNN_JAX_CACHE": cache, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{executor} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def show(state: str, r: dict) -> None:
    ex, w = r["executor"], r["workers"]
    print(f"{state:>4} {ex:>7} x{w}: {r['points']} points in {r['jobs']} calls, wall {r['wall']:7.1f} s, "
          f"points' own time {r['work']:7.1f} s (median {r['median_point']:.2f} s), "
          f"CPU {r['cpu']:7.1f} s (median {r['median_cpu']:.2f} s/point), "
          f"cores used {r['cpu'] / r['wall']:.2f}, overhead {r['overhead_per_point']:+.2f} s/point, "
          f"traces per worker {sorted(r['traces_per_worker'].values())}, "
          f"points that traced {r['points_that_traced']}, load {r['load'][0]:.2f} -> {r['load'][1]:.2f}",
          flush=True)
    st = r["stages_per_worker"]
    for pid in sorted(st):
        s = st[pid]
        print(f"         worker {pid}: compile-or-load {s.get('compile', 0):5.1f} s, trace {s.get('trace', 0):5.1f} s, "
              f"lower {s.get('lower', 0):5.1f} s, cache hits {r['hits_per_worker'].get(pid, 0)}, "
              f"first point's CPU (warm-up) {r['first_cpu'].get(pid, 0):5.1f} s", flush=True)
    if r["threads"]:
        top = sorted(r["threads"].items(), key=lambda kv: -kv[1])[:4]
        print("         serial CPU seconds by thread: " + ", ".join(f"{k} {v:.1f}" for k, v in top), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-per-eps", type=int, default=4, help="seeds per eps (4: 32 points)")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--seed-batch", type=int, default=None, help="seeds per vmapped call (default: auto; 1: off)")
    ap.add_argument("--states", default="cold,warm", help="cache states to run, in order (warm needs cold first)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    root = tempfile.mkdtemp(prefix="mfnn-sweep-bench-")
    executors = [("serial", 1), ("local", 2)] + ([] if args.skip_dask else [("dask", 2)])
    rows: dict = {}
    print(f"cpu count {os.cpu_count()}, load average at start {os.getloadavg()}", flush=True)
    try:
        for state in args.states.split(","):
            for ex, _w in executors:
                cache = os.path.join(root, f"cache-{ex}")
                if state == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
                os.makedirs(cache, exist_ok=True)
                r = run_child(ex, cache, os.path.join(root, f"{state}"), args)
                rows[state, ex] = r
                show(state, r)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    states = args.states.split(",")
    for state in states:
        serial = rows[state, "serial"]
        for ex, w in executors[1:]:
            r = rows[state, ex]
            print(f"{state} cache: speedup of {ex} x{w} over serial: {serial['wall'] / r['wall']:.2f} "
                  f"(wall {serial['wall']:.1f} s vs {r['wall']:.1f} s; CPU seconds: serial {serial['cpu']:.1f}, "
                  f"{ex} {r['cpu']:.1f}); steady state (workers x serial median / {ex} median): "
                  f"{w * serial['median_point'] / r['median_point']:.2f}; on CPU seconds (serial CPU / "
                  f"({ex} CPU / {w}): the speedup {w} idle cores would give if the points' CPU time stayed the "
                  f"same): {w * serial['cpu'] / r['cpu']:.2f}")
    print(f"cpu count {os.cpu_count()}, load average at end {os.getloadavg()}")
    last = states[-1]
    print(f"pool speedup ({last} cache, local x2 over serial): {rows[last, 'serial']['wall'] / rows[last, 'local']['wall']:.2f}")


if __name__ == "__main__":
    main()
