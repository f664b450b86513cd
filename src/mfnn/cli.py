"""Command line: ``mfnn list``, ``mfnn run NAME [--quick] [--set k=v ...] [--out DIR] [--seed S]
[--overwrite | --resume] [--force] [--executor E --workers K]``, ``mfnn show DIR``; the sweep
commands (``mfnn sweep / status / collect / report``) live in :mod:`mfnn.cli_sweep`.

Every error is one line ``mfnn: error: <field>: <message>`` on stderr.  Exit codes
(docs/architecture.md section 5):

* 0: success;
* 2: bad input (usage, config values, output location, size estimate): nothing written;
* 3: the run diverged: ``summary.json`` says where, figures from what was saved, run dir kept;
* 130 / 143: interrupted by SIGINT / SIGTERM: ``<out>.partial`` kept with ``summary.json``
  saying ``"result": "interrupted"`` (``--resume`` continues it); the process ends with
  ``os._exit`` after flushing, so no XLA teardown can crash it;
* 1: an unexpected error (a bug): one line, the traceback in ``<out>.partial/error.log``.
"""

from __future__ import annotations

import os
import signal
import sys


def _startup_signal(signum, frame):  # noqa: ARG001 - outside a command's own handling (start-up, exit)
    os.write(2, b"mfnn: error: run: interrupted\n")
    os._exit(128 + signum)


# As a program (the `mfnn` script or `python -m mfnn.cli`), SIGINT / SIGTERM end the process with one
# line from the first moment; a command then installs its own handling (mfnn._signals).
if __name__ == "__main__" or os.path.basename(sys.argv[0] or "") == "mfnn":
    for _sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_sig, _startup_signal)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402

from .errors import ConfigError, DivergenceError  # noqa: E402


def _line(field: str, msg: str) -> str:
    msg = " ".join(str(msg).split()) or "error"
    return f"mfnn: error: {field}: {msg}"


def _fail(msg: str, code: int = 2):
    """``msg`` is ``"<field>: <message>"`` (a ConfigError's text) or a bare message."""
    click.echo(f"mfnn: error: {' '.join(str(msg).split())}", err=True)
    sys.exit(code)


def _interrupted(msg: str, signum) -> None:
    """One line, flush, and end the process without interpreter teardown (no XLA atexit crash)."""
    from . import _signals

    code = 128 + int(signum) if signum is not None else 130
    try:
        click.echo(_line("run", msg), err=True)
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed stream must not turn into a traceback
        pass
    if signum is not None and _signals.stop_requested() is not None:  # a real signal: hard exit
        os._exit(code)
    sys.exit(code)


class _Main(click.Group):
    """A click group whose usage errors are one line with exit 2 (click prints three)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `mfnn`: the help text
            click.echo(e.format_message())
            sys.exit(0)
        except click.UsageError as e:
            param = getattr(e, "param", None)
            field = (param.opts[0] if getattr(param, "opts", None) else getattr(param, "name", None)) or "usage"
            click.echo(_line(field, f"{e.format_message()} (see mfnn --help)"), err=True)
            sys.exit(2)
        except click.ClickException as e:
            click.echo(_line("usage", e.format_message()), err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort as e:  # KeyboardInterrupt outside a command's own handling
            cause = e.__cause__ or e.__context__
            _interrupted("interrupted", getattr(cause, "signum", None))
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
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


def _parse_sets(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("--set", f"expected key=value, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise ConfigError("--set", f"empty key in {item!r}")
        if not k.isascii() or not k.isprintable():
            raise ConfigError("--set", f"field names are ASCII, got {k!r}")
        if k in out:
            raise ConfigError(k, f"given twice (--set {k}={out[k]} and --set {k}={v.strip()}); give it once")
        out[k] = v.strip()
    return out


@main.command("run")
@click.argument("name")
@click.option("--quick", is_flag=True, help="Small, fast version (for tests and a first look).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--out", default=None, metavar="DIR", help="Run directory (default results/NAME).")
@click.option("--seed", default=None, metavar="INT", help="Random seed in [0, 2**32) (default: the config's, 0).")
@click.option("--overwrite", is_flag=True, help="Replace an existing mfnn run directory (or a stale .partial).")
@click.option("--resume", is_flag=True, help="Continue a stale <out>.partial, keeping the points it saved.")
@click.option("--force", is_flag=True, help="Run even if the estimate says it needs > half the RAM or > a day.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--executor", default="serial", show_default=True,
              type=click.Choice(["serial", "local", "dask", "slurm", "slurm-local"]),
              help="Where the experiment's points are computed (serial: in this process).")
@click.option("--workers", default=None, type=int, help="Workers of the executor (default: the CPU count).")
def run_cmd(name, quick, sets, out, seed, overwrite, resume, force, no_progress, executor, workers):
    """Run experiment NAME and write config, data, figures and summary.json."""
    from . import _signals
    from .sweeps import jax_cache as _jax_cache

    _jax_cache.enable()  # compiled programs persist across runs (MFNN_JAX_CACHE=0: off)

    with _signals.handled():
        try:
            from .experiments import get, run_experiment
            from .experiments.runner import RunFailed

            overrides = _parse_sets(sets)
            exp = get(name)
            path = run_experiment(name, out=out, quick=quick, overrides=overrides, seed=seed,
                                  progress=not no_progress, overwrite=overwrite, resume=resume, force=force,
                                  executor=executor, workers=workers)
            from .io import read_json

            summary = read_json(path / "summary.json")
            try:
                text = _format(exp, summary)
            except Exception as e:  # noqa: BLE001 - the run is saved; printing it must not crash
                text = f"(cannot print the summary: {type(e).__name__}: {e})"
            click.echo(text)
            click.echo(f"results written to {path}")
        except ConfigError as e:
            _fail(str(e), 2)
        except DivergenceError as e:
            _fail(f"run: {e}", 3)
        except KeyboardInterrupt as e:  # RunInterrupted included
            _interrupted(str(e) or "interrupted", getattr(e, "signum", None))
        except RunFailed as e:
            _fail(f"run: {e}", 1)


def _header(summary: dict) -> str:
    head = f"{summary.get('experiment')} (quick={summary.get('quick')}, seed={summary.get('seed')}, " \
           f"{summary.get('wall_seconds')} s)"
    result = summary.get("result")
    if result not in (None, "successful"):
        where = summary.get("stopped_at") or summary.get("stopped_in") or summary.get("phase") or summary.get("error") or ""
        if isinstance(where, dict):
            where = ", ".join(f"{k}={where[k]}" for k in ("point", "of", "key", "message") if k in where)
        head += f"\nRESULT: {str(result).upper()}" + (f" ({' '.join(str(where).split())[:300]})" if where else "")
    errors = summary.get("render_errors")
    if errors:
        names = list(errors) if isinstance(errors, (dict, list)) else [errors]
        head += f"\nplotting failed for: {', '.join(map(str, names))}"
    return head


def _format(exp, summary, strict: bool = False) -> str:
    """Header plus the experiment's table.  A finished summary that the experiment cannot format
    is corrupt (``strict``: ConfigError); a partial one (diverged, interrupted) falls back to JSON."""
    head = _header(summary)
    fmt = getattr(exp, "format_summary", None)
    if fmt is not None:
        try:
            return head + "\n" + fmt(summary)
        except Exception as e:  # noqa: BLE001 - a foreign or partial summary falls back to JSON
            if strict and summary.get("result", "successful") == "successful":
                raise ConfigError("directory", f"summary.json does not have the layout of a {exp.name} summary "
                                               f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    try:
        return head + "\n" + json.dumps(summary, indent=2, default=repr)
    except (TypeError, ValueError, RecursionError):
        return head


RESULTS = ("successful", "diverged", "interrupted", "failed")


def _load_summary(directory: str) -> dict:
    from .io import PARTIAL, read_json

    d = Path(directory)
    if not d.is_dir():
        alt = Path(str(d).rstrip("/") + PARTIAL)
        hint = f"; an unfinished run is in {alt} (mfnn show {alt})" if alt.is_dir() else ""
        raise ConfigError("directory", f"{directory} is not a directory{hint}")
    p = d / "summary.json"
    if not p.is_file():
        raise ConfigError("directory", f"no summary.json in {directory} (not a finished mfnn run)")
    try:
        summary = read_json(p)
    except (OSError, ValueError) as e:
        raise ConfigError("directory", f"unreadable summary.json: {e}") from None
    if not isinstance(summary, dict):
        raise ConfigError("directory", f"summary.json holds a {type(summary).__name__}, not an mfnn summary")
    if not isinstance(summary.get("experiment"), str):
        raise ConfigError("directory", "summary.json has no experiment name: not an mfnn summary")
    if summary.get("result", "successful") not in RESULTS:
        raise ConfigError("directory", f"summary.json has an unknown result {summary.get('result')!r}")
    return summary


@main.command("show")
@click.argument("directory", type=str)
def show_cmd(directory):
    """Print the summary of a run directory (finished, diverged or interrupted)."""
    try:
        summary = _load_summary(directory)
        from .experiments import all_experiments

        exp = all_experiments().get(summary["experiment"])
        text = _format(exp, summary, strict=True)
    except ConfigError as e:
        _fail(str(e), 2)
    except RecursionError:
        _fail("directory: summary.json is nested too deeply", 2)
    except Exception as e:  # noqa: BLE001 - any other malformed content: one line
        _fail(f"directory: cannot display summary.json ({type(e).__name__}: {e})", 2)
    click.echo(text)


from . import cli_sweep  # noqa: E402  (mfnn sweep / status / collect / report)

cli_sweep.register(sys.modules[__name__])

if __name__ == "__main__":  # pragma: no cover
    main()
