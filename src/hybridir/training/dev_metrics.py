"""Dev metrics: LAReQA-style retrieval on the held-out part of the *training* data, the numbers a recipe is chosen on.

Never an evaluation set (XQuAD-R, MIRACL, monoqa): :func:`dev_metrics` scores held-out NTREX documents, the FLORES
dev split and the QA dev splits (``hybridir.data.training.qa``) in the monolingual, cross-lingual and pooled settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.training.items import ParallelItem, TrainingData
from ..data.training.qa import QA_SOURCES
from ..encoders.centering import Centering
from ..evaluation.metrics import average_precision, rank_distance, reciprocal_rank
from .teacher import encode

DEV_KEYS = ("mono_map", "cross_map", "multi_map", "rank_distance")


def dev_metrics(
    model: Any,
    data: TrainingData,
    max_items: int | None = 200,
    max_query_length: int = 32,
    max_passage_length: int = 128,
    batch_size: int = 64,
    cache: Callable[..., np.ndarray] | None = None,
    centering: Centering | None = None,
) -> dict[str, Any]:
    """LAReQA-style retrieval on held-out *training* data, the numbers a recipe is chosen on (never XQuAD-R,
    MIRACL or monoqa). Per source (NTREX held-out documents, FLORES dev), every dev query against the dev passages:

    - ``mono_map``: X -> X, pool = the passages in the query's language (not for bitext: a sentence would find
      itself);
    - ``cross_map``: X -> Y for every ordered pair of languages, pool = the passages in Y;
    - ``multi_map``: X -> every language pooled, relevant = the item's passage in every language (for bitext the
      query's own sentence is left out of the pool, so its own language's other sentences compete with its
      translations);
    - ``rank_distance``: in the multilingual pool, largest minus smallest rank of a query's relevant passages
      (language bias; docs/metrics.md).

    With QA dev sources (:mod:`hybridir.data.training.qa`) the result also splits the figures into ``qa_*`` (mean
    over the QA sources: monolingual = Thai, Chinese and AfriQA's English twins, cross-lingual = AfriQA's African
    question -> English passage) and ``parallel_*`` (NTREX / FLORES), and adds ``qa_pooled_map``: every QA dev question
    against every QA dev passage, all languages at once. The recipe rule reads these (docs/studies.md).

    mAP is averaged over queries, then over query languages (pairs for cross), then over sources. With one
    relevant passage (mono, cross) AP is the reciprocal rank. Neighbouring ICT items share most of their window,
    which would make the task ambiguous, so only items whose windows do not overlap are used, then at most
    ``max_items`` per source spread evenly over it. ``cache`` (:func:`~.teacher.start_cache`) reuses the vectors
    of an unchanged model (the starting model's, shared by every run that starts from it). ``centering``: score
    with its mode, its means already computed for the dev languages (:func:`choose_centering` is what uses it).
    AP, reciprocal rank and rank distance are :mod:`hybridir.evaluation.metrics`'s, on ranks that count ties
    against the relevant passage."""

    memo: dict[tuple[str, str, int], np.ndarray] = {}  # the pooled QA figures reuse the per-source vectors

    def embed(texts: list[str], prompt: str, length: int, lang: str = "") -> np.ndarray:
        if todo := list(dict.fromkeys(t for t in texts if (t, prompt, length) not in memo)):
            if cache is not None:
                vecs = cache(todo, prompt, length, lambda: model, normalize=True)
            else:
                vecs = encode(model, todo, prompt, length, normalize=True, batch_size=batch_size)
            memo.update({(t, prompt, length): v for t, v in zip(todo, vecs, strict=True)})
        return np.stack([memo[(t, prompt, length)] for t in texts])

    by_source: dict[str, list[ParallelItem]] = {}
    for it in data.items:
        by_source.setdefault(it.source, []).append(it)
    chosen = {src: _dev_items(items, max_items) for src, items in by_source.items()}
    if centering is not None and centering.active:
        plain = embed

        def embed(texts: list[str], prompt: str, length: int, lang: str = "") -> np.ndarray:
            return centering.apply(plain(texts, prompt, length), [lang] * len(texts), prompt)

    per_source = {src: _dev_source(items, embed, max_query_length, max_passage_length)
                  for src, items in chosen.items()}  # fmt: skip
    out: dict[str, Any] = {"n_items": sum(m["n_items"] for m in per_source.values()), "languages": data.languages}
    for key in DEV_KEYS:
        if vals := [m[key] for m in per_source.values() if key in m]:
            out[key] = float(np.mean(vals))
    qa = [src for src in chosen if src.split(" ")[0] in QA_SOURCES]
    if qa:
        pooled = _dev_source([it for src in qa for it in chosen[src]], embed, max_query_length, max_passage_length)
        out["qa_pooled_map"] = pooled.get("multi_map", 0.0)
    for prefix, group in (("qa_", qa), ("parallel_", [src for src in chosen if src not in qa])):
        for key in ("mono_map", "cross_map", "multi_map"):
            if group and qa and (vals := [per_source[src][key] for src in group if key in per_source[src]]):
                out[prefix + key] = float(np.mean(vals))
    return out | {"per_source": per_source}


def _dev_items(items: list[ParallelItem], max_items: int | None) -> list[ParallelItem]:
    """Items whose passage windows do not overlap, at most ``max_items`` of them spread evenly."""
    kept, last_end = [], {}
    for it in items:
        if it.span[0] >= last_end.get(it.group, -1):
            kept.append(it)
            last_end[it.group] = it.span[1]
    if max_items and len(kept) > max_items:
        kept = [kept[i] for i in np.linspace(0, len(kept) - 1, max_items).round().astype(int)]
    return kept


def _ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per row, the sorted 1-based ranks of the relevant columns, inf past a row's last one: the columns scoring at
    least as high. Deliberately pessimistic, unlike :func:`~hybridir.evaluation.metrics.rank_relevant` (ties to the
    lower candidate index, trec_eval's order): a tie counts against the relevant passage, so identical or collapsed
    passages share the worse rank and a degenerate model cannot score well on dev by the order of the columns; the
    dev figures are what recipes and defaults are chosen on."""
    out = np.full((len(scores), max(1, relevant.sum(1).max(initial=0))), np.inf)
    for i, (row, rel) in enumerate(zip(scores, relevant, strict=True)):
        gold = row[rel]
        out[i, : len(gold)] = np.sort((row[None, :] >= gold[:, None]).sum(1))
    return out


def _average_precision(ranks: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """:func:`~hybridir.evaluation.metrics.average_precision` of each row, rows with the same number of relevant
    passages together: a row padded past 8 slots would be summed in another order by numpy, so grouping keeps each
    row's AP equal to the last bit to :func:`average_precision` of that row alone (a run's dev figures are the same
    whatever the other rows)."""
    out = np.empty(len(ranks))
    for n in np.unique(n_rel):
        out[n_rel == n] = average_precision(ranks[n_rel == n, :n], n_rel[n_rel == n])
    return out


def _dev_source(items: list[ParallelItem], embed: Any, max_query_length: int, max_passage_length: int) -> dict:
    """The mono / cross / multi figures of one source's dev items (see :func:`dev_metrics`). Candidates are the
    distinct passages per language (questions on one passage share it), relevant = the item's own passage text in
    each language that has one (an AfriQA question has none in its own language)."""
    langs = sorted({lang for it in items for lang in it.pairs})
    queries, cands, cand_lang, col = {}, [], [], {}
    for li, lang in enumerate(langs):
        idx = np.array([i for i, it in enumerate(items) if lang in it.pairs])
        queries[lang] = (idx, embed([items[i].pairs[lang].query for i in idx], "query", max_query_length, lang))
        texts = list(dict.fromkeys(p.passage for it in items if (p := it.pairs.get(lang)) and p.passage))
        col.update({(lang, t): len(cand_lang) + k for k, t in enumerate(texts)})
        if texts:
            cands.append(embed(texts, "passage", max_passage_length, lang))
        cand_lang.extend([li] * len(texts))
    pool, c_lang = np.vstack(cands), np.asarray(cand_lang)
    pairs: dict[str, float] = {}
    multi, dist, mono, cross = [], [], [], []
    for li, lang in enumerate(langs):
        q_idx, q = queries[lang]
        scores = q @ pool.T
        rel = np.zeros(scores.shape, dtype=bool)
        for row, i in enumerate(q_idx):
            it = items[i]
            for other, pair in it.pairs.items():
                if not pair.passage:
                    continue
                if it.bitext and other == lang:  # a bitext query would find itself: out of the pool
                    scores[row, col[(other, pair.passage)]] = -np.inf
                else:
                    rel[row, col[(other, pair.passage)]] = True
        if (has := rel.any(1)).any():  # a one-language bitext item has nothing to find
            ranks = _ranks(scores[has], rel[has])
            multi.append(np.mean(_average_precision(ranks, rel[has].sum(1))))
            dist.append(np.mean(np.nan_to_num(rank_distance(ranks))))  # one relevant passage: distance 0
        for lj, target in enumerate(langs):
            cols = c_lang == lj
            rows = rel[:, cols].any(1)
            if rows.any():
                rr = reciprocal_rank(_ranks(scores[rows][:, cols], rel[rows][:, cols]))
                pairs[f"{lang}>{target}"] = float(np.mean(rr))
                (mono if li == lj else cross).append(pairs[f"{lang}>{target}"])
    out: dict[str, Any] = {"n_items": len(items), "languages": langs, "per_pair": pairs}
    if multi:
        out["multi_map"], out["rank_distance"] = float(np.mean(multi)), float(np.mean(dist))
    if mono:
        out["mono_map"] = float(np.mean(mono))
    if cross:
        out["cross_map"] = float(np.mean(cross))
    return out
