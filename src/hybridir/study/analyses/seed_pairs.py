"""Hybrid minus X-X and minus X-Y, paired by seed: are the paper's claims separated beyond the seed spread?

The paper's claims are hybrid >= X-X in cross- / multilingual mAP and bias, and hybrid >= X-Y in monolingual mAP.
A query-level test (paper_claims) ignores the spread between training seeds; here each seed's hybrid model is
compared with the X-X / X-Y model of the same seed, and the mean of those differences gets a 95% interval over
seeds. A claim is separated when the interval excludes 0. Applies to one-model grids with two or more seeds;
model_size shows the same differences per model of a ladder.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..aggregate import SETTINGS, Row, paired_differences
from ..analysis import Analysis


def paired_gains(rows: list[Row], models: Sequence[str], centred: bool = False) -> list[dict[str, Any]]:
    """For every hybrid-family row and the X-X / X-Y row trained, merged and scored alike (same model, language
    set, steps and recipe): the mean and 95% interval of the per-seed differences in each metric of
    :func:`gain_metrics`, rows in ``models`` order. Centred rows only with ``centred`` (a one-model study pairs
    them in analyses/centering.py)."""
    by = {r.cell: r for r in rows}
    gains = []
    for r in sorted(rows, key=lambda r: list(models).index(r.model) if r.model in models else len(models)):
        if not r.cell.sampler.startswith("hybrid") or (r.cell.centering and not centred):
            continue
        for base in ("xx", "xy"):
            if (b := by.get(r.cell.baseline(base))) is None:
                continue
            gains += [{"model": r.model, "languages": r.langset, "steps": r.steps, "arm": r.arm, "baseline": b.arm,
                       **d} for d in paired_differences(r, b, gain_metrics(rows))]  # fmt: skip
    return gains


def gain_metrics(rows: list[Row]) -> list[tuple[str, str]]:
    """XQuAD-R's three settings and rank distance, plus each retrieval set's nDCG@10 (MIRACL, BEIR)."""
    names = {k for r in rows for k in r.mean}
    extra = sorted(k for k in names if k.endswith("/ndcg@10") and k.count("/") == 1 and not k.startswith("dev/"))
    labelled = [(k, k.replace("/ndcg@10", " nDCG@10")) for k in extra]
    return [*SETTINGS, ("xquad-r/rank_distance", "rank dist."), *labelled]


def gains_markdown(gains: list[dict[str, Any]], title: str) -> list[str]:
    """One row per (model, arm, baseline): mean ± half-width of the 95% interval; ``*`` = the interval excludes 0."""
    if not gains:
        return []
    labels = list(dict.fromkeys(g["label"] for g in gains))
    lines = ["", f"## {title}", "",
             "Hybrid minus each baseline: mean of the per-seed differences ± half-width of their 95% interval "
             "(paired by seed; rank distance: negative = less bias than the baseline); `*` = the interval excludes "
             "0, i.e. separated beyond the seed spread.", "",
             "| model | languages | steps | arm | baseline | seeds | " + " | ".join(labels) + " |",
             "|" + "---|" * (6 + len(labels))]  # fmt: skip
    cells: dict[tuple[Any, ...], dict[str, str]] = defaultdict(dict)
    for g in gains:
        key = (g["model"], g["languages"], g["steps"], g["arm"], g["baseline"], g["n_seeds"])
        ci = "" if math.isnan(g["ci95"]) else f" ± {g['ci95']:.3g}"
        apart = "*" if not math.isnan(g["ci95"]) and abs(g["mean"]) > g["ci95"] else ""
        cells[key][g["label"]] = f"{g['mean']:+.3g}{ci}{apart}"
    for key, vals in cells.items():
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(vals.get(c, "") for c in labels) + " |")
    return lines


ANALYSIS = Analysis(
    "seed_pairs",
    20,
    applies=lambda ctx: len(ctx.cfg.models) == 1 and len(ctx.cfg.seeds) > 1,
    compute=lambda ctx: paired_gains(ctx.rows, ctx.cfg.models),
    section=lambda ctx, gains: gains_markdown(gains, "Hybrid against X-X and X-Y, paired by seed"),
    saved=True,
)
