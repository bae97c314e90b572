"""The recipe choice on QA dev data: the rule written in docs/studies.md before the runs, applied to the
dev figures of every trained row, so the choice is a function of the study's files and no one's reading of them.

A row's score is its *worst* gain over the starting model (its cells' ``dev_start``) among QA monolingual, QA
cross-lingual, QA pooled and parallel (NTREX / FLORES) multilingual mAP; the highest score among the rows scored on
the shared dev set is chosen (a recipe that changes the dev data itself, like ``qa_target: passage``, is listed
apart: its figures are not comparable). Applies to studies whose cells have the QA dev figures (``dev_data`` with
a QA source).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ...study.aggregate import Row
from ...study.analysis import Analysis

RULE_KEYS = ("dev/qa_mono_map", "dev/qa_cross_map", "dev/qa_pooled_map", "dev/parallel_multi_map")


def recipe_scores(rows: list[Row]) -> list[dict[str, Any]]:
    """Every trained row with its dev figures, gains over its own starting model on the same dev data (the cells'
    ``dev_start``: a recipe that changes the dev set, e.g. ``qa_target: passage``, is measured against the start
    on *its* dev set, and the table says so) and score (the worst gain), best first."""
    out = []
    for r in rows:
        starts = [rec.get("dev_start") or {} for rec in r.records]
        if r.arm == "zero-shot" or not all(k in r.mean and all(k[4:] in st for st in starts) for k in RULE_KEYS):
            continue
        start = {k: float(np.mean([st[k[4:]] for st in starts])) for k in RULE_KEYS}
        gains = {k: r.mean[k] - start[k] for k in RULE_KEYS}
        out.append({"model": r.model, "languages": r.langset, "steps": r.steps, "arm": r.arm, "seeds": r.seeds,
                    "dev": {k: r.mean[k] for k in RULE_KEYS}, "start": start, "gains": gains,
                    "score": min(gains.values())})  # fmt: skip
    reference = Counter(tuple(round(v, 6) for v in s["start"].values()) for s in out).most_common(1)
    for s in out:
        s["shared_dev_set"] = tuple(round(v, 6) for v in s["start"].values()) == reference[0][0]
    out.sort(key=lambda x: (not x["shared_dev_set"], -x["score"]))
    if out and out[0]["shared_dev_set"]:
        out[0]["chosen"] = True
    return out


def _markdown(scores: list[dict[str, Any]]) -> list[str]:
    if not scores:
        return []
    names = [k.removeprefix("dev/").removesuffix("_map") for k in RULE_KEYS]
    lines = ["", "## Recipe choice (the pre-registered rule of docs/studies.md)", "",
             "Score = the worst gain over the starting model among the four dev figures (QA monolingual, QA "
             "cross-lingual, QA pooled, parallel multilingual mAP); the highest score is chosen. Dev data only.", "",
             "| arm | " + " | ".join(names) + " | score | chosen |", "|" + "---|" * (len(names) + 3)]  # fmt: skip
    for s in scores:
        cells = [f"{s['dev'][k]:.4f} ({s['gains'][k]:+.4f})" for k in RULE_KEYS]
        chosen = "**yes**" if s.get("chosen") else "" if s["shared_dev_set"] else "other dev set"
        lines.append(f"| {s['arm']} | " + " | ".join(cells) + f" | {s['score']:+.4f} | {chosen} |")
    return lines


ANALYSIS = Analysis(
    "recipe_choice",
    100,
    applies=lambda ctx: any(k in r.mean for r in ctx.rows for k in RULE_KEYS),
    compute=lambda ctx: recipe_scores(ctx.rows),
    section=lambda ctx, scores: _markdown(scores),
    saved=True,
)
