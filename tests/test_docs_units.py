"""Units of the experiments' config fields (issue 15, item 6): declared next to every field of every
mfnn experiment (``unit_field``) and rendered as a column of the generated experiments reference."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from mfnn.experiments import all_experiments, field_units, unit_field

ROOT = Path(__file__).resolve().parents[1]


def _mfnn_experiments():
    return {n: e for n, e in all_experiments().items() if type(e).__module__.startswith("mfnn.experiments.")}


def test_every_field_declares_a_unit():
    missing = {n: [k for k, u in field_units(e.Config).items() if u == "?"] for n, e in _mfnn_experiments().items()}
    assert not {n: m for n, m in missing.items() if m}, "fields without unit_field(...)"
    for n, e in _mfnn_experiments().items():
        for k, u in field_units(e.Config).items():
            assert u is None or (isinstance(u, str) and u.strip() and u != "—"), (n, k, u)
    # a unit never changes the field itself: defaults and --set parsing are as before
    cfg = _mfnn_experiments()["pnas-isotropic"].make_config(overrides={"eps": "2e-5"})
    assert cfg.eps == 2e-5 and field_units(cfg)["eps"] == "time / step" and field_units(cfg)["delta"] is None


def test_unit_field_metadata():
    @dataclasses.dataclass(frozen=True)
    class C:
        a: float = unit_field(1.5, "time t")
        b: int = 3

    assert C().a == 1.5 and field_units(C) == {"a": "time t", "b": "?"}


def test_reference_table_has_a_unit_per_field():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from docs_reference import experiments_markdown
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    md = experiments_markdown()
    exps = _mfnn_experiments()
    for name, exp in exps.items():
        section = md.split(f"## `{name}`")[1].split("\n## ")[0]
        header = next(line for line in section.splitlines() if line.startswith("| field"))
        cols = [c.strip() for c in header.strip("|").split("|")]
        assert "unit" in cols
        rows = {}
        for line in section.splitlines():
            if line.startswith("| `"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                rows[cells[0].strip("`")] = cells[cols.index("unit")]
        units = field_units(exp.Config)
        assert set(rows) == set(units), name
        for k, cell in rows.items():
            assert cell == ("—" if units[k] is None else units[k]), (name, k, cell)
