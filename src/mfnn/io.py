"""Run directories: a marker, config.json, data (netCDF via xarray), figures (PNG + SVG), summary.json.

Layout and life cycle
---------------------
* A run writes into ``<out>.partial``.  The first file written there is the marker
  ``.mfnn-run`` (JSON: mfnn version, experiment, creation time): only a directory carrying it
  is ever deleted or replaced by mfnn (``--overwrite``), and nothing outside the output
  directory is ever deleted.
* A run that *finishes* -- successfully or diverged (a diverged run is a complete, reproducible
  result: ``summary.json`` says ``"result": "diverged"`` and where it stopped) -- is renamed to
  ``<out>``.  A run that is interrupted (SIGINT/SIGTERM), fails on an unexpected error or is
  killed stays in ``<out>.partial``: never lost, never mistaken for a finished run.  The next run
  into the same ``--out`` refuses to start while such a stale ``.partial`` exists, until
  ``--overwrite`` (discard it) or ``--resume`` (continue it: computed points are kept) decides.
* Every write is atomic (temporary file in the same directory, then ``os.replace``); files get
  mode ``0o666 & ~umask`` like any file the user creates (``mkstemp`` alone would give 0600).

Non-finite numbers in JSON
--------------------------
JSON has no NaN or infinity.  mfnn writes them as the strings ``"nan"``, ``"inf"`` and
``"-inf"`` (strict JSON that any reader accepts) and :func:`read_json` turns exactly these three
strings back into floats, so NaN round-trips through mfnn's own JSON.  No mfnn field uses these
strings as text with another meaning (``d = "inf"`` of pnas-risk-vs-delta means the same number).
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

MARKER = ".mfnn-run"
PARTIAL = ".partial"
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)  # JSON has no inf/nan: write "inf", "-inf", "nan"
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (str, int)) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return repr(obj)


def _restore_nonfinite(obj):
    if isinstance(obj, str):
        return _NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: _restore_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_nonfinite(v) for v in obj]
    return obj


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """The mode a newly created file gets under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), file_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_dataset(path: Path, ds) -> Path:
    """Write an ``xarray.Dataset`` as netCDF (scipy engine: no extra dependency) to a temporary file
    beside ``path``, then rename it into place: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="scipy")
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def dumps(obj) -> str:
    """mfnn's JSON text for ``obj`` (non-finite floats as "nan"/"inf"/"-inf" strings)."""
    return json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n"


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, dumps(obj).encode())


def read_json(path: Path, max_bytes: int = 64 * 2**20):
    """Read mfnn JSON; "nan"/"inf"/"-inf" strings come back as floats (see the module docstring).

    Raises ``ValueError`` (one-line message) for a file that is too large, not UTF-8, not JSON,
    or nested too deeply to parse.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path.name} is {size} bytes (more than {max_bytes}): not an mfnn file")
    try:
        text = path.read_bytes().decode("utf-8")
        return _restore_nonfinite(json.loads(text))
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply") from None


def versions() -> dict:
    import jax
    import matplotlib
    import scipy
    import xarray

    from . import __version__

    return {
        "mfnn": __version__, "jax": jax.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "xarray": xarray.__version__, "matplotlib": matplotlib.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
    }


def _mfnn_version() -> str:
    try:
        from . import __version__
    except ImportError:  # pragma: no cover - partial package
        return "unknown"
    return __version__


# --------------------------------------------------------------------------------------------
# output location checks (all before anything is written)


def read_marker(path: Path) -> dict | None:
    """The marker of an mfnn run directory, or None when ``path`` is not one."""
    p = Path(path) / MARKER
    try:
        if p.is_symlink() or not p.is_file() or p.stat().st_size > 65536:
            return None
        m = json.loads(p.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return m if isinstance(m, dict) and "mfnn" in m and "experiment" in m else None


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def _protected(path: Path) -> str | None:
    """Why ``path`` (absolute) can never be an output directory, or None."""
    if path == Path(path.anchor):
        return "is the filesystem root"
    for name, other in (("the current directory", Path.cwd()), ("the home directory", Path.home())):
        try:
            other = Path(os.path.abspath(other))
        except (OSError, RuntimeError):  # pragma: no cover
            continue
        if path == other:
            return f"is {name}"
        if path in other.parents:
            return f"contains {name}"
    return None


class OutputPlan:
    """Where a run goes: ``final`` (``<out>``), ``work`` (``<out>.partial``) and what to do there."""

    def __init__(self, final: Path, work: Path, resume: bool, replace_work: bool, replace_final: bool):
        self.final, self.work = final, work
        self.resume = resume                # reuse work (it exists and is an mfnn run)
        self.replace_work = replace_work    # delete a stale marked work dir first
        self.replace_final = replace_final  # delete a marked final dir at finalize


def plan_output(out, *, experiment: str, overwrite: bool = False, resume: bool = False) -> OutputPlan:
    """Check ``out`` as an output location; raise ``ConfigError("out", ...)`` and write nothing.

    Refused: empty, ``.``/cwd, ``/``, the home directory or any directory containing the cwd or
    home; an existing file; a path under a file; symlinks (dangling or not) at ``<out>`` or
    ``<out>.partial``; names too long for the filesystem; an unwritable or pseudo filesystem
    (checked by creating and removing a probe directory in the nearest existing ancestor);
    an existing ``<out>`` unless ``overwrite`` and it carries the mfnn marker (or is empty); a
    stale ``<out>.partial`` unless ``overwrite`` (discard; marker required) or ``resume``.
    """
    raw = os.fspath(out) if isinstance(out, os.PathLike) else out
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError("out", f"must be a non-empty directory path, got {raw!r}")
    if "\x00" in raw:
        raise ConfigError("out", "contains a NUL character")
    try:
        final = Path(os.path.abspath(raw))
        why = _protected(final)
    except (OSError, RuntimeError) as e:  # e.g. the current directory was deleted
        raise ConfigError("out", f"cannot resolve {raw!r} ({e})") from None
    if why:
        raise ConfigError("out", f"{raw!r} {why}; choose a new directory for the run")
    work = final.with_name(final.name + PARTIAL)
    parent = final.parent

    # name and path lengths (the work dir name is the longest one mfnn creates here)
    try:
        name_max = os.pathconf(_nearest_existing(parent), "PC_NAME_MAX")
        path_max = os.pathconf(_nearest_existing(parent), "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    if len(os.fsencode(work.name)) > name_max:
        raise ConfigError("out", f"directory name is {len(os.fsencode(final.name))} bytes long; at most "
                                 f"{name_max - len(PARTIAL)} fit on this filesystem")
    if len(os.fsencode(str(work))) + 64 > path_max:
        raise ConfigError("out", f"path is too long for this filesystem ({len(str(final))} characters)")

    # every existing component above must be a directory
    anc = _nearest_existing(parent)
    if not anc.is_dir():
        raise ConfigError("out", f"{raw!r} lies under {str(anc)!r}, which is not a directory")
    for p, label in ((final, "out"), (work, "partial")):
        if p.is_symlink():
            target = os.readlink(p)
            state = "a dangling symlink" if not p.exists() else "a symlink"
            raise ConfigError("out", f"{str(p)!r} is {state} (to {target!r}); give the real directory")
    if final.exists() and not final.is_dir():
        raise ConfigError("out", f"{raw!r} exists and is not a directory")
    if work.exists() and not work.is_dir():
        raise ConfigError("out", f"{str(work)!r} exists and is not a directory")

    # writability: create and remove a probe where the run directory will be created
    try:
        probe = tempfile.mkdtemp(prefix=".mfnn-probe-", dir=anc)
        os.rmdir(probe)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise ConfigError("out", f"cannot create a directory in {str(anc)!r} ({reason})") from None
    if final.is_dir() and not os.access(final, os.W_OK | os.X_OK):
        raise ConfigError("out", f"{raw!r} is not writable")

    replace_final = False
    if final.exists():
        if not overwrite:
            raise ConfigError("out", f"{raw} already exists (pass --overwrite or choose another --out)")
        if read_marker(final) is None and not _is_empty_dir(final):
            raise ConfigError("out", f"{raw} exists and is not an mfnn run directory (no {MARKER} marker); "
                                     "refusing to overwrite it: choose another --out")
        replace_final = True

    use_work = replace_work = False
    if work.exists():
        marker = read_marker(work)
        if resume:
            if marker is None:
                raise ConfigError("out", f"{work} is not an mfnn run directory (no {MARKER} marker); cannot resume")
            if marker.get("experiment") != experiment:
                raise ConfigError("out", f"{work} holds a run of {marker.get('experiment')!r}, not {experiment!r}; "
                                         "cannot resume")
            use_work = True
        elif overwrite:
            if marker is None and not _is_empty_dir(work):
                raise ConfigError("out", f"{work} is not an mfnn run directory (no {MARKER} marker); "
                                         "refusing to delete it")
            replace_work = True
        else:
            raise ConfigError("out", f"stale partial run at {work} (an interrupted or failed run); pass "
                                     "--overwrite to discard it or --resume to continue it")
    return OutputPlan(final, work, use_work, replace_work, replace_final)


def _nearest_existing(path: Path) -> Path:
    p = Path(path)
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


class RunDir:
    """A run directory being written.  ``RunDir.open(plan, experiment)``, write, then ``finalize()``."""

    def __init__(self, final: Path, work: Path, replace_final: bool = False):
        self.final = Path(final)
        self.path = Path(work)
        self.replace_final = replace_final

    @classmethod
    def open(cls, plan: OutputPlan, experiment: str) -> "RunDir":
        """Create (or, resuming, reuse) the work directory and write the marker into it first."""
        if plan.replace_work and plan.work.exists():
            if read_marker(plan.work) is None and not _is_empty_dir(plan.work):  # re-check: never delete foreign data
                raise ConfigError("out", f"{plan.work} is not an mfnn run directory; refusing to delete it")
            shutil.rmtree(plan.work)
        plan.work.mkdir(parents=True, exist_ok=plan.resume)
        run = cls(plan.final, plan.work, plan.replace_final)
        marker = read_marker(plan.work) if plan.resume else None
        created = (marker or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run.write_json(MARKER, {"mfnn": _mfnn_version(), "experiment": experiment, "created": created})
        return run

    @classmethod
    def create(cls, out, overwrite: bool = False, experiment: str = "unknown") -> "RunDir":
        """Check ``out`` (see :func:`plan_output`) and open a fresh run directory."""
        return cls.open(plan_output(out, experiment=experiment, overwrite=overwrite), experiment)

    def write_json(self, name: str, obj) -> Path:
        p = self.path / name
        write_json(p, obj)
        return p

    def write_dataset(self, name: str, ds) -> Path:
        """Write an ``xarray.Dataset`` as netCDF (scipy engine: no extra dependency)."""
        return atomic_write_dataset(self.path / name, ds)

    def savefig(self, fig, stem: str) -> list[Path]:
        import io as _io

        paths = []
        for ext in ("png", "svg"):
            buf = _io.BytesIO()
            fig.savefig(buf, format=ext, dpi=130, bbox_inches="tight")
            p = self.path / f"{stem}.{ext}"
            atomic_write_bytes(p, buf.getvalue())
            paths.append(p)
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:  # noqa: BLE001 - closing is a courtesy
            pass
        return paths

    def finalize(self, overwrite: bool | None = None) -> Path:
        """Rename the work directory to its final name (replacing a marked old run if planned)."""
        replace = self.replace_final if overwrite is None else (overwrite and self.replace_final)
        if self.path == self.final:
            return self.final
        if self.final.exists():
            if not replace or (read_marker(self.final) is None and not _is_empty_dir(self.final)):
                raise ConfigError("out", f"{self.final} appeared during the run and is not ours to replace; "
                                         f"results kept in {self.path}")
            shutil.rmtree(self.final)
        try:
            os.replace(self.path, self.final)
        except OSError as e:  # pragma: no cover - e.g. a race with another process
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise ConfigError("out", f"{self.final} appeared during the run; results kept in {self.path}") from None
            raise
        self.path = self.final
        return self.final
