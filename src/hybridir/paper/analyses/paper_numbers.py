"""The hybrid-batch paper's published numbers beside the study's, with the difference (study - paper).

Applies to studies whose YAML maps grid models to the paper's models (``paper: {xlm-roberta-base: xlm-r, labse:
labse}``, as ``studies/paper_published.yaml`` does). Every published figure gets a line, so a study that has not
run (or not finished an arm) shows ``not run`` there rather than leaving the comparison out. The paper's "hybrid"
is alpha 0.5 (its grid-searched choice); its MIRACL figure is the mean over 15 languages, the study's the mean over
the MIRACL languages it evaluated (the count is shown).

Example::

    paper_numbers(rows, {"xlm-roberta-base": "xlm-r"})[0]
    # {"model": "xlm-roberta-base", "paper_model": "xlm-r", "arm": "xx", "metric": "xquad-r/mono_map", ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...study.aggregate import Row
from ...study.analysis import Analysis

_METRICS = ("xquad-r/mono_map", "xquad-r/cross_map", "xquad-r/multi_map", "xquad-r/rank_distance",
            "mlqa-r/mono_map", "mlqa-r/cross_map", "mlqa-r/multi_map", "mlqa-r/rank_distance",
            "miracl/ndcg@10", "miracl/recall@100")  # fmt: skip
_ARMS = {"xx": "xx", "xy": "xy", "hybrid": "hybrid-0.5"}  # the paper's batches -> the study's arm
#: (paper model of config.PAPER_MODELS, paper arm) -> Elmahdy, Lin & Ahmad 2024 (arXiv 2408.10536): mAP averaged
#: over query languages, rank distance, MIRACL dev nDCG@10 / Recall@100 over 15 languages; in _METRICS' order
PUBLISHED: dict[tuple[str, str], tuple[float, ...]] = {
    ("xlm-r", "xx"): (0.792, 0.674, 0.547, 410, 0.648, 0.584, 0.473, 288, 0.415, 0.768),
    ("xlm-r", "xy"): (0.755, 0.700, 0.593, 295, 0.626, 0.620, 0.508, 227, 0.399, 0.749),
    ("xlm-r", "hybrid"): (0.798, 0.705, 0.593, 287, 0.648, 0.623, 0.512, 227, 0.405, 0.763),
    ("labse", "xx"): (0.808, 0.752, 0.652, 262, 0.681, 0.656, 0.550, 225, 0.455, 0.812),
    ("labse", "xy"): (0.801, 0.762, 0.679, 225, 0.671, 0.677, 0.576, 198, 0.418, 0.777),
    ("labse", "hybrid"): (0.817, 0.767, 0.682, 221, 0.686, 0.681, 0.579, 195, 0.441, 0.795),
}


def _study_value(row: Row | None, metric: str) -> tuple[float | None, int]:
    """The row's value of ``metric`` (MIRACL: the mean over its ``miracl:<lang>`` columns) and the language count."""
    if row is None:
        return None, 0
    if metric.startswith("miracl/"):
        suffix = "/" + metric.split("/")[1]
        vals = [v for k, v in row.mean.items() if k.startswith("miracl:") and k.endswith(suffix) and k.count("/") == 1]
        return (float(np.mean(vals)), len(vals)) if vals else (None, 0)
    return row.mean.get(metric), 0


def paper_numbers(rows: list[Row], models: dict[str, str]) -> list[dict[str, Any]]:
    """One line per (grid model, paper arm, metric): the published value, the study's (None = not run) and their
    difference. A model trained in several language sets or step counts gets a line per group."""
    out = []
    for model, paper_model in models.items():
        mine = [r for r in rows if r.model == model and r.arm in _ARMS.values()]
        groups = sorted({(r.langset, r.steps) for r in mine}, key=str) or [(None, None)]
        for langset, steps in groups:
            for paper_arm, arm in _ARMS.items():
                row = next((r for r in mine if r.arm == arm and (r.langset, r.steps) == (langset, steps)), None)
                for metric, paper in zip(_METRICS, PUBLISHED[(paper_model, paper_arm)], strict=True):
                    value, n_langs = _study_value(row, metric)
                    out.append({"model": model, "paper_model": paper_model, "languages": langset, "steps": steps,
                                "arm": arm, "metric": metric, "paper": paper, "study": value,
                                "difference": None if value is None else value - paper,
                                "miracl_languages": n_langs})  # fmt: skip
    return out


def paper_numbers_markdown(lines_in: list[dict[str, Any]]) -> list[str]:
    """The study.md section (also the body of ``reports/paper_published.md`` before a GPU run)."""
    lines = ["", "## The paper's published numbers beside this study's", "",
             "Paper: Elmahdy, Lin & Ahmad 2024, mAP averaged over query languages (XQuAD-R, MLQA-R), rank distance "
             "(lower = less language bias) and MIRACL dev nDCG@10 / Recall@100 averaged over 15 languages; the "
             "paper's hybrid is alpha 0.5. Difference = study - paper. `not run`: the study has no finished cell "
             "for that arm yet.", "",
             "| model (paper) | languages / steps | arm | metric | paper | study | difference |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in lines_in:
        if c["study"] is None:
            study, diff = "not run", ""
        else:
            fmt = ".0f" if c["metric"].endswith("rank_distance") else ".3f"
            study, diff = f"{c['study']:{fmt}}", f"{c['difference']:+{fmt}}"
            if c["miracl_languages"]:
                study += f" ({c['miracl_languages']} languages)"
        paper = f"{c['paper']:.0f}" if c["metric"].endswith("rank_distance") else f"{c['paper']:.3f}"
        lines.append(f"| {c['model']} ({c['paper_model']}) | {c['languages'] or '-'} / {c['steps'] or '-'} | "
                     f"{c['arm']} | {c['metric']} | {paper} | {study} | {diff} |")  # fmt: skip
    return lines


ANALYSIS = Analysis(
    "paper_numbers",
    50,
    applies=lambda ctx: bool(ctx.cfg.paper_models),
    compute=lambda ctx: paper_numbers(ctx.rows, ctx.cfg.paper_models),
    section=lambda ctx, found: paper_numbers_markdown(found),
)
