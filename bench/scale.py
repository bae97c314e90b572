"""ANN at scale on synthetic vectors: flat vs HNSW vs IVF-PQ at 1M and 5M x 384 (hybridir.retrieval.ann).

The vectors are synthetic and clustered, not uniform noise (where every neighbour is as far as any other and
recall means nothing): unit vectors ``normalize(c + s + e)`` around 4,096 random unit centres ``c``, with
``s`` a component in a shared 64-dimensional subspace (norm ~0.6: the low intrinsic dimension of real embeddings)
and ``e`` isotropic noise (norm ~0.3). They are generated block by block with a fixed seed into a float32 ``.npy``
on disk (``--scratch``, reused by later runs) and read through ``ann.VectorFile`` (one memory map a block, ``pread``
for scattered rows), never loaded whole. The 1,000 queries are fresh draws of the same process (another seed), not
rows of the collection.

For each size, every build and search runs in a subprocess of its own, which reports its peak resident memory
(``VmHWM``, the high-water mark of its resident set: its own pages plus the pages of the vector file it has
mapped at that moment; the OS page cache that keeps the file warm is not counted; ``ru_maxrss`` would not do, as
Linux carries it over from the parent across ``exec``):

* exact (flat): ground truth top-10 of all queries by a blockwise matmul over the file; single-query latency of
  the same blockwise scan (one thread) on the first ``--flat-queries`` queries (a full scan per query).
* IVF-PQ (:func:`ann.build`: trained on a sample, filled block by block), with the build-time recall it prints;
  then single-query latency p50 / p99 (one thread, ``--queries`` queries) and recall@10 vs exact, plain PQ and
  re-ranked from the file (``refine`` x 10 candidates, :class:`ann.Refined`), at a few nprobe values.
* HNSW (M 32, efConstruction ``--hnsw-ef-construction``): up to ``--hnsw-max`` vectors, else "skipped" and why.

Targets (issue 31): IVF-PQ at 5M x 384 under 2 GB resident, recall@10 >= 0.9 vs exact, p99 < 50 ms.

``--encode N`` then runs the sharded encoder's half of the benchmark (``bench/scale_encode.py --n N``: one process
against 2 gloo ranks on a real N-passage MIRACL-yo slice, identical vectors and the wall-time ratio).

Usage::

    python bench/scale.py --sizes 1m,5m --out reports/scale --scratch /tmp/scale   # --out: scale.json + .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hybridir.infra.files import atomic_write_json, atomic_write_text
from hybridir.retrieval import ann
from hybridir.retrieval.exact import exact_search

DIM, CENTRES, SUBSPACE, SEED = 384, 4096, 64, 0
TARGETS = {"rss_mb": 2048, "recall@10": 0.9, "p99_ms": 50}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    status = Path("/proc/self/status").read_text()
    return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def size_of(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * {"k": 1e3, "m": 1e6}[text[-1]]) if text[-1] in "km" else int(text)


def synthetic(n: int, seed: int, start: int = 0) -> np.ndarray:
    """Rows ``start:start+n`` of the synthetic process ``seed`` (blocks of 65,536 rows, each seeded on its own)."""
    base = np.random.default_rng(SEED)
    centres = base.standard_normal((CENTRES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    basis = np.linalg.qr(base.standard_normal((DIM, SUBSPACE)))[0].T.astype(np.float32)  # orthonormal rows
    out = []
    for b in range(start // ann.BLOCK, (start + n - 1) // ann.BLOCK + 1):
        rng = np.random.default_rng([seed, b])
        size = ann.BLOCK
        x = centres[rng.integers(0, CENTRES, size)]
        x += (0.6 / np.sqrt(SUBSPACE)) * rng.standard_normal((size, SUBSPACE), dtype=np.float32) @ basis
        x += (0.3 / np.sqrt(DIM)) * rng.standard_normal((size, DIM), dtype=np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    first = start - (start // ann.BLOCK) * ann.BLOCK
    return np.concatenate(out)[first : first + n]


def make_data(scratch: Path, n: int, queries: int) -> tuple[Path, Path, float]:
    """The collection and the queries on disk (reused when already there); returns the paths and seconds spent."""
    path, qpath = scratch / f"vectors-{n}.npy", scratch / f"queries-{queries}.npy"
    start = time.perf_counter()
    if not path.is_file():
        tmp = path.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, DIM))
        for s in range(0, n, ann.BLOCK):
            out[s : s + ann.BLOCK] = synthetic(min(ann.BLOCK, n - s), SEED + 1, s)
        out.flush()
        del out
        os.replace(tmp, path)
    if not qpath.is_file():
        np.save(qpath, synthetic(queries, SEED + 2))
    return path, qpath, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- subprocess tasks
def _latencies(search: Any, queries: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time, as hybridir.retrieval.index searches a few queries
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(search(q[None], k)[1][0])
        times.append((time.perf_counter() - t) * 1000)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return times, np.array(found)


def _stats(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "latency_queries": len(times)}  # fmt: skip


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])), 4)


def task_flat(vectors: str, queries: str, truth: str, latency_queries: int) -> dict[str, Any]:
    v, q = ann.VectorFile(vectors), np.load(queries)
    start = time.perf_counter()
    np.save(truth, exact_search(q, ann.scan(v), 10)[1])
    batch = time.perf_counter() - start
    times, _ = _latencies(lambda x, k: exact_search(x, ann.scan(v), k), q[:latency_queries])
    return {"truth_seconds": round(batch, 1), **_stats(times), "recall@10": 1.0,
            "disk_mb": round(os.path.getsize(vectors) / 2**20, 1)}  # fmt: skip


def task_build(kind: str, vectors: str, out: str, options: dict) -> dict[str, Any]:
    import faiss

    v = ann.VectorFile(vectors)
    start = time.perf_counter()
    index, params = ann.build(kind, v, **options)
    seconds = time.perf_counter() - start
    faiss.write_index(index, out)
    searched = ann.Refined(index, v, refine=params["refine"]) if kind == "ivfpq" else index
    ann.tune(searched, nprobe=params.get("nprobe"), ef_search=params.get("ef_search"))
    check = ann.sample_recall(searched, v)
    print(
        f"  {kind} built in {seconds:.0f} s; build-time check: recall@10 {check['recall@10']} on "
        f"{check['recall_queries']} held-out rows ({check['recall_seconds']} s)",
        file=sys.stderr,
        flush=True,
    )
    return {"build_seconds": round(seconds, 1), "disk_mb": round(os.path.getsize(out) / 2**20, 1),
            "params": params, "build_check": check}  # fmt: skip


def task_search(kind: str, vectors: str, index: str, queries: str, truth: str, settings: list[dict]) -> list[dict]:
    import faiss

    v, q, want = ann.VectorFile(vectors), np.load(queries), np.load(truth)
    loaded = faiss.read_index(index)
    rows = []
    for s in settings:
        searched = ann.Refined(loaded, v, refine=s["refine"]) if s.get("refine") else loaded
        ann.tune(searched, nprobe=s.get("nprobe"), ef_search=s.get("ef_search"))
        times, found = _latencies(searched.search, q)
        rows.append({**s, **_stats(times), "recall@10": _recall(found, want),
                     "rss_mb": peak_rss_mb()})  # fmt: skip
    return rows


def run_task(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run one task in a fresh interpreter; its result plus its own peak resident memory."""
    done = subprocess.run([sys.executable, __file__, "--task", json.dumps({"name": name, **kwargs})],
                          stdout=subprocess.PIPE, check=True, text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- the benchmark
def bench_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    scratch = args.scratch
    vectors, queries, gen_s = make_data(scratch, n, args.queries)
    print(f"{n:,} x {DIM}: data ready ({gen_s:.0f} s)", flush=True)
    truth = str(scratch / f"truth-{n}.npy")
    res: dict[str, Any] = {"n": n, "data_seconds": round(gen_s, 1)}
    if "flat" in args.kinds or not Path(truth).is_file():
        res["flat"] = run_task("flat", vectors=str(vectors), queries=str(queries), truth=truth,
                               latency_queries=args.flat_queries)  # fmt: skip
        print(f"  flat: {res['flat']}", flush=True)
    if "ivfpq" in args.kinds:
        res["ivfpq"] = bench_ivfpq(n, str(vectors), str(queries), truth, args)
    if "hnsw" in args.kinds:
        res["hnsw"] = bench_hnsw(n, str(vectors), str(queries), truth, args)
    return res


def bench_ivfpq(n: int, vectors: str, queries: str, truth: str, args: argparse.Namespace) -> dict[str, Any]:
    scratch = args.scratch
    res: dict[str, Any] = {}
    pq = str(scratch / f"ivfpq-{n}.faiss")
    res["ivfpq"] = run_task("build", kind="ivfpq", vectors=vectors, out=pq, options={})
    settings = [{"nprobe": p, "refine": r} for p in args.nprobe for r in args.refine]
    res["ivfpq"]["search"] = run_task("search", kind="ivfpq", vectors=vectors, index=pq, queries=queries,
                                      truth=truth, settings=settings)  # fmt: skip
    print(f"  ivfpq: {res['ivfpq']}", flush=True)
    os.remove(pq) if args.clean else None
    return res["ivfpq"]


def bench_hnsw(n: int, vectors: str, queries: str, truth: str, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if n > args.hnsw_max:
        res["hnsw"] = {"skipped": f"over --hnsw-max {args.hnsw_max:,}: the graph holds every vector in RAM "
                                  f"({n * DIM * 4 / 2**30:.1f} GB plus links) and its build time grows faster than n "
                                  "on 2 cores"}  # fmt: skip
    else:
        hn = str(args.scratch / f"hnsw-{n}.faiss")
        res["hnsw"] = run_task("build", kind="hnsw", vectors=vectors, out=hn,
                               options={"ef_construction": args.hnsw_ef_construction})  # fmt: skip
        res["hnsw"]["search"] = run_task("search", kind="hnsw", vectors=vectors, index=hn, queries=queries,
                                         truth=truth, settings=[{"ef_search": e} for e in (64, 128)])  # fmt: skip
        print(f"  hnsw: {res['hnsw']}", flush=True)
        os.remove(hn) if args.clean else None
    return res["hnsw"]


def table(results: list[dict[str, Any]]) -> list[str]:
    """One Markdown row per index and search setting."""
    rows = ["| vectors | index | setting | build s | on disk MB | peak RSS build MB | peak RSS search MB | p50 ms | "
            "p99 ms | recall@10 | load avg |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        n, f = f"{r['n'] / 1e6:g}M", r.get("flat")
        if f:
            rows.append(f"| {n} | flat (exact, blockwise scan of the memmap) | {f['latency_queries']} queries, 1 "
                        f"thread | - | {f['disk_mb']} | - | {f['rss_mb']} | {f['p50_ms']} | {f['p99_ms']} | 1.0 | "
                        f"{f.get('load_average', '')} |")  # fmt: skip
        for kind in [k for k in ("ivfpq", "hnsw") if k in r]:
            b = r[kind]
            if "skipped" in b:
                rows.append(f"| {n} | {kind} | skipped ({b['skipped']}) | | | | | | | | |")
                continue
            params = ", ".join(f"{k} {v}" for k, v in b["params"].items() if k not in ("nprobe", "refine", "ef_search"))
            for s in b["search"]:
                how = (f"nprobe {s['nprobe']}, " + (f"re-rank {s['refine']}x10 from vectors.npy" if s["refine"] else
                       "PQ scores only")) if kind == "ivfpq" else f"efSearch {s['ef_search']}"  # fmt: skip
                rows.append(f"| {n} | {kind} ({params}) | {how} | {b['build_seconds']} | {b['disk_mb']} | "
                            f"{b['rss_mb']} | {s['rss_mb']} | {s['p50_ms']} | {s['p99_ms']} | {s['recall@10']} | "
                            f"{s.get('load_average', '')} |")  # fmt: skip
    return rows


def verdicts(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets against IVF-PQ at the largest size, at its default search setting."""
    measured = [x for x in results if "ivfpq" in x]
    if not measured:
        return []
    r = max(measured, key=lambda x: x["n"])
    b = r["ivfpq"]
    default = next((s for s in b["search"] if s["nprobe"] == ann.IVFPQ_NPROBE and s["refine"] == ann.REFINE), None)
    if default is None:
        return []
    checks = [("peak RSS, build (MB)", b["rss_mb"], TARGETS["rss_mb"], "<"),
              ("peak RSS, search (MB)", default["rss_mb"], TARGETS["rss_mb"], "<"),
              ("recall@10 vs exact", default["recall@10"], TARGETS["recall@10"], ">="),
              ("p99 latency (ms)", default["p99_ms"], TARGETS["p99_ms"], "<")]  # fmt: skip
    return [{"size": r["n"], "setting": f"nprobe {ann.IVFPQ_NPROBE}, refine {ann.REFINE}", "measure": m,
             "value": v, "target": f"{op} {t}", "verdict": "met" if (v < t if op == "<" else v >= t) else "MISSED"}
            for m, v, t, op in checks]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1m,5m", help="collection sizes, e.g. 1m,5m or 200k")
    p.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    p.add_argument("--scratch", type=Path, default=Path("scale-data"), help="folder for the vectors and indexes")
    p.add_argument("--queries", type=int, default=1000, help="queries timed one at a time (default 1000)")
    p.add_argument("--flat-queries", type=int, default=20, help="queries timed for exact search (a full scan each)")
    p.add_argument("--nprobe", type=ints, default=sorted({8, ann.IVFPQ_NPROBE, 32}), help="IVF-PQ nprobe values")
    p.add_argument(
        "--refine", type=ints, default=sorted({0, ann.REFINE, 20}), help="IVF-PQ re-rank factors (0: PQ scores only)"
    )
    p.add_argument("--hnsw-max", type=size_of, default=1_000_000, help="largest size HNSW is built at")
    p.add_argument("--hnsw-ef-construction", type=int, default=40, help="HNSW efConstruction (faiss default 40)")
    p.add_argument(
        "--kinds",
        type=lambda s: s.split(","),
        default=["flat", "ivfpq", "hnsw"],
        help="what to measure (default flat,ivfpq,hnsw; the exact top-10 is computed once and reused)",
    )
    p.add_argument("--clean", action="store_true", help="delete each index file once measured")
    p.add_argument("--merge", type=Path, nargs="+", default=None, help="only merge these --out JSON files into --out")
    p.add_argument(
        "--encode",
        type=int,
        default=0,
        metavar="N",
        help="then bench/scale_encode.py --n N: sharded encoding on a real N-passage slice (0: skip)",
    )
    p.add_argument("--task", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.task:  # a subprocess: one task, its result and peak RSS as the last line of stdout
        spec = json.loads(args.task)
        result = globals()[f"task_{spec.pop('name')}"](**spec)
        for r in result if isinstance(result, list) else [result]:
            r["load_average"] = round(os.getloadavg()[0], 1)  # other work on the machine weighs on every time
        if isinstance(result, dict):
            result["rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    if args.merge:  # runs made separately (e.g. HNSW beside IVF-PQ), one table: later files win per size and index
        by_size: dict[int, dict] = {}
        for path in args.merge:
            for r in json.loads(path.read_text())["results"]:
                by_size.setdefault(r["n"], {}).update(r)
        return write([by_size[n] for n in sorted(by_size)], args.out)
    args.scratch.mkdir(parents=True, exist_ok=True)
    results = []
    for n in [size_of(s) for s in args.sizes.split(",")]:
        results.append(bench_size(n, args))
        write(results, args.out)
    if args.encode:
        subprocess.run([sys.executable, str(Path(__file__).with_name("scale_encode.py")), "--n", str(args.encode)],
                       check=True)  # fmt: skip


def write(results: list[dict[str, Any]], out: Path | None) -> None:
    """Print the table and the verdicts; with ``out``, also OUT.json and OUT.md."""
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average": os.getloadavg(), "data": __doc__.split("\n\n")[1].replace("\n", " "),
              "results": results, "targets": verdicts(results)}  # fmt: skip
    lines = ["# ANN at scale (bench/scale.py)", "", report["data"], "",
             f"Machine: {report['machine']}; every build and search in a subprocess of its own; single-query "
             "latency on one thread; load avg: the 1-minute load average when the row was measured (other work "
             "shared the 2 cores).", "", *table(results)]  # fmt: skip
    lines += ["", "| target (IVF-PQ, largest size, default setting) | measured | target | verdict |",
              "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {v['measure']} | {v['value']} | {v['target']} | {v['verdict']} |" for v in report["targets"]]
    print("\n".join(lines), flush=True)
    if out:
        atomic_write_json(out.with_suffix(".json"), report)
        atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
