"""Figure helpers shared by the study's plots: one colour per arm, a row of panels, an atomic save."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..infra.files import atomic_savefig


def color(arm: str) -> str:
    """One colour per arm in every plot: zero-shot grey, X-X blue, X-Y orange, hybrid by alpha; a recipe, merge or
    scoring suffix (``xx@dec+m0.5``) keeps its arm's colour."""
    if m := re.match(r"hybrid-([0-9.]+)", arm):
        return f"C{2 + min(4, round(float(m.group(1)) * 4))}"
    return {"zero-shot": "C7", "xx": "C0", "xy": "C1", "kd": "C8", "mixed": "C4"}.get(re.split(r"[@+]", arm)[0], "C9")


def figure(n_panels: int, title: str):
    """A figure with one row of ``n_panels`` panels."""
    fig, grid = figure_grid(1, n_panels, title)
    return fig, grid[0]


def figure_grid(n_rows: int, n_cols: int, title: str):
    """A figure with ``n_rows`` rows of ``n_cols`` panels (``grid[row][col]``)."""
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 3.4 * n_rows), squeeze=False)
    fig.suptitle(title, fontsize=10)
    return fig, grid


def save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # room for the suptitle
    atomic_savefig(fig, path, dpi=90)
    plt.close(fig)
    return path
