"""Language-neutral scoring in a study: what post-hoc centering adds to each arm, whether hybrid batches still beat
X-X and X-Y once bias is removed after training, and whether training on centred vectors (``hybrid-c``) beats
centering a model trained the usual way.

A grid with ``centering`` (studies/centering.yaml) has each trained model scored plain and in every mode, so each
comparison pairs two rows seed by seed (the same trained model for "centred minus plain"; the same seed's models
for "arm minus arm"), with the 95% interval of the mean difference over seeds (``*``: it excludes 0).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..aggregate import Row, mean_ci95, per_seed
from ..analysis import Analysis
from .seed_pairs import gain_metrics


def _comparisons(rows: list[Row]) -> list[tuple[str, Row, Row]]:
    """(question, row, baseline) pairs of the grid, in the order the section shows them."""
    by = {r.cell: r for r in rows}
    out = []
    for r in rows:
        c, mode = r.cell, r.cell.centering or "none"
        if mode != "none" and (b := by.get(dataclasses.replace(c, centering=None))):
            out.append(("post hoc: centred minus plain", r, b))
        if c.sampler in ("hybrid", "hybrid-kd"):
            out += [(f"hybrid minus {x}, both {mode}", r, b) for x in ("xx", "xy")
                    if (b := by.get(dataclasses.replace(c, sampler=x, alpha=None, distill_weight=None)))]  # fmt: skip
        if c.sampler == "hybrid-c":
            out += [(f"trained centred minus post hoc ({mode})", r, b) for b in rows
                    if b.cell.sampler == "hybrid" and b.cell.group == c.group and b.cell.centering == c.centering
                    and b.cell.merge == c.merge]  # fmt: skip
    order = ("post hoc", "hybrid minus", "trained centred")
    return sorted(out, key=lambda c: next(i for i, p in enumerate(order) if c[0].startswith(p)))


def centering_gains(rows: list[Row]) -> list[dict[str, Any]]:
    """One record per (question, row, baseline, metric): mean and 95% interval of the per-seed differences."""
    gains = []
    for question, r, b in _comparisons(rows):
        for name, label in gain_metrics(rows):
            x, y = per_seed(r, name), per_seed(b, name)
            if diffs := [x[s] - y[s] for s in x if s in y]:
                mean, ci = mean_ci95(diffs)
                gains.append({"question": question, "arm": r.arm, "baseline": b.arm, "metric": name, "label": label,
                              "n_seeds": len(diffs), "mean": mean, "ci95": ci})  # fmt: skip
    return gains


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
        ci = "" if math.isnan(g["ci95"]) else f" ± {g['ci95']:.3g}"
        apart = "*" if not math.isnan(g["ci95"]) and abs(g["mean"]) > g["ci95"] else ""
        key = (g["question"], g["arm"], g["baseline"], g["n_seeds"])
        cells.setdefault(key, {})[g["label"]] = f"{g['mean']:+.3g}{ci}{apart}"
    for key, vals in cells.items():
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(vals.get(c, "") for c in labels) + " |")
    return lines


ANALYSIS = Analysis(
    "centering",
    applies=lambda ctx: len(ctx.cfg.centerings) > 1,
    compute=lambda ctx: centering_gains(ctx.rows),
    section=lambda ctx, gains: centering_markdown(gains),
)
