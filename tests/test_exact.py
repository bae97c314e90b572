"""The one exact top-k kernel: float32 scan, float64 answer, trec_eval's tie rule, whatever form the vectors take."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hybridir.evaluation.metrics import rank_relevant
from hybridir.retrieval.exact import exact_search, tie_key


def near_ties(n: int = 3000, dim: int = 64, seed: int = 0,
              noise: float = 3e-7) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """Unit passages in tight clusters (neighbours a few float32 ulps apart, some exact duplicates), queries near
    them, and shuffled string ids: where a float32 product's ranking differs from a float64 one."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n // 10, dim))
    p = np.repeat(base, 10, axis=0) + noise * rng.standard_normal((n, dim))
    dup = np.arange(0, n - 1, 7)
    p[dup] = p[dup + 1]  # exact duplicates: ties
    p = (p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)
    q = (p[rng.choice(n, 40)] + 0.01 * rng.standard_normal((40, dim))).astype(np.float32)
    ids = [f"d{i}" for i in rng.permutation(n)]
    return q, p, ids


def reference(q: np.ndarray, p: np.ndarray, k: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every score in float64 rounded to float32, sorted by score then key, descending."""
    s = (q.astype(np.float64) @ p.astype(np.float64).T).astype(np.float32)
    order = np.array([np.lexsort((-keys, -row))[:k] for row in s])
    return np.take_along_axis(s, order, 1), order


@pytest.mark.parametrize("form", ["array", "memmap", "blocks"])
def test_the_answer_is_the_float64_one_with_ties_by_id(form, tmp_path):
    q, p, ids = near_ties()
    keys = tie_key(ids)
    want_s, want = reference(q, p, 50, keys)
    if form == "memmap":
        np.save(tmp_path / "v.npy", p)
        passages = np.load(tmp_path / "v.npy", mmap_mode="r")
    else:
        passages = p if form == "array" else ((s, p[s : s + 333]) for s in range(0, len(p), 333))
    got_s, got = exact_search(q, passages, 50, tie_keys=keys)
    assert got_s.dtype == np.float32 and np.array_equal(got, want) and np.array_equal(got_s, want_s)
    float32 = np.argsort(-(q @ p.T), axis=1, kind="stable")[:, :50]
    assert not np.array_equal(float32, want)  # the data does tell a float32 ranking from the float64 one


def test_without_keys_ties_go_to_the_lower_row_and_k_beyond_the_collection_is_all_of_it():
    p = np.tile(np.eye(4, dtype=np.float32), (2, 1))  # rows i and i + 4 identical
    scores, rows = exact_search(p[:1], p, 20)
    assert rows.shape == (1, 8) and list(rows[0][:2]) == [0, 4] and scores[0][0] == scores[0][1] == 1


def test_the_kernel_and_rank_relevant_follow_one_ranking_rule():
    """A relevant passage's trec_eval rank (metrics) is its position in the kernel's top-k, ties included (on
    duplicates, not near ties: rank_relevant ranks float32 products, as the LAReQA figures always were)."""
    q, p, ids = near_ties(seed=1, noise=0.0)
    keys = tie_key(ids)
    _, rows = exact_search(q, p, 30, tie_keys=keys)
    ranks = rank_relevant(torch.from_numpy(q).double(), torch.from_numpy(p).double(), list(rows), tie_keys=keys).ranks()
    assert np.array_equal(ranks, np.tile(np.arange(1, 31), (len(q), 1)))
