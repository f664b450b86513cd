"""Fail when a built page would fetch anything from the network when opened.

Scans every HTML / CSS / JS file under the site directory for a script ``src``, a style sheet or
icon ``<link href>``, a CSS ``@import`` or ``url(...)`` that points to ``http(s)://`` or ``//``.
Plain ``<a href>`` links to other sites are allowed (nothing is fetched until clicked).

Usage: ``python scripts/check_offline.py site``; exit status 1 and one line per offence if any.
"""

from __future__ import annotations

import pathlib
import re
import sys

REMOTE = r"""(?:https?:)?//[^"'\s)]+"""
PATTERNS = [
    re.compile(rf"""<script[^>]*\bsrc\s*=\s*["']({REMOTE})""", re.I),
    re.compile(rf"""<link[^>]*\bhref\s*=\s*["']({REMOTE})""", re.I),
    re.compile(rf"""<(?:img|iframe|source|video|audio)[^>]*\bsrc\s*=\s*["']({REMOTE})""", re.I),
    re.compile(rf"""@import\s+(?:url\()?\s*["']?({REMOTE})""", re.I),
    re.compile(rf"""url\(\s*["']?({REMOTE})""", re.I),
]


def offences(site: pathlib.Path) -> list[str]:
    """Every ``path: url`` under ``site`` that a browser would fetch from the network."""
    out = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css", ".js") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for pat in PATTERNS:
            for m in pat.finditer(text):
                if path.suffix == ".js" and "xmlns" in m.group(0):
                    continue
                out.append(f"{path.relative_to(site)}: {m.group(1)}")
    return out


def main(argv: list[str]) -> int:
    site = pathlib.Path(argv[1] if len(argv) > 1 else "site")
    if not site.is_dir():
        print(f"check_offline: no site directory {site} (run mkdocs build first)")
        return 1
    bad = offences(site)
    for line in bad:
        print("remote resource:", line)
    print(f"check_offline: {len(bad)} remote resources in {site}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
