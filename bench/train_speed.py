"""Training speed and memory: hybridir's loop against plain sentence-transformers training, side by side.

Each configuration runs in its own subprocess (so peak RSS is its own) on the same model, NTREX X-X pairs and
batch size:
- ``hybridir``: ``hybridir.training.loop.train`` (frozen word embedding by default, 32/128-token queries/passages);
- ``st``: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` (one max length for both columns);
- ``gradcache``: hybridir with ``--gc-batch`` (default 256) through GradCache mini-batches, for peak memory.
Useful MFU counts real (non-padding) tokens only: 6 x non-embedding parameters x tokens plus attention, per step,
against a float32 matmul peak measured in the same run. Times exclude the first (warm-up) step.

    .venv/bin/python bench/train_speed.py --steps 6 --batch-size 32            # the issue's setting
Equal quality: both trained models are then evaluated on an XQuAD-R slice (``--quality-languages``,
``--quality-questions``; 0 skips it) and the mAP differences printed.
    .venv/bin/python bench/train_speed.py --steps 3 --batch-size 8 --max-passage-length 64 --gc-batch 64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def matmul_peak(threads: int, n: int = 2048, reps: int = 10) -> float:
    """float32 GFLOP/s of an n x n matmul with ``threads`` threads (best of ``reps``)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def run_hybridir(args: argparse.Namespace, batch: int, mini: int | None) -> dict:
    from hybridir.training.loop import TrainConfig, train

    out = Path(tempfile.mkdtemp(prefix="bench-hybridir-"))
    cfg = TrainConfig(model=args.model, languages=args.languages.split(","), sampler="xx", steps=args.steps,
                      batch_size=batch, mini_batch_size=mini, max_query_length=args.max_query_length,
                      max_passage_length=args.max_passage_length, dev_fraction=0.0, save_every=10**6,
                      out=str(out), show_progress=False)  # fmt: skip
    train(cfg)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()][1:]
    sec = sum(r["seconds"] for r in log) / len(log)
    return {
        "seconds_per_step": sec,
        "pairs_per_second": batch / sec,
        "tokens_per_step": sum(r["tokens"] for r in log) / len(log),
        "loss_last": log[-1]["loss"],
        "model_dir": str(out / "final"),
    }


def run_st(args: argparse.Namespace) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from hybridir.data.training.parallel import load_ntrex
    from hybridir.encoders.models import load_encoder
    from hybridir.training.loop import TrainConfig

    data = load_ntrex(args.languages.split(","))
    lang = data.languages[0]
    rows = [data.example(i, lang, lang) for i in range(len(data.items))]
    ds = Dataset.from_dict({"query": [r.query for r in rows], "passage": [r.passage for r in rows]})
    model = load_encoder(args.model, device="cpu", max_seq_length=args.max_passage_length)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    targs = SentenceTransformerTrainingArguments(
        tempfile.mkdtemp(prefix="bench-st-"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=TrainConfig.lr,  # the same recipe as hybridir's side (MNRL's scale 20 = temperature 0.05)
        warmup_ratio=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        prompts={"query": model.prompts["query"], "passage": model.prompts["passage"]},
    )
    torch.manual_seed(0)
    SentenceTransformerTrainer(model=model, args=targs, train_dataset=ds, loss=MultipleNegativesRankingLoss(model),
                               callbacks=[Timer()]).train()  # fmt: skip
    sec = sum(times[1:]) / max(1, len(times) - 1)
    model_dir = Path(targs.output_dir) / "final"
    model.save(str(model_dir))
    return {"seconds_per_step": sec, "pairs_per_second": args.batch_size / sec, "model_dir": str(model_dir)}


def quality(model_dir: str, args: argparse.Namespace) -> dict:
    """XQuAD-R mAP of a trained model on a slice (complete pools of the chosen languages)."""
    from hybridir.evaluation.evaluate import evaluate

    langs = args.quality_languages.split(",")
    res = evaluate(model_dir, "xquad-r", languages=langs, max_questions=args.quality_questions, plots=False,
                   show_progress=False)  # fmt: skip
    return {k: res["summary"][k] for k in ("mono_map", "cross_map", "multi_map")}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "hybridir":
        res = run_hybridir(args, args.batch_size, None)
    elif args.child == "gradcache":
        res = run_hybridir(args, args.gc_batch, args.gc_mini_batch)
    else:
        res = run_st(args)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


def useful_flops(model_name: str, tokens: float, seq: int) -> float:
    """6 x non-embedding params x tokens (forward + backward) + attention 12 x layers x d x seq x tokens."""
    from hybridir.encoders.models import load_encoder

    model = load_encoder(model_name, device="cpu")
    auto = model[0].auto_model
    emb = sum(p.numel() for p in auto.embeddings.parameters())
    n = sum(p.numel() for p in auto.parameters()) - emb
    cfg = auto.config
    return 6 * n * tokens + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq * tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="e5-small")
    ap.add_argument("--languages", default="en,de")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-query-length", type=int, default=32)
    ap.add_argument("--max-passage-length", type=int, default=128)
    ap.add_argument("--gc-batch", type=int, default=256)
    ap.add_argument("--gc-mini-batch", type=int, default=32)
    ap.add_argument("--gc-steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma list of configurations to skip: hybridir,st,gradcache")
    ap.add_argument("--out", default="runs/bench_train_speed")
    ap.add_argument("--quality-languages", default="en,de", help="XQuAD-R languages for the equal-quality check")
    ap.add_argument("--quality-questions", type=int, default=200, help="questions per language (0: skip the check)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    results: dict = {"args": vars(args), "matmul_peak_gflops": matmul_peak(args.threads)}
    for name in ("hybridir", "st", "gradcache"):
        if name in args.skip.split(","):
            continue
        argv = [sys.executable, __file__, "--child", name] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("child", "skip", "out")
        ]
        if name == "gradcache":
            argv.append(f"--steps={args.gc_steps}")
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        results[name] = json.loads(line[7:]) if line else {"error": proc.stderr[-2000:]}
        print(name, results[name], flush=True)
    hyb = results.get("hybridir", {})
    if "tokens_per_step" in hyb:
        avg_seq = hyb["tokens_per_step"] / (2 * args.batch_size)
        flops = useful_flops(args.model, hyb["tokens_per_step"], avg_seq)
        hyb["useful_mfu"] = flops / hyb["seconds_per_step"] / 1e9 / results["matmul_peak_gflops"]
    if "pairs_per_second" in hyb and "pairs_per_second" in results.get("st", {}):
        results["speedup_vs_st"] = hyb["pairs_per_second"] / results["st"]["pairs_per_second"]
    if args.quality_questions and "model_dir" in hyb and "model_dir" in results.get("st", {}):
        for name in ("hybridir", "st"):
            results[name]["xquad_r"] = quality(results[name]["model_dir"], args)
        results["map_diff_vs_st"] = {k: hyb["xquad_r"][k] - results["st"]["xquad_r"][k] for k in hyb["xquad_r"]}
    from hybridir.infra.files import atomic_write_json, atomic_write_text

    out = Path(args.out)
    atomic_write_json(out / "train_speed.json", results)
    rows = ["| configuration | s/step | pairs/s | peak RSS MB |", "|---|---|---|---|"]
    for name in ("hybridir", "st", "gradcache"):
        r = results.get(name, {})
        if "seconds_per_step" in r:
            rows.append(
                f"| {name} | {r['seconds_per_step']:.2f} | {r['pairs_per_second']:.2f} | {r['peak_rss_mb']:.0f} |"
            )
    nan = float("nan")
    if "map_diff_vs_st" in results:
        rows.append(f"\nXQuAD-R mAP after the same steps ({args.quality_languages}, {args.quality_questions} questions "
                    "per language, complete pools), hybridir - ST: "
                    + ", ".join(f"{k} {v:+.4f}" for k, v in results["map_diff_vs_st"].items()))  # fmt: skip
    rows.append(
        f"\nmatmul peak {results['matmul_peak_gflops']:.0f} GFLOP/s; useful MFU (hybridir) "
        f"{hyb.get('useful_mfu', nan):.1%}; speed-up vs ST {results.get('speedup_vs_st', nan):.2f}x"
    )
    atomic_write_text(out / "train_speed.md", "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
