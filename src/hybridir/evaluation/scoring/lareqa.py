"""The LAReQA protocol (XQuAD-R, MLQA-R; FLORES's multilingual pool): mono X->X, cross X->Y and multi X->all from
one encoding of every unique text and one scoring pass, with the language-bias figures (docs/metrics.md).

Example::

    body, per_query = evaluate_lareqa(Encoder(load_encoder("e5-small")), load_lareqa(folder, ["en", "de"]))
    body["summary"]["multi_map"]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.evaluation.evalset import EvalSet
from ...encoders.encoding import Encoder
from ...infra.files import atomic_savefig
from ...retrieval.exact import tie_key
from ..metrics import RANK_METRICS, rank_distance, rank_metrics, rank_relevant
from . import fmt, md_table, mean_or_none

_COLS = (("map", "mAP"), ("map@20", "mAP@20"), ("ndcg@10", "nDCG@10"), ("mrr@10", "MRR@10"), ("recall@1", "R@1"),
         ("recall@10", "R@10"), ("recall@100", "R@100"))  # fmt: skip


def _table(per_query: dict[str, np.ndarray]) -> dict[str, float | None]:
    out: dict[str, float | None] = {m: mean_or_none(v) for m, v in per_query.items()}
    out["queries"] = int((~np.isnan(per_query["map"])).sum())
    return out


def evaluate_lareqa(enc: Encoder, es: EvalSet, *, with_context: bool = False, show_progress: bool = True,
                    exclude: np.ndarray | None = None) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
    """All three LAReQA settings and the language-bias figures from one encoding and one scoring pass.

    ``exclude``: per query a candidate index left out of its pool (-1: none); a bitext pool (FLORES) leaves out
    the query's own sentence, which would otherwise rank first."""
    perm = np.argsort(np.asarray(es.cand_langs), kind="stable")  # candidates contiguous by language
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    langs = sorted(set(es.cand_langs))
    cand_lang = np.asarray(es.cand_langs)[perm]
    seg_of = np.searchsorted(langs, cand_lang)
    bounds = [int(np.searchsorted(seg_of, s)) for s in range(len(langs))] + [len(perm)]
    texts = es.cand_texts
    if with_context:  # LAReQA encodes each sentence with its paragraph; one-tower models read them joined
        texts = [f"{s} {c}" for s, c in zip(es.cand_texts, es.cand_contexts or es.cand_texts, strict=True)]
    q = enc(es.query_texts, "query", es.query_langs)
    c = enc(texts, "passage", es.cand_langs)[perm]
    t0 = time.perf_counter()
    res = rank_relevant(torch.from_numpy(q), torch.from_numpy(c), [inv[r] for r in es.qrels], bounds=bounds,
                        tie_keys=tie_key([es.cand_ids[i] for i in perm]), show_progress=show_progress,
                        exclude=None if exclude is None else np.where(exclude >= 0, inv[exclude], -1))  # fmt: skip
    rel_seg = np.where(res.rel >= 0, seg_of[res.rel.clip(0)], -1)
    multi_ranks = res.ranks()
    tied = np.where(res.rel >= 0, 1.0 + res.higher, np.inf)
    pool_share = {lang: (bounds[i + 1] - bounds[i]) / len(perm) for i, lang in enumerate(langs)}

    mono, cross, multi, bias, per_query = {}, {}, {}, {}, {}
    distances = []
    for x in sorted(set(es.query_langs)):
        qi = es.queries_of(x)
        per_query[f"qids/{x}"] = np.array([es.query_groups[i] for i in qi])
        pair_ap = []
        cross[x] = {}
        for s, y in enumerate(langs):
            mask = rel_seg[qi] == s
            m = rank_metrics(np.where(mask, 1.0 + res.above[qi, :, s], np.inf), mask.sum(1))
            if y == x:
                mono[x] = _table(m)
                per_query[f"mono/{x}"] = m["map"]
            else:
                cross[x][y] = _table(m)
                pair_ap.append(m["map"])
        if pair_ap:
            with np.errstate(all="ignore"):
                stacked = np.vstack(pair_ap)
                per_query[f"cross/{x}"] = np.where(np.isnan(stacked).all(0), np.nan, np.nanmean(stacked, 0))
        m = rank_metrics(multi_ranks[qi], (res.rel[qi] >= 0).sum(1))
        multi[x] = _table(m)
        per_query[f"multi/{x}"] = m["map"]
        dist = rank_distance(tied[qi])
        distances.append(dist)
        per_query[f"rank_distance/{x}"] = dist
        top_lang = cand_lang[res.top[qi]]
        own = (top_lang == x).mean(1)
        bias[x] = {"rank_distance": mean_or_none(dist), "top10_query_lang_share": mean_or_none(own),
                   "top10_unbiased_share": pool_share.get(x),
                   "top10_language_mix": {y: float((top_lang == y).mean()) for y in langs}}  # fmt: skip
    scoring = time.perf_counter() - t0

    summary: dict[str, float | None] = {}
    pairs = [cross[x][y] for x in cross for y in cross[x]]
    for metric in RANK_METRICS:
        summary[f"mono_{metric}"] = mean_or_none([t[metric] for t in mono.values() if t[metric] is not None])
        summary[f"cross_{metric}"] = mean_or_none([t[metric] for t in pairs if t[metric] is not None])
        summary[f"multi_{metric}"] = mean_or_none([t[metric] for t in multi.values() if t[metric] is not None])
    all_q = np.concatenate([per_query[f"qids/{x}"] for x in bias]) if bias else np.array([])
    summary["rank_distance"] = mean_or_none(np.concatenate(distances)) if distances else None
    shares = [(bias[x]["top10_query_lang_share"], len(es.queries_of(x))) for x in bias]
    unbiased = [(bias[x]["top10_unbiased_share"] or 0.0, len(es.queries_of(x))) for x in bias]
    summary["top10_query_lang_share"] = float(sum(s * n for s, n in shares) / max(len(all_q), 1))
    summary["top10_unbiased_share"] = float(sum(s * n for s, n in unbiased) / max(len(all_q), 1))
    results = {
        "data": {"languages": langs, "queries": {x: int(len(es.queries_of(x))) for x in bias},
                 "candidates": {y: bounds[i + 1] - bounds[i] for i, y in enumerate(langs)},
                 "multilingual_pool": len(perm), "sources": es.source},  # fmt: skip
        "summary": summary, "mono": mono, "cross": cross, "multi": multi, "bias": bias,
        "scoring_seconds": scoring,
    }  # fmt: skip
    return results, per_query


def markdown(res: dict) -> list[str]:
    """results.md's body: the summary, per query language, and the X->Y matrix."""
    s = res["summary"]
    lines = ["## Summary (mean over query languages; cross-lingual: over ordered pairs)", ""]
    lines += md_table(["setting", *(c for _, c in _COLS)],
                      [[name, *(fmt(s.get(f"{key}_{m}")) for m, _ in _COLS)]
                        for key, name in (("mono", "monolingual X->X"), ("cross", "cross-lingual X->Y"),
                                          ("multi", "multilingual X->all"))])  # fmt: skip
    lines += ["", f"Language bias (multilingual pool): mean rank distance **{fmt(s.get('rank_distance'), 2)}** "
              f"(lower is better); query-language share of the top 10 **{fmt(s.get('top10_query_lang_share'))}** "
              f"against **{fmt(s.get('top10_unbiased_share'))}** for a language-blind ranking.", ""]  # fmt: skip
    langs = list(res["multi"])
    cands = res["data"]["candidates"]
    rows = []
    for x in langs:
        cross = [t["map"] for t in res["cross"].get(x, {}).values() if t["map"] is not None]
        b = res["bias"][x]
        mono = res["mono"].get(x, {}).get("map")
        rows.append([x, str(res["data"]["queries"][x]), str(cands.get(x, "-")), fmt(mono),
                     fmt(float(np.mean(cross)) if cross else None), fmt(res["multi"][x]["map"]),
                     fmt(b["rank_distance"], 2), fmt(b["top10_query_lang_share"]),
                     fmt(b["top10_unbiased_share"])])  # fmt: skip
    lines += ["## Per query language (mAP)", ""]
    lines += md_table(["lang", "queries", "candidates", "mono", "cross (mean over targets)", "multi",
                       "rank distance", "top-10 own-language share", "unbiased share"], rows)  # fmt: skip
    pool = res["data"]["languages"]
    lines += ["", "## X->Y mAP (rows: question language, columns: candidate pool; diagonal: monolingual)", ""]
    matrix = _map_matrix(res)
    rows = [[x, *(fmt(v) for v in row)] for x, row in zip(langs, matrix.tolist(), strict=True)]
    lines += md_table(["X \\ Y", *pool], rows)
    return lines


def _map_matrix(res: dict) -> np.ndarray:
    """X->Y mAP, rows question languages, columns the pool's (NaN where undefined): a table and a heatmap."""
    langs, pool = list(res["multi"]), res["data"]["languages"]
    out = np.full((len(langs), len(pool)), np.nan)
    for i, x in enumerate(langs):
        for j, y in enumerate(pool):
            cell = res["mono"].get(x) if x == y else res["cross"].get(x, {}).get(y)
            if cell and cell["map"] is not None:
                out[i, j] = cell["map"]
    return out


def plots(out_dir: Path, res: dict, plt: Any) -> list[Path]:
    """The X->Y mAP heatmap and the language-bias bars of the multilingual pool."""
    langs, pool = list(res["multi"]), res["data"]["languages"]
    matrix = _map_matrix(res)
    fig, ax = plt.subplots(figsize=(0.55 * len(pool) + 2.5, 0.5 * len(langs) + 2))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(pool)), pool)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("candidate language (Y)")
    ax.set_ylabel("question language (X)")
    for i in range(len(langs)):
        for j in range(len(pool)):
            if not np.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.5 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, label="mAP")
    ax.set_title(f"X->Y mAP, {res['model']['name']}")
    fig.tight_layout()
    written = [atomic_savefig(fig, out_dir / "map_heatmap.png", dpi=120)]
    plt.close(fig)

    bias = res["bias"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(8, 0.8 * len(langs) + 4), 3.5))
    x = np.arange(len(langs))
    a1.bar(x - 0.2, [bias[lang]["top10_query_lang_share"] or 0 for lang in langs], 0.4, label="observed")
    a1.bar(x + 0.2, [bias[lang]["top10_unbiased_share"] or 0 for lang in langs], 0.4, label="language-blind")
    a1.set_xticks(x, langs)
    a1.set_ylabel("query-language share of top 10")
    a1.set_ylim(0, 1.2)
    a1.legend(loc="upper center", ncol=2, fontsize=8)
    a2.bar(x, [bias[lang]["rank_distance"] or 0 for lang in langs], color="tab:red")
    a2.set_xticks(x, langs)
    a2.set_ylabel("mean rank distance (lower is better)")
    fig.suptitle(f"Language bias in the multilingual pool, {res['model']['name']}")
    fig.tight_layout()
    written.append(atomic_savefig(fig, out_dir / "bias.png", dpi=120))
    plt.close(fig)
    return written
