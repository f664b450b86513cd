"""MkDocs hook: render the site's math server-side as MathML (no script, no CDN).

``pymdownx.arithmatex`` (generic mode) protects ``$...$`` / ``$$...$$`` from Markdown and wraps it
as ``<span class="arithmatex">\\(...\\)</span>`` / ``<div class="arithmatex">\\[...\\]</div>``;
this hook replaces each with the MathML of ``latex2mathml``, which browsers render natively
(MathML Core).  A formula that ``latex2mathml`` cannot convert fails the build (strict).
"""

from __future__ import annotations

import html
import logging
import re

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.plugins.mfnn_math")

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def _mathml(tex: str, display: str, where: str) -> str:
    tex = html.unescape(tex).strip()
    try:
        out = convert(tex, display=display)
    except Exception as e:  # noqa: BLE001 - any converter failure is a build warning (strict: error)
        log.warning("%s: cannot render math %r (%s)", where, tex, e)
        return f"<code>{html.escape(tex)}</code>"
    return out.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")


def render(text: str, where: str = "page") -> str:
    text = _BLOCK.sub(lambda m: f'<div class="math-display">{_mathml(m.group(1), "block", where)}</div>', text)
    return _INLINE.sub(lambda m: _mathml(m.group(1), "inline", where), text)


def on_page_content(html_text, page, config, files):  # noqa: ARG001 - mkdocs hook signature
    return render(html_text, page.file.src_uri)
