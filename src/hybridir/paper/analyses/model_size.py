"""Hybrid gain by model size: hybrid minus X-X and minus X-Y per model of a ladder, paired by seed.

Applies to grids with two or more models (``grid.models``); its plots show the gain against model size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...study.aggregate import Row
from ...study.analyses.seed_pairs import gains_markdown, paired_gains
from ...study.analysis import Analysis
from ...study.config import slug
from ...study.plotting import color, figure, save_figure


def model_size_gains(rows: list[Row], models: Sequence[str]) -> list[dict[str, Any]]:
    """Hybrid minus X-X and minus X-Y for each model of a ladder (a grid with two or more models), paired by seed
    (:func:`~.seed_pairs.paired_gains`), so a gain that grows with size shows as a trend beyond the seed spread.
    Empty for a one-model grid."""
    if len({r.model for r in rows if r.arm != "zero-shot"}) < 2:
        return []
    return paired_gains(rows, models, centred=True)


def plot_size_gains(gains: list[dict[str, Any]], plots_dir: Path) -> list[Path]:
    """Hybrid minus X-X / X-Y against model size, one panel per metric, 95% seed intervals as error bars."""
    made = []
    for langset, steps in dict.fromkeys((g["languages"], g["steps"]) for g in gains):
        these = [g for g in gains if (g["languages"], g["steps"]) == (langset, steps)]
        labels = list(dict.fromkeys(g["label"] for g in these))
        models = list(dict.fromkeys(g["model"] for g in these))
        fig, axes = figure(len(labels), f"languages {langset}, {steps} steps: hybrid gain by model size")
        for ax, label in zip(axes, labels, strict=True):
            arms = list(dict.fromkeys(g["arm"] for g in these))
            for i, (arm, base) in enumerate(dict.fromkeys((g["arm"], g["baseline"]) for g in these)):
                pts = {g["model"]: g for g in these if (g["label"], g["arm"], g["baseline"]) == (label, arm, base)}
                xs = [j + 0.05 * i for j, m in enumerate(models) if m in pts]
                ys = [pts[m]["mean"] for m in models if m in pts]
                err = [0.0 if math.isnan(pts[m]["ci95"]) else pts[m]["ci95"] for m in models if m in pts]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=color(base),
                            ls=("-", "--", ":", "-.")[arms.index(arm) % 4], label=f"{arm} - {base}")  # fmt: skip
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xticks(range(len(models)), models, rotation=30, fontsize=7)
            ax.set_title(label, fontsize=9)
        axes[0].legend(fontsize=6)
        made.append(save_figure(fig, plots_dir / f"model_size_gain_{slug(str(langset))}_{steps}steps.png"))
    return made


ANALYSIS = Analysis(
    "model_size_gains",
    80,
    applies=lambda ctx: len(ctx.cfg.models) > 1,
    compute=lambda ctx: model_size_gains(ctx.rows, ctx.cfg.models),
    section=lambda ctx, gains: gains_markdown(gains, "Hybrid gain by model size"),
    saved=True,
    plots=lambda ctx, gains: list(plot_size_gains(gains, ctx.out / "plots")),
)
