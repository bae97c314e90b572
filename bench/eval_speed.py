"""Evaluation speed on XQuAD-R, measured side by side in one run on one encoder (default: e5-small).

(a) hybridir's full protocol (mono + all cross pairs + multi, with bias, reports) against the way a
    sentence-transformers user evaluates: one ``InformationRetrievalEvaluator`` per setting and pair, each one
    re-encoding its queries and its pool. Both are timed on ``--languages`` x ``--max-questions``; their
    measured costs per encoded text then price the full 11-language protocol (1190 questions, 13k sentences).
(b) full-protocol wall time over the time to encode the unique texts once (target <= 1.15).
(c) encoding throughput and model FLOPs utilisation on real (non-padding) tokens against a float32 matmul
    peak measured in this run.

Usage::

    .venv/bin/python bench/eval_speed.py --languages th en --max-questions 20 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hybridir.data import resolve_data_dir
from hybridir.data.lareqa import lareqa_dir, load_lareqa
from hybridir.evaluation import evaluate
from hybridir.files import atomic_write_json
from hybridir.models import load_encoder


def matmul_peak(seconds: float = 3.0, n: int = 1024) -> float:
    """Best float32 GEMM rate (FLOP/s) on this machine and thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t))
    return best


def model_flops(model, texts: list[str], prompt_name: str) -> tuple[int, float]:
    """(real tokens, forward FLOPs) for ``texts``: 2 x non-embedding parameters per token plus attention
    scores and mixing (4 x layers x length x hidden per token), padding excluded."""
    auto = model[0].auto_model
    cfg = auto.config
    params = sum(p.numel() for n, p in auto.named_parameters() if "embeddings" not in n)
    prompt = (model.prompts or {}).get(prompt_name, "")
    lengths = np.array([len(ids) for ids in model.tokenizer([prompt + t for t in texts], truncation=True,
                                                            max_length=model.max_seq_length)["input_ids"]])  # fmt: skip
    flops = 2 * params * lengths.sum() + 4 * cfg.num_hidden_layers * cfg.hidden_size * (lengths**2).sum()
    return int(lengths.sum()), float(flops)


def st_baseline(model, es, languages: list[str], batch_size: int) -> dict:
    """One InformationRetrievalEvaluator per setting and pair (X->Y for all X, Y; X->all), as the
    sentence-transformers docs evaluate retrieval; each call re-encodes its queries and its pool."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    calls, texts, start = 0, 0, time.perf_counter()
    for x in languages:
        queries = {es.query_ids[i]: es.query_texts[i] for i in es.queries_of(x)}
        for pool_langs in [[y] for y in languages] + [languages]:
            pool = es.pool(pool_langs)
            corpus = {es.cand_ids[c]: es.cand_texts[c] for c in pool}
            rel = {es.query_ids[i]: {es.cand_ids[c] for c in es.relevant(i, pool_langs)} for i in es.queries_of(x)}
            ev = InformationRetrievalEvaluator(queries, corpus, rel, map_at_k=[len(corpus)], ndcg_at_k=[10],
                                               mrr_at_k=[10], batch_size=batch_size, query_prompt_name="query",
                                               corpus_prompt_name="passage", write_csv=False,
                                               show_progress_bar=False)  # fmt: skip
            ev(model)
            calls += 1
            texts += len(queries) + len(corpus)
    return {"seconds": time.perf_counter() - start, "evaluator_calls": calls, "texts_encoded": texts}


def st_protocol_texts(nq: dict[str, int], npool: dict[str, int]) -> int:
    """Texts the per-pair evaluation encodes for a full protocol over these languages (X->Y for all X, Y, and
    X->all for all X), each call encoding its queries and its pool."""
    langs = list(nq)
    return sum(nq[x] + npool[y] for x in langs for y in langs) + sum(nq[x] + sum(npool.values()) for x in langs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="e5-small")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--languages", nargs="+", default=["th", "en"])
    ap.add_argument("--max-questions", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = lareqa_dir("xquad-r", resolve_data_dir(args.data_dir))
    model = load_encoder(args.model)
    es = load_lareqa(folder, args.languages, max_questions=args.max_questions)
    q_texts, c_texts = list(dict.fromkeys(es.query_texts)), list(dict.fromkeys(es.cand_texts))
    model.encode(c_texts[:64], prompt_name="passage", batch_size=args.batch_size)  # warm-up

    peak = matmul_peak()
    t = time.perf_counter()
    model.encode(q_texts, prompt_name="query", batch_size=args.batch_size, normalize_embeddings=True)
    model.encode(c_texts, prompt_name="passage", batch_size=args.batch_size, normalize_embeddings=True)
    encode_once = time.perf_counter() - t
    tokens_q, flops_q = model_flops(model, q_texts, "query")
    tokens_c, flops_c = model_flops(model, c_texts, "passage")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = evaluate(model, "xquad-r", data_dir=folder, out_dir=Path(tmp), languages=args.languages,
                       max_questions=args.max_questions, batch_size=args.batch_size, show_progress=False)  # fmt: skip
        full = time.perf_counter() - t
    n_texts = len(q_texts) + len(c_texts)
    per_text = encode_once / n_texts
    out = {
        "config": vars(args)
        | {
            "data_dir": str(folder),
            "out": str(args.out) if args.out else None,
            "threads_used": torch.get_num_threads(),
        },  # fmt: skip
        "model_fingerprint": res["model"]["fingerprint"],
        "unique_texts": n_texts,
        "encode_once_seconds": encode_once,
        "full_protocol_seconds": full,
        "b_full_over_encode": full / encode_once,
        "c_texts_per_second": n_texts / encode_once,
        "c_real_tokens_per_second": (tokens_q + tokens_c) / encode_once,
        "c_model_tflops": (flops_q + flops_c) / encode_once / 1e12,
        "c_matmul_peak_tflops": peak / 1e12,
        "c_mfu": (flops_q + flops_c) / encode_once / peak,
        "summary": {k: res["summary"][k] for k in ("mono_map", "cross_map", "multi_map")},
    }
    if not args.skip_baseline:
        if len(args.languages) < 2:
            raise SystemExit("the baseline needs two languages (--languages X Y)")
        base = st_baseline(model, es, args.languages, args.batch_size)
        st_per_text = base["seconds"] / base["texts_encoded"]
        out["a_st_baseline_measured"] = base | {"seconds_per_text": st_per_text}
        out["a_speedup_measured"] = base["seconds"] / full
        # the full 11-language protocol, both sides priced by their measured cost per encoded text (a lower
        # bound for the baseline, whose per-query metric loops grow with the pool)
        full_es = load_lareqa(folder)  # all 1190 questions in all 11 languages
        nq = {x: len(full_es.queries_of(x)) for x in full_es.languages}
        npool = {y: len(full_es.pool([y])) for y in full_es.languages}
        ours = (sum(nq.values()) + sum(npool.values())) * per_text * full / encode_once
        st_full = st_protocol_texts(nq, npool) * st_per_text
        out["a_full_protocol_estimate"] = {"languages": len(nq), "st_texts_encoded": st_protocol_texts(nq, npool),
                                           "hybridir_texts_encoded": sum(nq.values()) + sum(npool.values()),
                                           "st_seconds": st_full, "hybridir_seconds": ours,
                                           "speedup": st_full / ours}  # fmt: skip
    print(json.dumps(out, indent=2))
    if args.out:
        atomic_write_json(args.out, out)


if __name__ == "__main__":
    main()
