"""Restartable sweep storage: one directory per point, named by the content hash of its config.

Layout of a sweep directory::

    DIR/.mfnn-sweep          marker ``SWEEP_MARKER`` (JSON: mfnn version, experiment, created): mfnn only reuses marked dirs
    DIR/sweep.json           the spec and every point (key, coords, seed)
    DIR/points/<key>/        a finished point: the usual run directory (summary.json, data, figures)
    DIR/points/<key>.partial a point in flight, interrupted, killed or failed (error.log, summary.json)
    DIR/points/<key>.lock    held (fcntl.flock) by the process computing the point

A point is *done* when ``points/<key>/summary.json`` exists (the run directory is renamed into place
atomically, so a killed worker never leaves a half-done point looking done); *running* while
another process holds its lock (a SIGKILLed process releases it); *failed* when its ``.partial``
holds ``summary.json`` with ``"result": "failed"``; otherwise *pending*.  Two drivers never compute
one point twice: a worker takes the point's lock (blocking), then re-checks that it is not done.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from ..errors import ConfigError
from ..io import PARTIAL, _protected, read_json, write_json

__all__ = ["SweepStore", "point_state", "SWEEP_MARKER"]

SWEEP_MARKER = ".mfnn-sweep"


class SweepStore:
    """A sweep directory (layout above): its marker, spec, and the state, lock and directory of each
    point by key."""

    def __init__(self, root):
        self.root = Path(os.path.abspath(os.fspath(root)))

    # ---- the directory ---------------------------------------------------------------------

    @classmethod
    def check(cls, out, experiment: str, spec_dict: dict) -> "SweepStore":
        """Check ``out`` as a sweep directory before anything is written (ConfigError("out", ...)):
        a new or empty directory, or one holding the same sweep (a rerun)."""
        raw = os.fspath(out) if isinstance(out, os.PathLike) else out
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise ConfigError("out", f"must be a non-empty directory path, got {raw!r}")
        store = cls(raw)
        why = _protected(store.root)
        if why:
            raise ConfigError("out", f"{raw!r} {why}; choose a new directory for the sweep")
        if store.root.is_symlink():
            raise ConfigError("out", f"{raw!r} is a symlink; give the real directory")
        if store.root.exists():
            if not store.root.is_dir():
                raise ConfigError("out", f"{raw!r} exists and is not a directory")
            if any(store.root.iterdir()):
                if not (store.root / SWEEP_MARKER).is_file():
                    raise ConfigError("out", f"{raw!r} exists and is not an mfnn sweep directory "
                                             f"(no {SWEEP_MARKER} marker): choose another --out")
                old = store.spec()
                if old is not None and old.get("spec") != spec_dict:
                    raise ConfigError("out", f"{raw!r} holds a different sweep (of {old.get('spec', {}).get('experiment')}); "
                                             "rerun that sweep's command or choose another --out")
        else:
            anc = store.root.parent
            while not anc.exists() and anc != anc.parent:
                anc = anc.parent
            if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
                raise ConfigError("out", f"cannot create {raw!r} (in {str(anc)!r})")
        return store

    @classmethod
    def open(cls, root) -> "SweepStore":
        """An existing sweep directory (for status / collect / report)."""
        store = cls(root)
        if not store.root.is_dir():
            raise ConfigError("directory", f"{root} is not a directory")
        if not (store.root / SWEEP_MARKER).is_file() or store.spec() is None:
            raise ConfigError("directory", f"{root} is not an mfnn sweep directory (no {SWEEP_MARKER} / sweep.json)")
        return store

    def create(self, experiment: str, spec_dict: dict, points: list) -> None:
        from .. import __version__

        (self.root / "points").mkdir(parents=True, exist_ok=True)
        if not (self.root / SWEEP_MARKER).is_file():
            write_json(self.root / SWEEP_MARKER, {"mfnn": __version__, "experiment": experiment, "kind": "sweep",
                                                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        write_json(self.root / "sweep.json", {"spec": spec_dict, "dims": None,
                                              "points": [p.to_dict() for p in points]})

    def spec(self) -> dict | None:
        p = self.root / "sweep.json"
        try:
            d = read_json(p)
        except (OSError, ValueError):
            return None
        return d if isinstance(d, dict) and isinstance(d.get("points"), list) else None

    # ---- points --------------------------------------------------------------------------------

    def final(self, key: str) -> Path:
        return self.root / "points" / key

    def partial(self, key: str) -> Path:
        return self.root / "points" / f"{key}{PARTIAL}"

    def is_done(self, key: str) -> bool:
        return (self.final(key) / "summary.json").is_file()

    @contextlib.contextmanager
    def lock(self, key: str, blocking: bool = True):
        """Hold the point's lock (yields False, without it, when not ``blocking`` and it is held)."""
        path = self.root / "points" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def state(self, key: str) -> tuple:
        """(state, detail): "done" (detail: the result), "running", "failed" (the error) or "pending"."""
        if self.is_done(key):
            try:
                return "done", str(read_json(self.final(key) / "summary.json").get("result", "successful"))
            except (OSError, ValueError, AttributeError):
                return "done", "unreadable summary.json"
        with self.lock(key, blocking=False) as got:
            if not got:
                return "running", ""
        return point_state(self.partial(key))


def point_state(partial: Path) -> tuple:
    """("failed", error) for a ``.partial`` run that recorded a failure, else ("pending", reason)."""
    s = partial / "summary.json"
    if s.is_file():
        try:
            summary = read_json(s)
        except (OSError, ValueError):
            summary = {}
        result = summary.get("result") if isinstance(summary, dict) else None
        if result == "failed":
            err = str(summary.get("error") or "failed")
            log = partial / "error.log"
            if log.is_file():
                lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
                if lines and lines[-1] not in err:
                    err = f"{err} [{lines[-1].strip()}]"
            return "failed", " ".join(err.split())
        if result == "interrupted":
            return "pending", "interrupted"
    if (partial / "error.log").is_file():
        lines = [ln for ln in (partial / "error.log").read_text(errors="replace").splitlines() if ln.strip()]
        return "failed", lines[-1].strip() if lines else "failed"
    return "pending", "killed or not started" if partial.exists() else ""
