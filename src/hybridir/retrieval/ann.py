"""Approximate nearest-neighbour indexes for collections larger than RAM: built from vectors on disk, checked
against exact search, searched whole or as shards.

The vectors stay in a ``.npy`` file (:class:`VectorFile`) read one block at a time, so a build or an exact scan
holds one block of them, never the collection; the OS page cache does the rest.

* ``ivfpq``: faiss IVF-PQ, inner product. A coarse k-means of ~sqrt(n) lists (a power of two) and a product
  quantiser of ``dim / 8`` sub-vectors of 8 bits (48 bytes a vector at 384 dimensions) are trained on a seeded
  sample of at most :data:`TRAIN_MAX` vectors; then the file is added block by block. A search re-ranks the
  ``refine`` x k best PQ candidates with exact inner products read from the vector file (:class:`Refined`: faiss's
  ``IndexRefineFlat``, reading the file instead of holding a second copy in RAM), which is what lifts PQ's
  recall (on the 5M synthetic set of bench/scale.py, recall@10 0.27 from PQ scores alone, 0.92 re-ranking 20 x k;
  probing more lists added nothing there: the shortlist, not the lists, limits it).
* ``hnsw`` / ``ivf``: HNSW graph / IVF-Flat, built the same way (they hold the vectors themselves in RAM).
* ``flat``: exact inner product; :func:`~hybridir.retrieval.exact.exact_search` scans the file blockwise
  (:func:`scan`) without any index in memory.

:func:`sample_recall` measures recall@k against exact search on a seeded sample of the collection's own vectors as
queries, each left out of its own answer (so it is not trivially found). :class:`Shards` searches several indexes
over consecutive row ranges and merges their top-k (a collection split across files or machines);
:func:`build_shards` trains once and fills one index per range.

Example::

    from hybridir.retrieval.ann import Refined, VectorFile, build, sample_recall
    vectors = VectorFile("vectors.npy")
    index, params = build("ivfpq", vectors)
    print(sample_recall(Refined(index, vectors, refine=params["refine"]), vectors))
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..infra.errors import ConfigError
from .exact import Blocks, exact_search

KINDS = ("flat", "hnsw", "ivf", "ivfpq")
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
#: ivfpq: 20 x k candidates re-ranked; at 5M x 384 (bench/scale.py) 10 x k gave recall@10 0.79, 20 x k 0.92
IVF_NPROBE, IVFPQ_NPROBE, REFINE = 16, 16, 20
#: training sample cap: enough for thousands of lists and 256-centroid sub-quantisers, ~200 MB at 384 dimensions
TRAIN_MAX = 131072
BLOCK = 65536
RECALL_QUERIES, RECALL_K = 200, 10

#: ``rows(block, where)``: a block of stored vectors as searched (e.g. centred), ``where`` its row numbers
Rows = Callable[[np.ndarray, Any], np.ndarray]


def plain(block: np.ndarray, where: Any) -> np.ndarray:
    """Stored vectors searched as they are."""
    return block


class Searchable(Protocol):
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


class VectorFile:
    """float32 ``[n, dim]`` rows of a ``.npy`` file, never mapped whole: scans go through one short-lived memory map
    a block, so a scan of a file larger than RAM holds one block; scattered rows are read with ``pread`` (a
    re-rank's 100 rows: ~2 ms on the busy 2-core machine, against ~5 ms of page faults through a fresh map). The
    OS page cache keeps a file that fits warm; it is not the process's memory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        head = np.load(self.path, mmap_mode="r")
        if head.ndim != 2 or head.dtype != np.float32 or not head.flags.c_contiguous:
            raise ConfigError(f"{self.path}: expected float32 [n, dim] vectors, found {head.dtype} {head.shape}")
        self.shape: tuple[int, int] = head.shape
        self._offset = head.offset
        del head

    def __len__(self) -> int:
        return self.shape[0]

    def _map(self, start: int, stop: int) -> np.memmap:
        dim = self.shape[1]
        return np.memmap(self.path, np.float32, "r", self._offset + 4 * dim * start, (stop - start, dim))

    def block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (clipped), copied into memory."""
        stop = min(stop, len(self))
        return np.array(self._map(start, stop)) if stop > start else np.zeros((0, self.shape[1]), np.float32)

    def blocks(self, size: int = BLOCK, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of consecutive blocks of ``start:stop``, each a memory map of its own that is closed
        when the next is read (a block is valid until then): its pages leave the process's resident memory with
        it, and nothing is copied."""
        stop = len(self) if stop is None else min(stop, len(self))
        for s in range(start, stop, size):
            block = self._map(s, min(s + size, stop))
            yield s, block
            del block

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (ascending or not), one ``pread`` each, copied into memory."""
        width = 4 * self.shape[1]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = b"".join(os.pread(fd, width, self._offset + width * int(r)) for r in rows)
        finally:
            os.close(fd)
        if len(data) != width * len(rows):
            raise OSError(f"{self.path}: ends before row {max(rows)}")
        return np.frombuffer(bytearray(data), np.float32).reshape(len(rows), self.shape[1])


# ----------------------------------------------------------------------------------------------- parameters
def parameters(kind: str, n: int, dim: int, *, nlist: int | None = None, m: int | None = None,
               nbits: int | None = None, train_max: int = TRAIN_MAX, hnsw_m: int = HNSW_M,
               ef_construction: int = HNSW_EF_CONSTRUCTION) -> dict[str, Any]:  # fmt: skip
    """The build and default search parameters of a ``kind`` index over ``n`` x ``dim`` vectors; a choice that
    cannot work is one ConfigError line."""
    if kind not in KINDS:
        raise ConfigError(f"unknown index type {kind!r}: use {', '.join(KINDS)}")
    if kind == "flat":
        return {}
    if kind == "hnsw":
        return {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": HNSW_EF_SEARCH}
    if kind == "ivf":  # faiss wants >= 39 training points per list
        default = int(min(max(1, n // 39), max(1, 4 * np.sqrt(n))))
    else:  # sqrt(n): the coarse assignment dominates a build on few cores; nprobe and the re-rank make up for it
        default = max(1, min(2 ** round(math.log2(max(1.0, np.sqrt(n)))), n // 39))
    nlist = default if nlist is None else nlist
    if not 1 <= nlist <= n:
        raise ConfigError(f"nlist {nlist} is not between 1 and the corpus size ({n} vectors)")
    if kind == "ivf":
        return {"nlist": nlist, "nprobe": IVF_NPROBE}
    if n < 2:
        raise ConfigError(f"an ivfpq index needs at least 2 vectors, the corpus holds {n}: use the flat type")
    m = m if m is not None else max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
    if m < 1 or dim % m:
        raise ConfigError(f"PQ m {m} does not divide the dimension {dim}")
    trained = min(n, train_max)
    nbits = nbits if nbits is not None else min(8, int(math.log2(trained)))
    if not 1 <= nbits <= 12 or 2**nbits > trained:
        raise ConfigError(f"PQ nbits {nbits}: needs 1-12 and at least 2**nbits training vectors ({trained} here)")
    return {"nlist": nlist, "m": m, "nbits": nbits, "nprobe": IVFPQ_NPROBE, "refine": REFINE}


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct row numbers of ``n``, ascending, the same for the same seed."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:size]) if size < n else np.arange(n)


# ----------------------------------------------------------------------------------------------- building
def empty(kind: str, vectors: VectorFile, rows: Rows = plain, params: dict | None = None, *,
          train_max: int = TRAIN_MAX, seed: int = 0) -> Any:  # fmt: skip
    """A ``kind`` faiss index (inner product) ready for vectors: trained on a seeded sample when it needs
    training, so that training memory is the sample's, not the collection's."""
    import faiss

    n, dim = vectors.shape
    p = params if params is not None else parameters(kind, n, dim, train_max=train_max)
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, p["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = p["ef_construction"]
        return index
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, p["nlist"], faiss.METRIC_INNER_PRODUCT)
        size = 256 * p["nlist"]
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, p["nlist"], p["m"], p["nbits"], faiss.METRIC_INNER_PRODUCT)
        size = train_max
    sample = _sample(n, min(size, train_max), seed)
    index.train(np.ascontiguousarray(rows(vectors.take(sample), sample)))
    return index


def fill(index: Any, vectors: VectorFile, rows: Rows = plain, start: int = 0, stop: int | None = None,
         block: int = BLOCK) -> Any:  # fmt: skip
    """``index`` with rows ``start:stop`` of ``vectors`` added block by block; returns it."""
    for s, x in vectors.blocks(block, start, stop):
        index.add(np.ascontiguousarray(rows(x, slice(s, s + len(x)))))
    return index


def build(kind: str, vectors: VectorFile, rows: Rows = plain, *, train_max: int = TRAIN_MAX,
          **options: Any) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """A ``kind`` index over all of ``vectors`` and its parameters (``nlist``, ``m``, ``nbits`` may be given)."""
    params = parameters(kind, *vectors.shape, train_max=train_max, **options)
    return fill(empty(kind, vectors, rows, params, train_max=train_max), vectors, rows), params


def build_shards(kind: str, vectors: VectorFile, parts: int, rows: Rows = plain, *, train_max: int = TRAIN_MAX,
                 **options: Any) -> tuple[Shards, dict[str, Any]]:  # fmt: skip
    """``parts`` indexes over consecutive row ranges, trained once (the same lists and codebooks in each), searched
    together by :class:`Shards`; each can be written and loaded on its own (e.g. on another machine)."""
    n = len(vectors)
    if not 1 <= parts <= n:
        raise ConfigError(f"{parts} shards for {n} vectors: give between 1 and {n}")
    import faiss

    params = parameters(kind, *vectors.shape, train_max=train_max, **options)
    trained = empty(kind, vectors, rows, params, train_max=train_max)
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return Shards([(int(a), fill(faiss.clone_index(trained), vectors, rows, int(a), int(b)))
                   for a, b in zip(bounds, bounds[1:], strict=False)]), params  # fmt: skip


# ----------------------------------------------------------------------------------------------- searching
def _best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best (score, id), best first, ties by lower id, missing ids (-1) last."""
    scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
    order = np.lexsort((ids, -scores.astype(np.float64)), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def scan(vectors: VectorFile, rows: Rows = plain, block: int = BLOCK) -> Blocks:
    """``(first row, rows as searched)`` of the whole file, one block in memory at a time: what
    :func:`~hybridir.retrieval.exact.exact_search` scans for an exact answer over a file larger than RAM."""
    return ((s, rows(x, slice(s, s + len(x)))) for s, x in vectors.blocks(block))


class Refined:
    """A (PQ) index whose ``refine`` x k best candidates are re-ranked by exact inner products with the vectors
    read from disk: PQ's ranking is coarse, its shortlist is not. ``first``: the row of ``vectors`` that is the
    index's row 0 (a shard's)."""

    def __init__(self, index: Any, vectors: VectorFile, rows: Rows = plain, refine: int = REFINE,
                 first: int = 0) -> None:  # fmt: skip
        if refine < 1:
            raise ConfigError(f"refine must be at least 1, got {refine}")
        self.index, self.vectors, self.rows, self.refine, self.first = index, vectors, rows, refine, first

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        _, cand = self.index.search(queries, k * self.refine)
        ids = np.unique(cand[cand >= 0])
        x = self.rows(self.vectors.take(ids + self.first), ids + self.first)
        pos = np.searchsorted(ids, np.maximum(cand, 0)).clip(0, max(0, len(ids) - 1))
        scores = np.full(cand.shape, -np.inf, np.float32)
        for a in range(0, len(queries), 64):  # 64 queries x shortlist x dim at a time
            if len(ids):
                scores[a : a + 64] = np.einsum("qd,qcd->qc", queries[a : a + 64], x[pos[a : a + 64]])
        return _best(scores, cand, k)


class Shards:
    """Indexes over consecutive row ranges, ``(first row, index)``, searched as one: every shard answers its
    top-k and the lists are merged by score (faiss's ``IndexShards``, for any index with ``search``)."""

    def __init__(self, parts: Sequence[tuple[int, Searchable]]) -> None:
        self.parts = list(parts)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        found = [(s, np.where(i >= 0, i + first, -1)) for first, part in self.parts for s, i in [part.search(
            queries, k)]]  # fmt: skip
        return _best(np.hstack([s for s, _ in found]), np.hstack([i for _, i in found]), k)


def tune(index: Any, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set the search breadth of ``index`` (inside :class:`Refined` / :class:`Shards` too); ``None`` leaves it."""
    for _, part in index.parts if isinstance(index, Shards) else [(0, index)]:
        inner = part.index if isinstance(part, Refined) else part
        if nprobe is not None and hasattr(inner, "nprobe"):
            inner.nprobe = nprobe
        if ef_search is not None and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = ef_search


# ----------------------------------------------------------------------------------------------- checking
def sample_recall(index: Searchable, vectors: VectorFile, rows: Rows = plain, *, k: int = RECALL_K,
                  queries: int = RECALL_QUERIES, seed: int = 1) -> dict[str, Any]:  # fmt: skip
    """recall@``k`` of ``index`` against exact search, with ``queries`` seeded rows of the collection as queries,
    each left out of its own answer (found or not): the share of the exact top-k that the index returns."""
    n = len(vectors)
    start = time.perf_counter()
    where = _sample(n, queries, seed)
    q = np.ascontiguousarray(rows(vectors.take(where), where))
    want = exact_search(q, scan(vectors, rows), k + 1)[1]
    got = index.search(q, min(k + 1, n))[1]
    hits = total = 0
    for self_row, w, g in zip(where, want, got, strict=True):
        w = [r for r in w if r not in (self_row, -1)][:k]
        g = [r for r in g if r not in (self_row, -1)][:k]
        hits, total = hits + len(set(g).intersection(w)), total + len(w)
    recall = hits / total if total else 1.0
    return {f"recall@{k}": round(recall, 4), "recall_queries": len(where),
            "recall_seconds": round(time.perf_counter() - start, 2)}  # fmt: skip
