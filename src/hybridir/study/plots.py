"""The study's plots, only for the axes the grid has: per group the bars, the trade-off, the alpha curve and the
X-to-Y heat map; then the model-size curves; then each analysis's own figures (:attr:`.analysis.Analysis.plots`,
in the analyses' order: e.g. every arm at every scoring for a grid that centres). An analysis's figures live in
its module; this one draws the generic ones and calls those.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .aggregate import SETTINGS, Row, per_language
from .analyses.tradeoff import plot_tradeoff
from .analysis import Analysis, Context
from .config import slug
from .plotting import color, figure, figure_grid, save_figure


def arm_groups(rows: list[Row]) -> tuple[dict[str, Row], dict[tuple[Any, ...], list[Row]]]:
    """The plain zero-shot row of each model, and the trained rows by (model, language set, steps): the arms a
    figure puts side by side. Zero-shot scored otherwise (``zero-shot+center:0.75``) is in no group: it joins
    every group of its model (:func:`zero_shot_rows`)."""
    zero = {r.model: r for r in rows if r.arm == "zero-shot"}
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for r in rows:
        if r.cell.sampler != "zero-shot":
            groups[(r.model, r.langset, r.steps)].append(r)
    return zero, groups


def zero_shot_rows(rows: list[Row], model: str) -> list[Row]:
    """Every zero-shot row of ``model``, one per scoring, in the grid's order."""
    return [r for r in rows if r.cell.sampler == "zero-shot" and r.model == model]


def group_title(key: tuple[Any, ...]) -> str:
    """A figure title for the group ``(model, language set, steps)``."""
    model, langset, steps = key
    return f"{model}, languages {langset}, {steps} steps"


def make_plots(ctx: Context, analyses: Sequence[Analysis]) -> list[Path]:
    """Per-group bars, trade-offs, alpha curves and heat maps, the model-size curves, then the figures of
    ``analyses``: only for the axes the grid has."""
    import matplotlib

    matplotlib.use("Agg")
    rows, out = ctx.rows, ctx.out
    plots_dir = out / "plots"
    made: list[Path | None] = []
    _, groups = arm_groups(rows)
    for key, members in groups.items():
        arms = zero_shot_rows(rows, key[0]) + members
        tag = slug("_".join(str(k) for k in key))
        made.append(_plot_bars(arms, plots_dir / f"bars_{tag}.png", group_title(key)))
        made.append(plot_tradeoff(arms, plots_dir / f"tradeoff_{tag}.png", group_title(key)))
        # the alpha curve: hybrid (no distillation) and the baselines trained with the grid's own settings,
        # unmerged and scored plain, so the points differ in alpha only
        plain = [r for r in arms if (r.cell.recipe, r.cell.merge, r.cell.centering or "none") == (None, None, "none")]
        if len(curve := [r for r in plain if r.cell.sampler == "hybrid"]) > 1:
            made.append(_plot_alpha(curve, plain, plots_dir / f"alpha_{tag}.png", group_title(key)))
        made.append(_plot_heatmap(arms, out, plots_dir / f"heatmap_{tag}.png", group_title(key)))
    made += _plot_model_size(groups, rows, ctx.cfg.models, plots_dir)
    for a in analyses:
        if a.plots is not None:
            made += a.plots(ctx, ctx.found[a.name])
    return [p for p in made if p is not None]


def _plot_bars(arms: list[Row], path: Path, title: str) -> Path:
    """mono / cross / multi mAP and rank distance per arm (error bars: 95% interval over seeds)."""
    panels = [*SETTINGS, ("xquad-r/rank_distance", "rank distance (lower = less bias)")]
    fig, axes = figure(len(panels), title)
    for ax, (name, label) in zip(axes, panels, strict=True):
        means = [r.mean.get(name, np.nan) for r in arms]
        stds = [0.0 if math.isnan(s := r.ci95.get(name, np.nan)) else s for r in arms]
        ax.bar(range(len(arms)), means, yerr=stds, color=[color(r.arm) for r in arms], capsize=3)
        ax.set_xticks(range(len(arms)), [r.arm for r in arms], rotation=60 if len(arms) > 8 else 30,
                      ha="right", fontsize=8 if len(arms) <= 8 else 6)  # fmt: skip
        ax.set_title(label, fontsize=9)
    if len(arms) > 8:  # one bar per arm and scoring: wide enough for every label
        fig.set_size_inches(0.22 * len(arms) * len(panels) + 1.0, 3.4 + 0.06 * max(len(r.arm) for r in arms))
    return save_figure(fig, path)


def _plot_alpha(hybrids: list[Row], arms: list[Row], path: Path, title: str) -> Path:
    """Hybrid's mAP against alpha, baselines as horizontal lines."""
    fig, axes = figure(len(SETTINGS), title)
    hybrids = sorted(hybrids, key=_alpha)
    alphas = [_alpha(r) for r in hybrids]
    for ax, (name, label) in zip(axes, SETTINGS, strict=True):
        ax.errorbar(alphas, [r.mean.get(name, np.nan) for r in hybrids],
                    yerr=[np.nan_to_num(r.ci95.get(name, np.nan)) for r in hybrids],
                    marker="o", color="C3", label="hybrid")  # fmt: skip
        for b in (r for r in arms if not r.cell.sampler.startswith("hybrid")):
            ax.axhline(b.mean.get(name, np.nan), ls="--", color=color(b.arm), label=b.arm)
        ax.set_xlabel("alpha")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def _plot_heatmap(arms: list[Row], out: Path, path: Path, title: str) -> Path | None:
    """X-to-Y mAP (query language -> passage language; monolingual on the diagonal), mean over seeds, of the arm
    with the best cross-lingual mAP."""
    best = max(arms, key=lambda r: r.mean.get("xquad-r/cross_map", -np.inf))
    pairs = per_language(best, out, "cross") | {f"{x}-{x}": v for x, v in per_language(best, out, "mono").items()}
    if not pairs:
        return None
    langs = sorted({lang for key in pairs for lang in key.split("-", 1)})
    grid = np.full((len(langs), len(langs)), np.nan)
    for key, val in pairs.items():
        src, tgt = key.split("-", 1)
        grid[langs.index(src), langs.index(tgt)] = val
    fig, axes = figure(1, f"{title}\nbest arm by cross mAP: {best.arm}")
    im = axes[0].imshow(grid, cmap="viridis", vmin=0, vmax=1)
    for i, j in np.argwhere(~np.isnan(grid)):
        axes[0].text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=6,
                     color="white" if grid[i, j] < 0.5 else "black")  # fmt: skip
    axes[0].set_xticks(range(len(langs)), langs, fontsize=7)
    axes[0].set_yticks(range(len(langs)), langs, fontsize=7)
    axes[0].set_xlabel("passage language")
    axes[0].set_ylabel("query language")
    fig.colorbar(im, ax=axes[0], label="mAP")
    fig.set_size_inches(max(4.0, 0.5 * len(langs) + 2.5), max(3.6, 0.45 * len(langs) + 1.8))
    return save_figure(fig, path)


def _plot_model_size(groups: dict, rows: list[Row], models: list[str], plots_dir: Path) -> list[Path]:
    """mAP per model of the grid (in the YAML's order, smallest first by convention), one line per arm; one row
    of panels per variant (recipe, merge, scoring), zero-shot scored as the row's variant (it has no merge)."""
    made = []
    by_langs_steps: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for (_, langset, steps), members in groups.items():
        by_langs_steps[(langset, steps)] += members
    for (langset, steps), members in by_langs_steps.items():
        present = [m for m in models if any(r.model == m for r in members)]
        if len(present) < 2:
            continue
        variants = list(dict.fromkeys((r.cell.recipe, r.cell.merge, r.cell.centering or "none") for r in members))
        fig, grid = figure_grid(len(variants), len(SETTINGS), f"languages {langset}, {steps} steps: model size")
        for axes, (recipe, merge, centering) in zip(grid, variants, strict=True):
            alike = [r for r in members if (r.cell.recipe, r.cell.merge, r.cell.centering or "none")
                     == (recipe, merge, centering)]  # fmt: skip
            zero = [r for r in rows if r.cell.sampler == "zero-shot" and (r.cell.centering or "none") == centering]
            lines: dict[str, list[Row | None]] = {}
            for base in dict.fromkeys(r.cell.trained.arm for r in [*zero, *alike]):
                lines[base] = [next((r for r in [*zero, *alike] if r.model == m and r.cell.trained.arm == base), None)
                               for m in present]  # fmt: skip
            for ax, (name, label) in zip(axes, SETTINGS, strict=True):
                for arm, arm_rows in lines.items():
                    ax.plot(range(len(present)), [r.mean.get(name, np.nan) if r else np.nan for r in arm_rows],
                            marker="o", color=color(arm), label=re.split(r"[@+]", arm)[0])  # fmt: skip
                ax.set_xticks(range(len(present)), present, rotation=30, fontsize=7)
                ax.set_title(label, fontsize=9)
            named = [
                recipe or "",
                f"merged {merge:g}" if merge is not None else "",
                "" if centering == "none" else centering,
            ]
            axes[0].set_ylabel(", ".join(n for n in named if n) or "plain", fontsize=8)
        grid[0][0].legend(fontsize=6)
        made.append(save_figure(fig, plots_dir / f"model_size_{slug(str(langset))}_{steps}steps.png"))
    return made


def _alpha(row: Row) -> float:
    return float(row.records[0]["alpha"])
