"""``hybridir serve`` under load: throughput, latency, errors, wrong answers and memory, batched against unbatched.

Starts ``hybridir serve`` (a subprocess, loopback only) on a real index twice: first unbatched (``--max-batch 1``:
one query encoded and searched at a time, as serve answered before batching), then batched (the defaults, or
``--max-batch`` / ``--max-wait-ms``). Each server first answers every distinct query alone, one client at a time:
those are the reference answers (a single-query search). Then closed-loop clients (each sends its next request
when the previous one is answered: bounded load) send ``--requests`` requests, for 1, 8, 32 and 64 clients on the
batched server and 32 on the unbatched one, and every response is checked against its query's reference: a
*wrong* answer echoes another query, or ranks other passages than its reference beyond near ties (scores within
``--tolerance``), or scores a hit more than ``--tolerance`` away. The run stops by itself.

Targets (printed with a verdict): at 32 clients, batched p99 < 1 s and throughput >= 5x the unbatched server's at 32
clients measured in the same run; 0 wrong answers and 0 errors in every phase.

Index: ``--index FOLDER`` (built), ``--corpus FILE`` (indexed into ``--out``), or by default XQuAD-R's candidate
pools of ``--languages`` (de,en,es: 3,570 sentences; queries: their questions), indexed once into
``~/.cache/hybridir/bench/``. Queries: ``--topics FILE`` (TSV / JSONL as ``hybridir search --queries``), the XQuAD-R
questions, or else passage openings.

Usage::

    .venv/bin/python bench/serve_load.py                                   # XQuAD-R pool (~1 min to index)
    .venv/bin/python bench/serve_load.py --index runs/idx-yo \\
        --topics ../shared/data/miracl/miracl-v1.0-yo/topics/topics.miracl-v1.0-yo-dev.tsv
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from hybridir.data import resolve_data_dir
from hybridir.infra.files import atomic_write_json, atomic_write_text

BATCHED_CLIENTS = (1, 8, 32, 64)
BASELINE_CLIENTS = 32
#: (name, key, "<" or ">=", limit)
TARGETS = (("batched p99 at 32 clients (ms)", "p99_ms", "<", 1000.0),
           ("throughput at 32 clients, batched / unbatched", "speedup", ">=", 5.0),
           ("wrong answers, every phase", "wrong", "<=", 0), ("errors, every phase", "errors", "<=", 0))  # fmt: skip


def pool_index(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """XQuAD-R's candidate pools of ``--languages`` as an index (built once, then reused) and their questions."""
    from hybridir.data.evaluation.lareqa import load_lareqa
    from hybridir.retrieval.index import build_index

    es = load_lareqa(resolve_data_dir(args.data_dir) / "xquad-r", args.languages.split(","))
    folder = Path(args.out or f"~/.cache/hybridir/bench/xquad-r-{args.languages.replace(',', '-')}-{args.model}")
    folder = folder.expanduser()
    if not (folder / "manifest.json").is_file():
        corpus = folder.parent / f"{folder.name}.jsonl"
        rows = (json.dumps({"id": f"{lang}/{cid}", "text": text, "lang": lang}, ensure_ascii=False)
                for cid, text, lang in zip(es.cand_ids, es.cand_texts, es.cand_langs, strict=True))  # fmt: skip
        atomic_write_text(corpus, "\n".join(rows) + "\n")
        print(f"indexing {len(es.cand_ids)} XQuAD-R candidates into {folder} ...", flush=True)
        build_index(args.model, corpus, folder, backend=args.backend, precision=args.precision, show_progress=False)
    return folder, list(dict.fromkeys(es.query_texts))


def queries_for(args: argparse.Namespace, folder: Path, found: list[str] | None) -> list[str]:
    """``--distinct`` distinct query texts: ``--topics``, else the pool's questions, else passage openings."""
    if args.topics:
        from hybridir.retrieval.search import read_queries

        found = [t for _, t in read_queries(args.topics)]
    if not found:
        with open(folder / "docs.jsonl", encoding="utf-8") as f:
            found = [" ".join(json.loads(line)["text"].split()[:8]) for line in f]
    texts = list(dict.fromkeys(" ".join(t.split()) for t in found if t.strip()))  # as serve reads them
    random.Random(0).shuffle(texts)
    return texts[: args.distinct]


class Server:
    """``hybridir serve`` in a subprocess on a free loopback port."""

    def __init__(self, folder: Path, options: list[str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([sys.executable, "-m", "hybridir.cli", "serve", str(folder), "--port",
                                      str(self.port), *options], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.time() + 600
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"serve did not start: {self.proc.stderr.read()[-2000:]}") from None
                time.sleep(0.5)

    def memory_mb(self) -> tuple[float, float]:
        """(resident, peak resident) MB of the server process."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")}
        return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def load(port: int, queries: list[str], clients: int, requests: int, k: int) -> tuple[list, float]:
    """``requests`` requests (query i % len) from ``clients`` closed-loop clients, each on a keep-alive
    connection: ([(query, status, body, seconds)], wall seconds)."""
    out: list[tuple[str, int, Any, float]] = []
    lock, counter = threading.Lock(), iter(range(requests))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            q = queries[i % len(queries)]
            t = time.perf_counter()
            try:
                conn.request("GET", "/api/search?" + urllib.parse.urlencode({"q": q, "k": k}))
                resp = conn.getresponse()
                status, body = resp.status, json.loads(resp.read())
            except (OSError, http.client.HTTPException, ValueError) as e:
                status, body = 0, {"error": repr(e)}
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            seconds = time.perf_counter() - t
            with lock:
                out.append((q, status, body, seconds))
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return out, time.perf_counter() - start


def hits(body: dict) -> list[tuple[str, float]]:
    return [(h["id"], h["score"]) for r in body["results"] for h in r["hits"]]


def wrong(q: str, body: dict, ref: list[tuple[str, float]], tol: float) -> tuple[bool, float]:
    """(not the answer to ``q``, max score difference): echo, scores rank by rank, and the ids beyond near ties."""
    got = hits(body)
    if body.get("query") != q or len(got) != len(ref):
        return True, float("inf")
    diff = max((abs(a[1] - b[1]) for a, b in zip(got, ref, strict=True)), default=0.0)
    floor = min((s for _, s in ref), default=0.0) + tol  # hits this close to the last one may swap with the next
    sure = {i for i, s in ref if s > floor}
    return diff > tol or not sure <= {i for i, _ in got}, diff


def phase(server: Server, name: str, queries: list[str], refs: dict, clients: int, args: argparse.Namespace) -> dict:
    answers, wall = load(server.port, queries, clients, args.requests, args.k)
    ok = [(q, b, s) for q, code, b, s in answers if code == 200]
    checks = [wrong(q, b, refs[q], args.tolerance) for q, b, _ in ok]
    ms = 1000 * np.array([s for *_, s in answers])
    rss, peak = server.memory_mb()
    codes: dict[str, int] = {}
    for _, code, _, _ in answers:
        if code != 200:
            codes[str(code)] = codes.get(str(code), 0) + 1
    return {"server": name, "clients": clients, "requests": len(answers), "throughput": len(answers) / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "errors": sum(codes.values()), "error_codes": codes, "wrong": sum(w for w, _ in checks),
            "same_ids": sum(hits(b) and [i for i, _ in hits(b)] == [i for i, _ in refs[q]] for q, b, _ in ok),
            "max_score_diff": max((d for _, d in checks), default=0.0), "rss_mb": rss, "peak_rss_mb": peak}  # fmt: skip


def references(server: Server, queries: list[str], k: int) -> dict[str, list[tuple[str, float]]]:
    """Every query answered alone (one client, nothing else in flight): its single-query search."""
    answers, _ = load(server.port, queries, 1, len(queries), k)
    bad = [(q, code, b) for q, code, b, _ in answers if code != 200]
    if bad:
        raise SystemExit(f"reference answers failed: {bad[:3]}")
    return {q: hits(b) for q, _, b, _ in answers}


def verdicts(rows: list[dict]) -> dict[str, dict]:
    base = next(r for r in rows if r["server"] == "unbatched" and r["clients"] == BASELINE_CLIENTS)
    at32 = next(r for r in rows if r["server"] == "batched" and r["clients"] == BASELINE_CLIENTS)
    found = {"p99_ms": at32["p99_ms"], "speedup": at32["throughput"] / base["throughput"],
             "wrong": sum(r["wrong"] for r in rows), "errors": sum(r["errors"] for r in rows)}  # fmt: skip
    out = {}
    for name, key, op, limit in TARGETS:
        value = found[key]
        met = value < limit if op == "<" else value >= limit if op == ">=" else value <= limit
        out[key] = {"measure": name, "measured": value, "target": f"{op} {limit:g}", "met": met,
                    "verdict": "met" if met else "MISSED"}  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=None, help="a built index folder")
    p.add_argument("--corpus", type=Path, default=None, help="a corpus to index into --out first")
    p.add_argument("--out", type=Path, default=None, help="where --corpus / the XQuAD-R pool is indexed")
    p.add_argument("--languages", default="de,en,es", help="XQuAD-R pools indexed by default (default de,en,es)")
    p.add_argument("--model", default="e5-small", help="model for a build (default e5-small)")
    p.add_argument("--backend", default="auto", help="inference path of a build (default auto)")
    p.add_argument("--precision", default="auto", help="as hybridir index (default auto)")
    p.add_argument("--data-dir", type=Path, default=None, help="data root (default $HYBRIDIR_DATA or ../shared/data)")
    p.add_argument("--topics", type=Path, default=None, help="query file (TSV qid<TAB>query or JSONL)")
    p.add_argument("--distinct", type=int, default=300, help="distinct queries (default 300)")
    p.add_argument("--requests", type=int, default=400, help="requests per phase (default 400)")
    p.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    p.add_argument("--max-batch", type=int, default=None, help="the batched server's --max-batch (default serve's)")
    p.add_argument("--max-wait-ms", type=float, default=None, help="the batched server's --max-wait-ms")
    p.add_argument("--tolerance", type=float, default=1e-3, help="score difference still the same answer")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args()
    if args.index:
        folder, found = args.index, None
    elif args.corpus:
        from hybridir.retrieval.index import build_index

        if args.out is None:
            p.error("--corpus needs --out (the index folder)")
        if not (args.out / "manifest.json").is_file():
            build_index(args.model, args.corpus, args.out, backend=args.backend, precision=args.precision,
                        show_progress=False)  # fmt: skip
        folder, found = args.out, None
    else:
        folder, found = pool_index(args)
    queries = queries_for(args, folder, found)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    print(f"index {folder}: {manifest['count']} passages, {manifest['index']['type']}, {manifest['inference_path']};"
          f" {len(queries)} distinct queries, {args.requests} requests a phase", flush=True)  # fmt: skip
    rows = []
    batched = [*(["--max-batch", str(args.max_batch)] if args.max_batch else []),
               *(["--max-wait-ms", str(args.max_wait_ms)] if args.max_wait_ms is not None else [])]  # fmt: skip
    for name, options, counts in (("unbatched", ["--max-batch", "1"], (BASELINE_CLIENTS,)),
                                  ("batched", batched, BATCHED_CLIENTS)):  # fmt: skip
        server = Server(folder, options)
        try:
            refs = references(server, queries, args.k)
            for clients in counts:
                rows.append(phase(server, name, queries, refs, clients, args))
                r = rows[-1]
                print(
                    f"  {name:9s} {clients:3d} clients: {r['throughput']:6.1f} req/s, p50 {r['p50_ms']:7.1f} ms, "
                    f"p99 {r['p99_ms']:7.1f} ms, {r['errors']} errors, {r['wrong']} wrong",
                    flush=True,
                )
        finally:
            server.stop()
    targets = verdicts(rows)
    if args.json:
        atomic_write_json(args.json, {"index": str(folder), "manifest": manifest, "rows": rows, "targets": targets})
    print(
        "\n| server | clients | requests | req/s | p50 ms | p99 ms | errors | wrong | same ids | max score diff | "
        "RSS MB (peak) |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['server']} | {r['clients']} | {r['requests']} | {r['throughput']:.1f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} | {r['wrong']} | {r['same_ids']} | {r['max_score_diff']:.2g} | "
            f"{r['rss_mb']:.0f} ({r['peak_rss_mb']:.0f}) |"
        )
    print("\n| target | measured | required | verdict |\n|---|---|---|---|")
    for t in targets.values():
        print(f"| {t['measure']} | {t['measured']:.3g} | {t['target']} | {t['verdict']} |")
    missed = [t["measure"] for t in targets.values() if not t["met"]]
    print(f"MISSED: {'; '.join(missed)}" if missed else "all targets met")


if __name__ == "__main__":
    main()
