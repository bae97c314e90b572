"""Sharded encoding: ``torchrun --nproc_per_node 2`` (gloo, CPU) against one process, on a real MIRACL-yo slice.

Runs the same command twice, as a user would: once in one process, once as ``--ranks`` ranks under torchrun
(:mod:`hybridir.infra.shards`), each in a fresh folder, then checks that the results are the same and prints the
wall times (whole command: start, model load, encoding, joining) with the threads each process had.

- ``--command index`` (default): ``hybridir index`` of the first ``--n`` passages of MIRACL-yo, ``--shard-size``
  passages per unit; vectors.npy and docs.jsonl compared.
- ``--command evaluate``: ``hybridir evaluate --dataset miracl-judged:yo:<n>`` (every judged passage of the 119 dev
  queries plus n sampled ones) through an embedding cache; the cached vectors and results.json (less timing, cache
  folder and threads) compared.

On a machine with 2 cores there is no speed-up to expect (torchrun gives each rank one thread: 2 x 1 against 1 x 2);
the point is identical vectors and no lost work. The speed-up is for machines with more cores or GPUs.

Usage::

    .venv/bin/python bench/scale_encode.py --n 2000                    # a quick look, ~2 min on 2 cores
    .venv/bin/python bench/scale_encode.py --n 20000                   # the issue's slice, ~15 min on 2 cores
    .venv/bin/python bench/scale_encode.py --command evaluate --n 2000
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hybridir.data import resolve_data_dir
from hybridir.infra.integrity import read_sealed


def write_slice(root: Path, n: int, out: Path) -> Path:
    """The first ``n`` passages of MIRACL-yo as a JSONL corpus."""
    with gzip.open(root / "miracl" / "miracl-corpus-v1.0-yo" / "docs-0.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [next(f) for _ in range(n)]
    out.write_text("".join(rows), encoding="utf-8")
    return out


def timed(cmd: list[str], ranks: int) -> tuple[float, str]:
    """Wall seconds and output of ``hybridir <cmd>`` in one process or under torchrun with ``ranks`` ranks."""
    launch = [sys.executable, "-m", "hybridir.cli"] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
        "-m", "hybridir.cli"]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    done = subprocess.run([*launch, *cmd], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:1])} with {ranks} rank(s) failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def cached(cache: Path) -> dict[str, np.ndarray]:
    found = {}
    for path, data in read_sealed(sorted(cache.rglob("*.npz")), "embedding cache").items():
        with np.load(io.BytesIO(data)) as z:
            found |= {f"{path.parent.name}/{k}": v for k, v in zip(z["keys"].tolist(), z["emb"], strict=True)}
    return found


def compare(command: str, one: Path, many: Path) -> tuple[float, str]:
    """Largest |difference| of the vectors, and whether the rest of the output is the same."""
    if command == "index":
        a, b = np.load(one / "out" / "vectors.npy"), np.load(many / "out" / "vectors.npy")
        same = (one / "out" / "docs.jsonl").read_bytes() == (many / "out" / "docs.jsonl").read_bytes()
        return float(np.abs(a - b).max()) if a.shape == b.shape else float("inf"), "docs.jsonl " + (
            "identical" if same else "DIFFERS")  # fmt: skip
    a, b = cached(one / "cache"), cached(many / "cache")
    diff = max(float(np.abs(a[k] - b[k]).max()) for k in a) if a.keys() == b.keys() else float("inf")
    res = []
    for run in (one, many):
        r = json.loads((run / "out" / "results.json").read_text(encoding="utf-8"))
        r.pop("timing")
        r["config"].pop("cache_dir")
        r["config"].pop("torch_threads")
        res.append(r)
    return diff, "results.json " + ("identical" if res[0] == res[1] else "DIFFERS")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20000, help="passages in the slice (default 20000)")
    p.add_argument("--command", choices=["index", "evaluate"], default="index")
    p.add_argument("--ranks", type=int, default=2, help="torchrun ranks (default 2)")
    p.add_argument("--model", default="e5-small")
    p.add_argument("--shard-size", type=int, default=1024, help="index: passages per unit (default 1024)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per process, both runs (default: all cores for 1 process, 1 a rank, torchrun's)",
    )
    args = p.parse_args()
    root = resolve_data_dir(args.data_dir)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # torchrun keeps a value it finds
    threads = {1: os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count()),
               args.ranks: os.environ.get("OMP_NUM_THREADS") or "1"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scale-encode-") as tmp:
        work = Path(tmp)
        corpus = write_slice(root, args.n, work / "corpus.jsonl") if args.command == "index" else None
        rows = []
        for ranks in (1, args.ranks):
            run = work / f"ranks{ranks}"
            if args.command == "index":
                cmd = ["index", "--model", args.model, "--corpus", str(corpus), "--lang", "yo", "--quiet",
                       "--shard-size", str(args.shard_size), "--out", str(run / "out")]  # fmt: skip
            else:
                cmd = [
                    "evaluate",
                    "--model",
                    args.model,
                    "--dataset",
                    f"miracl-judged:yo:{args.n}",
                    "--no-plots",
                    "--data-dir",
                    str(root),
                    "--cache-dir",
                    str(run / "cache"),
                    "--out",
                    str(run / "out"),
                ]
            seconds, out = timed(cmd, ranks)
            rows.append((ranks, seconds, out.strip().splitlines()[-1] if out.strip() else ""))
        diff, rest = compare(args.command, work / "ranks1", work / f"ranks{args.ranks}")
    what = f"the first {args.n} passages" if args.command == "index" else f"judged passages + {args.n} sampled"
    print(f"\nsharded encoding, hybridir {args.command}, MIRACL-yo ({what}), {args.model}, {os.cpu_count()} CPU "
          "cores")  # fmt: skip
    print("| processes | threads / process | wall s | ratio to 1 process |")
    print("|---|---|---|---|")
    for ranks, seconds, _ in rows:
        print(f"| {ranks} | {threads[ranks]} | {seconds:.1f} | {seconds / rows[0][1]:.2f} |")
    print(f"\nvectors: max |difference| {diff:.2e} ({'identical to fp tolerance' if diff <= 1e-4 else 'DIFFER'}); "
          f"{rest}")  # fmt: skip
    for ranks, _, last in rows:
        print(f"  {ranks} process(es): {last}")


if __name__ == "__main__":
    main()
