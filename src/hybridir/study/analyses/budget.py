"""The training budget: each arm's metrics against its number of training steps, for grids with several ``steps``.

One line per arm and scoring (the arm label without the steps), a point per budget with its 95% interval over
seeds; zero-shot, which trains for no steps, is a dashed line. The section's table gives the same numbers, and the
paired "hybrid minus X-X" gap per budget, so a reader sees whether the gap closes, opens or flips as training
grows (a gap's interval over seeds: ``*`` when it excludes 0).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ..aggregate import Row, paired_differences, seed_summary
from ..analysis import Analysis
from ..plotting import color, save_figure
from .seed_pairs import gain_metrics


def line_label(row: Row) -> str:
    """The arm and scoring of a row, without its steps: one line of the plot."""
    return dataclasses.replace(row.cell, steps=None).arm


def budget_table(rows: list[Row]) -> list[dict[str, Any]]:
    """One record per row: line label, steps (None for zero-shot), seeds, and per metric mean, 95% half-width and
    number of seeds."""
    out = []
    for r in rows:
        values = seed_summary(r, [name for name, _ in gain_metrics(rows)])
        family = dataclasses.replace(r.cell, steps=None, recipe=None, merge=None, centering=None).arm
        variant = f"{r.cell.merge or 1:g}|{r.cell.centering or 'none'}"
        out.append({"line": line_label(r), "family": family, "variant": variant, "steps": r.cell.steps,
                    "metrics": values, "seeds": [s for s in r.seeds if s is not None]})  # fmt: skip
    return out


def budget_gaps(rows: list[Row]) -> list[dict[str, Any]]:
    """Hybrid (any alpha, no distillation) minus X-X of the same recipe, merge, scoring and steps, paired by seed."""
    by = {r.cell: r for r in rows}
    gaps = []
    for r in rows:
        if r.cell.sampler != "hybrid" or r.cell.steps is None:
            continue
        if (b := by.get(r.cell.baseline("xx"))) is None:
            continue
        gaps += [{"line": line_label(r), "baseline": line_label(b), "steps": r.cell.steps, **d}
                 for d in paired_differences(r, b, gain_metrics(rows))]  # fmt: skip
    return gaps


def _fmt(mean: float, ci: float, name: str, signed: bool = False) -> str:
    digits = 0 if name.endswith("rank_distance") else 3
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if math.isnan(ci):
        return text
    return text + f" ± {ci:.{digits}f}" + ("*" if signed and abs(mean) > ci else "")


def budget_markdown(found: dict[str, Any], metrics: list[tuple[str, str]]) -> list[str]:
    lines = ["", "## Training budget: every arm against its number of steps", "",
             "Mean over the seeds listed ± half-width of the 95% t-interval (plots/budget.png draws it).", "",
             "| arm | steps | seeds | " + " | ".join(label for _, label in metrics) + " |",
             "|" + "---|" * (3 + len(metrics))]  # fmt: skip
    for t in sorted(found["table"], key=lambda t: (t["line"], t["steps"] or 0)):
        vals = [_fmt(v["mean"], v["ci95"], n) if (v := t["metrics"].get(n)) else "-" for n, _ in metrics]
        lines.append(f"| {t['line']} | {t['steps'] or 0} | {','.join(map(str, t['seeds'])) or '-'} | "
                     + " | ".join(vals) + " |")  # fmt: skip
    if found["gaps"]:
        labels = list(dict.fromkeys(g["label"] for g in found["gaps"]))
        lines += [
            "",
            "Hybrid minus X-X at each budget, paired by seed (`*`: the interval excludes 0):",
            "",
            "| arm | baseline | steps | seeds | " + " | ".join(labels) + " |",
            "|" + "---|" * (4 + len(labels)),
        ]
        cells: dict[tuple[Any, ...], dict[str, str]] = {}
        for g in found["gaps"]:
            key = (g["line"], g["baseline"], g["steps"], g["n_seeds"])
            cells.setdefault(key, {})[g["label"]] = _fmt(g["mean"], g["ci95"], g["metric"], signed=True)
        for key in sorted(cells, key=lambda k: (k[0], k[2])):
            vals = cells[key]
            lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(vals.get(c, "") for c in labels) + " |")
    return lines


def plot_budget(table: list[dict[str, Any]], metrics: list[tuple[str, str]], path: Path, title: str) -> Path | None:
    """One panel per metric and merge weight (a row each), steps on a log axis, one line per arm and scoring (its
    line style); zero-shot as flat lines in every row."""
    import matplotlib.pyplot as plt

    trained = [t for t in table if t["steps"]]
    if not trained:
        return None
    merges = list(dict.fromkeys(t["variant"].partition("|")[0] for t in trained))
    scorings = list(dict.fromkeys(t["variant"].partition("|")[2] for t in table))
    steps = sorted({t["steps"] for t in trained})
    styles = ["-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3))]
    fig, axes = plt.subplots(len(merges), len(metrics), figsize=(3.6 * len(metrics), 3.2 * len(merges) + 0.6),
                             squeeze=False)  # fmt: skip
    fig.suptitle(title, fontsize=10)
    for row, merge in enumerate(merges):
        at = [t for t in table if not t["steps"] or t["variant"].partition("|")[0] == merge]
        for ax, (name, label) in zip(axes[row], metrics, strict=True):
            for line in dict.fromkeys(t["line"] for t in at):
                pts = sorted((t["steps"] or 0, t["metrics"][name], t) for t in at if t["line"] == line
                             and name in t["metrics"])  # fmt: skip
                if not pts:
                    continue
                ls = styles[scorings.index(pts[0][2]["variant"].partition("|")[2]) % len(styles)]
                if pts[0][0] == 0:  # zero-shot
                    ax.axhline(pts[0][1]["mean"], color=color("zero-shot"), ls=ls, lw=0.8, label=line)
                    continue
                ax.errorbar([p for p, _, _ in pts], [v["mean"] for _, v, _ in pts], capsize=2, marker="o", ms=3,
                            yerr=[0 if math.isnan(v["ci95"]) else v["ci95"] for _, v, _ in pts], label=line,
                            color=color(pts[0][2]["family"]), ls=ls)  # fmt: skip
            ax.set_xscale("log")
            ax.set_xticks(steps, [str(s) for s in steps])
            ax.minorticks_off()
            ax.set_xlabel("training steps", fontsize=8)
            merged = "" if merge == "1" else f", merged {merge}"
            ax.set_title(label + merged + (" (lower = less bias)" if name.endswith("rank_distance") else ""),
                         fontsize=8)  # fmt: skip
            ax.tick_params(labelsize=7)
        axes[row][-1].legend(fontsize=5, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return save_figure(fig, path)


def _metrics(rows: list[Row]) -> list[tuple[str, str]]:
    return gain_metrics(rows)[:4]


ANALYSIS = Analysis(
    "budget",
    35,
    applies=lambda ctx: len(set(ctx.cfg.steps)) > 1,
    compute=lambda ctx: {"table": budget_table(ctx.rows), "gaps": budget_gaps(ctx.rows)},
    section=lambda ctx, found: budget_markdown(found, gain_metrics(ctx.rows)),
    empty=dict,
    saved=True,
    plots=lambda ctx, found: [
        plot_budget(
            found.get("table", []),
            _metrics(ctx.rows),
            ctx.out / "plots" / "budget.png",
            f"{ctx.cfg.name}: metrics against training steps",
        )  # fmt: skip
    ],
)
