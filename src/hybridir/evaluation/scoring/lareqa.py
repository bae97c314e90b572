"""The LAReQA protocol (XQuAD-R, MLQA-R; FLORES's multilingual pool): mono X->X, cross X->Y and multi X->all from
one encoding of every unique text and one scoring pass, with the language-bias figures (docs/metrics.md).

Example::

    body, per_query = evaluate_lareqa(Encoder(load_encoder("e5-small")), load_lareqa(folder, ["en", "de"]))
    body["summary"]["multi_map"]
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ...data.evaluation.evalset import EvalSet
from ...encoders.encoding import Encoder
from ..metrics import RANK_METRICS, rank_distance, rank_metrics, rank_relevant, tie_key
from . import mean_or_none


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

