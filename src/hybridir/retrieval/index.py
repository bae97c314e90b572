"""A searchable index of a passage collection: vectors + ids + texts + languages + a manifest, built resumably.

``hybridir index`` reads a corpus (JSONL with ``id`` / ``_id`` / ``docid``, ``text``, optional ``title`` and
``lang``; BEIR ``corpus.jsonl``; MIRACL ``docs-*.jsonl.gz``; TSV ``id<TAB>text[<TAB>title]``), checks every line
first (one-line errors naming file and line), then encodes it shard by shard with the :class:`Encoder`'s fastest
faithful path (``backend="auto"``). Each shard is a folder renamed into place when complete, so a killed build
rerun with the same command encodes only the missing shards and ends with the same files as an uninterrupted one.

Layout of an index folder (``manifest.json`` is written last: its presence means complete)::

    manifest.json   model name + fingerprint, inference path, dimension, count, languages, corpus, index type
    vectors.npy     float32 [count, dim], row i = docs.jsonl line i (memory-mapped on load)
    docs.jsonl      {"id", "title", "text", "lang"} per row
    index.faiss     only for the approximate types (hnsw, ivf, ivfpq: :mod:`hybridir.retrieval.ann`); exact search
                    uses vectors.npy directly, and ivfpq re-ranks its shortlist from it

The encoded text is ``title + " " + text`` (BEIR's convention, as ``hybridir evaluate`` encodes MIRACL and BEIR),
with the model's passage prompt. Languages come from the line's ``lang``, else ``--lang``, else the MIRACL folder
name (``miracl-corpus-v1.0-yo``), else lingua's detector (``und`` when it cannot tell).

Example::

    from hybridir.retrieval.index import build_index, load_index
    build_index("e5-small", "corpus.jsonl", "runs/idx")
    idx = load_index("runs/idx")
    scores, rows = idx.search(query_vectors, k=10)
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..data.evaluation.beir import doc_text
from ..data.languages import check_language
from ..encoders.centering import (
    DEFAULT,
    MEANS_FILE,
    Centering,
    CenteringSpec,
    LanguageMeans,
    corpus_means,
    without_projection,
)
from ..infra.errors import ConfigError, DataError, DiskSpaceError, one_line
from ..infra.files import atomic_dir, atomic_write_json, umask_mode
from ..infra.integrity import file_sha256
from ..infra.locks import DirLock
from ..infra.shards import UNIT, Shard
from . import ann
from .corpus import Passage, check_detectable, corpus_files, detect_languages, read_corpus
from .exact import exact_search, tie_key

FORMAT = "hybridir-index/1"
INDEX_TYPES = ann.KINDS
#: below this many queries an approximate search runs on one thread (faiss's own threshold for switching to BLAS)
FEW_QUERIES = 20
#: sizes and modification times of the files last found intact (:meth:`Index._verify`): a load hashes only what changed
VERIFIED_FILE = ".verified.json"


# ----------------------------------------------------------------------------------------------- building
def _model_ref(model: str | os.PathLike) -> str:
    """The name to store: registry names / hub ids as given, local checkpoints as absolute paths."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def _plan(enc: Any, model: str, files: list[Path], lang: str | None, shard_size: int, index: str) -> dict:
    """What a build is made of; a partial build is resumed only under the same plan."""
    return {"format": FORMAT, "model": model, "fingerprint": enc.fingerprint, "inference_path": enc.path,
            "encoder": enc.describe(), "max_seq_length": enc.model.max_seq_length, "normalize": enc.normalize,
            "passage_prompt": (enc.model.prompts or {}).get("passage", ""),
            "corpus": {"files": [str(p.resolve()) for p in files], "bytes": sum(p.stat().st_size for p in files)},
            "default_lang": lang, "shard_size": shard_size, "index": {"type": index}}  # fmt: skip


def _check_plan(file: Path, found: dict, plan: dict) -> None:
    if found.get("fingerprint") != plan["fingerprint"]:
        raise ConfigError(f"{file}: built with model {found.get('model')!r} (fingerprint {found.get('fingerprint')}), "
                          f"not {plan['model']!r} ({plan['fingerprint']}): use another --out or delete it")  # fmt: skip
    diff = [k for k in plan if k != "index" and found.get(k) != plan[k]]
    if diff:
        raise ConfigError(f"{file}: built with other settings ({', '.join(diff)}): use another --out or delete it")


def _labelled(rows: list[Passage], among: list[str] | None = None) -> list[Passage]:
    """``rows`` with the languages they lack detected (``among`` these when given)."""
    unknown = [i for i, r in enumerate(rows) if not r.lang]
    if not unknown:
        return rows
    langs = dict(zip(unknown, detect_languages([doc_text(asdict(rows[i])) for i in unknown], among), strict=True))
    return [Passage(r.id, r.title, r.text, r.lang or langs[i]) for i, r in enumerate(rows)]


def _save_shard(folder: Path, rows: list[Passage], emb: np.ndarray) -> None:
    """Write one encoded shard and rename its folder into place when complete."""
    with atomic_dir(folder) as tmp:
        np.save(tmp / "vectors.npy", emb)
        (tmp / "docs.jsonl").write_text("".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows),
                                        encoding="utf-8")  # fmt: skip


def _passage_rows(centering: Centering, langs: list[str], normalize: bool) -> ann.Rows:
    """Stored rows as an approximate index holds and re-ranks them (centred when the index is)."""
    labels = np.asarray(langs)
    return lambda block, where: centering.apply(block, labels[where].tolist(), "passage", normalize)


def _searchable(built: Any, params: dict, stored: ann.VectorFile, rows: ann.Rows, refine: int | None = None) -> Any:
    """A faiss index as searched: an IVF-PQ one re-ranks its shortlist from vectors.npy."""
    return ann.Refined(built, stored, rows, refine or params["refine"]) if "refine" in params else built


def _finalise(out: Path, shards: list[Path], plan: dict) -> dict:
    """Join the shards into vectors.npy + docs.jsonl (+ language means, + index.faiss), each via a temporary name;
    manifest last."""
    for stale in [*out.glob(".vectors.*"), *out.glob(".docs.*"), *out.glob(".index.faiss.*")]:
        stale.unlink()  # temporary files of a build killed while finalising
    counts = [np.load(s / "vectors.npy", mmap_mode="r").shape for s in shards]
    total, dim = sum(c[0] for c in counts), counts[0][1]
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".vectors.", suffix=".npy")
    os.close(fd)
    vectors = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(total, dim))
    langs: Counter[str] = Counter()
    row_langs: list[str] = []
    start = 0
    with tempfile.NamedTemporaryFile("w", dir=out, prefix=".docs.", suffix=".jsonl", delete=False,
                                     encoding="utf-8") as docs:  # fmt: skip
        for shard, (n, _) in zip(shards, counts, strict=True):
            vectors[start : start + n] = np.load(shard / "vectors.npy")
            start += n
            text = (shard / "docs.jsonl").read_text(encoding="utf-8")
            row_langs += [json.loads(line)["lang"] for line in text.splitlines()]
            docs.write(text)
    langs.update(row_langs)
    vectors.flush()
    for path in (tmp, docs.name):
        os.chmod(path, umask_mode())  # mkstemp's 0600 would hide the index from other users
    means = corpus_means(vectors, row_langs, plan["fingerprint"])
    means.save(out)
    del vectors  # from here on read block by block (ann.VectorFile): an index past RAM is built all the same
    kind = plan["index"]["type"]
    if kind != "flat":
        import faiss

        rows = _passage_rows(Centering(plan["centering"], means), row_langs, plan["normalize"])
        stored = ann.VectorFile(tmp)
        built, params = ann.build(kind, stored, rows, nlist=plan["index"].get("nlist"))
        plan["index"] |= params | ann.sample_recall(_searchable(built, params, stored, rows), stored, rows)
        tmp_index = out / f".index.faiss.{os.getpid()}.tmp"
        faiss.write_index(built, str(tmp_index))
        os.replace(tmp_index, out / "index.faiss")
    os.replace(tmp, out / "vectors.npy")
    os.replace(docs.name, out / "docs.jsonl")
    names = [p.name for p in sorted(out.iterdir()) if p.is_file() and p.name[0] != "." and p.name != "manifest.json"]
    files = {n: {"size": (out / n).stat().st_size, "sha256": file_sha256(out / n)} for n in names}
    manifest = {**plan, "dim": int(dim), "count": int(total), "languages": dict(langs.most_common()), "files": files}
    atomic_write_json(out / "manifest.json", manifest)
    _save_stamp(out, _stamp(out, files))  # just hashed: the first load need not hash again
    return manifest


def _stamp(folder: Path, files: dict[str, dict]) -> dict[str, list]:
    """What ``VERIFIED_FILE`` records of each listed file: its checksum and its stat (size, mtime, inode)."""
    return {n: [meta["sha256"], (st := (folder / n).stat()).st_size, st.st_mtime_ns, st.st_ino]
            for n, meta in files.items()}  # fmt: skip


def _save_stamp(folder: Path, stamp: dict[str, list]) -> None:
    with contextlib.suppress(OSError, DiskSpaceError):  # a read-only or full folder is simply hashed each load
        atomic_write_json(folder / VERIFIED_FILE, stamp)


def build_index(model: str | os.PathLike, corpus: str | os.PathLike, out: str | os.PathLike, *,
                lang: str | None = None, index: str = "flat", shard_size: int = UNIT, backend: str = "auto",
                precision: str = "auto", batch_size: int = 64, cache_dir: Path | None = None,
                show_progress: bool = True, centering: str | None = None, languages: list[str] | None = None,
                nlist: int | None = None, shard: Shard | None = None) -> dict:  # fmt: skip
    """Index ``corpus`` with ``model`` into the folder ``out``; rerun after a kill to resume. Returns build stats
    (``manifest``, ``seconds``, ``encode_seconds``, ``shards_encoded``, ``shards_reused``).

    An ``out`` that already holds a complete index of the same model and corpus is left as it is; one built with
    another model or other settings is refused (ConfigError naming its manifest or plan file).
    ``centering`` (default: :data:`~hybridir.encoders.centering.DEFAULT`): the index's scoring mode; vectors.npy
    keeps the plain vectors and the index its language means, so a flat index can be searched in any mode; an
    approximate one is built (and must be searched) in this mode. ``languages``: the corpus's languages (ISO
    639-1); rows without a ``lang`` field are then labelled with one of these only. The stats count the rows whose
    label was detected (``detected``). ``nlist``: the lists of an ivf / ivfpq index (default from the size). An
    approximate index records in its manifest its parameters and its recall@10 against exact search on 200 of the
    corpus's own vectors as queries (:func:`~hybridir.retrieval.ann.sample_recall`). ``shard``: this process's
    share of the shards (:mod:`hybridir.infra.shards`; default: all of them); the leader waits for the others' and
    finalises, the others return without a manifest.
    """
    if index not in INDEX_TYPES:
        raise ConfigError(f"unknown index type {index!r}: use {', '.join(INDEX_TYPES)}")
    if shard_size < 1:
        raise ConfigError(f"shard size must be positive, got {shard_size}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    if nlist is not None and index not in ("ivf", "ivfpq"):
        raise ConfigError(f"--nlist applies to ivf and ivfpq indexes, not to {index}")
    start, shard = time.perf_counter(), shard or Shard()
    out, files = Path(out).expanduser(), corpus_files(corpus)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; give a folder for the index")
    if lang is not None:
        check_language(lang, "--lang")
    among = list(check_detectable(languages)) if languages is not None else None
    total = detected = 0
    for passage in read_corpus(corpus, lang):  # checks every line before the model loads
        total, detected = total + 1, detected + (not passage.lang)
    if total == 0:  # before the model loads and before anything is written
        raise DataError(f"{files[0]}: the corpus holds no passages")
    if index != "flat":  # nlist against the corpus size, before the model loads (the dimension is checked later)
        ann.parameters(index, total, 8, nlist=nlist)
    spec = str(without_projection(CenteringSpec.parse(DEFAULT if centering is None else centering), "--centering"))
    from tqdm.auto import tqdm

    from ..encoders.encoding import Encoder
    from ..encoders.models import load_encoder

    enc = Encoder(load_encoder(str(model)), batch_size=batch_size, cache_dir=cache_dir,
                  show_progress=show_progress and shard.world == 1,  # several ranks: only their labelled bars
                  backend=backend, precision=precision)  # fmt: skip
    plan = _plan(enc, _model_ref(model), files, lang, shard_size, index)
    plan["centering"] = spec
    if nlist is not None:
        plan["index"]["nlist"] = nlist
    if among is not None:
        plan["detect_among"] = among
    stats = {"seconds": 0.0, "encode_seconds": 0.0, "shards_encoded": 0, "shards_reused": 0, "passages": total,
             "detected": detected}  # fmt: skip
    if (out / "manifest.json").is_file():
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        _check_plan(out / "manifest.json", manifest, plan)
        if manifest["index"]["type"] != index:
            raise ConfigError(f"{out / 'manifest.json'}: a {manifest['index']['type']} index, not {index}: "
                              "use another --out or delete it")  # fmt: skip
        return stats | {"manifest": manifest, "seconds": time.perf_counter() - start}
    # a second build into out/ would write the same shards; the other ranks of a sharded build write their own only
    with DirLock(out, "index") if shard.leader else contextlib.nullcontext():
        shard_dir = out / "shards"
        if (plan_file := shard_dir / "plan.json").is_file():
            _check_plan(plan_file, json.loads(plan_file.read_text(encoding="utf-8")), plan)
        atomic_write_json(plan_file, plan)
        shards, rows = [], []
        bar = tqdm(total=total, desc=shard.label("index"), unit="passage", disable=not show_progress)
        # one helper thread detects a shard's missing languages while the shard encodes, then writes it while the
        # next one encodes (at most one write pending); each shard is still renamed into place when complete
        with ThreadPoolExecutor(1, thread_name_prefix="index") as helper:
            written: Future[None] | None = None
            for i, passage in enumerate(read_corpus(corpus, lang), 1):
                rows.append(passage)
                if len(rows) == shard_size or i == total:
                    shards.append(shard_dir / f"{len(shards):06d}")
                    mine = shard.mine(len(shards) - 1)  # the other ranks' shards are theirs to encode
                    if mine and (shards[-1] / "docs.jsonl").is_file():
                        stats["shards_reused"] += 1
                    elif mine:
                        labelled = helper.submit(_labelled, rows, among)
                        emb = enc([doc_text(asdict(r)) for r in rows], "passage")
                        if written is not None:
                            written.result()  # raises what the previous write raised
                        written = helper.submit(_save_shard, shards[-1], labelled.result(), emb)
                        stats["shards_encoded"] += 1
                    bar.update(len(rows))
                    rows = []
            if written is not None:
                written.result()
        bar.close()

        def left() -> int:  # shards not yet renamed into place (by any rank)
            return sum(not (s / "docs.jsonl").is_file() for s in shards)

        complete = shard.settle(left, f"of the {len(shards)} index shards")
        if not shard.leader:
            return stats | {"manifest": None, "complete": complete, "seconds": time.perf_counter() - start,
                            "encode_seconds": enc.seconds}  # fmt: skip
        manifest = _finalise(out, shards, plan)
        shutil.rmtree(shard_dir, ignore_errors=True)
    return stats | {"manifest": manifest, "seconds": time.perf_counter() - start, "encode_seconds": enc.seconds}


def language_mix(counts: dict[str, int], top: int = 8) -> str:
    """``en 120, de 80, ... (+3 more)``: an index's passages per language, most first."""
    shown = ", ".join(f"{lang} {n}" for lang, n in list(counts.items())[:top])
    return shown + (f" (+{len(counts) - top} more)" if len(counts) > top else "")


# ----------------------------------------------------------------------------------------------- searching
# ----------------------------------------------------------------------------------------------- loading
class Index:
    """A built index in memory: its manifest, vectors (memory-mapped), passages and, searched, the vectors as
    scored (flat: :func:`exact_search`) or a faiss index (the approximate types).

    ``ef_search`` / ``nprobe`` override the breadth of an approximate index (more = slower, closer to exact),
    ``refine`` the shortlist of an ivfpq one (``refine`` x k candidates re-ranked exactly).
    """

    def __init__(self, folder: str | os.PathLike, *, ef_search: int | None = None, nprobe: int | None = None,
                 centering: str | None = None, refine: int | None = None) -> None:  # fmt: skip
        import faiss

        self.folder = Path(folder).expanduser()
        file = self.folder / "manifest.json"
        if not file.is_file():
            partial = (self.folder / "shards").is_dir() and " (a partial build: rerun hybridir index to finish it)"
            raise DataError(f"{file}: missing: not a hybridir index{partial or ''}")
        rebuild = f"delete {self.folder} and run hybridir index again to rebuild it"
        try:
            self.manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{file}: not readable JSON ({one_line(e)}): {rebuild}") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            found = self.manifest.get("format") if isinstance(self.manifest, dict) else None
            raise DataError(f"{file}: format {found!r}, expected {FORMAT!r}")
        self._verify(rebuild)
        try:
            with open(self.folder / "docs.jsonl", encoding="utf-8") as f:
                self.docs = [Passage(**json.loads(line)) for line in f]
            self.vectors = np.load(self.folder / "vectors.npy", mmap_mode="r")
        except (OSError, ValueError, TypeError) as e:  # an index written before checksums, damaged since
            raise DataError(f"{self.folder}: damaged index ({type(e).__name__}: {one_line(e)}): {rebuild}") from None
        if not len(self.docs) == len(self.vectors) == self.manifest["count"]:
            raise DataError(f"{self.folder}: docs.jsonl, vectors.npy and manifest.json disagree on the count: "
                            f"{rebuild}")  # fmt: skip
        kind = self.manifest["index"]["type"]
        self.centering = self._centering(centering, kind)
        self.max_norm = float(np.sqrt(np.einsum("ij,ij->i", self.vectors, self.vectors).max())) if kind == "flat" else 0
        self.tie_keys = tie_key([d.id for d in self.docs]) if kind == "flat" else None  # trec_eval's order of ties
        self.exact: np.ndarray | None = self._flat() if kind == "flat" else None  # what exact_search scores
        if kind != "flat":
            built, params = faiss.read_index(str(self.folder / "index.faiss")), self.manifest["index"]
            rows = _passage_rows(self.centering, [d.lang for d in self.docs], self.manifest["normalize"])
            self.faiss = _searchable(built, params, ann.VectorFile(self.folder / "vectors.npy"), rows, refine)
            ann.tune(self.faiss, nprobe=nprobe or params.get("nprobe"), ef_search=ef_search or params.get("ef_search"))

    def _verify(self, rebuild: str) -> None:
        """Every file the manifest lists is there with its size and SHA-256 (a truncated or damaged file is one
        DataError naming it). Indexes written before the manifest held checksums are read unchecked.

        Hashing is paid once, not on every load (7 GB of vectors at 5M passages): the build, and a load after a full
        check, record each file's size, modification time and inode in ``VERIFIED_FILE``; a load re-hashes only a
        file whose stat changed since (rewritten, copied, replaced). A folder that cannot be written is hashed
        each time."""
        files = self.manifest.get("files", {})
        try:
            stamp = json.loads((self.folder / VERIFIED_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stamp = {}
        for name, meta in files.items():
            path = self.folder / name
            if not path.is_file():
                raise DataError(f"{path}: missing from the index: {rebuild}")
            if (size := path.stat().st_size) != meta["size"]:
                raise DataError(f"{path}: fails the index's checksum ({size} bytes, {meta['size']} written: "
                                f"truncated or damaged): {rebuild}")  # fmt: skip
        seen = _stamp(self.folder, files)
        for name, meta in files.items():
            if stamp.get(name) != seen[name] and file_sha256(self.folder / name) != meta["sha256"]:
                raise DataError(f"{self.folder / name}: fails the index's checksum (SHA-256 differs: damaged): "
                                f"{rebuild}")  # fmt: skip
        if seen and seen != stamp:
            _save_stamp(self.folder, seen)

    def __len__(self) -> int:
        return len(self.docs)

    def _flat(self) -> np.ndarray:
        """The vectors as this index's centering scores them, for :func:`exact_search`: ``vectors.npy``'s memory map
        when plain, else a float32 copy filled block by block (1x the vectors' size in memory)."""
        if not self.centering.active:
            return self.vectors
        langs, out = [d.lang for d in self.docs], np.empty(self.vectors.shape, np.float32)
        for s in range(0, len(self.docs), 65536):
            rows = np.asarray(self.vectors[s : s + 65536])
            out[s : s + 65536] = self.centering.apply(rows, langs[s : s + 65536], "passage", self.manifest["normalize"])
        self.max_norm = max(self.max_norm, float(np.sqrt(np.einsum("ij,ij->i", out, out).max())))
        return out

    def scored_as(self, centering: str) -> Index:
        """This index (docs and vectors shared) scored in another centering mode: a flat index only, as
        approximate ones are built for one mode."""
        other = copy.copy(self)
        other.centering = self._centering(centering, self.manifest["index"]["type"])
        other.exact = other._flat() if self.exact is not None else None
        return other

    def _centering(self, asked: str | None, kind: str) -> Centering:
        """The scoring mode (``asked``, else the one the index was built for) with the index's language means."""
        built = self.manifest.get("centering", "none")
        spec = without_projection(CenteringSpec.parse(asked if asked is not None else built), "--centering")
        if kind != "flat" and str(spec) != built:
            raise ConfigError(f"{self.folder}: a {kind} index built for centering {built!r}; search it so, or build "
                              f"it again with --centering {spec}")  # fmt: skip
        if not spec.active:
            return Centering(spec)
        if not (self.folder / MEANS_FILE).is_file():
            raise ConfigError(f"{self.folder}: no language means (an index from before centering): index the corpus "
                              "again to search it centred")  # fmt: skip
        return Centering(spec, LanguageMeans.load(self.folder, self.manifest["fingerprint"], self.manifest["dim"]))

    @property
    def needs_query_languages(self) -> bool:
        """``center`` mode moves queries too, by their language's mean query vector."""
        return self.centering.active and self.centering.spec.mode == "center"

    def queries(self, vectors: np.ndarray, langs: list[str]) -> np.ndarray:
        """Query vectors as this index scores them (``langs``: one code a query; unused unless centred)."""
        return self.centering.apply(vectors, langs, "query", self.manifest["normalize"])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) by inner product for each query vector, best first (rows -1 pad short lists of
        an approximate index): a flat index by :func:`exact_search`, as ``hybridir evaluate`` scores.

        An approximate index searches a few queries on one thread: for them OpenMP's thread team costs more than it
        saves (one query over 49k x 384 on the busy 2-core machine: p50 13 ms on one thread, 60 ms on two).
        """
        queries, k = np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self))
        if self.exact is not None:
            return exact_search(queries, self.exact, k, tie_keys=self.tie_keys, max_norm=self.max_norm)
        import faiss

        if len(queries) >= FEW_QUERIES:
            return self.faiss.search(queries, k)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.faiss.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)


def load_index(folder: str | os.PathLike, **kwargs: Any) -> Index:
    """:class:`Index` of a folder written by :func:`build_index`."""
    return Index(folder, **kwargs)
