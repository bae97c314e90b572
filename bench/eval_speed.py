"""Evaluation speed on XQuAD-R, measured side by side in one run on one encoder (default: e5-small).

(a) hybridir's full protocol (mono + all cross pairs + multi, with bias, reports) against the way a
    sentence-transformers user evaluates: one ``InformationRetrievalEvaluator`` per setting and pair, each one
    re-encoding its queries and its pool. Both are timed on ``--languages`` x ``--max-questions``; their
    measured costs per encoded text then price the full 11-language protocol (1190 questions, 13k sentences).
(b) full-protocol wall time over the time to encode the unique texts once (target <= 1.15).
(c) encoding throughput and model FLOPs utilisation on real (non-padding) tokens against a float32 matmul
    peak measured in this run.
(d) inference paths (``hybridir.encoders.encoding``) on the same texts, XQuAD-R candidate sentences and MIRACL-yo
    passages: texts/s of each path, its ratio to sentence-transformers fp32 (``model.encode``), timed in
    interleaved rounds (best round kept); faithfulness as cosine to fp32 and as the metric difference on real
    slices: XQuAD-R mono / cross / multi mAP (``--paths-languages``, complete pools) and MIRACL-yo nDCG@10
    (every query against a pool of the judged passages plus ``--miracl-sample`` random ones). ONNX Runtime
    fp32 / dynamic int8 are measured too with ``--onnx`` (not a hybridir path). The CPU's features, its kind and
    ``auto``'s choice on it are printed beside the table: its rows feed ``hybridir.encoders.encoding.FAITHFUL``.

Usage::

    .venv/bin/python bench/eval_speed.py --languages th en --max-questions 20 --threads 2
    .venv/bin/python bench/eval_speed.py --only-paths      # (d) only, prints a table
    .venv/bin/python bench/eval_speed.py --only-paths --paths torch-fp32 openvino-fp32 openvino-int8w \
        openvino-int8 --quality-paths torch-fp32 openvino-fp32 openvino-int8w openvino-int8 --cache-dir /tmp/emb
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
from hybridir.data.evaluation.lareqa import lareqa_dir, load_lareqa
from hybridir.data.evaluation.miracl import load_miracl
from hybridir.encoders.encoding import Encoder, choose_path, cpu_features, cpu_kind, installed
from hybridir.encoders.models import load_encoder
from hybridir.evaluation.evaluate import evaluate
from hybridir.evaluation.scoring.lareqa import evaluate_lareqa
from hybridir.evaluation.scoring.retrieval import evaluate_retrieval
from hybridir.infra.files import atomic_write_json

PATHS = ["torch-fp32", "torch-bf16", "openvino-fp32", "openvino-bf16", "openvino-int8w", "openvino-int8", "torch-int8"]


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


# ------------------------------------------------------------------------------------------ (d) inference paths
def onnx_paths(model, tmp: Path) -> dict:
    """ONNX Runtime fp32 and dynamic int8 (per-channel MatMul weights) forward functions, for measurement only."""
    import copy

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from hybridir.encoders.encoding import _TokenEmbeddings

    fp32, int8 = tmp / "model.onnx", tmp / "model-int8.onnx"
    ex = model.preprocess(["passage: example text", "short"])
    torch.onnx.export(_TokenEmbeddings(copy.deepcopy(model[0].auto_model)), (ex["input_ids"], ex["attention_mask"]),
                      str(fp32), input_names=["input_ids", "attention_mask"], output_names=["h"], opset_version=17,
                      dynamic_axes={k: {0: "b", 1: "s"} for k in ("input_ids", "attention_mask", "h")},
                      dynamo=False)  # fmt: skip
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])  # fmt: skip
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    out = {}
    for name, path in (("onnxruntime-fp32", fp32), ("onnxruntime-int8", int8)):
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def forward(feats, sess=sess):
            h = sess.run(None, {k: feats[k].numpy() for k in ("input_ids", "attention_mask")})[0]
            feats["token_embeddings"] = torch.from_numpy(h)
            for module in list(model)[1:]:
                feats = module(feats)
            return feats["sentence_embedding"]

        out[name] = forward
    return out


def compare_paths(model, args, folder: Path, root: Path) -> dict:
    """Section (d): speed and faithfulness of every inference path, interleaved on the same texts."""
    rng = np.random.default_rng(0)
    es = load_lareqa(folder, args.paths_languages, max_questions=args.max_questions_paths)
    mir = load_miracl("yo", data_dir=root, sample=args.miracl_sample)  # judged passages + a seeded random sample
    texts = {"xquad-r": [es.cand_texts[i] for i in rng.choice(len(es.cand_texts), args.n_texts, replace=False)],
             "miracl-yo": [mir.cand_texts[i] for i in rng.choice(len(mir.cand_texts), args.n_texts // 2,
                                                                 replace=False)]}  # fmt: skip
    encoders = {}
    for path in args.paths:
        backend, precision = path.split("-")
        t = time.perf_counter()
        enc = Encoder(model, backend=backend, precision=precision, show_progress=False)
        enc.encode(texts["xquad-r"][:8], "passage")  # export / compile / quantise: set-up, not throughput
        encoders[path] = (enc, time.perf_counter() - t)
    extra = {}
    if args.onnx:
        with tempfile.TemporaryDirectory() as tmp:
            extra = onnx_paths(model, Path(tmp))
        for name, fwd in extra.items():
            enc = Encoder(model, backend="torch", precision="bf16", show_progress=False)
            enc._forward, enc.backend, enc.precision = fwd, *name.split("-")
            encoders[name] = (enc, 0.0)
    rows = {name: {"setup_s": setup} for name, (_, setup) in encoders.items()}
    emb: dict[str, dict[str, np.ndarray]] = {}
    for r in range(args.rounds):  # interleaved; the order flips every round
        for name in list(encoders) if r % 2 == 0 else list(encoders)[::-1]:
            enc = encoders[name][0]
            for kind, tx in texts.items():
                t = time.perf_counter()
                emb.setdefault(name, {})[kind] = enc.encode(tx, "passage")
                rate = len(tx) / (time.perf_counter() - t)
                rows[name][f"{kind}_texts_per_s"] = max(rate, rows[name].get(f"{kind}_texts_per_s", 0.0))
    ref = "torch-fp32"
    for name, row in rows.items():
        for kind in texts:
            row[f"{kind}_ratio"] = row[f"{kind}_texts_per_s"] / rows[ref][f"{kind}_texts_per_s"]
            cos = (emb[name][kind] * emb[ref][kind]).sum(1)
            row[f"{kind}_cos_mean"], row[f"{kind}_cos_min"] = float(cos.mean()), float(cos.min())
    print("speed (quality follows):", json.dumps(rows), flush=True)  # the slow quality runs can be cut short
    quality_paths = [p for p in args.quality_paths if p in encoders]
    for name in quality_paths:  # metrics on real slices, each path from scratch unless --cache-dir
        enc = Encoder(model, backend=encoders[name][0].backend, precision=encoders[name][0].precision,
                      show_progress=False, cache_dir=args.cache_dir)  # fmt: skip
        res, _ = evaluate_lareqa(enc, es, show_progress=False)
        rows[name] |= {f"xquad_{k}": res["summary"][f"{k}_map"] for k in ("mono", "cross", "multi")}
        res, _ = evaluate_retrieval(enc, [mir])
        rows[name]["miracl_ndcg10"] = res["summary"]["ndcg@10"]
    for name in quality_paths:
        for key in ("xquad_mono", "xquad_cross", "xquad_multi", "miracl_ndcg10"):
            rows[name][f"{key}_diff"] = rows[name][key] - rows[ref][key]
    features = cpu_features()
    cpu = {"kind": cpu_kind(features), "features": sorted(features), "auto": choose_path(installed(), features),
           "threads": torch.get_num_threads()}  # fmt: skip
    return {"cpu": cpu, "texts": {k: len(v) for k, v in texts.items()},
            "xquad_slice": {"languages": args.paths_languages, "questions": len(es.query_ids),
                            "candidates": len(es.cand_ids)},
            "miracl_slice": {"queries": len(mir.query_ids), "passages": len(mir.cand_ids)}, "paths": rows}  # fmt: skip


def paths_table(d: dict) -> str:
    lines = ["| path | XQuAD-R texts/s | ratio | MIRACL texts/s | ratio | cos mean / min | mAP diff mono / cross / "
             "multi | MIRACL nDCG@10 diff |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in d["paths"].items():
        rated = "miracl_ndcg10_diff" in r
        q = " / ".join(f"{r[f'xquad_{k}_diff']:+.4f}" for k in ("mono", "cross", "multi")) if rated else "-"
        m = f"{r['miracl_ndcg10_diff']:+.4f}" if rated else "-"
        cos = [f"{min(r[f'xquad-r_cos_{k}'], r[f'miracl-yo_cos_{k}']):.5f}" for k in ("mean", "min")]
        lines.append(
            f"| {name} | {r['xquad-r_texts_per_s']:.1f} | {r['xquad-r_ratio']:.2f}x | "
            f"{r['miracl-yo_texts_per_s']:.1f} | {r['miracl-yo_ratio']:.2f}x | {' / '.join(cos)} | "
            f"{q} | {m} |"
        )
    cpu = d["cpu"]
    lines.append(
        f"\nCPU kind {cpu['kind']} (features: {' '.join(cpu['features']) or 'none of interest'}; "
        f"{cpu['threads']} threads); auto chooses {cpu['auto']} here"
    )
    return "\n".join(lines)


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
    ap.add_argument("--only-paths", action="store_true", help="run section (d) only")
    ap.add_argument("--skip-paths", action="store_true", help="skip section (d)")
    ap.add_argument("--paths", nargs="+", default=PATHS, help="(d) paths to time")
    ap.add_argument(
        "--quality-paths",
        nargs="+",
        default=["torch-fp32", "openvino-bf16", "torch-bf16", "openvino-int8w", "openvino-int8"],
        help="(d) paths whose metrics are computed on the real slices",
    )
    ap.add_argument("--onnx", action="store_true", help="(d) also time ONNX Runtime fp32 / int8 (needs onnxruntime)")
    ap.add_argument("--n-texts", type=int, default=600, help="(d) XQuAD-R sentences timed (half as many MIRACL)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--paths-languages", nargs="+", default=["ar", "de", "en", "th", "zh"])
    ap.add_argument("--max-questions-paths", type=int, default=200)
    ap.add_argument("--cache-dir", type=Path, help="(d) embedding cache of the quality runs (reruns skip work)")
    ap.add_argument("--miracl-sample", type=int, default=3000, help="(d) random MIRACL passages beside the judged")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = resolve_data_dir(args.data_dir)
    folder = lareqa_dir("xquad-r", root)
    model = load_encoder(args.model)
    if not args.skip_paths:
        paths = compare_paths(model, args, folder, root)
        print(json.dumps(paths, indent=2))
        print(paths_table(paths))
        if args.out:
            atomic_write_json(args.out.with_name(args.out.stem + "_paths.json"), paths)
        if args.only_paths:
            return
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
        res = evaluate(
            model,
            "xquad-r",
            data_dir=folder,
            out_dir=Path(tmp),
            languages=args.languages,
            max_questions=args.max_questions,
            batch_size=args.batch_size,
            show_progress=False,
            backend="torch",
            precision="fp32",
        )  # (a)-(c) compare like with like: the fp32 reference
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
