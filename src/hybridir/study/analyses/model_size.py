"""Hybrid gain by model size: hybrid minus X-X and minus X-Y per model of a ladder, paired by seed.

Applies to grids with two or more models (``grid.models``); its plots show the gain against model size.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..aggregate import SETTINGS, Row, mean_ci95, per_seed
from ..analysis import Analysis
from ..config import slug
from ..plotting import color, figure, save_figure


def model_size_gains(rows: list[Row], models: Sequence[str]) -> list[dict[str, Any]]:
    """Hybrid minus X-X and minus X-Y for each model of a ladder (a grid with two or more models): the mean and
    95% interval of the per-seed differences (paired by seed), so a gain that grows with size shows as a trend
    beyond the seed spread. Empty for a one-model grid."""
    if len({r.model for r in rows if r.arm != "zero-shot"}) < 2:
        return []
    by = {(r.model, r.langset, r.steps, r.arm): r for r in rows}
    gains = []
    for r in sorted(rows, key=lambda r: list(models).index(r.model) if r.model in models else len(models)):
        if not r.arm.startswith("hybrid"):
            continue
        for base in ("xx", "xy"):
            if (b := by.get((r.model, r.langset, r.steps, base))) is None:
                continue
            for name, label in _gain_metrics(rows):
                h, o = per_seed(r, name), per_seed(b, name)
                if diffs := [h[seed] - o[seed] for seed in h if seed in o]:
                    mean, ci = mean_ci95(diffs)
                    gains.append({"model": r.model, "languages": r.langset, "steps": r.steps, "arm": r.arm,
                                  "baseline": base, "metric": name, "label": label, "n_seeds": len(diffs),
                                  "mean": mean, "ci95": ci})  # fmt: skip
    return gains


def _gain_metrics(rows: list[Row]) -> list[tuple[str, str]]:
    """XQuAD-R's three settings and rank distance, plus each retrieval set's nDCG@10 (MIRACL, BEIR)."""
    names = {k for r in rows for k in r.mean}
    extra = sorted(k for k in names if k.endswith("/ndcg@10") and k.count("/") == 1 and not k.startswith("dev/"))
    labelled = [(k, k.replace("/ndcg@10", " nDCG@10")) for k in extra]
    return [*SETTINGS, ("xquad-r/rank_distance", "rank dist."), *labelled]


def _gains_markdown(gains: list[dict[str, Any]]) -> list[str]:
    if not gains:
        return []
    labels = list(dict.fromkeys(g["label"] for g in gains))
    lines = ["", "## Hybrid gain by model size", "",
             "Hybrid minus each baseline, per model: mean of the per-seed differences ± half-width of their 95% "
             "interval (paired by seed; rank distance: negative = less bias than the baseline).", "",
             "| model | languages | steps | arm | baseline | seeds | " + " | ".join(labels) + " |",
             "|" + "---|" * (6 + len(labels))]  # fmt: skip
    cells: dict[tuple[Any, ...], dict[str, str]] = defaultdict(dict)
    for g in gains:
        key = (g["model"], g["languages"], g["steps"], g["arm"], g["baseline"], g["n_seeds"])
        ci = "" if math.isnan(g["ci95"]) else f" ± {g['ci95']:.3g}"
        cells[key][g["label"]] = f"{g['mean']:+.3g}{ci}"
    for key, vals in cells.items():
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(vals.get(c, "") for c in labels) + " |")
    return lines


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
    applies=lambda ctx: len(ctx.cfg.models) > 1,
    compute=lambda ctx: model_size_gains(ctx.rows, ctx.cfg.models),
    section=lambda ctx, gains: _gains_markdown(gains),
)
