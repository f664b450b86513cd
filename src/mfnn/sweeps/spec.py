"""Sweep specifications: an experiment x a grid over its config fields x seeds.

A grid is given per field as

* a list: ``N=100,200,400`` (a tuple-valued field takes ``;`` between its values: ``times=0,1;0,2``);
* ``range(a, b[, step])``: integers a, a+step, ... < b (Python's ``range``);
* ``logspace(a, b, k)``: k values from a to b, evenly spaced in log (endpoints included;
  rounded for integer fields); ``linspace(a, b, k)``: evenly spaced;

fields in one *zip group* vary together (equal lengths); the other fields and the seeds form a
Cartesian product.  ``seeds`` is a count (``8``: seeds 0..7) or a list.  Fixed overrides
(``--set k=v``) apply to every point.  The same sweep comes from the command line
(:meth:`SweepSpec.from_cli`), a TOML file (:meth:`SweepSpec.from_toml`)::

    experiment = "pnas-isotropic"
    quick = true
    seeds = 4                       # or [0, 5, 9]
    imports = []                    # modules that register more experiments (also in workers)
    [set]
    t_max = 2.0
    [grid]
    eps = "logspace(1e-4, 1e-3, 3)" # or a TOML list: [1e-4, 3e-4, 1e-3]
    [[zip]]                         # fields that vary together
    d = [10, 20]
    n_neurons = [100, 200]

or Python (``SweepSpec(experiment=..., grid={...})``).  :meth:`SweepSpec.resolve` validates
*everything* before anything runs: every point's config is built and checked (unknown field, bad
value, empty grid, size estimate): a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

__all__ = ["SweepSpec", "SweepPoint", "parse_grid", "parse_seeds", "point_key"]

_FUNC = re.compile(r"^\s*(range|logspace|linspace)\s*\((.*)\)\s*$", re.IGNORECASE)


def _num(name: str, s: str, raw: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise ConfigError(name, f"cannot parse {s.strip()!r} in {raw!r} as a number") from None
    if not math.isfinite(v):
        raise ConfigError(name, f"{raw!r}: bounds must be finite")
    return v


def parse_grid(name: str, raw, kind: str | None = None) -> list:
    """The list of values of one grid field from CLI/TOML text (or a list, passed through).

    ``kind`` ("int", "float", "tuple", ...) is the field's type: integer fields round log/lin
    spaces (refusing duplicates), tuple fields split values on ``;``."""
    if isinstance(raw, (list, tuple)):
        vals = list(raw)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        vals = [raw]
    elif isinstance(raw, str):
        m = _FUNC.match(raw)
        if m:
            fn, args = m.group(1).lower(), [a for a in m.group(2).split(",")]
            if fn == "range":
                if not 1 <= len(args) <= 3:
                    raise ConfigError(name, f"{raw!r}: range takes 1 to 3 integers")
                nums = [_num(name, a, raw) for a in args]
                if any(v != int(v) for v in nums):
                    raise ConfigError(name, f"{raw!r}: range takes integers")
                if len(nums) == 3 and nums[2] == 0:
                    raise ConfigError(name, f"{raw!r}: the step must not be 0")
                vals = list(range(*[int(v) for v in nums]))
            else:
                if len(args) != 3:
                    raise ConfigError(name, f"{raw!r}: {fn}(start, stop, count) takes three numbers")
                a, b, k = (_num(name, x, raw) for x in args)
                if k != int(k) or not 1 <= k <= 100000:
                    raise ConfigError(name, f"{raw!r}: the count must be an integer in [1, 100000]")
                if fn == "logspace":
                    if a <= 0 or b <= 0:
                        raise ConfigError(name, f"{raw!r}: logspace needs positive bounds")
                    vals = np.geomspace(a, b, int(k)).tolist()
                else:
                    vals = np.linspace(a, b, int(k)).tolist()
                if kind == "int":
                    vals = [int(round(v)) for v in vals]
                    if len(set(vals)) != len(vals):
                        raise ConfigError(name, f"{raw!r}: rounding to integers gives repeated values {vals}")
        else:
            sep = ";" if kind == "tuple" else ","
            body = raw.strip()
            if kind != "tuple" and body[:1] == "[" and body[-1:] == "]":
                body = body[1:-1]
            vals = [] if not body.strip() else [v.strip() for v in body.split(sep)]
            if any(not v for v in vals):
                raise ConfigError(name, f"empty value in {raw!r}")
    else:
        raise ConfigError(name, f"grid values must be a list or text, got {type(raw).__name__}")
    if not vals:
        raise ConfigError(name, f"empty grid ({raw!r} gives no values)")
    return vals


def parse_seeds(raw) -> list:
    """``8`` -> seeds 0..7; ``"0,3,5"`` or ``[0, 3, 5]`` -> those seeds (distinct, in [0, 2**32))."""
    if isinstance(raw, bool):
        raise ConfigError("seeds", f"must be a count or a list of seeds, got {raw!r}")
    if isinstance(raw, str):
        s = raw.strip()
        if "," not in s and not _FUNC.match(s):
            if not re.fullmatch(r"[0-9]+", s):
                raise ConfigError("seeds", f"must be a count or a list of seeds, got {raw!r}")
            raw = int(s)
        else:
            raw = parse_grid("seeds", s, "int")
    if isinstance(raw, (int, np.integer)):
        if not 1 <= int(raw) <= 100000:
            raise ConfigError("seeds", f"the number of seeds must be in [1, 100000], got {raw}")
        return list(range(int(raw)))
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError("seeds", f"must be a count or a non-empty list of seeds, got {raw!r}")
    out = []
    for v in raw:
        if isinstance(v, str) and re.fullmatch(r"\s*[0-9]+\s*", v):
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < 2**32:
            raise ConfigError("seeds", f"seeds are integers in [0, 2**32), got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ConfigError("seeds", f"repeated seeds in {out}")
    return out


def point_key(experiment: str, config: dict, version: str) -> str:
    """Content hash of a resolved config (seed included) and the mfnn version: the point's directory name."""
    from ..io import _jsonable

    blob = json.dumps({"experiment": experiment, "config": _jsonable(config), "mfnn": version},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SweepPoint:
    """One point: its swept values (``coords``), its seed, the overrides that build its config
    (swept values and fixed ``--set`` values) and ``key``, the content hash of the resolved config."""

    experiment: str
    quick: bool
    coords: dict
    seed: int
    overrides: dict
    key: str
    index: dict = dataclasses.field(default_factory=dict)  # dimension -> position along it (seed excluded)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SweepSpec:
    """A sweep: an experiment, a Cartesian ``grid`` {field: values}, ``zipped`` groups of fields that vary
    together, ``seeds``, ``quick``, fixed ``overrides`` (``--set``) and modules to ``imports`` (user
    experiments).  Built from the CLI, a TOML file or Python; every point is validated before a sweep
    writes anything."""

    experiment: str
    grid: dict = field(default_factory=dict)      # field -> list of values (Cartesian product)
    zipped: list = field(default_factory=list)    # list of {field: list}; fields of a group vary together
    seeds: list = field(default_factory=lambda: [0])
    quick: bool = False
    overrides: dict = field(default_factory=dict)  # fixed --set values
    imports: tuple = ()

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def from_cli(cls, experiment, grids=(), zips=(), seeds="1", sets=None, quick=False, imports=()):
        """``grids``/``zips``: ``field=values`` strings (``--grid``/``--zip``, all ``--zip`` fields form one group)."""
        spec = cls(experiment=experiment, quick=bool(quick), overrides=dict(sets or {}), imports=tuple(imports))
        spec._import()
        kinds = _kinds(spec.experiment)
        for label, items, target in (("--grid", grids, spec.grid), ("--zip", zips, {})):
            for item in items:
                if "=" not in item:
                    raise ConfigError(label, f"expected field=values, got {item!r}")
                k, v = (s.strip() for s in item.split("=", 1))
                if not k:
                    raise ConfigError(label, f"empty field name in {item!r}")
                if k in spec.grid or any(k in g for g in spec.zipped) or k in target:
                    raise ConfigError(k, "given twice in the grid")
                target[k] = parse_grid(k, v, kinds.get(k))
            if label == "--zip" and target:
                spec.zipped.append(target)
        spec.seeds = parse_seeds(seeds)
        return spec

    @classmethod
    def from_toml(cls, path, **override):
        import tomllib

        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except OSError as e:
            raise ConfigError("--spec", f"cannot read {path}: {e.strerror or e}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError("--spec", f"{path} is not valid TOML ({' '.join(str(e).split())})") from None
        return cls.from_dict(doc, **override)

    @classmethod
    def from_dict(cls, doc: dict, **override):
        allowed = {"experiment", "quick", "seeds", "imports", "set", "grid", "zip"}
        unknown = sorted(set(doc) - allowed)
        if unknown:
            raise ConfigError(unknown[0], f"unknown key of a sweep spec; keys: {', '.join(sorted(allowed))}")
        doc = {**doc, **{k: v for k, v in override.items() if v is not None}}
        name = doc.get("experiment")
        if not isinstance(name, str):
            raise ConfigError("experiment", "the spec must name an experiment (experiment = \"...\")")
        imports = doc.get("imports", [])
        if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
            raise ConfigError("imports", "must be a list of module names")
        for key, kind in (("set", dict), ("grid", dict), ("zip", list)):
            if not isinstance(doc.get(key, kind()), kind):
                raise ConfigError(key, f"must be a {'table' if kind is dict else 'list of tables'}")
        quick = doc.get("quick", False)
        if not isinstance(quick, bool):
            raise ConfigError("quick", f"must be true or false, got {quick!r}")
        spec = cls(experiment=name, quick=quick, overrides=dict(doc.get("set", {})), imports=tuple(imports))
        spec._import()
        kinds = _kinds(name)
        spec.grid = {k: parse_grid(k, v, kinds.get(k)) for k, v in doc.get("grid", {}).items()}
        for g in doc.get("zip", []):
            if not isinstance(g, dict) or not g:
                raise ConfigError("zip", "each [[zip]] group is a non-empty table field -> values")
            spec.zipped.append({k: parse_grid(k, v, kinds.get(k)) for k, v in g.items()})
        spec.seeds = parse_seeds(doc.get("seeds", 1))
        return spec

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "quick": self.quick, "seeds": list(self.seeds),
                "imports": list(self.imports), "set": dict(self.overrides), "grid": dict(self.grid),
                "zip": [dict(g) for g in self.zipped]}

    # ---- resolution ---------------------------------------------------------------------------

    def dims(self) -> list:
        """Dimension names of the collected dataset: grid fields, one per zip group, then seed."""
        return [*self.grid, *(zip_dim(g) for g in self.zipped), "seed"]

    def _import(self):
        for m in self.imports:
            try:
                importlib.import_module(m)
            except ImportError as e:
                raise ConfigError("imports", f"cannot import {m!r} ({e})") from None

    def resolve(self, check_size: bool = True) -> list:
        """Every point, each config built and validated (and its size estimated); ConfigError on the first bad one."""
        from ..experiments.base import get
        from ..experiments.runner import check_budget
        from .. import __version__

        self._import()
        exp = get(self.experiment)
        names = {f.name for f in dataclasses.fields(exp.Config)}
        swept = [*self.grid, *(k for g in self.zipped for k in g)]
        for k in [*swept, *self.overrides]:
            if k == "seed":
                raise ConfigError("seed", "sweep seeds with --seeds, not as a grid field")
            if k not in names:
                raise ConfigError(k, f"unknown field of {self.experiment}; fields: {', '.join(sorted(names))}")
        for k in swept:
            if k in self.overrides:
                raise ConfigError(k, "both swept and fixed by --set; give it once")
        for k, v in self.grid.items():
            if not v:
                raise ConfigError(k, "empty grid")
        for g in self.zipped:
            lens = {k: len(v) for k, v in g.items()}
            if len(set(lens.values())) != 1 or 0 in lens.values():
                raise ConfigError(next(iter(g)), f"zipped fields must have the same non-zero length, got {lens}")
        if not self.seeds:
            raise ConfigError("seeds", "no seeds")
        axes = [[(k, i, {k: v}) for i, v in enumerate(vals)] for k, vals in self.grid.items()]
        axes += [[(zip_dim(g), i, {k: g[k][i] for k in g}) for i in range(len(next(iter(g.values()))))]
                 for g in self.zipped]
        points, seen = [], set()
        for combo in itertools.product(*axes, self.seeds):
            *parts, seed = combo
            coords = {k: v for _, _, part in parts for k, v in part.items()}
            index = {dim: i for dim, i, _ in parts}
            overrides = {**self.overrides, **coords}
            cfg = exp.make_config(quick=self.quick, overrides=overrides, seed=seed)
            if check_size:
                check_budget(exp, cfg)
            resolved = dataclasses.asdict(cfg)
            key = point_key(self.experiment, resolved, __version__)
            if key in seen:
                raise ConfigError(swept[0] if swept else "seeds", f"two grid points give the same config {coords}")
            seen.add(key)
            points.append(SweepPoint(self.experiment, self.quick, {k: resolved[k] for k in coords}, int(seed),
                                     overrides, key, index))
        return points


def zip_dim(group: dict) -> str:
    return "+".join(group)


def _kinds(experiment: str) -> dict:
    from ..experiments.base import get
    from ..experiments.config import _default, _kind

    exp = get(experiment)
    return {f.name: _kind(_default(f)) for f in dataclasses.fields(exp.Config)}
