"""The one exact top-k kernel and the one ranking rule: a flat index (:mod:`hybridir.retrieval.index`), the recall
checks of :mod:`hybridir.retrieval.ann` and ``hybridir evaluate``'s dense runs
(:mod:`hybridir.evaluation.scoring.retrieval`) all score with :func:`exact_search`, so a run file of ``hybridir
search`` and evaluate's runs agree on scores and ties.

The ranking rule is trec_eval's: higher score first, equal scores by candidate id descending (string order), which
:func:`tie_key` turns into integers (:func:`hybridir.evaluation.metrics.rank_relevant` uses the same keys).

Scores are float64 products rounded to float32, so identical passages score identically (a float32 product's
blocking can tell them apart by one ulp). Computing every score in float64 would cost twice the memory and twice the
time of a float32 scan, so the scan is float32 (BLAS, memory-mapped vectors welcome) and only the candidates that
can reach the top ``k`` are re-scored in float64: those within twice the float32 product's error bound of the
float32 k-th score (``GAMMA * d * |q| * max|p|``, Higham's bound for any summation order). The answer is the one an
all-float64 scan gives.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: score-matrix entries per float32 product (64 MB): a block of passages times a block of queries
BLOCK_ENTRIES = 2**24
#: queries scored per product at most
QUERY_BLOCK = 256
#: unit roundoff of float32, times 1.01 for the bound's second-order term
GAMMA = 1.01 * 2.0**-24

Blocks = Iterable[tuple[int, np.ndarray]]


def tie_key(cand_ids: list[str]) -> np.ndarray:
    """Position of each id in ascending string order: under trec_eval's rule a larger key wins a score tie."""
    key = np.empty(len(cand_ids), dtype=np.int64)
    key[np.argsort(np.asarray(cand_ids, dtype=object), kind="stable")] = np.arange(len(cand_ids))
    return key


def _select(q: np.ndarray, rows: np.ndarray, scores: np.ndarray, keys: np.ndarray, k: int,
            m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Each query's best ``k`` of the candidates (query ``q``, passage ``rows``, ``scores``) under the ranking rule,
    grouped by query, best first."""
    order = np.lexsort((-keys, -scores, q))
    q, rows, scores = q[order], rows[order], scores[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(q, minlength=m))[:-1]])
    keep = np.arange(len(q)) - starts[q] < k
    return q[keep], rows[keep], scores[keep]


def _candidates(queries: np.ndarray, block: np.ndarray, start: int, k: int,
                max_norm: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(query, passage row, exact float32 score) of every passage of ``block`` that can be in a query's top ``k``."""
    block = np.asarray(block, dtype=np.float32)
    scores = queries @ block.T
    kk = min(k, len(block))
    kth = np.partition(scores, len(block) - kk, axis=1)[:, len(block) - kk].astype(np.float64)
    if max_norm is None:
        max_norm = float(np.sqrt(np.max(np.einsum("ij,ij->i", block, block))))
    err = GAMMA * block.shape[1] * np.linalg.norm(queries.astype(np.float64), axis=1) * max_norm
    floor = kth - 2 * err - 4 * np.spacing(np.abs(kth) + 2 * err)
    q, cols = np.nonzero(scores >= np.nextafter(floor.astype(np.float32), np.float32(-np.inf))[:, None])
    exact = np.empty(len(q), np.float32)
    for s in range(0, len(q), 65536):  # float64 re-score, 65536 pairs at a time
        a, b = queries[q[s : s + 65536]].astype(np.float64), block[cols[s : s + 65536]].astype(np.float64)
        exact[s : s + 65536] = np.einsum("ij,ij->i", a, b)
    return q, cols + start, exact


def _slices(passages: np.ndarray, size: int) -> Blocks:
    """``(first row, rows)`` of consecutive slices of ``size`` rows (views: a memory map stays one)."""
    return ((s, passages[s : s + size]) for s in range(0, len(passages), size))


def exact_search(queries: np.ndarray, passages: np.ndarray | Blocks, k: int, *, tie_keys: np.ndarray | None = None,
                 max_norm: float | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Exact top-``k`` (float32 scores, rows) by inner product, best first, ties by ``tie_keys`` (larger first: see
    :func:`tie_key`; without them the lower row first).

    ``passages``: a float32 ``[n, dim]`` array (a memory map is read block by block, never copied whole) or
    ``(first row, block)`` pairs covering rows ``0..n-1`` (e.g. a file too large for memory, or vectors transformed
    block by block). ``max_norm``: an upper bound of the passages' norms (computed per block when None)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    m = len(queries)
    blocks = _slices(passages, max(1024, BLOCK_ENTRIES // max(1, min(m, QUERY_BLOCK)))) if isinstance(
        passages, np.ndarray) else passages  # fmt: skip
    empty = np.zeros(0, np.int64)
    best = empty, empty, np.zeros(0, np.float32)
    n = 0
    for start, block in blocks:
        n = max(n, start + len(block))
        if not len(block):
            continue
        found = []
        for a in range(0, m, QUERY_BLOCK):
            q, rows, exact = _candidates(queries[a : a + QUERY_BLOCK], block, start, k, max_norm)
            found.append((q + a, rows, exact))
        q = np.concatenate([best[0], *(f[0] for f in found)])
        rows = np.concatenate([best[1], *(f[1] for f in found)])
        keys = tie_keys[rows] if tie_keys is not None else -rows
        best = _select(q, rows, np.concatenate([best[2], *(f[2] for f in found)]), keys, k, m)
    assert n > 0, "an index or a corpus holds at least one passage"
    k = min(k, n)
    return best[2].reshape(m, k), best[1].reshape(m, k)
