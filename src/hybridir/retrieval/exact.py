"""The one exact top-k kernel: a flat index (:mod:`hybridir.retrieval.index`) and ``hybridir evaluate``'s dense runs
(:mod:`hybridir.evaluation.scoring.retrieval`) both score with :func:`exact_search`, so a run file of ``hybridir
search`` and evaluate's runs agree on scores and ties."""

from __future__ import annotations

import numpy as np

#: passages scored per block by :func:`exact_search` (a float64 copy of one block is held while it is scored)
SCORE_BLOCK = 200_000
#: queries scored per matrix product by :func:`exact_search`
QUERY_BLOCK = 1024


def exact_search(queries: np.ndarray, passages: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores, rows) by inner product, best first: the one kernel of a flat index and of
    ``hybridir evaluate``'s dense runs (:mod:`hybridir.evaluation.scoring.retrieval`), so both score alike.

    float64 products rounded to float32: identical passages get identical scores (a float32 matmul's blocking can
    tell them apart by one ulp), so their order falls to trec_eval's id rule in evaluate's runs and in a run file
    alike. ``passages`` (float32, or float64 to spare the conversion) is scored :data:`SCORE_BLOCK` rows at a time,
    the blocks' top ``k`` merged; up to one block it is one product per :data:`QUERY_BLOCK` queries, which is how
    evaluation always scored such corpora."""
    import torch

    k = min(k, len(passages))
    found: tuple[np.ndarray, np.ndarray] | None = None
    for start in range(0, len(passages), SCORE_BLOCK):
        c = torch.from_numpy(np.ascontiguousarray(passages[start : start + SCORE_BLOCK])).double()
        tops = [torch.topk((torch.from_numpy(queries[s : s + QUERY_BLOCK]).double() @ c.T).float(), min(k, len(c)),
                           dim=1) for s in range(0, len(queries), QUERY_BLOCK)]  # fmt: skip
        block = np.vstack([t.values.numpy() for t in tops]), np.vstack([t.indices.numpy() for t in tops]) + start
        if found is not None:  # the best k of the blocks before and this one
            scores, rows = np.hstack([found[0], block[0]]), np.hstack([found[1], block[1]])
            best = torch.topk(torch.from_numpy(scores), k, dim=1).indices.numpy()
            block = np.take_along_axis(scores, best, 1), np.take_along_axis(rows, best, 1)
        found = block
    assert found is not None, "an index or a corpus holds at least one passage"
    return found
