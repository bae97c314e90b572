"""Truncated-run retrieval (monolingual QA, BEIR, MIRACL): exact top-100 search of the dense model, BM25 or their
fusion, then nDCG@10, Recall@100 and MRR@10 per query with trec_eval's semantics.

Example::

    body, per_query = evaluate_retrieval(Encoder(load_encoder("e5-small")), [load_monoqa("iapp-th", root)])
    body["summary"]["ndcg@10"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ...data.evaluation.evalset import EvalSet
from ...encoders.encoding import Encoder
from ...infra.files import atomic_savefig
from ...retrieval.exact import exact_search, tie_key
from ...retrieval.search import RUN_DEPTH
from ..bm25 import bm25_search
from ..config import FUSION
from ..metrics import trec_eval_per_query
from . import fmt, md_table, mean_or_none

#: corpora up to this many texts are encoded in one call, larger ones ENCODE_BLOCK texts at a time: the embedding
#: cache's bookkeeping then holds one block's vectors beside the corpus matrix
ENCODE_AT_ONCE = 200_000
#: texts encoded per call in a corpus above ENCODE_AT_ONCE
ENCODE_BLOCK = 50_000


def search(
    enc: Encoder,
    queries: np.ndarray,
    texts: list[str],
    k: int = RUN_DEPTH,
    *,
    langs: list[str] | None = None,
    encode_at_once: int = ENCODE_AT_ONCE,
    encode_block: int = ENCODE_BLOCK,
    ids: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores, indices) by inner product (``langs``: the texts' languages, for centering), by a flat
    index's kernel (:func:`hybridir.retrieval.exact.exact_search`), so a run file of ``hybridir search`` and these
    runs agree on scores and ties (``ids``: the texts' ids, whose order breaks score ties as trec_eval does).
    Above ``encode_at_once`` texts the corpus is encoded ``encode_block`` texts at a
    time, so only one block of texts is being embedded at a time."""
    keys = tie_key(ids) if ids is not None else None
    if len(texts) <= encode_at_once:
        return exact_search(queries, enc(texts, "passage", langs), k, tie_keys=keys)
    passages = None
    for s in tqdm(range(0, len(texts), encode_block), desc="corpus blocks", disable=not enc.show_progress):
        emb = enc(texts[s : s + encode_block], "passage", langs and langs[s : s + encode_block])
        passages = np.empty((len(texts), emb.shape[1]), np.float32) if passages is None else passages
        passages[s : s + len(emb)] = emb
    return exact_search(queries, passages, k, tie_keys=keys)


#: a retriever: an EvalSet -> the top-RUN_DEPTH (scores, candidate indices) of every query, best first
Retriever = Callable[[EvalSet], tuple[np.ndarray, np.ndarray]]


Run = dict[str, dict[str, float]]  # trec-style run: query id -> {candidate id: score}


def dense_retriever(enc: Encoder, encode_at_once: int = ENCODE_AT_ONCE) -> Retriever:
    """Exact inner-product search over ``enc``'s embeddings (queries with the "query" prompt)."""
    return lambda es: search(
        enc,
        enc(es.query_texts, "query", es.query_langs),
        es.cand_texts,
        langs=es.cand_langs,
        encode_at_once=encode_at_once,
        ids=es.cand_ids,
    )


def bm25_retriever(es: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """BM25 over the set's candidates (:mod:`hybridir.evaluation.bm25`)."""
    return bm25_search(es.query_texts, es.cand_texts, RUN_DEPTH)


def retrieval_runs(es: EvalSet, retrievers: dict[str, Retriever], fusion: str | None = None) -> dict[str, Run]:
    """One run per retriever, plus ``"fused"`` (ranx.fuse of them all by ``FUSION[fusion]``) when asked."""
    runs = {}
    for name, retrieve in retrievers.items():
        scores, idx = retrieve(es)
        runs[name] = {qid: {es.cand_ids[j]: float(s) for j, s in zip(idx[i], scores[i], strict=True)}
                      for i, qid in enumerate(es.query_ids)}  # fmt: skip
    if fusion:
        from ranx import Run as RanxRun
        from ranx import fuse

        norm, method = FUSION[fusion]
        params = {"weights": [1 / len(runs)] * len(runs)} if method == "wsum" else {}
        runs["fused"] = fuse([RanxRun(r) for r in runs.values()], norm=norm, method=method, params=params).to_dict()
    return runs


def run_metrics(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, dict[str, float]]:
    """Per query: nDCG@10 and Recall@100 from pytrec_eval on the run, MRR@10 as pytrec_eval's reciprocal rank on
    the run cut to its top 10 in trec_eval's order (score, then candidate id, descending)."""
    top10 = {q: dict(sorted(r.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]) for q, r in run.items()}
    ev = trec_eval_per_query(qrels, run, {"ndcg_cut_10", "recall_100"})
    rr = trec_eval_per_query(qrels, top10, {"recip_rank"})
    return {q: {"ndcg@10": ev[q]["ndcg_cut_10"], "recall@100": ev[q]["recall_100"], "mrr@10": rr[q]["recip_rank"]}
            for q in ev}  # fmt: skip


def evaluate_retrieval(enc: Encoder | None, sets: list[EvalSet], *, encode_at_once: int = ENCODE_AT_ONCE,
                       fusion: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
    """nDCG@10, Recall@100 and MRR@10 (pytrec_eval on top-100 runs) per set, and their means.

    The dense run of ``enc``; BM25 when ``enc`` is None; with ``fusion`` (see ``FUSION``) the dense run, BM25 and
    their fusion, which is then the headline (``summary[metric]``) while every run's figures are kept under
    ``sets[name]["runs"]`` and ``summary["<run>/<metric>"]``.
    """
    retrievers: dict[str, Retriever] = {"dense": dense_retriever(enc, encode_at_once)} if enc else {}
    if enc is None or fusion:
        retrievers["bm25"] = bm25_retriever
    tables, per_query, summary = {}, {}, {}
    t0, encoded_before = time.perf_counter(), enc.seconds if enc else 0.0
    for es in sets:
        runs = retrieval_runs(es, retrievers, fusion)
        qrels = es.qrels_dict()
        cols = {}
        for name, run in runs.items():
            ev = run_metrics(qrels, run)
            qids = [qid for qid in es.query_ids if qid in ev]
            cols[name] = {m: np.array([ev[q][m] for q in qids]) for m in ("ndcg@10", "recall@100", "mrr@10")}
        head = cols[list(runs)[-1]]  # the fused run, or the only one
        lang = es.query_langs[0] if es.query_langs else None
        tables[es.name] = {"language": lang, "queries": len(qids), "corpus": len(es.cand_ids),
                           **{m: mean_or_none(v) for m, v in head.items()}}  # fmt: skip
        for m, v in head.items():
            summary[f"{es.name}/{m}"] = mean_or_none(v)
        per_query[f"monoqa/{es.name}"] = head["ndcg@10"]
        per_query[f"qids/{es.name}"] = np.array(qids)
        if len(runs) > 1:
            tables[es.name]["runs"] = {name: {m: mean_or_none(v) for m, v in c.items()} for name, c in cols.items()}
            for name, c in cols.items():
                summary |= {f"{es.name}/{name}/{m}": mean_or_none(v) for m, v in c.items()}
                per_query[f"{name}/{es.name}"] = c["ndcg@10"]
    for m in ("ndcg@10", "recall@100", "mrr@10"):
        summary[m] = mean_or_none([t[m] for t in tables.values() if t[m] is not None])
        for name in tables[sets[0].name].get("runs", {}):
            summary[f"{name}/{m}"] = mean_or_none([t["runs"][name][m] for t in tables.values()])
    encoding = (enc.seconds if enc else 0.0) - encoded_before  # search() encodes the corpus inside the loop
    scoring = time.perf_counter() - t0 - encoding
    return {"summary": summary, "sets": tables, "scoring_seconds": scoring}, per_query


def markdown(res: dict) -> list[str]:
    """results.md's body: every set (and run, with fusion) and the mean."""
    rows = [[f"{name} ({run})" if run else name, t["language"] or "-", str(t["queries"]), str(t["corpus"]),
             fmt(m["ndcg@10"]), fmt(m["recall@100"]), fmt(m["mrr@10"])]
            for name, t in res["sets"].items() for run, m in (t.get("runs") or {"": t}).items()]  # fmt: skip
    s = res["summary"]
    rows.append(["**mean**", "", "", "", fmt(s["ndcg@10"]), fmt(s["recall@100"]), fmt(s["mrr@10"])])
    return ["## Question-to-passage retrieval (top-100 runs, pytrec_eval)", "",
            *md_table(["set", "lang", "queries", "corpus", "nDCG@10", "Recall@100", "MRR@10"], rows)]  # fmt: skip


def plots(out_dir: Path, res: dict, plt: Any) -> list[Path]:
    """nDCG@10 per set."""
    fig, ax = plt.subplots(figsize=(1.2 * len(res["sets"]) + 2, 3.5))
    names = list(res["sets"])
    ax.bar(names, [res["sets"][n]["ndcg@10"] or 0 for n in names], color="tab:blue")
    ax.set_ylabel("nDCG@10")
    ax.set_ylim(0, 1)
    ax.set_title(res["model"]["name"])
    fig.tight_layout()
    path = atomic_savefig(fig, out_dir / "ndcg.png", dpi=120)
    plt.close(fig)
    return [path]
