"""Run directories: config.json, data (netCDF via xarray), figures (PNG + SVG), summary.json.

Every write is atomic (temporary file in the same directory, then ``os.replace``), so a run that
is interrupted never leaves a half-written file.  A run writes into ``<out>.partial`` and the
directory is renamed to ``<out>`` only when the run finishes; a diverging or interrupted run
keeps what it saved under ``<out>.partial`` (never lost, never mistaken for a finished run).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np


def _jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)  # JSON has no inf/nan: write "inf", "nan"
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return repr(obj)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2) + "\n").encode())


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)


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


class RunDir:
    """A run directory being written.  Use ``RunDir.create(out)``, write, then ``finalize()``."""

    def __init__(self, final: Path, work: Path):
        self.final = Path(final)
        self.path = Path(work)

    @classmethod
    def create(cls, out, overwrite: bool = False) -> "RunDir":
        final = Path(out)
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} exists (use --overwrite or another --out)")
        work = final.with_name(final.name + ".partial")
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        return cls(final, work)

    def write_json(self, name: str, obj) -> Path:
        p = self.path / name
        write_json(p, obj)
        return p

    def write_dataset(self, name: str, ds) -> Path:
        """Write an ``xarray.Dataset`` as netCDF (scipy engine: no extra dependency)."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        os.close(fd)
        try:
            ds.to_netcdf(tmp, engine="scipy")
            os.replace(tmp, p)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return p

    def savefig(self, fig, stem: str) -> list[Path]:
        import io as _io

        paths = []
        for ext in ("png", "svg"):
            buf = _io.BytesIO()
            fig.savefig(buf, format=ext, dpi=130, bbox_inches="tight")
            p = self.path / f"{stem}.{ext}"
            atomic_write_bytes(p, buf.getvalue())
            paths.append(p)
        return paths

    def finalize(self, overwrite: bool = False) -> Path:
        if self.final.exists() and overwrite:
            shutil.rmtree(self.final)
        os.replace(self.path, self.final)
        self.path = self.final
        return self.final
