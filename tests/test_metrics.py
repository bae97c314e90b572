"""Metrics: hand-computed rankings, agreement with pytrec_eval (trec_eval) on random runs with ties, bias, tests."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
import torch

from hybridir.evaluation.metrics import (
    average_precision,
    ndcg,
    paired_test,
    rank_distance,
    rank_metrics,
    rank_relevant,
    recall,
    reciprocal_rank,
)
from hybridir.retrieval.exact import tie_key


def test_hand_computed_ranking():
    # relevant items at ranks 1 and 3; a third relevant item never retrieved
    ranks = np.array([[1.0, 3.0, np.inf]])
    assert average_precision(ranks, np.array([2]))[0] == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(ranks, np.array([3]))[0] == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision(ranks, np.array([3]), k=2)[0] == pytest.approx(1 / 3)
    assert ndcg(ranks, np.array([2]), 10)[0] == pytest.approx((1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3)))
    assert ndcg(ranks, np.array([2]), 2)[0] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert recall(ranks, np.array([3]), 1)[0] == pytest.approx(1 / 3)
    assert reciprocal_rank(np.array([[4.0, 12.0]]), 10)[0] == pytest.approx(0.25)
    assert reciprocal_rank(np.array([[11.0]]), 10)[0] == 0.0
    assert np.isnan(rank_metrics(np.array([[np.inf]]), np.array([0]))["map"][0])  # no relevant: left out


def test_ranks_from_scores_hand_example():
    q = torch.tensor([[1.0, 0.0]])
    c = torch.tensor([[0.9, 0], [0.5, 0], [0.7, 0], [0.1, 0]])  # order: 0, 2, 1, 3
    res = rank_relevant(q, c, [np.array([1, 3])], bounds=[0, 2, 4])
    assert res.ranks().tolist() == [[3.0, 4.0]]
    # counting only segment 0 (candidates 0, 1) above each item: 1 is second, 3 would be third
    assert res.ranks([0]).tolist() == [[2.0, 3.0]]
    assert res.above[0].tolist() == [[1, 1], [2, 1]]  # per item: above it in segment 0, in segment 1
    assert res.top[0, :3].tolist() == [0, 2, 1]


def test_ties_follow_trec_eval_docid_descending():
    q = torch.ones(1, 1)
    c = torch.ones(3, 1)  # three tied candidates
    ids = ["a", "c", "b"]
    qrels = {"q": {"b": 1}}
    run = {"q": {i: 1.0 for i in ids}}
    expected = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"]
    res = rank_relevant(q, c, [np.array([2])], tie_keys=tie_key(ids))
    assert expected == 0.5 and 1 / res.ranks()[0, 0] == expected  # "c" > "b" ranks first
    assert res.higher[0, 0] == 0  # competition rank ignores ids


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_pytrec_eval_on_random_runs_with_ties(seed):
    rng = np.random.default_rng(seed)
    nq, nc = 30, 250
    q = torch.from_numpy(rng.integers(-2, 3, (nq, 3)).astype(np.float32))  # small integers: many exact ties
    c = torch.from_numpy(rng.integers(-2, 3, (nc, 3)).astype(np.float32))
    ids = [f"d{rng.integers(10**6)}_{i}" for i in range(nc)]
    rel = [np.sort(rng.choice(nc, rng.integers(1, 6), replace=False)) for _ in range(nq)]
    res = rank_relevant(q, c, rel, bounds=[0, 90, nc], tie_keys=tie_key(ids), block_size=7)
    scores = (q @ c.T).numpy().astype(float)
    measures = {"map", "map_cut_20", "ndcg_cut_10", "recall_1", "recall_5", "recall_10", "recall_20", "recall_100"}
    names = {
        "map": "map",
        "map@20": "map_cut_20",
        "ndcg@10": "ndcg_cut_10",
        "recall@1": "recall_1",
        "recall@5": "recall_5",
        "recall@10": "recall_10",
        "recall@20": "recall_20",
        "recall@100": "recall_100",
    }
    for pool, segs in ((range(nc), None), (range(90), [0]), (range(90, nc), [1])):
        run = {f"q{i}": {ids[j]: scores[i, j] for j in pool} for i in range(nq)}
        in_pool = [r[np.isin(r, list(pool))] for r in rel]
        qrels = {f"q{i}": {ids[j]: 1 for j in r} for i, r in enumerate(in_pool) if len(r)}
        ev = pytrec_eval.RelevanceEvaluator(qrels, measures | {"recip_rank"}).evaluate(run)
        mask = np.isin(res.rel, list(pool)) & (res.rel >= 0)
        ranks = np.where(mask, res.ranks(segs), np.inf)
        mine = rank_metrics(ranks, mask.sum(1))
        asked = [i for i in range(nq) if f"q{i}" in qrels]
        for ours, theirs in names.items():
            np.testing.assert_allclose(mine[ours][asked], [ev[f"q{i}"][theirs] for i in asked], atol=1e-12)
        np.testing.assert_allclose(reciprocal_rank(ranks)[asked], [ev[f"q{i}"]["recip_rank"] for i in asked])


def test_rank_distance():
    assert rank_distance(np.array([[1.0, 1.0, 1.0]]))[0] == 0  # oracle: all relevant tied at the top
    assert rank_distance(np.array([[2.0, 40.0, 7.0, np.inf]]))[0] == 38
    assert np.isnan(rank_distance(np.array([[5.0, np.inf]]))[0])  # one relevant item: undefined


def test_paired_test():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    same = paired_test(a, a.copy())
    assert same["p_value"] == 1.0 and same["mean_diff"] == 0.0
    better = paired_test(a + 0.05 + rng.normal(0, 0.01, 200), a, n_resamples=2000)
    assert better["p_value"] < 0.01 and better["mean_diff"] == pytest.approx(0.05, abs=0.005)
    noise = paired_test(a + rng.normal(0, 0.1, 200), a + rng.normal(0, 0.1, 200), n_resamples=2000)
    assert noise["p_value"] > 0.01
    b = a.copy()
    b[:3] = np.nan
    assert paired_test(a, b)["n"] == 197
    with pytest.raises(ValueError):
        paired_test(a, a[:10])


def test_paired_test_matches_the_exact_sign_flip_distribution_and_scipy():
    """Against all 2^12 sign patterns of 12 differences, and scipy's paired permutation test on real-sized data."""
    from itertools import product

    from scipy.stats import permutation_test

    rng = np.random.default_rng(1)
    d = rng.normal(0.3, 1.0, 12)
    sums = np.array([np.dot(signs, d) for signs in product((-1, 1), repeat=12)])
    exact = np.mean(np.abs(sums) >= abs(d.sum()) - 1e-12)
    assert paired_test(d, np.zeros(12), n_resamples=40000)["p_value"] == pytest.approx(exact, abs=0.01)
    a = rng.random(500)
    noise = rng.normal(0, 0.05, 500)
    b = a + noise - noise.mean() + 0.005  # z ~ 2.2: a p-value near 0.03, where Monte Carlo error shows
    ours = paired_test(a, b, n_resamples=20000)["p_value"]
    scipy_p = permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=20000, rng=np.random.default_rng(0),
    ).pvalue  # fmt: skip
    assert 0.005 < ours < 0.2 and ours == pytest.approx(scipy_p, abs=0.02)


@pytest.mark.slow
def test_agrees_with_ranx():
    """ranx's numba kernels take ~40 s to compile the first time, hence slow."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    rng = np.random.default_rng(3)
    nq, nc = 20, 120
    q, c = torch.randn(nq, 8), torch.randn(nc, 8)
    ids = [f"d{i:04d}" for i in range(nc)]
    rel = [np.sort(rng.choice(nc, rng.integers(1, 4), replace=False)) for _ in range(nq)]
    res = rank_relevant(q, c, rel, tie_keys=tie_key(ids))
    mine = rank_metrics(res.ranks(), (res.rel >= 0).sum(1))
    scores = (q @ c.T).numpy().astype(float)
    run = Run({f"q{i}": {ids[j]: scores[i, j] for j in range(nc)} for i in range(nq)})
    qrels = Qrels({f"q{i}": {ids[j]: 1 for j in r} for i, r in enumerate(rel)})
    theirs = ranx_evaluate(qrels, run, ["map", "ndcg@10", "mrr@10", "recall@10"])
    for m in ("map", "ndcg@10", "mrr@10", "recall@10"):
        assert np.mean(mine[m]) == pytest.approx(theirs[m], abs=1e-9)
