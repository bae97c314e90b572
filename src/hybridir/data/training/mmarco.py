"""mMARCO (Bonifacio et al. 2021): MS MARCO passage ranking translated into 13 languages, parallel by id.

The paper's training data. Passage ``pid`` and query ``qid`` are the same text in every language, so one training
triple (query id, positive passage id, negative passage id) gives one :class:`~.items.ParallelItem` whose X-X
pairs (query in X -> its positive in X), X-Y pairs (query in X -> the positive's translation in Y) and hard
negatives (the triple's negative, in the passage's language) all come from the same ids.

Layout: the release's own file names, as on the hub (``unicamp-dl/mmarco``, Google translations)::

    <root>/data/triples.train.ids.small.tsv                           qid TAB positive pid TAB negative pid
    <root>/data/google/collections/<name>_collection.tsv              pid TAB passage
    <root>/data/google/queries/train/<name>_queries.train.tsv         qid TAB query

``<name>`` is mMARCO's language name (``german``; :data:`MMARCO_CONFIGS`) or, for another parallel set in this
layout, the short code itself (``de_collection.tsv``). ``<root>`` is ``<data>/mmarco`` (``--data mmarco``) or any
folder given as ``--data DIR``; without a local copy the files come from the hub through
``huggingface_hub.hf_hub_download`` (its cache; resumable downloads). Offline, a one-line DataError names the
missing files and where to put them.

Reading streams: the first ``max_queries`` distinct query ids of the triples file are chosen, then each language's
query and collection files are read line by line keeping only the texts those triples need, one language at a
time, so the 8.8M-passage collections never sit in memory. The selection is cached as the JSONL training format
(``docs/data_formats.md``) under the user cache, so a study's cells read it once.

Example::

    data = load_mmarco(["en", "de", "zh"], max_queries=1000)
    data.example(0, "de", "zh")   # German query -> the Chinese translation of its positive passage (+ negative)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ...infra.errors import ConfigError, DataError
from ...infra.files import atomic_write_text
from .. import resolve_data_dir
from .items import TrainingData
from .parallel import MMARCO_CONFIGS, load_pairs

MMARCO_REPO = "unicamp-dl/mmarco"
TRIPLES = "data/triples.train.ids.small.tsv"
#: training queries read by default (one triple each): 200 steps of the paper's batch of 100 need 20,000
DEFAULT_QUERIES = 100_000


def mmarco_files(languages: Sequence[str], root: Path | None = None) -> list[str]:
    """The release paths a run in ``languages`` needs: the triples, then each language's collection and queries.
    With a local ``root``, a language's short-code names (``de_collection.tsv``) are used where they exist."""

    def name(lang: str, kind: str) -> str:
        sub = "collections" if kind == "collection" else "queries/train"
        suffix = "collection.tsv" if kind == "collection" else "queries.train.tsv"
        paths = [f"data/google/{sub}/{n}_{suffix}" for n in (MMARCO_CONFIGS.get(lang, lang), lang)]
        return next((p for p in paths if root is not None and (root / p).is_file()), paths[0])

    return [TRIPLES] + [name(lang, kind) for lang in languages for kind in ("collection", "queries")]


def is_mmarco_dir(path: Path) -> bool:
    """True for a folder in mMARCO's layout (it has the triples file)."""
    return (path / TRIPLES).is_file()


def parse_mmarco_spec(spec: str) -> int | None:
    """``mmarco`` -> DEFAULT_QUERIES, ``mmarco:<N>`` -> N training queries; None for any other ``--data`` source."""
    kind, sep, n = spec.partition(":")
    if kind != "mmarco":
        return None
    if sep and not (n.isdigit() and int(n) > 0):
        raise ConfigError(f"--data {spec}: expected mmarco or mmarco:<number of training queries>")
    return int(n) if sep else DEFAULT_QUERIES


def load_mmarco(languages: Sequence[str], data_dir: str | os.PathLike | None = None, max_queries: int = DEFAULT_QUERIES,
                root: str | os.PathLike | None = None, show_progress: bool = True) -> TrainingData:  # fmt: skip
    """mMARCO-layout training items in ``languages`` from ``root``, else ``<data>/mmarco``, else the hub.

    Item id ``mmarco:<qid>``; ``group`` and ``dedup_key`` are the positive passage id, so two queries with the same
    positive never meet in a batch (false negatives) and the held-out split never shares a passage with training.
    """
    if not languages:
        raise ConfigError("mmarco: no languages requested")
    files = _resolve(languages, data_dir, Path(root) if root else None)
    stat = [(rel, str(p), p.stat().st_size, int(p.stat().st_mtime)) for rel, p in files.items()]
    key = hashlib.sha256(json.dumps([stat, list(languages), max_queries]).encode()).hexdigest()[:16]
    from ...encoders.offline_e5 import cache_root

    cached = cache_root() / "mmarco" / f"{key}.jsonl"
    if not cached.is_file():
        atomic_write_text(cached, "".join(_records(files, languages, max_queries, show_progress)))
    name = "mmarco" if root is None else Path(root).name
    data = load_pairs(cached)
    for it in data.items:
        it.dedup_key, it.source = it.group, name
    return TrainingData(data.items, name, {"files": {rel: str(p) for rel, p in files.items()}, "queries": max_queries})


def _resolve(languages: Sequence[str], data_dir: str | os.PathLike | None, root: Path | None) -> dict[str, Path]:
    """Release path -> local file: from ``root`` or ``<data>/mmarco`` when that folder exists (every file must be
    there), else downloaded from the hub."""
    where = root or Path("<data>/mmarco")
    if root is None:
        try:
            local = resolve_data_dir(data_dir) / "mmarco"
        except DataError:
            if data_dir is not None:
                raise
            local = None
        root = local if local is not None and local.is_dir() else None
        where = local or where
    if root is not None:
        rels = mmarco_files(languages, root)
        if missing := [rel for rel in rels if not (root / rel).is_file()]:
            raise DataError(f"{root}: mMARCO layout incomplete, missing {', '.join(missing)} (docs/data_formats.md)")
        return {rel: root / rel for rel in rels}
    rels = mmarco_files(languages)
    try:
        from huggingface_hub import hf_hub_download

        return {rel: Path(hf_hub_download(MMARCO_REPO, rel, repo_type="dataset")) for rel in rels}
    except Exception as e:  # any hub or network failure means the same thing to the user
        raise DataError(f"mmarco: no local copy and the hub ({MMARCO_REPO}) is unreachable ({type(e).__name__}); "
                        f"put {', '.join(rels)} under {where}/ (or pass --data DIR in that layout)") from e  # fmt: skip


def _rows(path: Path, desc: str, show_progress: bool) -> Iterator[tuple[int, str, str]]:
    """(line number, id, text) of an ``id TAB text`` file, streamed; a malformed line is a DataError naming it."""
    from tqdm.auto import tqdm

    bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, disable=not show_progress)
    with open(path, encoding="utf-8", newline="\n") as f, bar:
        for lineno, line in enumerate(f, 1):
            bar.update(len(line.encode("utf-8")))
            ident, tab, text = line.rstrip("\r\n").partition("\t")
            if not tab or not ident.strip():
                raise DataError(f"{path}:{lineno}: expected 'id<TAB>text'")
            yield lineno, ident.strip(), text.strip()


def _records(files: dict[str, Path], languages: Sequence[str], max_queries: int, show_progress: bool) -> Iterator[str]:
    """The chosen triples as JSONL training records, language by language (see the module docstring)."""
    triples: dict[str, tuple[str, str]] = {}
    path = files[TRIPLES]
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if len(cols) != 3:
                raise DataError(f"{path}:{lineno}: expected 'query id<TAB>positive id<TAB>negative id'")
            triples.setdefault(cols[0], (cols[1], cols[2]))
            if len(triples) >= max_queries:
                break
    if not triples:
        raise DataError(f"{path}: no training triples")
    rels = iter(list(files)[1:])
    for lang in languages:
        coll_rel, query_rel = next(rels), next(rels)
        queries = _texts(files[query_rel], set(triples), f"{lang} queries", show_progress)
        passages = _texts(files[coll_rel], {p for pair in triples.values() for p in pair}, f"{lang} passages",
                          show_progress)  # fmt: skip
        for qid, (pos, neg) in triples.items():
            yield json.dumps({"id": f"mmarco:{qid}", "lang": lang, "query": queries[qid], "passage": passages[pos],
                              "negative": passages[neg], "group": f"p{pos}"}, ensure_ascii=False) + "\n"  # fmt: skip


def _texts(path: Path, wanted: set[str], desc: str, show_progress: bool) -> dict[str, str]:
    """id -> text of the ``wanted`` ids of one file; a wanted id absent or empty is a DataError naming the file."""
    found = {ident: (lineno, text) for lineno, ident, text in _rows(path, desc, show_progress) if ident in wanted}
    if missing := sorted(wanted - set(found)):
        raise DataError(f"{path}: id {missing[0]} (and {len(missing) - 1} more) of the training triples is missing")
    if empty := next((f"{path}:{lineno}" for lineno, text in found.values() if not text), None):
        raise DataError(f"{empty}: empty text")
    return {ident: text for ident, (_, text) in found.items()}
