"""``hybridir index`` / ``search`` / ``serve``: the retrieval commands' options and drivers (index -> search ->
run file, as pyserini). Every argument and input is checked before a model loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..encoders import BACKEND_CHOICES, PRECISION_CHOICES
from ..evaluation.config import centering_arg, codes
from ..infra import shards
from ..infra.errors import ConfigError


def _index(args: argparse.Namespace) -> None:
    from .index import build_index, language_mix

    stats = build_index(args.model, args.corpus, args.out, lang=args.lang, index=args.index, shard_size=args.shard_size,
                        backend=args.backend, precision=args.precision, batch_size=args.batch_size,
                        cache_dir=args.cache_dir, show_progress=not args.quiet, centering=args.centering,
                        languages=args.languages, nlist=args.nlist, shard=shards.from_args(args))  # fmt: skip
    if (m := stats["manifest"]) is None:  # another rank's share: rank 0 finalises
        return print(f"{args.out}: {stats['shards_encoded']} shard(s) encoded here; the first rank finalises it")
    among = f" among {','.join(args.languages)}" if args.languages else ""
    recall = f"; recall@10 vs exact search {m['index']['recall@10']}" if "recall@10" in m["index"] else ""
    print(f"{args.out}: {m['count']} passages x {m['dim']} ({m['index']['type']}, {m['inference_path']}); "
          f"{stats['shards_encoded']} shard(s) encoded, {stats['shards_reused']} reused, {stats['seconds']:.1f} s "
          f"({stats['encode_seconds']:.1f} s encoding); languages {language_mix(m['languages'])}, "
          f"{stats['detected']} label(s) detected{among}{recall}")  # fmt: skip


def _positive(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{option} must be at least 1, got {value}")


def _search(args: argparse.Namespace) -> None:
    from .search import RUN_DEPTH, Searcher, format_hits, read_queries

    # every argument and input file is checked before the index and the model load
    if (args.query is None) == (args.queries is None) or (args.queries is None) != (args.run is None):
        raise ConfigError("give either one QUERY or --queries FILE together with --run OUT")
    k = args.k if args.k is not None else (10 if args.query is not None else RUN_DEPTH)
    for value, option in ((k, "--k"), (args.ef_search, "--ef-search"), (args.nprobe, "--nprobe"),
                          (args.refine, "--refine")):  # fmt: skip
        _positive(value, option)
    if args.query is not None and not args.query.strip():
        raise ConfigError("empty query: give a query text")
    if args.run is not None and args.run.is_dir():
        raise ConfigError(f"--run {args.run} is a directory; give the path of the run file to write")
    if args.query_lang:
        from ..data.languages import check_language

        check_language(args.query_lang, "--query-lang")
    queries = read_queries(args.queries) if args.queries is not None else None
    searcher = Searcher(args.index, args.model, backend=args.backend, precision=args.precision,
                        cache_dir=args.cache_dir, ef_search=args.ef_search, nprobe=args.nprobe,
                        refine=args.refine, centering=args.centering)  # fmt: skip
    if args.query is not None:
        langs = [args.query_lang] if args.query_lang else None
        print(format_hits(searcher.search([args.query], k, langs)[0]))
    else:
        print(f"run file: {searcher.write_run(queries, args.run, k, args.tag, args.query_lang)}")


def _serve(args: argparse.Namespace) -> None:
    import errno
    import socket

    from .serve import MAX_K

    # arguments, indexes and the port are checked before any model loads
    if not 1 <= args.k <= MAX_K:
        raise ConfigError(f"--k must be between 1 and {MAX_K}, got {args.k}")
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    from .batching import check

    for option in ("max_batch", "max_wait_ms", "queue_size", "timeout_s"):
        check(option, getattr(args, option))
    from .index import Index

    indexes = [Index(folder) for folder in (args.index, *([args.compare] if args.compare else []))]
    try:  # bound here and handed to uvicorn: a port in use is one line, not uvicorn's log and exit code 3
        family = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as e:
        hint = ": stop the server that uses it or pick another --port" if e.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}){hint}") from None
    import uvicorn

    from .search import Searcher
    from .serve import create_app

    with sock:
        app = create_app([Searcher(index) for index in indexes], k=args.k, centering=args.centering,
                         max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
                         timeout_s=args.timeout_s)  # fmt: skip
        print(f"hybridir serve: http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
        uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port)).run(sockets=[sock])


def add_index_commands(sub: argparse._SubParsersAction, command: str | None) -> None:
    kinds = None
    if command in (None, "index"):  # INDEX_TYPES imports numpy: only where --index is parsed (see build_parser)
        from .index import INDEX_TYPES as kinds
    paths = {"choices": BACKEND_CHOICES}, {"choices": PRECISION_CHOICES}
    x = sub.add_parser("index", help="encode a corpus into a searchable index (resumable: rerun after a kill)")
    x.add_argument("--model", default="e5-small", help="registry name, hub id, local checkpoint / run dir")
    x.add_argument("--corpus", type=Path, required=True,
                   help="JSONL (id, text, optional title / lang), BEIR corpus.jsonl or folder, MIRACL docs-*.jsonl.gz "
                        "or folder, TSV (id<TAB>text[<TAB>title])")  # fmt: skip
    x.add_argument("--out", type=Path, required=True, help="index folder")
    x.add_argument("--lang", default=None, help="language of rows without a lang field (default: detected)")
    x.add_argument("--languages", type=codes, default=None, metavar="CODES",
                   help="the corpus's languages, e.g. en,de,zh,ar: rows without a lang field are labelled with one "
                        "of these only (default: any of the detector's 75 languages)")  # fmt: skip
    x.add_argument(
        "--index",
        default="flat",
        choices=kinds,
        help="flat: exact (default); hnsw / ivf: approximate; ivfpq: compressed, re-ranked from disk",
    )
    x.add_argument("--nlist", type=int, default=None, help="ivf / ivfpq: inverted lists (default from the size)")
    x.add_argument(
        "--shard-size", type=int, default=shards.UNIT, help=f"passages per resumable shard (default {shards.UNIT})"
    )
    x.add_argument("--batch-size", type=int, default=64, help="passages encoded together (default 64)")
    x.add_argument("--backend", default="auto", **paths[0], help="inference path (as in evaluate)")
    x.add_argument("--precision", default="auto", **paths[1])
    x.add_argument("--cache-dir", type=Path, default=None, help="embedding cache shared with evaluate (opt-in)")
    x.add_argument("--centering", type=centering_arg, default=None, metavar="MODE[:LAMBDA]",
                   help="the index's language-neutral scoring mode; a flat index can be searched in any mode, an "
                        "hnsw / ivf one is built for this one (default: the dev-chosen default)")  # fmt: skip
    x.add_argument("--quiet", action="store_true", help="no progress bars")
    shards.add_arguments(x)
    x.set_defaults(func=_index)

    q = sub.add_parser("search", help="search an index: one query as a table, or a query file into a TREC run")
    q.add_argument("index", type=Path, help="index folder (hybridir index --out)")
    q.add_argument("query", nargs="?", default=None, help="one query, any language")
    q.add_argument("--queries", type=Path, default=None, help="TSV qid<TAB>query (MIRACL topics) or JSONL id/text")
    q.add_argument("--run", type=Path, default=None, help="TREC run file to write (with --queries)")
    q.add_argument("--k", type=int, default=None, help="hits per query (default 10; 100 for a run file)")
    q.add_argument("--tag", default=None, help="run tag, the run file's last column (default: the index's name)")
    q.add_argument("--model", default=None, help="check the index was built with this model (default: its own)")
    q.add_argument("--backend", default=None, **paths[0], help="default: the path the index was built with")
    q.add_argument("--precision", default=None, **paths[1])
    q.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (opt-in)")
    q.add_argument("--ef-search", type=int, default=None, help="hnsw: candidates explored per query")
    q.add_argument("--nprobe", type=int, default=None, help="ivf / ivfpq: lists probed per query")
    q.add_argument("--refine", type=int, default=None, help="ivfpq: re-rank refine x k candidates exactly")
    q.add_argument(
        "--centering",
        type=centering_arg,
        default=None,
        metavar="MODE[:LAMBDA]",
        help="none, shift[:lambda] or center[:lambda] (default: the mode the index was built for)",
    )
    q.add_argument(
        "--query-lang", default=None, help="the queries' language, for center mode (default: detected per query)"
    )
    q.set_defaults(func=_search)

    v = sub.add_parser("serve", help="a web page comparing the top-k (and language mix) of one or two indexes")
    v.add_argument("index", type=Path, help="index folder (hybridir index --out)")
    v.add_argument("--compare", type=Path, default=None, help="a second index (e.g. another model, same corpus)")
    v.add_argument("--k", type=int, default=10, help="hits shown per index (default 10; the page allows 1-100)")
    v.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)",
    )
    v.add_argument("--port", type=int, default=8000, help="port to listen on, 1-65535 (default 8000)")
    v.add_argument(
        "--centering",
        type=centering_arg,
        default=None,
        metavar="MODE[:LAMBDA]",
        help="what the page's language-neutral switch scores with (default: the dev-chosen default)",
    )
    from . import batching as b  # stdlib only: cheap at parse time

    v.add_argument(
        "--max-batch",
        type=int,
        default=b.MAX_BATCH,
        help=f"queries encoded and searched together at most (default {b.MAX_BATCH}; 1: one at a time)",
    )
    v.add_argument(
        "--max-wait-ms",
        type=float,
        default=b.MAX_WAIT_MS,
        help=f"how long a batch waits for more queries (default {b.MAX_WAIT_MS:g} ms)",
    )
    v.add_argument(
        "--queue-size",
        type=int,
        default=b.QUEUE_SIZE,
        help=f"queries waiting at most; beyond it a request is answered 503 (default {b.QUEUE_SIZE})",
    )
    v.add_argument(
        "--timeout-s",
        type=float,
        default=b.TIMEOUT_S,
        help=f"seconds a request waits for its answer before a 504 (default {b.TIMEOUT_S:g})",
    )
    v.set_defaults(func=_serve)
