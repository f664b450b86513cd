"""Figures in executed doc pages: ``show(fig)`` prints the figure as an inline PNG ``<img>``
(a data URI, so the built site needs no extra files and works offline)."""

from __future__ import annotations

import base64
import io


def show(fig, alt: str = "figure", width: int | None = None) -> None:
    """Print ``fig`` (matplotlib) as ``<img src="data:image/png;base64,...">`` and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    size = f' width="{width}"' if width else ""
    print(f'<img alt="{alt}"{size} src="data:image/png;base64,{data}">')
