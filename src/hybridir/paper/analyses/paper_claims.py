"""The hybrid-batch paper's claims, checked: hybrid >= X-X in cross- and multilingual mAP, hybrid >= X-Y in
monolingual mAP, less language bias than X-X; and whether each trained arm beat the zero-shot encoder.

Applies to every study with finished rows (a grid without hybrid arms or XQuAD-R simply has no claims to check).
"""

from __future__ import annotations

from typing import Any

from ...study.aggregate import Row, comparisons
from ...study.analysis import Analysis

# The hybrid-batch paper's claims: (hybrid arm's metric, baseline arm, "ge" = hybrid at least as good, "le" = lower).
_CLAIMS = (
    ("xquad-r/cross_map", "xx", "ge", "cross", "hybrid >= X-X in cross-lingual mAP"),
    ("xquad-r/multi_map", "xx", "ge", "multi", "hybrid >= X-X in multilingual mAP"),
    ("xquad-r/mono_map", "xy", "ge", "mono", "hybrid >= X-Y in monolingual mAP"),
    ("xquad-r/rank_distance", "xx", "le", "rank_distance", "hybrid has lower language bias (rank distance) than X-X"),
)
_BEATS_ZERO_SHOT = ("xquad-r/mono_map", "xquad-r/cross_map", "xquad-r/multi_map", "monoqa/ndcg@10")


def paper_claims(rows: list[Row], tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each claim of the paper checked for every hybrid arm against its baseline trained, merged and scored alike
    (:func:`~hybridir.study.aggregate.comparisons`), with both means and the paired p-value; plus whether each
    trained arm beat the zero-shot encoder scored the same way, per setting. ``holds`` compares the means only;
    the p-value says whether the difference is more than noise over these queries."""
    p_of = {
        (t["model"], t["languages"], t["steps"], t["arm"], t["baseline"], t["setting"]): t["p_value"] for t in tests
    }

    def check(row: Row, base: Row, metric: str, claim: str, holds: bool, setting: str | None) -> dict[str, Any]:
        key = (row.model, row.langset, row.steps, row.arm, base.arm, setting)
        return {"group": f"{row.model} / {row.langset} / {row.steps}", "arm": row.arm, "claim": claim,
                "metric": metric, "hybrid": row.mean[metric], "baseline": base.arm,
                "baseline_value": base.mean[metric], "holds": bool(holds), "p_value": p_of.get(key)}  # fmt: skip

    checks = []
    for h, b in comparisons(rows):
        for metric, base, sense, setting, text in _CLAIMS:
            if b.cell.sampler == base and metric in h.mean and metric in b.mean:
                better = h.mean[metric] >= b.mean[metric] if sense == "ge" else h.mean[metric] < b.mean[metric]
                checks.append(check(h, b, metric, text, better, setting))
    zero = {(r.model, r.cell.centering): r for r in rows if r.cell.sampler == "zero-shot"}
    for row in rows:
        if row.cell.sampler != "zero-shot" and (zs := zero.get((row.model, row.cell.centering))) is not None:
            for metric in _BEATS_ZERO_SHOT:
                if metric in row.mean and metric in zs.mean:
                    claim = f"fine-tuning beats zero-shot in {metric}"
                    checks.append(check(row, zs, metric, claim, row.mean[metric] > zs.mean[metric], None))
    return checks


def _claims_markdown(claims: list[dict[str, Any]]) -> list[str]:
    if not claims:
        return []
    lines = ["", "## The paper's claims, checked", "",
             "`holds` compares means over seeds; p is the paired test over queries (hybrid rows only; blank where "
             "no test applies). The arm column holds the trained arm compared with the baseline.", "",
             "| group | arm | claim | arm value | baseline | baseline value | holds | p |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        p = "" if c["p_value"] is None else f"{c['p_value']:.4f}"
        lines.append(f"| {c['group']} | {c['arm']} | {c['claim']} | {c['hybrid']:.4f} | {c['baseline']} | "
                     f"{c['baseline_value']:.4f} | {'yes' if c['holds'] else '**no**'} | {p} |")  # fmt: skip
    return lines


ANALYSIS = Analysis(
    "claims",
    10,
    applies=lambda ctx: bool(ctx.rows),
    compute=lambda ctx: paper_claims(ctx.rows, ctx.tests),
    section=lambda ctx, claims: _claims_markdown(claims),
    saved=True,
)
