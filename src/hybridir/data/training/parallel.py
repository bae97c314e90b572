"""Training data: parallel items (one id, a query/passage pair per language) and monolingual pairs.

Each source becomes the one data model of :mod:`.items` (the QA sets, mMARCO and the ``--data`` dispatch live in
``qa.py``, ``mmarco.py`` and ``sources.py``):

- NTREX-128 (or any folder of line-aligned sentence files) turned into parallel pseudo query/passage pairs by the
  inverse cloze task (ICT, Lee et al. 2019): the query is one sentence, the passage a window of neighbouring
  sentences of the same document; the query sentence is removed from its window with probability
  ``remove_prob``. Windows never cross documents and the same window is used in every language, so the item id
  is shared and X-Y pairs exist.
- SQuAD-format QA (monolingual: question -> paragraph).
- The JSONL/TSV format of ``docs/data_formats.md`` for users' own data (parallel when ids repeat across languages).
- Hub data sets through ``datasets`` (``hf:<name>``, online only), e.g. mMARCO, which is parallel.
- FLORES-200 (``flores``): translation pairs only. Its sentences are a sample of articles whose neighbours sit in
  other splits (row 8 in test, 9 in dev, 10 in train) and whose boundaries the files do not give, so no ICT window
  can be built; a FLORES item is *bitext*: an X-Y pair is (sentence in X, the same sentence in Y), and it has no
  X-X pair. X-X batches come from the other sources of a mix (``ntrex+flores``).

Several sources join with ``+`` (``ntrex+flores``); each keeps its own held-out split (NTREX: whole documents
chosen by the seed; FLORES: its ``dev`` split), and items of different sources never share an id.

Example::

    data = load_ntrex(languages=["en", "de", "th"])
    train, dev = data.split(dev_fraction=0.1, seed=0)   # whole documents held out
    train.pools()["xy:en-de"]                           # item indices that have both en and de
    train, dev = load_train_dev("ntrex+flores", ["en", "de"], dev_fraction=0.1)   # hybridir.data.training.sources
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...infra.errors import ConfigError, DataError
from .. import read_jsonl, read_utf8, resolve_data_dir
from ..languages import NTREX_CODES, XQUAD_LANGUAGES, check_language
from ..squad import read_squad
from .items import Pair, ParallelItem, TrainingData

# Scripts written without spaces between sentences.
_NO_SPACE = {"zh", "ja", "yue", "zho-CN", "zho-TW", "jpn"}


# ---------------------------------------------------------------------------------------------- line-aligned / ICT
def ntrex_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """NTREX code -> file, for every language of the shared NTREX-128 folder (plus the English source as 'eng')."""
    root = resolve_data_dir(data_dir) / "ntrex-128"
    if not root.is_dir():
        raise DataError(f"{root}: NTREX-128 folder not found")
    files = {"eng": root / "newstest2019-src.eng.txt"}
    for f in sorted(root.glob("newstest2019-ref.*.txt")):
        files[f.name[len("newstest2019-ref.") : -len(".txt")]] = f
    return files


def load_ntrex(
    languages: Sequence[str] = XQUAD_LANGUAGES,
    data_dir: str | os.PathLike | None = None,
    window: int = 4,
    remove_prob: float = 0.9,
    seed: int = 0,
) -> TrainingData:
    """NTREX-128 as parallel ICT items in ``languages`` (short codes such as 'de', or NTREX codes such as 'deu')."""
    files = ntrex_files(data_dir)
    chosen: dict[str, Path] = {}
    for lang in languages:
        code = NTREX_CODES.get(lang, lang)
        if code not in files:
            raise DataError(
                f"NTREX-128 ({files['eng'].parent}): unknown language code {lang!r}; use a short code "
                f"({', '.join(sorted(NTREX_CODES))}) or an NTREX code ({', '.join(sorted(files))})"
            )
        chosen[lang] = files[code]
    return load_aligned(chosen, files["eng"].parent / "DOCUMENT_IDS.tsv", window, remove_prob, seed, "ntrex")


def load_aligned(
    files: Mapping[str, str | os.PathLike],
    doc_ids: str | os.PathLike | None = None,
    window: int = 4,
    remove_prob: float = 0.9,
    seed: int = 0,
    name: str = "aligned",
) -> TrainingData:
    """Line-aligned sentence files (line i of every file is the same sentence) -> parallel ICT items.

    ``doc_ids`` has one document id per line (first tab-separated field); without it the whole file is one
    document. The window (``window`` sentences around the query, placed at a seeded random offset) and the
    removal of the query sentence are drawn once per item, so every language gets the same passage.
    """
    if window < 1:
        raise ConfigError(f"ICT window must be >= 1 sentence, got {window}")
    if not 0 <= remove_prob <= 1:
        raise ConfigError(f"ICT remove_prob must be in [0, 1], got {remove_prob}")
    if not files:
        raise ConfigError(f"{name}: no languages requested")
    lines: dict[str, list[str]] = {}
    for lang, path in files.items():
        check_language(lang, str(path))
        lines[lang] = read_lines(Path(path))
    n = {len(v) for v in lines.values()}
    if len(n) > 1:
        sizes = ", ".join(f"{files[lang]}: {len(v)}" for lang, v in lines.items())
        raise DataError(f"{name}: parallel files have different line counts ({sizes})")
    n_lines = n.pop()
    docs = [line.split("\t")[0] for line in read_lines(Path(doc_ids))] if doc_ids else ["doc"] * n_lines
    if len(docs) != n_lines:
        raise DataError(f"{doc_ids}: {len(docs)} document ids for {n_lines} sentence lines")
    rng = np.random.default_rng(seed)
    items = []
    bounds = _runs(docs)
    for start, end in bounds:
        for i in range(start, end):
            size = min(window, end - start)
            lo, hi = max(start, i - size + 1), min(i, end - size)
            w0 = int(rng.integers(lo, hi + 1))
            remove = size > 1 and rng.random() < remove_prob
            pairs = {}
            for lang, text in lines.items():
                sents = [text[k] for k in range(w0, w0 + size) if not (remove and k == i)]
                sep = "" if lang in _NO_SPACE else " "
                pairs[lang] = Pair(text[i], sep.join(sents))
            items.append(ParallelItem(f"{name}:{i}", pairs, docs[i], i, (w0, w0 + size)))
    info = {"window": window, "remove_prob": remove_prob, "lines": n_lines, "documents": len(bounds)}
    return TrainingData(items, name, info)


def _runs(docs: list[str]) -> list[tuple[int, int]]:
    """Contiguous [start, end) runs of equal document ids; a document split into two runs is an error."""
    runs, seen = [], set()
    start = 0
    for i in range(1, len(docs) + 1):
        if i == len(docs) or docs[i] != docs[start]:
            if docs[start] in seen:
                raise DataError(f"document id {docs[start]!r} appears in two separate runs of lines")
            seen.add(docs[start])
            runs.append((start, i))
            start = i
    return runs


def read_lines(path: Path) -> list[str]:
    """The lines of a line-aligned file (NTREX, own folders); DataError if it is empty or has a blank line."""
    lines = read_utf8(path).splitlines()
    if not lines:
        raise DataError(f"{path}: file is empty (a language with no data)")
    for k, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(f"{path}, line {k}: empty text")
    return lines


# ------------------------------------------------------------------------------------------ user JSONL / TSV
def load_pairs(path: str | os.PathLike) -> TrainingData:
    """The JSONL/TSV training format (``docs/data_formats.md``): one record per (id, language) with ``id``,
    ``lang``, ``query``, ``passage`` and optional ``group`` and ``negative``; records sharing an id are one
    parallel item."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: training file not found")
    try:
        records = read_jsonl(path) if path.suffix == ".jsonl" else _read_tsv(path)
    except UnicodeDecodeError:
        read_utf8(path)  # raises the DataError that names the line and byte
        raise
    items: dict[str, ParallelItem] = {}
    for where, rec in records:
        for key in ("id", "lang", "query", "passage"):
            if not isinstance(rec.get(key), str) or not rec[key].strip():
                raise DataError(f"{where}: field {key!r} is missing or empty")
        neg = rec.get("negative") or None
        if neg is not None and (not isinstance(neg, str) or not neg.strip()):
            raise DataError(f"{where}: field 'negative' must be a non-empty string")
        lang = check_language(rec["lang"], where)
        item = items.setdefault(rec["id"], ParallelItem(rec["id"], {}, str(rec.get("group") or rec["id"])))
        if lang in item.pairs:
            raise DataError(f"{where}: id {rec['id']!r} already has a record in {lang!r}")
        item.pairs[lang] = Pair(rec["query"], rec["passage"], neg)
    return TrainingData(list(items.values()), str(path))


def _read_tsv(path: Path) -> list[tuple[str, dict]]:
    reader = csv.DictReader(io.StringIO(read_utf8(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = {"id", "lang", "query", "passage"} - set(reader.fieldnames or [])
    if missing:
        raise DataError(f"{path}, line 1: header lacks column(s) {', '.join(sorted(missing))}")
    return [(f"{path}, line {k}", dict(row)) for k, row in enumerate(reader, 2)]


# ---------------------------------------------------------------------------------------------------- SQuAD
def load_squad(path: str | os.PathLike, lang: str) -> TrainingData:
    """SQuAD-format QA (v1 or v2; unanswerable questions skipped) as monolingual question -> paragraph pairs.
    Questions of one paragraph share a ``dedup_key`` so they never meet in a batch (false negatives)."""
    path = Path(path)
    check_language(lang, str(path))
    items = []
    for para in read_squad(path):
        if not para.context.strip():
            raise DataError(f"{path}: {para.where}: empty context")
        for q in para.questions:
            if q.is_impossible:
                continue
            if not q.text.strip():
                raise DataError(f"{path}: {q.where}: empty text")
            items.append(ParallelItem(q.id, {lang: Pair(q.text, para.context)},
                                      str(para.article_record.get("title") or para.article),
                                      dedup_key=f"{para.article}.{para.index}"))  # fmt: skip
    return TrainingData(items, str(path))


# ------------------------------------------------------------------------------------------------------ hub
def load_hub(name: str, languages: Sequence[str], split: str = "train", limit: int | None = 10000) -> TrainingData:
    """A hub data set with one config per language whose rows are aligned across languages (mMARCO:
    ``unicamp-dl/mmarco``, configs named by language). Online only. Columns: the first of query/anchor/question
    and of positive/passage/answer; a negative column becomes the hard negative."""
    from datasets import load_dataset

    items: dict[str, ParallelItem] = {}
    for lang in languages:
        try:
            ds = load_dataset(name, MMARCO_CONFIGS.get(lang, lang), split=split, streaming=True)
        except Exception as e:  # datasets raises many types for offline / missing configs
            raise DataError(f"hf:{name} ({lang}): cannot load from the hub ({type(e).__name__}: {e})") from e
        for k, row in enumerate(ds):
            if limit is not None and k >= limit:
                break
            q = next((row[c] for c in ("query", "anchor", "question") if c in row), None)
            p = next((row[c] for c in ("positive", "passage", "answer") if c in row), None)
            if not q or not p:
                raise DataError(f"hf:{name} ({lang}), row {k}: no query/passage columns or empty text")
            item = items.setdefault(str(k), ParallelItem(str(k), {}, str(k)))
            item.pairs[lang] = Pair(q, p, row.get("negative") or None)
    return TrainingData(list(items.values()), f"hf:{name}")


# mMARCO names its configs by English language name.
MMARCO_CONFIGS = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi",
    "id": "indonesian", "it": "italian", "ja": "japanese", "nl": "dutch", "pt": "portuguese", "ru": "russian",
    "vi": "vietnamese", "zh": "chinese",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------- FLORES
def load_flores_pairs(
    languages: Sequence[str],
    split: str = "train",
    topics: Sequence[str] | None = None,
    data_dir: str | os.PathLike | None = None,
) -> TrainingData:
    """FLORES-200 (SIB-200 packaging) as bitext items: one item per sentence, keyed by the codes as given (``de``
    and NTREX's ``deu`` style codes map to ``deu_Latn``), so its X-Y keys join NTREX's in a mix. ``topics``
    keeps only sentences of those SIB-200 categories (a domain-shift study trains on some, tests on others).
    Languages FLORES-200 does not have (NTREX's Dhivehi, Tongan...) are left out and listed in
    ``info["not_in_flores"]``, so a mix with NTREX still trains on them; none left is an error."""
    from ..flores import check_topics, flores_code, load_flores

    check_topics(list(topics or ()))
    codes, missing = {}, []
    for lang in languages:
        try:
            codes[lang] = flores_code(lang, data_dir)
        except DataError:
            missing.append(lang)
    if not codes:
        raise DataError(f"FLORES-200 has none of the languages {', '.join(languages)}")
    fl = load_flores(list(codes), split, data_dir)
    items = []
    for i, (index_id, topic) in enumerate(zip(fl.index_ids, fl.topics, strict=True)):
        if topics and topic not in topics:
            continue
        pairs = {lang: Pair(fl.texts[code][i], fl.texts[code][i]) for lang, code in codes.items()}
        items.append(ParallelItem(f"flores:{index_id}", pairs, f"flores:{index_id}", bitext=True))
    chosen = f" ({', '.join(topics)})" if topics else ""
    return TrainingData(items, f"flores-{split}{chosen}", {"topics": list(topics or []), "not_in_flores": missing})


def data_sources(spec: str | Sequence[str]) -> list[str]:
    """``ntrex+flores`` or ``["ntrex", "flores"]`` -> the source list; an existing path containing ``+`` is one
    source. Repeats are an error (their items would share ids)."""
    if not isinstance(spec, str):
        sources = [str(x).strip() for x in spec]
    elif Path(spec).expanduser().exists():
        sources = [spec]
    else:
        sources = [x.strip() for x in spec.split("+")]
    if not sources or not all(sources) or len(set(sources)) != len(sources):
        raise ConfigError(f"training data {spec!r}: expected sources joined with '+', each once (ntrex+flores)")
    return sources
