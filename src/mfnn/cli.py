"""Command line: ``mfnn list``, ``mfnn run NAME [--quick] [--set k=v ...] [--out DIR] [--seed S]``,
``mfnn show DIR``.

Bad input prints one line naming the field and exits 2 before anything is written; a run that
fails midway exits non-zero and keeps its saves in ``<out>.partial``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import ConfigError, DivergenceError


def _fail(msg: str, code: int = 2):
    click.echo(f"mfnn: error: {msg}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """mfnn: finite-N SGD, mean-field (DD) limits and their comparison, as reproducible runs."""


@main.command("list")
def list_cmd():
    """List the experiments with one-line descriptions."""
    from .experiments import all_experiments

    exps = all_experiments()
    width = max(len(n) for n in exps)
    for name, exp in exps.items():
        click.echo(f"{name:<{width}}  {exp.description}")


def _parse_sets(items):
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("--set", f"expected key=value, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise ConfigError("--set", f"empty key in {item!r}")
        out[k] = v.strip()
    return out


@main.command("run")
@click.argument("name")
@click.option("--quick", is_flag=True, help="Small, fast version (for tests and a first look).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory (default results/NAME).")
@click.option("--seed", type=int, default=None, help="Random seed (default: the config's, 0).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run_cmd(name, quick, sets, out, seed, overwrite, no_progress):
    """Run experiment NAME and write config, data, figures and summary.json."""
    from .experiments import get, run_experiment

    try:
        overrides = _parse_sets(sets)
        exp = get(name)
        exp.make_config(quick=quick, overrides=overrides, seed=seed)  # validate before any output
        path = run_experiment(name, out=out, quick=quick, overrides=overrides, seed=seed,
                              progress=not no_progress, overwrite=overwrite)
    except ConfigError as e:
        _fail(str(e), 2)
    except DivergenceError as e:
        _fail(f"run diverged: {e}", 3)
    except KeyboardInterrupt:
        _fail("interrupted; partial results kept in the .partial directory", 130)
    summary = json.loads((path / "summary.json").read_text())
    click.echo(_format(exp, summary))
    click.echo(f"results written to {path}")


def _format(exp, summary) -> str:
    fmt = getattr(exp, "format_summary", None)
    head = f"{summary.get('experiment')} (quick={summary.get('quick')}, seed={summary.get('seed')}, " \
           f"{summary.get('wall_seconds')} s)"
    if fmt is not None:
        try:
            return head + "\n" + fmt(summary)
        except (KeyError, TypeError):
            pass
    return head + "\n" + json.dumps(summary, indent=2)


@main.command("show")
@click.argument("directory", type=click.Path())
def show_cmd(directory):
    """Print the summary of a finished run directory."""
    from .experiments import all_experiments

    p = Path(directory) / "summary.json"
    if not p.is_file():
        _fail(f"directory: no summary.json in {directory} (not a finished mfnn run)", 2)
    try:
        summary = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        _fail(f"directory: unreadable summary.json ({e})", 2)
    exp = all_experiments().get(summary.get("experiment"))
    click.echo(_format(exp, summary))


if __name__ == "__main__":  # pragma: no cover
    main()
