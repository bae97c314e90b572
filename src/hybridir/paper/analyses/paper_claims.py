"""The hybrid-batch paper's claims, checked: hybrid >= X-X in cross- and multilingual mAP, hybrid >= X-Y in
monolingual mAP, less language bias than X-X; and whether each trained arm beat the zero-shot encoder.

Applies to every study with finished rows (a grid without hybrid arms or XQuAD-R simply has no claims to check).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ...study.analysis import Analysis

# The hybrid-batch paper's claims: (hybrid arm's metric, baseline arm, "ge" = hybrid at least as good, "le" = lower).
_CLAIMS = (
    ("xquad-r/cross_map", "xx", "ge", "cross", "hybrid >= X-X in cross-lingual mAP"),
    ("xquad-r/multi_map", "xx", "ge", "multi", "hybrid >= X-X in multilingual mAP"),
    ("xquad-r/mono_map", "xy", "ge", "mono", "hybrid >= X-Y in monolingual mAP"),
    ("xquad-r/rank_distance", "xx", "le", "rank_distance", "hybrid has lower language bias (rank distance) than X-X"),
)


def paper_claims(rows: list[dict[str, Any]], tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each claim of the paper checked for every hybrid arm of every group, with both means and the paired p-value;
    plus whether each trained arm beat the zero-shot encoder per setting. ``holds`` compares the means only; the
    p-value says whether the difference is more than noise over these queries."""
    checks = []
    by_arm = defaultdict(dict)
    for r in rows:
        by_arm[(r["model"], r["languages"], r["steps"])][r["arm"]] = r
    zero = {r["model"]: r for r in rows if r["arm"] == "zero-shot"}
    p_of = {
        (t["model"], t["languages"], t["steps"], t["arm"], t["baseline"], t["setting"]): t["p_value"] for t in tests
    }
    for (model, langs, steps), arms in by_arm.items():
        for arm, row in arms.items():
            if arm.startswith("hybrid"):
                for metric, base, sense, setting, text in _CLAIMS:
                    b = arms.get(base)
                    if b is None or metric not in row["mean"] or metric not in b["mean"]:
                        continue
                    h_val, b_val = row["mean"][metric], b["mean"][metric]
                    holds = h_val >= b_val if sense == "ge" else h_val < b_val
                    checks.append(
                        {
                            "group": f"{model} / {langs} / {steps}",
                            "arm": arm,
                            "claim": text,
                            "metric": metric,
                            "hybrid": h_val,
                            "baseline": base,
                            "baseline_value": b_val,
                            "holds": bool(holds),
                            "p_value": p_of.get((model, langs, steps, arm, base, setting)),
                        }
                    )
            if arm != "zero-shot" and model in zero:
                for metric in ("xquad-r/mono_map", "xquad-r/cross_map", "xquad-r/multi_map", "monoqa/ndcg@10"):
                    if metric in row["mean"] and metric in zero[model]["mean"]:
                        val, zs = row["mean"][metric], zero[model]["mean"][metric]
                        checks.append({"group": f"{model} / {langs} / {steps}", "arm": arm,
                                       "claim": f"fine-tuning beats zero-shot in {metric}", "metric": metric,
                                       "hybrid": val, "baseline": "zero-shot", "baseline_value": zs,
                                       "holds": bool(val > zs), "p_value": None})  # fmt: skip
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
    compute=lambda ctx: paper_claims([r.as_dict() for r in ctx.rows], ctx.tests),
    section=lambda ctx, claims: _claims_markdown(claims),
    saved=True,
)
