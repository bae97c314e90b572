"""Search an index built by :mod:`.index`: one query as a readable table, or many into a TREC run file.

Queries are encoded with the index's model (checked by fingerprint: an index searched with another model than it
was built with is refused) through the inference path recorded in its manifest, with the model's query prompt.
Hits of equal score are ordered by passage id, descending, as trec_eval orders them, so the run file, the table
and ``hybridir evaluate`` agree on ties (MIRACL has duplicate passages, which score exactly alike).

A run file has one line per hit, ``qid Q0 docid rank score tag`` (trec_eval, ranx and pyserini read it); a query
file is TSV ``qid<TAB>query`` (MIRACL / TREC topics) or JSONL with ``id`` or ``_id`` and ``text`` (BEIR queries).

Example::

    from hybridir.retrieval.search import Searcher
    searcher = Searcher("runs/idx")
    for hit in searcher.search(["Ta ni Olusegun Obasanjo?"], k=5)[0]:
        print(hit.rank, round(hit.score, 3), hit.lang, hit.title)
    searcher.write_run("topics.tsv", "runs/dev.trec", k=100)
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..infra.errors import ConfigError, DataError
from ..infra.files import atomic_write_text
from .corpus import detect_languages, read_corpus
from .index import Index

#: depth of run files, and of ``hybridir evaluate``'s truncated runs (monolingual QA, BEIR, MIRACL): enough for
#: Recall@100 and for nDCG@10 with ties at rank 10
RUN_DEPTH = 100


@dataclass(frozen=True)
class Hit:
    """One search result."""

    rank: int
    score: float
    id: str
    lang: str
    title: str
    text: str


def read_queries(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(query id, text) pairs of a TSV topics file or a JSONL queries file; a bad line is a DataError naming it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{path}: a directory, not a query file")
    if not path.is_file():
        raise DataError(f"{path}: query file not found")
    if path.suffix in (".tsv", ".txt"):
        from ..data.evaluation.miracl import read_topics

        queries, seen = [], set()
        for qid, text in read_topics(path):
            if qid in seen:
                raise DataError(f"{path}: query id {qid!r} appears twice")
            seen.add(qid)
            queries.append((qid, text))
    else:
        queries = [(q.id, q.text) for q in read_corpus(path)]
    if not queries:
        raise DataError(f"{path}: no queries in this file")
    return queries


class Searcher:
    """An index plus the encoder of its model, ready for queries.

    Args:
        index: an index folder or a loaded :class:`~hybridir.retrieval.index.Index`.
        model: the model to encode queries with (default: the index's own); another model is a ConfigError.
        backend, precision: the inference path (default: the one the index was built with).
        ef_search, nprobe, refine: breadth of an approximate index (refine: ivfpq's re-ranked shortlist).
    """

    def __init__(self, index: str | os.PathLike | Index, model: str | None = None, *, backend: str | None = None,
                 precision: str | None = None, batch_size: int = 64, cache_dir: Path | None = None,
                 show_progress: bool = False, ef_search: int | None = None, nprobe: int | None = None,
                 centering: str | None = None, refine: int | None = None) -> None:  # fmt: skip
        from ..encoders.encoding import Encoder
        from ..encoders.models import load_encoder

        self.index = index if isinstance(index, Index) else Index(index, ef_search=ef_search, nprobe=nprobe,
                                                                  centering=centering, refine=refine)  # fmt: skip
        built = self.index.manifest
        enc = built["encoder"]
        self.encoder = Encoder(load_encoder(model or built["model"]), batch_size=batch_size, cache_dir=cache_dir,
                               show_progress=show_progress, backend=backend or enc["backend"],
                               precision=precision or enc["precision"])  # fmt: skip
        if self.encoder.fingerprint != built["fingerprint"]:
            asked = model or built["model"]
            raise ConfigError(
                f"{self.index.folder / 'manifest.json'}: index built with model {built['model']!r} (fingerprint "
                f"{built['fingerprint']}), not with {asked!r} ({self.encoder.fingerprint}): search it with its own "
                "model or index the corpus again with this one"
            )
        self._query_means()

    def _query_means(self) -> None:
        """A ``center`` index moves queries by their language's mean query vector: the model's, filled on demand."""
        from ..encoders.means import fill_query_means

        if self.index.needs_query_languages and self.index.centering.means is not None:
            fill_query_means(self.index.centering.means, self.encoder)

    def scored_as(self, centering: str) -> Searcher:
        """The same index and encoder, scored in another centering mode (:meth:`Index.scored_as`)."""
        other = copy.copy(self)
        other.index = self.index.scored_as(centering)
        other._query_means()
        return other

    @property
    def name(self) -> str:
        """The index folder's name: the run tag and the web page's column title."""
        return self.index.folder.resolve().name

    def search(self, queries: list[str], k: int = 10, langs: list[str] | None = None) -> list[list[Hit]]:
        """The top-``k`` hits of each query, best first (ties: higher passage id first, as trec_eval). ``langs``:
        the queries' languages, used by a ``center`` index (detected when None)."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        vectors = self.encode(queries)
        if self.index.needs_query_languages and langs is None:
            langs = detect_languages(queries)
        return self.hits(vectors, k, langs)

    def encode(self, queries: list[str]) -> np.ndarray:
        """The queries' plain vectors (the same for every scoring of the index: :meth:`hits` centres them)."""
        if not queries or any(not q.strip() for q in queries):
            raise ConfigError("empty query: give a query text")
        return self.encoder(queries, "query")

    def hits(self, vectors: np.ndarray, k: int, langs: list[str] | None = None) -> list[list[Hit]]:
        """The top-``k`` hits of each of :meth:`encode`'s query vectors (``langs``: needed by a ``center`` index)."""
        if self.index.needs_query_languages:
            if langs is None:
                raise ValueError("a center index needs the queries' languages")
            vectors = self.index.queries(vectors, langs)
        scores, rows = self.index.search(vectors, k)
        out = []
        for qs, qr in zip(scores, rows, strict=True):
            docs = sorted(((float(s), self.index.docs[r]) for s, r in zip(qs, qr, strict=True) if r >= 0),
                          key=lambda h: (h[0], h[1].id), reverse=True)  # fmt: skip
            out.append([Hit(i, s, d.id, d.lang or "und", d.title, d.text) for i, (s, d) in enumerate(docs, 1)])
        return out

    def write_run(self, queries: str | os.PathLike | list[tuple[str, str]], out: str | os.PathLike,
                  k: int = RUN_DEPTH, tag: str | None = None, lang: str | None = None) -> Path:  # fmt: skip
        """Search every query of a file (or of (id, text) pairs) and write a TREC run file atomically (``lang``:
        the queries' language for a ``center`` index, else detected per query)."""
        pairs = read_queries(queries) if isinstance(queries, str | os.PathLike) else queries
        tag = "_".join((tag or self.name).split())
        hits = self.search([text for _, text in pairs], k, [lang] * len(pairs) if lang else None)
        lines = (f"{qid} Q0 {h.id} {h.rank} {h.score:.9g} {tag}\n"  # .9g: float32 scores exactly, no false ties
                 for (qid, _), found in zip(pairs, hits, strict=True) for h in found)  # fmt: skip
        return atomic_write_text(out, "".join(lines))


def snippet(text: str, width: int = 80) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_hits(hits: list[Hit], width: int = 120) -> str:
    """A plain-text table: rank, score, language, title, snippet."""
    head = f"{'rank':>4}  {'score':>6}  {'lang':<4}  {'title':<24}  snippet"
    rows = [f"{h.rank:>4}  {h.score:6.4f}  {h.lang:<4}  {snippet(h.title, 24):<24}  "
            f"{snippet(h.text, max(20, width - 48))}" for h in hits]  # fmt: skip
    return "\n".join([head, *rows]) if rows else "(no hits)"


def describe(searcher: Searcher) -> dict[str, Any]:
    """What the web page and the JSON API show about an index."""
    m = searcher.index.manifest
    return {"name": searcher.name, "model": m["model"], "fingerprint": m["fingerprint"], "count": m["count"],
            "dim": m["dim"], "index": m["index"]["type"], "inference_path": m["inference_path"],
            "languages": m["languages"], "centering": str(searcher.index.centering.spec)}  # fmt: skip
