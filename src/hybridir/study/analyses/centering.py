"""Language-neutral scoring in a study: what post-hoc centering adds to each arm, whether hybrid batches still beat
X-X and X-Y once bias is removed after training, what merging with the start model (WiSE-FT) adds at each scoring,
and whether training on centred vectors (``hybrid-c``) beats centering a model trained the usual way.

A grid with ``centering`` (studies/centering.yaml) has each trained model scored plain and in every mode. The
section opens with one compact table (arm x scoring, the headline metric of each data set) and then pairs two rows
seed by seed (the same trained model for "centred minus plain"; the same seed's models for "arm minus arm" and
"merged minus unmerged"), with the 95% interval of the mean difference over seeds (``*``: it excludes 0).
reports/centering.md is built from these two tables; :func:`plot_centering` draws the first one.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ..aggregate import Row, paired_differences, seed_summary
from ..analysis import Analysis
from ..plotting import save_figure
from .seed_pairs import gain_metrics

LOW_RESOURCE = ("flores/low_mrr@10", "FLORES low MRR@10")
#: marker per scoring mode in :func:`plot_centering`; a mode not listed gets "x"
MARKERS = {"none": "o", "shift": "^", "center:0.5": "s", "center:0.75": "*", "center": "D"}


def _comparisons(rows: list[Row]) -> list[tuple[str, Row, Row]]:
    """(question, row, baseline) pairs of the grid, in the order the section shows them."""
    by = {r.cell: r for r in rows}
    recipes = list(dict.fromkeys(r.cell.recipe for r in rows if r.cell.recipe is not None))
    out = []
    for r in rows:
        c, mode = r.cell, r.cell.centering or "none"
        if c.recipe not in (None, *recipes[:1]) and (b := by.get(dataclasses.replace(c, recipe=recipes[0]))):
            out.append((f"recipe {c.recipe} minus {recipes[0]}, both {mode}", r, b))
        if mode != "none" and (b := by.get(dataclasses.replace(c, centering=None))):
            out.append(("post hoc: centred minus plain", r, b))
        if c.merge is not None and (b := by.get(dataclasses.replace(c, merge=None))):
            out.append((f"merged {c.merge:g} minus unmerged, both {mode}", r, b))
        if c.sampler in ("hybrid", "hybrid-kd"):
            out += [(f"hybrid minus {x}, both {mode}", r, b) for x in ("xx", "xy")
                    if (b := by.get(c.baseline(x)))]  # fmt: skip
        if c.sampler == "hybrid-c":
            out += [(f"trained centred minus post hoc ({mode})", r, b) for b in rows
                    if b.cell.sampler == "hybrid" and b.cell.group == c.group and b.cell.centering == c.centering
                    and b.cell.merge == c.merge]  # fmt: skip
    order = ("post hoc", "hybrid minus", "recipe", "merged", "trained centred")
    return sorted(out, key=lambda c: next(i for i, p in enumerate(order) if c[0].startswith(p)))


def _label(row: Row, several_steps: bool) -> str:
    """A row's arm, with its steps when the grid trains for several budgets (zero-shot has none)."""
    return row.cell.arm + (f" ({row.cell.steps} steps)" if several_steps and row.cell.steps else "")


def centering_gains(rows: list[Row]) -> list[dict[str, Any]]:
    """One record per (question, row, baseline, metric): mean and 95% interval of the per-seed differences."""
    gains = []
    several = len({r.cell.steps for r in rows if r.cell.steps is not None}) > 1
    for question, r, b in _comparisons(rows):
        gains += [{"question": question, "arm": _label(r, several), "baseline": _label(b, several), **d}
                  for d in paired_differences(r, b, gain_metrics(rows))]  # fmt: skip
    return gains


def table_metrics(rows: list[Row]) -> list[tuple[str, str]]:
    """The compact table's columns: :func:`gain_metrics` plus FLORES low-resource MRR@10 where the grid has it."""
    return gain_metrics(rows) + [LOW_RESOURCE] * any(LOW_RESOURCE[0] in r.mean for r in rows)


def centering_table(rows: list[Row]) -> list[dict[str, Any]]:
    """One record per row: its arm without the scoring mode, the mode, its seeds, and per metric the mean over the
    seeds that have it, the half-width of the 95% interval and that number of seeds (a cheaper slice such as
    MIRACL on seed 0 has fewer)."""
    table = []
    several = len({r.cell.steps for r in rows if r.cell.steps is not None}) > 1
    for r in rows:
        values = seed_summary(r, [name for name, _ in table_metrics(rows)])
        arm = _label(dataclasses.replace(r, cell=dataclasses.replace(r.cell, centering=None)), several)
        table.append({"arm": arm, "scoring": r.cell.centering or "none",
                      "seeds": [s for s in r.seeds if s is not None], "metrics": values})  # fmt: skip
    return table


def table_markdown(table: list[dict[str, Any]], metrics: list[tuple[str, str]]) -> list[str]:
    lines = ["", "## Language-neutral scoring (centering): every arm at every scoring", "",
             "Mean over the seeds listed ± half-width of its 95% t-interval; a value without ± comes from one seed "
             "(zero-shot, or a data set scored on seed 0 only). Rank distance: lower = less language bias.", "",
             "| arm | scoring | seeds | " + " | ".join(label for _, label in metrics) + " |",
             "|" + "---|" * (3 + len(metrics))]  # fmt: skip
    for t in table:
        vals = []
        for name, _ in metrics:
            v = t["metrics"].get(name)
            digits = 0 if name.endswith("rank_distance") else 3
            vals.append("-" if v is None else f"{v['mean']:.{digits}f}"
                        + ("" if math.isnan(v["ci95"]) else f" ± {v['ci95']:.{digits}f}"))  # fmt: skip
        lines.append(f"| {t['arm']} | {t['scoring']} | {','.join(map(str, t['seeds'])) or '-'} | "
                     + " | ".join(vals) + " |")  # fmt: skip
    return lines


def centering_markdown(gains: list[dict[str, Any]]) -> list[str]:
    if not gains:
        return []
    labels = list(dict.fromkeys(g["label"] for g in gains))
    lines = ["", "## Language-neutral scoring (centering), paired by seed", "",
             "Row minus baseline: mean of the per-seed differences ± half-width of the 95% interval (rank distance: "
             "negative = less bias); `*` = the interval excludes 0. A zero-shot row has one 'seed'.", "",
             "| question | arm | baseline | seeds | " + " | ".join(labels) + " |",
             "|" + "---|" * (4 + len(labels))]  # fmt: skip
    cells: dict[tuple[Any, ...], dict[str, str]] = {}
    for g in gains:
        digits = 0 if g["metric"].endswith("rank_distance") else 3
        mean = g["mean"] if round(g["mean"], digits) else 0.0  # no "-0.000"
        ci = "" if math.isnan(g["ci95"]) else f" ± {g['ci95']:.{digits}f}"
        apart = "*" if not math.isnan(g["ci95"]) and abs(g["mean"]) > g["ci95"] else ""
        key = (g["question"], g["arm"], g["baseline"], g["n_seeds"])
        cells.setdefault(key, {})[g["label"]] = f"{mean:+.{digits}f}{ci}{apart}"
    for key, vals in cells.items():
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(vals.get(c, "") for c in labels) + " |")
    return lines


def plot_centering(
    table: list[dict[str, Any]], metrics: list[tuple[str, str]], bars: dict[str, float], path: Path, title: str
) -> Path | None:
    """The compact table as a picture: one line per arm, one marker per scoring mode along it (95% interval over
    seeds), one panel per metric, the study's targets as dashed lines. Where post-hoc centering moves each model,
    and how far every configuration stays from the bars, at a glance."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not table or not metrics:
        return None
    arms = list(dict.fromkeys(t["arm"] for t in table))
    modes = list(dict.fromkeys(t["scoring"] for t in table))
    cols = min(3, len(metrics))
    rows_n = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 0.32 * len(arms) * rows_n + 1.6), squeeze=False)
    fig.suptitle(title, fontsize=10)
    for ax, (name, label) in zip(axes.flat, metrics, strict=False):
        for i, arm in enumerate(arms):
            at = [t for t in table if t["arm"] == arm and name in t["metrics"]]
            if xs := [t["metrics"][name]["mean"] for t in at]:
                ax.plot([min(xs), max(xs)], [i, i], color="0.8", lw=1, zorder=1)
            for t in at:
                v = t["metrics"][name]
                k = modes.index(t["scoring"])
                ax.errorbar(v["mean"], i, xerr=None if math.isnan(v["ci95"]) else v["ci95"], capsize=2, ms=6,
                            marker=MARKERS.get(t["scoring"], "x"), color=f"C{k}", ls="none", zorder=2)  # fmt: skip
        if name in bars:
            ax.axvline(bars[name], ls="--", color="k", lw=1)
        ax.set_yticks(range(len(arms)), arms, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(label + (" (lower = less bias)" if name.endswith("rank_distance") else ""), fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    handles = [Line2D([], [], marker=MARKERS.get(m, "x"), color=f"C{k}", ls="none", label=m) for k, m in
               enumerate(modes)] + [Line2D([], [], ls="--", color="k", label="target")]  # fmt: skip
    axes.flat[0].legend(handles=handles, fontsize=7, title="scoring", title_fontsize=7)
    return save_figure(fig, path)


def target_bars(targets: list[dict[str, Any]]) -> dict[str, float]:
    """metric -> bar from the targets analysis's lines (the first model's bar where zero-shot bars differ)."""
    bars: dict[str, float] = {}
    for x in targets:
        bars.setdefault(x["metric"], x["bar"])
    return bars


ANALYSIS = Analysis(
    "centering",
    30,
    applies=lambda ctx: len(ctx.cfg.centerings) > 1,
    compute=lambda ctx: {"table": centering_table(ctx.rows), "pairs": centering_gains(ctx.rows)},
    section=lambda ctx, found: (
        table_markdown(found["table"], table_metrics(ctx.rows)) + centering_markdown(found["pairs"])
    ),
    empty=dict,
    saved=True,
    plots=lambda ctx, found: (
        [
            plot_centering(
                found["table"],
                table_metrics(ctx.rows),
                target_bars(ctx.found["targets"]),
                ctx.out / "plots" / "centering.png",
                f"{ctx.cfg.name}: every arm at every scoring",
            )
        ]
        if found.get("table")
        else []
    ),
)
