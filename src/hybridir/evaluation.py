"""Evaluation harness: the LAReQA protocol (XQuAD-R, MLQA-R) and monolingual / BEIR / MIRACL retrieval.

Every unique text is encoded once per model (queries with the "query" prompt, candidates with "passage"),
optionally through an on-disk cache, and all settings reuse those embeddings: monolingual X->X, cross-lingual
X->Y and multilingual X->all are filters over the candidate languages of one score pass (see ``metrics``).

Example::

    from hybridir.evaluation import evaluate
    res = evaluate("e5-small", "xquad-r", languages=["en", "de"], max_questions=100, out_dir=Path("runs/x"))
    res["summary"]["multi_map"]
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .bm25 import DESCRIPTION as BM25
from .bm25 import bm25_search
from .data import resolve_data_dir
from .data.beir import load_beir
from .data.evalset import EvalSet
from .data.lareqa import LAREQA_DIRS, lareqa_dir, load_lareqa
from .data.miracl import load_miracl, parse_miracl_name
from .data.monoqa import MONOQA_SETS, load_monoqa
from .encoding import Encoder
from .errors import ConfigError
from .metrics import RANK_METRICS, rank_distance, rank_metrics, rank_relevant, tie_key, trec_eval_per_query

#: retrieval depth of truncated runs (monolingual QA, BEIR, MIRACL): enough for Recall@100
RUN_DEPTH = 100
#: corpora larger than this are encoded in shards into a faiss index instead of one in-memory matrix
FAISS_THRESHOLD = 200_000
SHARD_SIZE = 50_000


# ----------------------------------------------------------------------------------------------- LAReQA
def _mean(values: list[float] | np.ndarray) -> float | None:
    """NaN-ignoring mean as a JSON-friendly float (None when nothing is defined)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


def _table(per_query: dict[str, np.ndarray]) -> dict[str, float | None]:
    out: dict[str, float | None] = {m: _mean(v) for m, v in per_query.items()}
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
    q = enc(es.query_texts, "query")
    c = enc(texts, "passage")[perm]
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
        bias[x] = {"rank_distance": _mean(dist), "top10_query_lang_share": _mean(own),
                   "top10_unbiased_share": pool_share.get(x),
                   "top10_language_mix": {y: float((top_lang == y).mean()) for y in langs}}  # fmt: skip
    scoring = time.perf_counter() - t0

    summary: dict[str, float | None] = {}
    pairs = [cross[x][y] for x in cross for y in cross[x]]
    for metric in RANK_METRICS:
        summary[f"mono_{metric}"] = _mean([t[metric] for t in mono.values() if t[metric] is not None])
        summary[f"cross_{metric}"] = _mean([t[metric] for t in pairs if t[metric] is not None])
        summary[f"multi_{metric}"] = _mean([t[metric] for t in multi.values() if t[metric] is not None])
    all_q = np.concatenate([per_query[f"qids/{x}"] for x in bias]) if bias else np.array([])
    summary["rank_distance"] = _mean(np.concatenate(distances)) if distances else None
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


# ------------------------------------------------------------------------------- truncated-run retrieval
def search(
    enc: Encoder,
    queries: np.ndarray,
    texts: list[str],
    k: int = RUN_DEPTH,
    *,
    faiss_threshold: int = FAISS_THRESHOLD,
    shard_size: int = SHARD_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores, indices) by inner product. Above ``faiss_threshold`` documents the corpus is
    encoded shard by shard into a faiss flat index, so only one shard of texts is being embedded at a time."""
    k = min(k, len(texts))
    if len(texts) <= faiss_threshold:
        c = torch.from_numpy(enc(texts, "passage"))
        scores, idx = [], []
        for s in range(0, len(queries), 1024):
            top = torch.topk(torch.from_numpy(queries[s : s + 1024]) @ c.T, k, dim=1)
            scores.append(top.values.numpy())
            idx.append(top.indices.numpy())
        return np.vstack(scores), np.vstack(idx)
    import faiss

    index = None
    for s in tqdm(range(0, len(texts), shard_size), desc="corpus shards", disable=not enc.show_progress):
        emb = np.ascontiguousarray(enc(texts[s : s + shard_size], "passage"))
        index = index or faiss.IndexFlatIP(emb.shape[1])
        index.add(emb)
    scores, idx = index.search(np.ascontiguousarray(queries), k)
    return scores, idx


#: a retriever: an EvalSet -> the top-RUN_DEPTH (scores, candidate indices) of every query, best first
Retriever = Callable[[EvalSet], tuple[np.ndarray, np.ndarray]]
Run = dict[str, dict[str, float]]  # trec-style run: query id -> {candidate id: score}
#: ``fusion`` choices -> (ranx normalisation, ranx method). "bm25": per-query min-max normalised dense and BM25
#: scores summed with equal weights, the normalised form of MIRACL's BM25 + mDPR interpolation; "bm25-rrf":
#: reciprocal rank fusion (k = 60), which ignores scores altogether
FUSION = {"bm25": ("min-max", "wsum"), "bm25-rrf": (None, "rrf")}


def dense_retriever(enc: Encoder, faiss_threshold: int = FAISS_THRESHOLD) -> Retriever:
    """Exact inner-product search over ``enc``'s embeddings (queries with the "query" prompt)."""
    return lambda es: search(enc, enc(es.query_texts, "query"), es.cand_texts, faiss_threshold=faiss_threshold)


def bm25_retriever(es: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """BM25 over the set's candidates (:mod:`hybridir.bm25`)."""
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


def evaluate_retrieval(enc: Encoder | None, sets: list[EvalSet], *, faiss_threshold: int = FAISS_THRESHOLD,
                       fusion: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
    """nDCG@10, Recall@100 and MRR@10 (pytrec_eval on top-100 runs) per set, and their means.

    The dense run of ``enc``; BM25 when ``enc`` is None; with ``fusion`` (see ``FUSION``) the dense run, BM25 and
    their fusion, which is then the headline (``summary[metric]``) while every run's figures are kept under
    ``sets[name]["runs"]`` and ``summary["<run>/<metric>"]``.
    """
    retrievers: dict[str, Retriever] = {"dense": dense_retriever(enc, faiss_threshold)} if enc else {}
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
                           **{m: _mean(v) for m, v in head.items()}}  # fmt: skip
        for m, v in head.items():
            summary[f"{es.name}/{m}"] = _mean(v)
        per_query[f"monoqa/{es.name}"] = head["ndcg@10"]
        per_query[f"qids/{es.name}"] = np.array(qids)
        if len(runs) > 1:
            tables[es.name]["runs"] = {name: {m: _mean(v) for m, v in c.items()} for name, c in cols.items()}
            for name, c in cols.items():
                summary |= {f"{es.name}/{name}/{m}": _mean(v) for m, v in c.items()}
                per_query[f"{name}/{es.name}"] = c["ndcg@10"]
    for m in ("ndcg@10", "recall@100", "mrr@10"):
        summary[m] = _mean([t[m] for t in tables.values() if t[m] is not None])
        for name in tables[sets[0].name].get("runs", {}):
            summary[f"{name}/{m}"] = _mean([t["runs"][name][m] for t in tables.values()])
    encoding = (enc.seconds if enc else 0.0) - encoded_before  # search() encodes the corpus inside the loop
    scoring = time.perf_counter() - t0 - encoding
    return {"summary": summary, "sets": tables, "scoring_seconds": scoring}, per_query


# ------------------------------------------------------------------------------------------ entry point
def load_eval_data(dataset: str, data_dir: Path | None = None, languages: list[str] | None = None,
                   max_questions: int | None = None) -> tuple[str, list[EvalSet]]:  # fmt: skip
    """(kind, sets) for a dataset name; kind is "lareqa" or "retrieval"."""
    if dataset in LAREQA_DIRS:
        folder = Path(data_dir) if data_dir and any(Path(data_dir).glob("*.json")) else None
        folder = folder or lareqa_dir(dataset, resolve_data_dir(data_dir))
        return "lareqa", [load_lareqa(folder, languages, max_questions=max_questions, name=dataset)]
    if dataset == "monoqa" or dataset in MONOQA_SETS:
        names = list(MONOQA_SETS) if dataset == "monoqa" else [dataset]
        if languages:
            names = [n for n in names if MONOQA_SETS[n][2] in languages or n in languages]
            if not names:
                raise ConfigError(
                    f"no monolingual set in languages {languages}; sets: "
                    + ", ".join(f"{n} ({v[2]})" for n, v in MONOQA_SETS.items())
                )
        root = resolve_data_dir(data_dir)
        return "retrieval", [load_monoqa(n, root, max_questions=max_questions) for n in names]
    if dataset.startswith("beir:"):
        folder = Path(dataset[5:]).expanduser()
        split = "test" if (folder / "qrels" / "test.tsv").is_file() else "dev"
        return "retrieval", [load_beir(folder, split, max_questions=max_questions)]
    if (miracl := parse_miracl_name(dataset)) is not None:  # miracl-judged: a smaller pool, named as such
        lang, sample = miracl
        return "retrieval", [load_miracl(lang, data_dir=data_dir, max_questions=max_questions, sample=sample)]
    raise ConfigError(
        f"unknown dataset {dataset!r}: use xquad-r, mlqa-r, monoqa, one of {', '.join(MONOQA_SETS)}, "
        "beir:<dir>, miracl:<lang> or miracl-judged:<lang>[:<N>]"
    )


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "sentence-transformers", "hybridir"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    """HEAD of the checkout this module runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _model_name(model: Any) -> str:
    card = getattr(model, "model_card_data", None)
    return str(getattr(card, "base_model", None) or getattr(model[0], "auto_model", model).name_or_path)


def evaluate(
    model: str | Any = "e5-small",
    dataset: str = "xquad-r",
    *,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    languages: list[str] | None = None,
    max_questions: int | None = None,
    batch_size: int = 64,
    with_context: bool = False,
    cache_dir: Path | None = None,
    plots: bool = True,
    show_progress: bool = True,
    backend: str = "auto",
    precision: str = "auto",
    fusion: str | None = None,
    seen_languages: list[str] | None = None,
    in_domain_topics: list[str] | None = None,
) -> dict:
    """Evaluate ``model`` on ``dataset``; write the run directory when ``out_dir`` is given; return results.json.

    ``dataset``: "xquad-r", "mlqa-r", "monoqa" (all five sets), one monolingual set by name, "beir:<dir>",
    "miracl:<lang>" (local official files, else the hub), "miracl-judged:<lang>[:<N>]" (a smaller study pool, not
    MIRACL), "flores" (FLORES-200 bitext retrieval X <-> English in 205 languages, :mod:`hybridir.bitext`;
    ``seen_languages`` / ``in_domain_topics`` override the groups a hybridir-trained model records; there
    ``max_questions`` takes N sentences spread over the split, whose rows are grouped by topic).
    ``max_questions`` keeps the first N question ids (pools stay complete).
    ``model="bm25"``: the BM25 baseline (:mod:`hybridir.bm25`) on retrieval sets. ``fusion`` ("bm25" or
    "bm25-rrf", see ``FUSION``): the dense model, BM25 and their fusion, side by side in one results.json.
    ``backend`` / ``precision``: the inference path (:mod:`hybridir.encoding`; ``auto`` = the fast one where it
    is faithful); results.json records the path used under ``config.encoder``.
    """
    start = time.perf_counter()
    if dataset == "flores":  # bitext in 205 languages, not EvalSets (bad data fails before the model loads)
        from .bitext import load_flores_task

        ref = model if isinstance(model, str | Path) else None
        flores = load_flores_task(ref, languages, data_dir, seen_languages, in_domain_topics, max_questions)
        kind, sets = "flores", []
    else:
        kind, sets = load_eval_data(dataset, data_dir, languages, max_questions)
    bm25_only = isinstance(model, str) and model == "bm25"
    if (bm25_only or fusion) and kind != "retrieval":
        raise ConfigError(f"BM25 and --fusion need a retrieval dataset (monoqa, beir:, miracl:), not {dataset!r}")
    if fusion and (bm25_only or fusion not in FUSION):
        raise ConfigError(f"--fusion {fusion}: use one of {', '.join(FUSION)} together with a dense --model")
    if bm25_only:
        name, enc = "bm25", None
    else:
        if isinstance(model, str | Path):
            from .models import load_encoder

            name, model = str(model), load_encoder(str(model))
        else:
            name = _model_name(model)
        enc = Encoder(model, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress,
                      backend=backend, precision=precision)  # fmt: skip
    if kind == "lareqa":
        body, per_query = evaluate_lareqa(enc, sets[0], with_context=with_context, show_progress=show_progress)
    elif kind == "flores":
        from .bitext import evaluate_flores

        body, per_query = evaluate_flores(enc, flores, show_progress=show_progress)
    else:
        body, per_query = evaluate_retrieval(enc, sets, fusion=fusion)
    model_config = {"max_seq_length": model.max_seq_length, "similarity": model.similarity_fn_name,
                    "normalize": enc.normalize, "encoder": enc.describe()} if enc else {"encoder": BM25}  # fmt: skip
    scoring = body.pop("scoring_seconds")
    results = {
        "dataset": dataset,
        "summary": body.pop("summary"),
        "config": {
            "dataset": dataset,
            "data_dir": str(data_dir) if data_dir else None,
            "languages": languages,
            "max_questions": max_questions,
            "batch_size": batch_size,
            "with_context": with_context,
            "cache_dir": str(cache_dir) if cache_dir else None,
            "fusion": fusion,
            "seen_languages": seen_languages,
            "in_domain_topics": in_domain_topics,
            "torch_threads": torch.get_num_threads(),
            **model_config,
        },  # fmt: skip
        "model": {"name": name, "fingerprint": enc.fingerprint if enc else None},
        "versions": _versions(),
        "git_commit": git_commit(),
        "timing": {
            "encode_seconds": enc.seconds if enc else 0.0,
            "scoring_seconds": scoring,
            "total_seconds": time.perf_counter() - start,
            "texts_encoded": enc.encoded if enc else 0,
            "texts_from_cache": enc.from_cache if enc else 0,
        },  # fmt: skip
        **body,
    }
    if out_dir is not None:
        from .report import write_run

        write_run(Path(out_dir), results, per_query, plots=plots)
    return results
