"""The recipe choice on QA dev data (issue 18): the rule written in docs/studies.md before the runs, applied to the
dev figures of every trained row, so the choice is a function of the study's files and no one's reading of them.

A row's score is its *worst* gain over the starting model (the zero-shot row's dev figures, i.e. ``dev_start``)
among QA monolingual, QA cross-lingual, QA pooled and parallel (NTREX / FLORES) multilingual mAP; the highest score
is chosen. Applies to studies whose cells have the QA dev figures (``dev_data`` with a QA source).
"""

from __future__ import annotations

from typing import Any

from ..aggregate import Row
from ..analysis import Analysis

RULE_KEYS = ("dev/qa_mono_map", "dev/qa_cross_map", "dev/qa_pooled_map", "dev/parallel_multi_map")


def recipe_scores(rows: list[Row]) -> list[dict[str, Any]]:
    """Every trained row with its dev figures, gains over zero-shot and score (the worst gain), best first."""
    start = next((r.mean for r in rows if r.arm == "zero-shot"), None)
    if start is None or not all(k in start for k in RULE_KEYS):
        return []
    out = []
    for r in rows:
        if r.arm == "zero-shot" or not all(k in r.mean for k in RULE_KEYS):
            continue
        gains = {k: r.mean[k] - start[k] for k in RULE_KEYS}
        out.append({"model": r.model, "languages": r.langset, "steps": r.steps, "arm": r.arm, "seeds": r.seeds,
                    "dev": {k: r.mean[k] for k in RULE_KEYS}, "gains": gains,
                    "score": min(gains.values())})  # fmt: skip
    out.sort(key=lambda x: -x["score"])
    if out:
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
        chosen = "**yes**" if s.get("chosen") else ""
        lines.append(f"| {s['arm']} | " + " | ".join(cells) + f" | {s['score']:+.4f} | {chosen} |")
    return lines


ANALYSIS = Analysis(
    "recipe_choice",
    applies=lambda ctx: any(k in r.mean for r in ctx.rows for k in RULE_KEYS),
    compute=lambda ctx: recipe_scores(ctx.rows),
    section=lambda ctx, scores: _markdown(scores),
)
