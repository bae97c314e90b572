"""FLORES-200 per language and per topic: where the arms' bitext differences live (seen languages starred,
in-domain topics marked). Applies to studies evaluated on ``flores``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..aggregate import Row, bitext_mrr, row_dirs
from ..analysis import Analysis
from ..config import read_results


def flores_breakdown(row: Row, out: Path) -> dict[str, Any]:
    """FLORES-200 MRR@10 per language (mean of X->en and en->X) and per topic, each the mean over the row's seeds,
    with the languages the row trained on (``seen``) and the in-domain topics. Empty without FLORES results."""
    langs: dict[str, list[float]] = defaultdict(list)
    topics: dict[str, list[float]] = defaultdict(list)
    seen, in_domain = set(), set()
    for cell_dir in row_dirs(row, out):
        res = read_results(cell_dir, "flores")
        for code, b in res.get("bitext", {}).items():
            langs[code].append(bitext_mrr(b))
            if b.get("seen"):
                seen.add(code)
        for topic, t in res.get("topics", {}).items():
            topics[topic].append(float(t["mrr@10"]))
            if t.get("in_domain"):
                in_domain.add(topic)
    if not langs:
        return {}
    return {"language": {k: float(np.mean(v)) for k, v in sorted(langs.items())},
            "topic": {k: float(np.mean(v)) for k, v in sorted(topics.items())},
            "seen": sorted(seen), "in_domain_topics": sorted(in_domain)}  # fmt: skip


def _flores_markdown(parts: list[tuple[Row, dict[str, Any]]]) -> list[str]:
    """Per-language and per-topic FLORES MRR@10 tables (one line per arm with FLORES results)."""
    if not parts:
        return []
    lines = ["", "## FLORES-200 per language and per topic", "",
             "MRR@10, mean of X->en and en->X, mean over seeds. `*` = a language the arm trained on; topics marked "
             "(in) are the in-domain topics of the training data.", ""]  # fmt: skip
    codes = sorted({c for _, b in parts for c in b["language"]})
    topics = sorted({t for _, b in parts for t in b["topic"]})
    in_dom = {t for _, b in parts for t in b["in_domain_topics"]}
    varying = [f for f in ("model", "langset", "steps") if len({getattr(r, f) for r, _ in parts}) > 1]
    for header, keys, key in (("language", codes, "language"), ("topic", topics, "topic")):
        labels = [f"{k} (in)" if k in in_dom else k for k in keys]
        lines += [f"| arm ({header}) | " + " | ".join(labels) + " |", "|" + "---|" * (1 + len(keys))]
        for r, b in parts:
            name = " / ".join([*(str(getattr(r, f) or "-") for f in varying), r.arm])
            vals = [f"{b[key][k]:.3f}{'*' if k in b['seen'] else ''}" if k in b[key] else "" for k in keys]
            lines.append(f"| {name} | " + " | ".join(vals) + " |")
        lines.append("")
    return lines[:-1]


ANALYSIS = Analysis(
    "flores_breakdown",
    90,
    applies=lambda ctx: ctx.has_dataset("flores"),
    compute=lambda ctx: [(r, b) for r in ctx.rows if (b := flores_breakdown(r, ctx.out))],
    section=lambda ctx, parts: _flores_markdown(parts),
)
