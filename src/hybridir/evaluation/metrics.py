"""Retrieval metrics with trec_eval semantics, computed exactly from the rank of every relevant candidate.

Why hand-written: the LAReQA protocol ranks the *whole* pool for every query (mAP over the full ranking). For
XQuAD-R that is 13k queries x 13k candidates in the multilingual pool; a dict-based run for pytrec_eval or ranx
would hold 170M entries. The metrics only need the rank of each relevant candidate, which is the number of
candidates that score higher, counted in blocks with one matmul per block. ``tests/test_metrics.py`` checks every
number against pytrec_eval (the trec_eval C code) on random runs with ties.

Tie rule (trec_eval's, which pytrec_eval inherits): candidates with equal scores are ordered by candidate id,
*descending* (string order). ``rank_relevant`` reproduces it through
:func:`hybridir.retrieval.exact.tie_key`, the keys the exact top-k kernel breaks ties with.

Truncated runs (monolingual QA, BEIR) go straight to pytrec_eval: see ``trec_eval_per_query``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

#: the per-query metrics reported for every LAReQA setting
RANK_METRICS = ("map", "map@20", "ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@20", "recall@100")


@dataclass
class RankResult:
    """Ranks of the relevant candidates of every query, split by pool segment (e.g. by language).

    ``above[q, j, s]``: candidates of segment ``s`` ranked above relevant item ``j`` of query ``q`` under
    trec_eval's order (higher score, or equal score and larger id); the rank of ``j`` in any union of
    segments is 1 + the sum over those segments. ``higher[q, j]``: candidates in the whole pool with a strictly
    higher score (ties share the best rank; used for rank distance). ``rel[q, j]``: candidate index, -1 = padding.
    ``top``: indices of the ``k`` best candidates per query.
    """

    rel: np.ndarray
    above: np.ndarray
    higher: np.ndarray
    top: np.ndarray

    def ranks(self, segments: list[int] | None = None) -> np.ndarray:
        """1-based trec_eval ranks in the pool made of ``segments`` (all when None); inf for padding."""
        counts = self.above if segments is None else self.above[:, :, segments]
        return np.where(self.rel >= 0, 1.0 + counts.sum(-1), np.inf)


def rank_relevant(
    queries: torch.Tensor,
    cands: torch.Tensor,
    relevant: list[np.ndarray],
    *,
    bounds: list[int] | None = None,
    tie_keys: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    top_k: int = 10,
    block_size: int = 256,
    show_progress: bool = False,
) -> RankResult:
    """Exact ranks of every query's relevant candidates by dot-product score, in blocks of queries.

    ``bounds``: segment boundaries over the candidate rows (``[0, n1, n1+n2, ..., n]``; one segment by default).
    ``tie_keys``: see :func:`~hybridir.retrieval.exact.tie_key`; without it ties go to the lower candidate index.
    ``exclude``: per query one candidate index left out of its pool (-1: none), e.g. the query's own sentence in
    a bitext pool, where it would otherwise find itself.

    Each block's scores are sorted per segment (numpy's vectorised sort) and the relevant scores looked up with
    a binary search, so the cost is one sort of the score matrix; score ties, rare with real embeddings, are
    resolved exactly per affected query.
    """
    n = cands.shape[0]
    bounds = bounds or [0, n]
    width = max(1, max(map(len, relevant), default=1))
    rel = np.full((len(relevant), width), -1, dtype=np.int64)
    for i, r in enumerate(relevant):
        rel[i, : len(r)] = r
    keys = np.asarray(tie_keys) if tie_keys is not None else -np.arange(n)
    segs = len(bounds) - 1
    above = np.zeros((len(relevant), width, segs), dtype=np.int32)
    higher = np.zeros((len(relevant), width), dtype=np.int32)
    top = np.zeros((len(relevant), min(top_k, n)), dtype=np.int64)
    cands = cands.float()
    for start in tqdm(range(0, len(relevant), block_size), desc="scoring", unit="block", disable=not show_progress):
        stop = min(start + block_size, len(relevant))
        scores_t = queries[start:stop].float() @ cands.T
        scores = scores_t.numpy()  # shares memory with scores_t, so the exclusion below reaches topk too
        if exclude is not None:
            rows = np.flatnonzero(exclude[start:stop] >= 0)
            scores[rows, exclude[start:stop][rows]] = -np.inf
        ri = rel[start:stop]
        valid = ri >= 0
        rs = torch.from_numpy(np.take_along_axis(scores, ri.clip(0), axis=1))
        ties = np.zeros(ri.shape, dtype=np.int64)
        for s in range(segs):
            srt = torch.from_numpy(np.sort(scores[:, bounds[s] : bounds[s + 1]], axis=1))
            le = torch.searchsorted(srt, rs, right=True).numpy()
            above[start:stop, :, s] = srt.shape[1] - le
            ties += le - torch.searchsorted(srt, rs, right=False).numpy()
        higher[start:stop] = above[start:stop].sum(-1)
        for i in np.flatnonzero(((ties > 1) & valid).any(1)):  # equal scores: trec_eval's larger-id-first rule
            eq = scores[i][None, :] == scores[i, ri[i].clip(0)][:, None]
            wins = eq & (keys[None, :] > keys[ri[i].clip(0)][:, None])
            for s in range(segs):
                above[start + i, :, s] += wins[:, bounds[s] : bounds[s + 1]].sum(1).astype(np.int32)
        top[start:stop] = torch.topk(scores_t, top.shape[1], dim=1).indices.numpy()
    above[rel < 0] = 0
    higher[rel < 0] = 0
    return RankResult(rel=rel, above=above, higher=higher, top=top)


def average_precision(ranks: np.ndarray, n_rel: np.ndarray, k: int | None = None) -> np.ndarray:
    """trec_eval ``map`` (``map_cut_k`` with k): sum of precision at each relevant rank <= k, over ``n_rel``.

    ``ranks``: (queries, slots) 1-based ranks of relevant items, inf where not retrieved or padding.
    ``n_rel``: number of relevant items per query (trec_eval's denominator, also for the cut version).
    """
    r = np.sort(ranks, axis=1)
    hits = np.arange(1, r.shape[1] + 1)[None, :] / r
    if k is not None:
        hits = np.where(r <= k, hits, 0.0)
    return _per_rel(np.where(np.isfinite(r), hits, 0.0).sum(1), n_rel)


def ndcg(ranks: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """trec_eval ``ndcg_cut_k`` for binary relevance: DCG of relevant items in the top k over the ideal DCG."""
    dcg = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0).sum(1)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    ideal = discounts[np.clip(n_rel, 1, k) - 1]
    return np.where(n_rel > 0, dcg / ideal, np.nan)


def recall(ranks: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """trec_eval ``recall_k``: share of the relevant items ranked in the top k."""
    return _per_rel((ranks <= k).sum(1).astype(float), n_rel)


def reciprocal_rank(ranks: np.ndarray, k: int | None = None) -> np.ndarray:
    """``recip_rank`` (MRR@k with k): 1 / rank of the first relevant item, 0 if it is below k."""
    first = ranks.min(1)
    if k is not None:
        first = np.where(first <= k, first, np.inf)
    return 1.0 / first


def _per_rel(x: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """x / n_rel, NaN for queries with no relevant item (trec_eval leaves them out of the mean)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, x / np.maximum(n_rel, 1), np.nan)


def rank_metrics(ranks: np.ndarray, n_rel: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of ``RANK_METRICS`` per query (NaN for queries with no relevant item)."""
    out = {"map": average_precision(ranks, n_rel), "map@20": average_precision(ranks, n_rel, 20),
           "ndcg@10": ndcg(ranks, n_rel, 10), "mrr@10": reciprocal_rank(ranks, 10)}  # fmt: skip
    out["mrr@10"] = np.where(n_rel > 0, out["mrr@10"], np.nan)
    for k in (1, 5, 10, 20, 100):
        out[f"recall@{k}"] = recall(ranks, n_rel, k)
    return out


def rank_distance(tied_ranks: np.ndarray) -> np.ndarray:
    """Per query: largest minus smallest rank among its relevant items (NaN with fewer than two).

    ``tied_ranks`` are competition ranks (1 + number of strictly higher scores, inf for padding), so
    relevant items with identical scores share a rank and an oracle gets 0.
    """
    finite = np.isfinite(tied_ranks)
    hi = np.where(finite, tied_ranks, -np.inf).max(1)
    lo = np.where(finite, tied_ranks, np.inf).min(1)
    return np.where(finite.sum(1) >= 2, hi - lo, np.nan)


def trec_eval_per_query(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], measures: set[str]
) -> dict[str, dict[str, float]]:
    """pytrec_eval on a (truncated) run: ``{query_id: {measure: value}}`` for the queries in ``qrels``."""
    import pytrec_eval

    return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def paired_test(a: np.ndarray, b: np.ndarray, n_resamples: int = 10000, seed: int = 0) -> dict:
    """Two-sided paired randomisation (sign-flip) test of mean(a - b) = 0: per-query scores of two systems, same order.

    Each resample flips the sign of a random subset of the per-query differences; the p-value is
    (1 + #{|resampled mean| >= |observed mean|}) / (1 + n_resamples) (Phipson & Smyth 2010), the null
    distribution of scipy's paired ``permutation_test``. Written with numpy because scipy's version permutes
    index pairs and costs ~15x more: a study summary runs hundreds of these tests. Pairs with a NaN on either side
    are dropped. Returns p_value, mean_diff, n.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_test needs arrays of the same shape, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = (a - b)[keep]
    n = len(diff)
    if n == 0:
        return {"p_value": float("nan"), "mean_diff": float("nan"), "n": 0}
    if not np.any(diff):
        return {"p_value": 1.0, "mean_diff": 0.0, "n": n}
    rng, observed = np.random.default_rng(seed), abs(diff.sum())
    tolerance = 1e-9 * np.abs(diff).sum()  # a resample equal to the observed sum up to rounding counts as reaching it
    batch = max(1, min(n_resamples, 4_000_000 // n))
    extreme = 0
    for start in range(0, n_resamples, batch):
        rows = min(batch, n_resamples - start)
        flips = np.unpackbits(rng.integers(0, 256, (rows, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
        sums = diff.sum() - 2.0 * (flips @ diff)  # flipping the signs of the chosen differences
        extreme += int(np.count_nonzero(np.abs(sums) >= observed - tolerance))
    return {"p_value": (1 + extreme) / (1 + n_resamples), "mean_diff": float(diff.mean()), "n": n}
