"""Figures in executed doc pages: ``print(figure_html(fig))`` puts the figure on the page as an
inline PNG ``<img>`` (a data URI, so the built site needs no extra files and works offline).

The block must print the returned string itself: markdown-exec captures the ``print`` of the
code block, not that of an imported module.
"""

from __future__ import annotations

import base64
import io


def figure_html(fig, alt: str = "figure", width: int | None = None) -> str:
    """``fig`` (matplotlib) as ``<img src="data:image/png;base64,...">``; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    size = f' width="{width}"' if width else ""
    return f'<img alt="{alt}"{size} src="data:image/png;base64,{data}">'
