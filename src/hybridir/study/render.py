"""Rendering a study summary: the main results table, study.md and study.csv (study.json's layout is in
:mod:`hybridir.study.summary`). Columns appear only when some row has them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ..evaluation.benchmarks import BENCHMARKS
from .aggregate import SIGNIFICANCE_LEVEL, Row, per_seed
from .analysis import Context, row_table_head

_RETRIEVAL = ("/ndcg@10", "/recall@100", "/mrr@10")  # MIRACL columns of the main table (dataset names vary)
_DEV_COLUMNS = (
    ("dev/mono_map", "dev mono"),
    ("dev/cross_map", "dev cross"),
    ("dev/multi_map", "dev multi"),
    ("dev/rank_distance", "dev rank dist."),
)
#: the main table's possible columns: each study benchmark's, in registry order, then the dev metrics
_MAIN_COLUMNS = (
    *((f"{b.name}/{metric}", label) for b in BENCHMARKS if b.in_studies for metric, label in b.columns),
    *_DEV_COLUMNS,
)


def _fmt(row: dict[str, Any], name: str) -> str:
    """``mean ± ci marks`` of one metric of a row of study.json (the 95% interval over seeds, from two seeds)."""
    if name not in row["mean"]:
        return "n/a"
    text = f"{row['mean'][name]:.4f}"
    if not math.isnan(half := row.get("ci95", {}).get(name, float("nan"))):
        text += f" ± {half:.4f}"
    return " ".join([text, *row["marks"].get(name, [])])


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(metric key, label) of the main table: the columns the study has, MIRACL ones before the dev metrics."""
    cols = [(k, label) for k, label in _MAIN_COLUMNS if any(k in r["mean"] for r in rows)]
    retrieval = sorted({k for r in rows for k in r["mean"]
                        if k.startswith("miracl") and k.count("/") == 1 and k.endswith(_RETRIEVAL)})  # fmt: skip
    n_dev = sum(k.startswith("dev/") for k, _ in cols)
    cols[len(cols) - n_dev : len(cols) - n_dev] = [(k, k.replace("/", " ")) for k in retrieval]
    return cols


def results_table(rows: list[dict[str, Any]]) -> str:
    """The main Markdown table from study.json's ``rows``: the columns the study has, one line per arm."""
    cols = _columns(rows)
    lines = ["| model | languages | steps | arm | n | " + " | ".join(label for _, label in cols) + " |",
             "|" + "---|" * (5 + len(cols))]  # fmt: skip
    for r in rows:
        cells = [r["model"], r["languages"] or "-", str(r["steps"] or "-"), r["arm"], str(len(set(r["seeds"])))]
        lines.append("| " + " | ".join(cells + [_fmt(r, k) for k, _ in cols]) + " |")
    return "\n".join(lines)


def format_results(study_dir: Path) -> str:
    """What ``hybridir study`` prints at the end: the results table of a study directory's study.json."""
    result = json.loads((Path(study_dir) / "study.json").read_text(encoding="utf-8"))
    head = f"{result['name']}: {result['cells_finished']} of {result['cells_total']} cells finished"
    return f"{head}\n\n{results_table(result['rows'])}\n\nFull report: {Path(study_dir) / 'study.md'}"


def markdown(ctx: Context, result: dict[str, Any], sections: list[str]) -> str:
    """study.md: the header, the results, per-seed and significance tables, the analyses' ``sections``, the dev
    metrics, the plots and the timing."""
    cfg, rows, out = ctx.cfg, ctx.rows, ctx.out
    lines = [f"# Study `{cfg.name}`", "", *([cfg.description.strip(), ""] if cfg.description.strip() else []),
             f"Config `{cfg.path}`, output `{out}`. Rerun or continue: `hybridir study {cfg.path} --out {out}`.",
             "", f"Cells finished: {result['cells_finished']} of {result['cells_total']}."]  # fmt: skip
    if result["encoders"]:
        lines.append(
            f'Embeddings by the inference path {" and ".join(result["encoders"])} (docs/metrics.md, "Inference paths").'
        )
    if result["missing"]:
        lines.append("Not finished yet (the table below leaves them out): " + ", ".join(result["missing"]))
    lines += ["", "## Results", "",
              "Mean ± half-width of the 95% confidence interval over seeds (Student t, n = seeds; sample std in "
              "study.csv / study.json). Trained arms are compared within one model, language set "
              "and step count; zero-shot is the untouched encoder. Marks on hybrid rows: ▲xx / ▼xx = significantly "
              f"better / worse than X-X (paired test over queries, p < {SIGNIFICANCE_LEVEL}, uncorrected; "
              "zs = zero-shot). Rank distance: lower means less language bias.", ""]  # fmt: skip
    for ds, opts in cfg.datasets.items():
        if "seeds" in opts:
            lines += [f"`{ds}` columns: trained cells of seeds {', '.join(map(str, opts['seeds']))} only (a cheaper "
                      "evaluation slice for the other seeds); n counts every seed of the row.", ""]  # fmt: skip
    lines.append(results_table(result["rows"]))
    lines += _per_seed_markdown(rows)
    if result["significance"]:
        lines += [
            "",
            "## Significance (hybrid vs each baseline)",
            "",
            "| group | arm | baseline | setting | queries | mean diff | p |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in result["significance"]:
            star = " *" if t["p_value"] < SIGNIFICANCE_LEVEL else ""
            lines.append(
                f"| {t['model']} / {t['languages']} / {t['steps']} | {t['arm']} | {t['baseline']} | "
                f"{t['setting']} | {t['n_queries']} | {t['mean_diff']:+.3g} | {t['p_value']:.4f}{star} |"
            )
    lines += sections
    dev_cols = sorted({k for r in rows for k in r.mean if k.startswith("dev/")})
    if dev_cols:
        lines += row_table_head(
            "Held-out training-data (dev) metrics",
            "LAReQA-style retrieval on the held-out part of the training data (NTREX documents chosen by the "
            "seed, FLORES dev; never trained on): mono X->X, cross X->Y, multi X->all languages pooled (mAP) "
            "and rank distance in that pool. The only numbers to choose hyperparameters on. The zero-shot row "
            "is the starting model on the same dev data (`dev_start` of the trained cells).",
            dev_cols,
        )
        for r in rows:
            vals = [_fmt(r.as_dict(), k) for k in dev_cols]
            lines.append(f"| {r.model} | {r.langset} | {r.steps} | {r.arm} | " + " | ".join(vals) + " |")
    if result["plots"]:
        lines += ["", "## Plots", ""] + [f"![{p}](plots/{p})" for p in result["plots"]]
    lines += ["", "## Timing", "", f"Total wall time of the finished cells: {result['timing']['total_s'] / 60:.1f} "
              "min, each training once (per cell: its training, shared with its merged and centred variants, and each "
              "evaluation, in seconds).", "",
              "| cell | train s | eval s | total s |", "|---|---|---|---|"]  # fmt: skip
    for cell_id, t in result["timing"]["cells"].items():
        ev = ", ".join(f"{ds} {s:.1f}" for ds, s in t["eval_s"].items())
        lines.append(f"| {cell_id} | {t.get('train_s', 0.0):.1f} | {ev} | {t['total_s']:.1f} |")
    return "\n".join(lines) + "\n"


def _per_seed_markdown(rows: list[Row]) -> list[str]:
    """Each trained arm's value per seed (``a / b / c``): the spread the per-query tests do not see."""
    cols = [(k, label) for k, label in _columns([r.as_dict() for r in rows]) if not k.startswith("dev/")]
    multi = [r for r in rows if len(set(r.seeds)) > 1]
    if not multi or not cols:
        return []
    lines = ["", "## Per seed", "", "| model | languages | steps | arm | seeds | " + " | ".join(lab for _, lab in cols)
             + " |", "|" + "---|" * (5 + len(cols))]  # fmt: skip
    for r in multi:
        seeds = sorted({s for s in r.seeds if s is not None})
        vals = []
        for key, _ in cols:
            per = [per_seed(r, key).get(s, math.nan) for s in seeds]
            vals.append(" / ".join(f"{v:.4f}" if abs(v) < 10 else f"{v:.0f}" for v in per))
        lines.append(f"| {r.model} | {r.langset} | {r.steps} | {r.arm} | {' / '.join(map(str, seeds))} | "
                     + " | ".join(vals) + " |")  # fmt: skip
    return lines


def csv_text(rows: list[Row], per_row: dict[str, dict[int, dict]]) -> str:
    """study.csv: one line per row, every metric's mean, std, interval and marks, then each per-row analysis's
    figures (``name/column``, e.g. the paper layer's ``seen_unseen/...``)."""
    names = sorted({k for r in rows for k in r.mean})
    extra_keys = [(name, k) for name, found in per_row.items() for k in sorted({k for s in found.values() for k in s})]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "languages", "steps", "arm", "n_seeds", "seeds"]
               + [f"{n}{suffix}" for n in names for suffix in ("", "_std", "_ci95", "_sig")]
               + [f"{name}/{k}" for name, k in extra_keys])  # fmt: skip
    for r in rows:
        vals = [
            x
            for n in names
            for x in (r.mean.get(n, ""), r.std.get(n, ""), r.ci95.get(n, ""), " ".join(r.marks.get(n, [])))
        ]
        extra = [per_row[name].get(id(r), {}).get(k, "") for name, k in extra_keys]
        w.writerow([r.model, r.langset or "", r.steps or "", r.arm, len(r.records),
                    " ".join(str(s) for s in r.seeds if s is not None), *vals, *extra])  # fmt: skip
    return buf.getvalue()
