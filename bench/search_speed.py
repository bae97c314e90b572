"""Index build and search speed, measured side by side in one run (default: MIRACL-yo's 49,043 passages, e5-small).

(a) index build: ``hybridir index`` (read + check the corpus, load the model, detect / assign languages, encode
    shard by shard, write shards atomically, join them, manifest) over encoding the same texts in one plain
    ``Encoder`` (loaded and compiled outside the timing), on the same inference path (target: ratio <= 1.1). The
    plain encoding is timed in two halves, one just before the build and one just after it, so that a change of
    load during the run (other work on the machine) weighs on both sides alike; the build's time over its own
    encoding time and the ratio of process CPU times do not depend on the load at all.
(b) search: ``--queries`` queries (MIRACL-yo dev topics, then passage openings as extra queries), top-``--k``;
    faiss search latency p50 / p99 one query at a time and queries per second (one at a time and batched), then
    end-to-end latency (encode one query + search) for ``--e2e`` of them (target: p99 < 50 ms for exact search
    over 49k x 384). A flat index is also timed side by side with faiss ``IndexFlatIP`` over the same vectors, one
    query at a time on one thread, interleaved (target: flat p50 <= 1.2x faiss's). ``--synthetic N`` searches N
    random unit vectors instead of the built index (flat search cost does not depend on the values: for a latency
    figure at full size when encoding the corpus is too slow).
(c) memory: peak RSS after each part, the index's vectors, what the flat index holds beside their memory map (0 for
    plain scoring, 1x the vectors when centred), its size on disk.

Each target is printed beside its measured value with a verdict (``met``, or ``MISSED`` and by how much), in the
table and under ``targets`` in the ``--json`` output.

Usage::

    .venv/bin/python bench/search_speed.py                                    # everything, ~15-30 min on 2 cores
    .venv/bin/python bench/search_speed.py --corpus pool.jsonl --lang yo --backend openvino --precision fp32
    .venv/bin/python bench/search_speed.py --index runs/idx --skip-build      # search part on a built index
    .venv/bin/python bench/search_speed.py --limit 1000 --synthetic 49043     # a quick look: 1000 passages built
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import tempfile
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hybridir.data import resolve_data_dir
from hybridir.data.evaluation.beir import doc_text
from hybridir.data.evaluation.miracl import read_topics
from hybridir.encoders.encoding import Encoder
from hybridir.encoders.models import load_encoder
from hybridir.infra.files import atomic_write_json, atomic_write_text
from hybridir.retrieval.corpus import read_corpus
from hybridir.retrieval.index import Index, build_index
from hybridir.retrieval.search import Searcher


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds of this process so far, all threads."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def timed(run: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds) of ``run()``."""
    wall, cpu = time.perf_counter(), cpu_s()
    result = run()
    return result, time.perf_counter() - wall, cpu_s() - cpu


#: (name, key in the results, "<=" or "<", limit, unit)
TARGETS = (("build / plain encoding", "ratio", "<=", 1.1, ""),
           ("build / the build's own encoding", "ratio_own", "<=", 1.1, ""),
           ("exact search p99", "p99_ms", "<", 50.0, " ms"),
           ("flat p50 / faiss IndexFlatIP p50, one thread", "flat_over_faiss", "<=", 1.2, ""))  # fmt: skip


def verdicts(build: dict | None, search: dict) -> dict[str, dict]:
    """Each target with its measured value, whether it is met and the margin (limit - measured: > 0 to spare)."""
    found = (build or {}) | search
    out = {}
    for name, key, op, limit, unit in TARGETS:
        if key not in found or (key == "p99_ms" and "flat" not in search["index"]):
            continue  # an approximate index's latency is not what the target is about
        value = float(found[key])
        met = value <= limit if op == "<=" else value < limit
        verdict = f"met ({limit - value:.3g}{unit} to spare)" if met else f"MISSED by {value - limit:.3g}{unit}"
        out[key] = {"measure": name, "measured": value, "target": f"{op} {limit:g}{unit}", "met": met,
                    "margin": limit - value, "verdict": verdict}  # fmt: skip
    return out


def build_part(args: argparse.Namespace, out: Path) -> dict:
    """(a): plain encoding of the corpus texts (half just before, half just after the build), and ``build_index``
    of the same corpus into ``out``."""
    passages = list(itertools.islice(read_corpus(args.corpus, args.lang), args.limit))
    texts = [doc_text(asdict(p)) for p in passages]
    if args.limit:  # the first N passages as a corpus of their own
        args.corpus = out.parent / "corpus.jsonl"
        atomic_write_text(args.corpus, "".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in passages))
    enc = Encoder(load_encoder(args.model), show_progress=False, backend=args.backend, precision=args.precision)
    enc.encode(texts[:8], "passage")  # builds the inference path (OpenVINO compile) outside the timing
    half = len(texts) // 2
    _, wall1, cpu1 = timed(partial(enc.encode, texts[:half], "passage"))
    stats, _, build_cpu = timed(
        partial(
            build_index,
            args.model,
            args.corpus,
            out,
            lang=args.lang,
            backend=args.backend,
            precision=args.precision,
            show_progress=False,
        )
    )
    _, wall2, cpu2 = timed(partial(enc.encode, texts[half:], "passage"))
    del enc
    plain, plain_cpu = wall1 + wall2, cpu1 + cpu2
    return {"passages": len(texts), "path": stats["manifest"]["inference_path"], "plain_encode_s": plain,
            "plain_halves_s": [wall1, wall2], "build_s": stats["seconds"], "build_encode_s": stats["encode_seconds"],
            "ratio": stats["seconds"] / plain, "ratio_own": stats["seconds"] / stats["encode_seconds"],
            "build_cpu_s": build_cpu, "plain_cpu_s": plain_cpu, "ratio_cpu": build_cpu / plain_cpu,
            "rss_mb": peak_rss_mb()}  # fmt: skip


def query_texts(args: argparse.Namespace, index: Index) -> list[str]:
    topics = resolve_data_dir(args.data_dir) / "miracl/miracl-v1.0-yo/topics/topics.miracl-v1.0-yo-dev.tsv"
    queries = [t for _, t in read_topics(topics)] if topics.is_file() else []
    openings = (" ".join(d.text.split()[:8]) for d in index.docs)
    return (queries + [q for q in openings if q])[: args.queries]


def held_mb(index: Index) -> float:
    """Memory the flat index holds for its vectors beyond the file's memory map (0 when it scores the map)."""
    exact = index.exact
    return 0.0 if exact is None or isinstance(exact, np.memmap) else exact.nbytes / 2**20


def side_by_side(index: Index, vectors: np.ndarray, k: int) -> dict[str, float]:
    """The flat index against faiss ``IndexFlatIP`` over the same vectors, one query at a time on one thread,
    interleaved (query i on both, then query i + 1) so that the machine's load weighs on both alike."""
    import faiss
    from threadpoolctl import threadpool_limits

    ip = faiss.IndexFlatIP(index.exact.shape[1])
    for s in range(0, len(index.exact), 65536):
        ip.add(np.ascontiguousarray(index.exact[s : s + 65536], dtype=np.float32))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    ours, theirs, same = [], [], 0
    try:
        with threadpool_limits(1):
            for v in vectors:
                q = np.ascontiguousarray(v[None], dtype=np.float32)
                t = time.perf_counter()
                _, rows = index.search(q, k)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                _, ids = ip.search(q, k)
                theirs.append(time.perf_counter() - t)
                same += set(rows[0]) == set(ids[0])
    finally:
        faiss.omp_set_num_threads(threads)
    p50, faiss_p50 = 1000 * float(np.percentile(ours, 50)), 1000 * float(np.percentile(theirs, 50))
    return {"flat_p50_ms": p50, "flat_p99_ms": 1000 * float(np.percentile(ours, 99)), "faiss_p50_ms": faiss_p50,
            "faiss_p99_ms": 1000 * float(np.percentile(theirs, 99)), "flat_over_faiss": p50 / faiss_p50,
            "same_top_k": same / len(vectors)}  # fmt: skip


def search_part(args: argparse.Namespace, folder: Path) -> dict:
    """(b) and (c): latency and throughput of exact (or the index's) search, then end to end."""
    searcher = Searcher(folder)  # the inference path the index was built with
    index = searcher.index
    texts = query_texts(args, index)
    start = time.perf_counter()
    vectors = searcher.encoder(texts, "query")
    encode_per_query = (time.perf_counter() - start) / len(texts)
    kind = index.manifest["index"]["type"]
    size = len(index)
    if args.synthetic:
        rng = np.random.default_rng(0)
        synthetic = rng.standard_normal((args.synthetic, index.vectors.shape[1])).astype(np.float32)
        synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
        index.exact, index.tie_keys, index.max_norm = synthetic, None, 1.0 + 1e-6  # float32, as Index holds it
        kind, size = "flat, synthetic vectors", args.synthetic
    flat = side_by_side(index, vectors, args.k) if index.exact is not None else {}
    index.search(vectors[:10], args.k)  # warm-up
    lat = []
    for v in vectors:
        t = time.perf_counter()
        index.search(v[None], args.k)
        lat.append(time.perf_counter() - t)
    start = time.perf_counter()
    index.search(vectors, args.k)
    batched = len(vectors) / (time.perf_counter() - start)
    e2e = []
    for q in texts[: args.e2e]:
        t = time.perf_counter()
        index.search(searcher.encoder([q], "query"), args.k)
        e2e.append(time.perf_counter() - t)
    disk = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    ms = 1000 * np.array(lat)
    return {"index": f"{size} x {index.vectors.shape[1]} ({kind})", "queries": len(texts), "k": args.k,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "qps_one_at_a_time": len(lat) / sum(lat), "qps_batched": batched,
            "query_encode_ms_batched": 1000 * encode_per_query,
            "e2e_p50_ms": float(np.percentile(1000 * np.array(e2e), 50)) if e2e else None,
            "e2e_p99_ms": float(np.percentile(1000 * np.array(e2e), 99)) if e2e else None,
            "vectors_mb": size * index.vectors.shape[1] * 4 / 2**20, "disk_mb": disk / 2**20,
            "held_mb": held_mb(index), "rss_mb": peak_rss_mb(), **flat}  # fmt: skip


def table(build: dict | None, search: dict, targets: dict[str, dict]) -> str:
    def verdict(key: str) -> tuple[str, str]:
        return (targets[key]["target"], targets[key]["verdict"]) if key in targets else ("", "")

    rows = []
    if build:
        rows += [("index build", f"{build['build_s']:.1f} s for {build['passages']} passages ({build['path']}; "
                                 f"{build['build_encode_s']:.1f} s of it encoding)", "", ""),
                 ("plain encoding, same texts", f"{build['plain_encode_s']:.1f} s (halves before / after the build: "
                  f"{build['plain_halves_s'][0]:.1f} + {build['plain_halves_s'][1]:.1f} s)", "", ""),
                 ("build / plain encoding", f"{build['ratio']:.3f}", *verdict("ratio")),
                 ("build / the build's own encoding (load-independent)", f"{build['ratio_own']:.3f}",
                  *verdict("ratio_own")),
                 ("build / plain encoding, process CPU time (load-independent)",
                  f"{build['ratio_cpu']:.3f} ({build['build_cpu_s']:.1f} / {build['plain_cpu_s']:.1f} s)", "", ""),
                 ("peak RSS after build", f"{build['rss_mb']:.0f} MB", "", "")]  # fmt: skip
    rows += [("search index", search["index"], "", ""),
             (f"search latency, {search['queries']} queries, top {search['k']}",
              f"p50 {search['p50_ms']:.2f} ms, p99 {search['p99_ms']:.2f} ms", *verdict("p99_ms")),
             *([("flat vs faiss IndexFlatIP, one query at a time, one thread",
                 f"p50 {search['flat_p50_ms']:.2f} vs {search['faiss_p50_ms']:.2f} ms, p99 {search['flat_p99_ms']:.2f} "
                 f"vs {search['faiss_p99_ms']:.2f} ms; same top {search['k']} for {100 * search['same_top_k']:.0f}% "
                 "of queries", "", ""),
                ("flat p50 / faiss p50", f"{search['flat_over_faiss']:.2f}x", *verdict("flat_over_faiss"))]
               if "flat_over_faiss" in search else []),
             ("queries per second", f"{search['qps_one_at_a_time']:.0f} one at a time, "
                                    f"{search['qps_batched']:.0f} batched", "", ""),
             ("query encoding (batched)", f"{search['query_encode_ms_batched']:.1f} ms a query", "", "")]  # fmt: skip
    if search["e2e_p50_ms"] is not None:
        rows.append(
            (
                "end to end (encode + search, one query)",
                f"p50 {search['e2e_p50_ms']:.1f} ms, p99 {search['e2e_p99_ms']:.1f} ms",
                "",
                "",
            )
        )
    rows += [("memory", f"vectors {search['vectors_mb']:.1f} MB, held beside the file's memory map "
                        f"{search['held_mb']:.1f} MB, on disk {search['disk_mb']:.1f} MB, peak RSS "
                        f"{search['rss_mb']:.0f} MB", "", "")]  # fmt: skip
    lines = ["| measure | result | target | verdict |", "|---|---|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=None, help="default: <data>/miracl/miracl-corpus-v1.0-yo")
    p.add_argument("--lang", default=None, help="language of rows without one (MIRACL folders name theirs)")
    p.add_argument("--data-dir", type=Path, default=None, help="data root (default $HYBRIDIR_DATA or ../shared/data)")
    p.add_argument("--model", default="e5-small", help="model to index and search with (default e5-small)")
    p.add_argument("--backend", default="auto", help="inference path, as hybridir index (default auto)")
    p.add_argument("--precision", default="auto", help="as hybridir index (default auto)")
    p.add_argument("--limit", type=int, default=None, help="build part: the first N passages only")
    p.add_argument("--index", type=Path, default=None, help="index folder (default: a temporary one)")
    p.add_argument("--skip-build", action="store_true", help="only the search part, on --index")
    p.add_argument("--queries", type=int, default=1000,
                   help="how many queries to search (a count, not a file): MIRACL-yo dev topics, then passage "
                        "openings (default 1000)")  # fmt: skip
    p.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    p.add_argument("--e2e", type=int, default=100, help="queries timed end to end (encode + search)")
    p.add_argument("--synthetic", type=int, default=None, help="search N random unit vectors instead")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args()
    args.corpus = args.corpus or resolve_data_dir(args.data_dir) / "miracl/miracl-corpus-v1.0-yo"
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.index or Path(tmp) / "index"
        build = None if args.skip_build else build_part(args, folder)
        search = search_part(args, folder)
    targets = verdicts(build, search)
    if args.json:
        atomic_write_json(args.json, {"build": build, "search": search, "targets": targets})
    print(table(build, search, targets))
    missed = [f"{t['measure']} {t['measured']:.3g} (target {t['target']})" for t in targets.values() if not t["met"]]
    if missed:
        print(f"MISSED: {'; '.join(missed)}")


if __name__ == "__main__":
    main()
