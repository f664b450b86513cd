"""Reference tables generated when the site is built (called from ``markdown-exec`` blocks).

* :func:`namespace_table`: every name of ``mfnn.__all__`` with the subpackage that defines it,
  linked to its generated entry;
* :func:`experiments_markdown`: every registered experiment with its config fields, defaults,
  ``--quick`` values, units and valid ranges, read from the registry, from the units the fields
  declare (``mfnn.experiments.unit_field``; "—" for a dimensionless number) and from the range
  checks that the config's own ``validate()`` runs (recorded, not typed in).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import math

# markdown printed by markdown-exec is not rewritten by mkdocs: link to the built pages (.html)
PAGES = {"mfnn.problem": "problem.html", "mfnn.solvers": "solvers.html", "mfnn.numerics": "numerics.html",
         "mfnn.errors": "errors.html", "mfnn.kernel": "kernel.html", "mfnn.analysis": "analysis.html",
         "mfnn.experiments": "experiments-api.html", "mfnn.sweeps": "sweeps.html"}


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    line = doc.strip().split("\n\n")[0].replace("\n", " ")
    return line.replace("|", "\\|")


def namespace_table() -> str:
    """Markdown table: ``mfnn.<name>`` -> defining subpackage and the first line of its docstring."""
    import mfnn

    rows = ["| name | from | summary |", "|---|---|---|"]
    for name in mfnn.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(mfnn, name)
        sub = next((s for s in PAGES if name in getattr(importlib.import_module(s), "__all__", ())), None)
        if sub is None:
            rows.append(f"| `mfnn.{name}` | `mfnn` | {_first_line(obj)} |")
            continue
        if inspect.ismodule(obj):
            rows.append(f"| [`mfnn.{name}`]({name}.html) | [`{sub}`]({PAGES[sub]}) | {_first_line(obj)} |")
            continue
        if hasattr(importlib.import_module(sub), "__path__") and importlib.util.find_spec(f"{sub}.{name}") is not None:
            # the name is also a submodule (mfnn.problem.multilayer): the cross-reference would
            # resolve to the module, which has no entry of its own; link the page instead
            rows.append(f"| `mfnn.{name}` | [`{sub}`]({PAGES[sub]}) | {_first_line(obj)} |")
            continue
        rows.append(f"| [`mfnn.{name}`][{sub}.{name}] | [`{sub}`]({PAGES[sub]}) | {_first_line(obj)} |")
    return "\n".join(rows)


# --- experiments -------------------------------------------------------------------------------

def _interval(lo, hi, closed=("[", "]")) -> str:
    def fmt(v):
        return "∞" if v == math.inf else "-∞" if v == -math.inf else f"{v:g}"
    return f"{closed[0]}{fmt(lo)}, {fmt(hi)}{closed[1]}"


@contextlib.contextmanager
def _recording(ranges: dict):
    """Patch the range checks of ``experiments.pieces`` (where every experiment module imported them)
    so that ``validate()`` records ``field -> range text`` while still checking."""
    from mfnn.experiments import pieces

    orig = {n: getattr(pieces, n) for n in ("check_ranges", "check_range", "check_sweep")}

    def check_ranges(cfg, spec):
        for k, v in spec.items():
            ranges.setdefault(k, "one of " + ", ".join(map(repr, v)) if isinstance(v, tuple) else v)
        return orig["check_ranges"](cfg, spec)

    def check_range(cfg, **bounds):
        for k, (lo, hi) in bounds.items():
            if not (lo == -math.inf and hi == math.inf):
                ranges.setdefault(k, _interval(lo, hi))
        return orig["check_range"](cfg, **bounds)

    def check_sweep(cfg, name, lo, hi, min_len=3, increasing=True):
        ranges.setdefault(name, f"≥ {min_len} values in {_interval(lo, hi)}" + (", increasing" if increasing else ""))
        return orig["check_sweep"](cfg, name, lo, hi, min_len, increasing)

    patched = {"check_ranges": check_ranges, "check_range": check_range, "check_sweep": check_sweep}
    mods = [pieces] + [m for m in _experiment_modules()]
    saved = []
    for mod in mods:
        for n, fn in patched.items():
            if getattr(mod, n, None) is orig[n]:
                saved.append((mod, n))
                setattr(mod, n, fn)
    try:
        yield
    finally:
        for mod, n in saved:
            setattr(mod, n, orig[n])


def _experiment_modules():
    import sys

    from mfnn.experiments import all_experiments

    all_experiments()
    return [m for k, m in sys.modules.items() if k.startswith("mfnn.experiments.") and m is not None]


def config_table(exp) -> list[dict]:
    """One row per config field of ``exp``: name, type, default, quick value, unit, range."""
    from mfnn.experiments import field_units
    from mfnn.experiments.config import INT_RANGE, SEED_RANGE

    cfg = exp.make_config()
    ranges: dict = {}
    with _recording(ranges):
        cfg.validate()
    for k, (lo, hi) in dict(getattr(cfg, "BOUNDS", {}) or {}).items():
        ranges.setdefault(k, _interval(lo, hi))
    inf_ok = set(getattr(cfg, "INF_OK", ()) or ())
    units = field_units(cfg)
    rows = []
    for f in dataclasses.fields(cfg):
        default = getattr(cfg, f.name)
        kind = type(default).__name__
        rng = ranges.get(f.name)
        if rng is None:  # the generic checks of experiments.config
            if f.name == "seed":
                rng = "[0, 2**32)" if SEED_RANGE == (0, 2**32 - 1) else _interval(*SEED_RANGE)
            elif isinstance(default, bool):
                rng = "true / false"
            elif isinstance(default, int):
                rng = "[0, 2**31)" if INT_RANGE == (0, 2**31 - 1) else _interval(*INT_RANGE)
            elif isinstance(default, float):
                rng = "any float" if f.name in inf_ok else "finite"
            else:
                rng = "—"
        if f.name in inf_ok:
            rng += " (inf allowed)"
        quick = exp.quick.get(f.name, "")
        unit = units[f.name]
        rows.append({"field": f.name, "type": kind, "default": default, "quick": quick,
                     "unit": "—" if unit is None else unit, "range": rng})
    return rows


def experiments_markdown() -> str:
    """A section per registered experiment with its config table."""
    from mfnn.experiments import all_experiments

    out = []
    for name, exp in all_experiments().items():
        out.append(f"## `{name}`\n\n{exp.description}\n\n`mfnn run {name}` (full size), "
                   f"`mfnn run {name} --quick` (the `quick` column)\n")
        out.append("| field | type | default | `--quick` | unit | valid range |\n|---|---|---|---|---|---|")
        for r in config_table(exp):
            out.append(f"| `{r['field']}` | {r['type']} | `{r['default']!r}` | "
                       f"{'`%r`' % (r['quick'],) if r['quick'] != '' else ''} | {r['unit']} | {r['range']} |")
        out.append("")
    return "\n".join(out)
