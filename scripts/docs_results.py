"""Render ``docs/results/results.json`` (written by ``collect_results.py``) as the Results page."""

from __future__ import annotations

import json
import pathlib

DATA = pathlib.Path(__file__).resolve().parents[1] / "docs" / "results" / "results.json"


def results_markdown() -> str:
    """The claims table, a note on the run sizes, and every run's figures."""
    rows = json.loads(DATA.read_text())
    sizes = sorted({r["size"] for r in rows})
    out = []
    if "--quick" in sizes:
        out.append('!!! warning "Sizes"\n    Rows marked `--quick` come from the experiments\' small presets '
                   '(`mfnn run NAME --quick`), not from the default (paper-like) sizes: their numbers show '
                   'the pipeline and the trend, with wider confidence intervals than a full run.\n')
    out.append("| claim | paper | measured | size | command | wall time (2 CPU cores) | load (1/5/15 min, at the end) |")
    out.append("|---|---|---|---|---|---|---|")
    for r in rows:
        wall = f"{r['wall_seconds']:.0f} s" if r.get("wall_seconds") is not None else "—"
        result = "" if r.get("result") in ("successful", "") else f" ({r['result']})"
        load = " / ".join(f"{x:.1f}" for x in r["load_average"]) if r.get("load_average") else "not recorded"
        out.append(f"| {r['claim']} | {r['paper']} | {r['measured']}{result} | `{r['size']}` | "
                   f"`{r['command']}` | {wall} | {load} |")
    out.append("")
    seen = set()
    for r in rows:
        if r["experiment"] in seen:
            continue
        seen.add(r["experiment"])
        out.append(f"## `{r['experiment']}` (`{r['size']}`)\n")
        for fig in r["figures"]:
            if not (DATA.parent.parent / fig).exists():  # figures are not committed (see results.md)
                continue
            out.append(f"![{r['experiment']}: {pathlib.Path(fig).stem}]({fig})\n")
    return "\n".join(out)
