"""Command line of sweeps: ``mfnn sweep``, ``mfnn status``, ``mfnn collect``, ``mfnn report``.

``mfnn sweep NAME --grid N=100,200,400 --grid eps=logspace(1e-6,1e-4,5) --seeds 8 [--zip f=...]
[--quick] [--set k=v] [--executor local|serial|dask|slurm|slurm-local] [--workers K] [--address
tcp://...] [--partition P --time MIN --mem-gb G --array-parallelism K] [--seed-batch K] [--out DIR]`` or ``mfnn sweep
--spec sweep.toml``.  Exit status: 0 every point done, 1 a point failed (``mfnn status DIR`` lists
them), 2 bad input (nothing written), 3 a point diverged, 130/143 interrupted.
"""

from __future__ import annotations

import sys

import click

from .errors import ConfigError

__all__ = ["register"]


def register(cli) -> None:
    """Add the sweep commands to ``cli.main`` (``cli``: the command-line module, also as ``__main__``)."""
    for cmd in (sweep_cmd, status_cmd, collect_cmd, report_cmd):
        cli.main.add_command(cmd)
    _cli.append(cli)


_cli: list = []


def _fail(msg, code=2):
    _cli[-1]._fail(msg, code)


def _interrupted(msg, signum):
    _cli[-1]._interrupted(msg, signum)


def _parse_sets(items):
    return _cli[-1]._parse_sets(items)


@click.command("sweep")
@click.argument("name", required=False)
@click.option("--spec", "spec_file", default=None, metavar="FILE", help="A TOML sweep spec (see mfnn.sweeps.spec).")
@click.option("--grid", "grids", multiple=True, metavar="FIELD=VALUES",
              help="Values of a field: a,b,c | range(a,b[,s]) | logspace(a,b,k) | linspace(a,b,k) (repeatable).")
@click.option("--zip", "zips", multiple=True, metavar="FIELD=VALUES", help="Fields that vary together (repeatable).")
@click.option("--seeds", default=None, metavar="K|LIST", help="Number of seeds (0..K-1) or a list (default 1).")
@click.option("--quick", is_flag=True, default=None, help="The experiment's --quick preset.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="A fixed config value (repeatable).")
@click.option("--import", "imports", multiple=True, metavar="MODULE", help="Import a module registering experiments.")
@click.option("--executor", default="local", show_default=True,
              type=click.Choice(["local", "serial", "dask", "slurm", "slurm-local"]))
@click.option("--workers", default=None, type=int, help="Worker processes (default: the CPU count).")
@click.option("--address", default=None, metavar="tcp://HOST:PORT", help="Join this Dask scheduler.")
@click.option("--partition", default=None, help="SLURM partition.")
@click.option("--time", "time_min", default=60, show_default=True, type=int, help="SLURM time limit per point (min).")
@click.option("--mem-gb", default=None, type=float, help="SLURM memory per point (GB).")
@click.option("--array-parallelism", default=None, type=int, help="SLURM: points running at once.")
@click.option("--out", default=None, metavar="DIR", help="Sweep directory (default sweeps/NAME).")
@click.option("--force", is_flag=True, help="Skip the per-point size estimate.")
@click.option("--seed-batch", default=None, type=int,
              help="Most seeds of a grid point run in one vmapped call, where the experiment allows "
                   "(default: enough calls to keep every worker busy; 1: one seed per call).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def sweep_cmd(name, spec_file, grids, zips, seeds, quick, sets, imports, executor, workers, address, partition,
              time_min, mem_gb, array_parallelism, out, force, seed_batch, no_progress):
    """Run experiment NAME over a grid of config fields and seeds (restartable: rerun to finish)."""
    from . import _signals
    from .sweeps import jax_cache as _jax_cache

    _jax_cache.enable()  # here and (through $MFNN_JAX_CACHE) in every worker; MFNN_JAX_CACHE=0: off

    with _signals.handled():
        try:
            from .sweeps import SweepSpec, run_sweep

            if spec_file is not None:
                if grids or zips or name:
                    raise ConfigError("--spec", "give the grid either in the TOML file or on the command line")
                spec = SweepSpec.from_toml(spec_file)
                if sets:
                    spec.overrides.update(_parse_sets(sets))
                if seeds is not None:
                    from .sweeps.spec import parse_seeds

                    spec.seeds = parse_seeds(seeds)
                if quick:
                    spec.quick = True
            else:
                if not name:
                    raise ConfigError("name", "give an experiment name or --spec FILE")
                spec = SweepSpec.from_cli(name, grids, zips, seeds or "1", _parse_sets(sets), bool(quick), imports)
            slurm = {"partition": partition, "time": time_min, "mem_gb": mem_gb, "array_parallelism": array_parallelism}
            res = run_sweep(spec, out or f"sweeps/{spec.experiment}", executor=executor, workers=workers,
                            address=address, slurm=slurm, progress=not no_progress, check_size=not force,
                            seed_batch=seed_batch)
        except ConfigError as e:
            _fail(str(e), 2)
        except KeyboardInterrupt as e:
            _interrupted(str(e) or "interrupted", getattr(e, "signum", None))
    counts = {s: res.count(s) for s in ("done", "diverged", "failed", "lost", "interrupted", "skipped")}
    parts = [f"{res.skipped} already done"] + [f"{v} {k}" for k, v in counts.items() if v]
    click.echo(f"{res.total} points in {res.root}: {', '.join(parts)} ({res.wall_seconds:.1f} s)")
    if res.count("lost"):
        click.echo(f"mfnn: error: sweep: {res.count('lost')} points lost with a worker that died; rerun the "
                   "command to run them", err=True)
    elif res.failed:
        click.echo(f"mfnn: error: sweep: {len(res.failed)} of {res.total} points failed; "
                   f"`mfnn status {res.root}` lists them, rerun the command to retry them", err=True)
    sys.exit(res.exit_code)


@click.command("status")
@click.argument("directory")
def status_cmd(directory):
    """Done / running / failed / pending points of a sweep (with each failure's error)."""
    try:
        from .sweeps.collect import status_lines

        lines = status_lines(directory)
    except ConfigError as e:
        _fail(str(e), 2)
    click.echo("\n".join(lines))


@click.command("collect")
@click.argument("directory")
def collect_cmd(directory):
    """Write DIRECTORY/table.parquet (tidy) and DIRECTORY/dataset.nc (mean/std/count over seeds)."""
    try:
        from .sweeps.collect import collect

        t, d = collect(directory)
    except ConfigError as e:
        _fail(str(e), 2)
    click.echo(f"wrote {t} and {d}")


@click.command("report")
@click.argument("directory")
@click.option("--metric", default=None, help="Sweep: the output to plot (default: the first positive one).")
@click.option("--field", "field_", default=None, help="Sweep: the swept field on the x axis.")
@click.option("--out", default=None, metavar="FILE", help="HTML file (default DIRECTORY/report.html).")
def report_cmd(directory, metric, field_, out):
    """One self-contained HTML page (figures, config, environment, tables) for a run or a sweep."""
    try:
        from .sweeps.report import write_report

        path = write_report(directory, out=out, metric=metric, field=field_)
    except ConfigError as e:
        _fail(str(e), 2)
    click.echo(f"report written to {path}")
