"""BEIR layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``; the readers MIRACL shares.

BEIR files: corpus lines ``{"_id", "title", "text"}``, query lines ``{"_id", "text"}``, qrels TSV
``query-id  corpus-id  score`` with a header. TREC qrels (``qid Q0 docid rel``) are read as well, which is how
MIRACL ships its judgements (``data/evaluation/miracl.py`` reads MIRACL's own layout). Judgements with score <= 0 are
non-relevant and dropped; queries without a relevant document are skipped, as BEIR does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Container, Iterable, Iterator
from pathlib import Path

import numpy as np

from ...infra.errors import DataError
from .evalset import EvalSet


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: malformed JSON: {e}") from e


def records(path: Path, fields: tuple[str, ...]) -> Iterator[dict]:
    """The JSON objects of a (gzipped) JSONL file; a bad line or a missing field is a DataError naming the line."""
    for lineno, row in _jsonl(path):
        if missing := [f for f in fields if f not in row]:
            raise DataError(f"{path}:{lineno}: missing field {missing[0]!r}")
        yield row


def read_qrels(path: Path, *, min_grade: int = 1,
               docids: Container[str] | None = None) -> dict[str, dict[str, int]]:  # fmt: skip
    """BEIR qrels TSV (3 columns, header) or TREC qrels (4 columns) -> ``{qid: {docid: grade}}``.

    Keeps grades >= ``min_grade`` (1: relevant only; 0: every judged document). ``docids``: the collection, when
    known; a judged docid outside it is an error naming the line.
    """
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols or (lineno == 1 and cols[0] in ("query-id", "qid", "query_id")):
                continue
            if len(cols) not in (3, 4):
                raise DataError(f"{path}:{lineno}: expected 3 (BEIR) or 4 (TREC) columns, got {len(cols)}")
            qid, docid, grade = cols[0], cols[-2], cols[-1]
            try:
                score = int(float(grade))
            except ValueError as e:
                raise DataError(f"{path}:{lineno}: relevance {grade!r} is not a number") from e
            if docids is not None and docid not in docids:
                raise DataError(f"{path}:{lineno}: judged docid {docid!r} is not in the collection")
            if score >= min_grade:
                qrels.setdefault(qid, {})[docid] = score
    return qrels


def build_evalset(name: str, lang: str | None, corpus: Iterable[tuple], queries: Iterable[tuple],
                  qrels: dict[str, dict[str, int]], *, where: str,
                  max_questions: int | None = None) -> EvalSet:  # fmt: skip
    """EvalSet from (doc id, text[, lang]) and (query id, text[, lang]) tuples and trec qrels; unknown doc ids are
    an error. A row's own language wins; ``lang`` labels the rows without one (None: they stay unlabeled, ``""``,
    for the caller to fill: :func:`label_languages`)."""
    cand_ids, cand_texts, cand_langs, index = [], [], [], {}
    for docid, text, *own in corpus:
        if docid in index:
            raise DataError(f"{where}: corpus id {docid!r} appears twice")
        index[docid] = len(cand_ids)
        cand_ids.append(docid)
        cand_texts.append(text)
        cand_langs.append((own[0] if own else None) or lang or "")
    q_ids, q_texts, q_langs, rels, grades = [], [], [], [], []
    for qid, text, *own in queries:
        if qid not in qrels or (max_questions is not None and len(q_ids) >= max_questions):
            continue
        if missing := [d for d in qrels[qid] if d not in index]:
            raise DataError(f"{where}: qrels of query {qid!r} name documents missing from the corpus: {missing[:3]}")
        docs = sorted(qrels[qid], key=index.__getitem__)
        q_ids.append(qid)
        q_texts.append(text)
        q_langs.append((own[0] if own else None) or lang or "")
        rels.append(np.array([index[d] for d in docs], dtype=np.int64))
        grades.append(np.array([qrels[qid][d] for d in docs], dtype=np.int64))
    return EvalSet(
        name=name, query_ids=q_ids, query_texts=q_texts, query_langs=q_langs, query_groups=list(q_ids),
        cand_ids=cand_ids, cand_texts=cand_texts, cand_langs=cand_langs, qrels=rels, qrel_grades=grades,
        source={x: where for x in sorted(set(q_langs) | set(cand_langs))},
    )  # fmt: skip


def doc_text(row: dict) -> str:
    """BEIR convention (as in sentence-transformers' examples): title and text joined by a space."""
    title = (row.get("title") or "").strip()
    return f"{title} {row['text']}" if title else row["text"]


def _lang(row: dict, path: Path, lineno: int) -> str | None:
    from ..languages import check_language

    if row.get("lang") is None:
        return None
    return check_language(str(row["lang"]), f"{path}:{lineno}: field 'lang'")


def load_beir(directory: str | Path, split: str = "test", *, lang: str | None = None,
              max_questions: int | None = None) -> EvalSet:  # fmt: skip
    """A BEIR-layout folder. A corpus or query row's ``lang`` field is its language; ``lang`` labels the rows
    without one (None: they stay ``""``, for :func:`label_languages`)."""
    directory = Path(directory)
    paths = {"corpus": directory / "corpus.jsonl", "queries": directory / "queries.jsonl",
             "qrels": directory / "qrels" / f"{split}.tsv"}  # fmt: skip
    for key, path in paths.items():
        if not path.is_file() and key != "qrels" and path.with_suffix(".jsonl.gz").is_file():
            paths[key] = path.with_suffix(".jsonl.gz")
        elif not path.is_file():
            raise DataError(f"{directory}: missing {path.relative_to(directory)} (BEIR layout)")

    def rows(key: str) -> Iterator[tuple[str, str, str | None]]:
        for lineno, r in _jsonl(paths[key]):
            if missing := [f for f in ("_id", "text") if f not in r]:
                raise DataError(f"{paths[key]}:{lineno}: missing field {missing[0]!r}")
            yield str(r["_id"]), doc_text(r) if key == "corpus" else r["text"], _lang(r, paths[key], lineno)

    return build_evalset(directory.name, lang, rows("corpus"), rows("queries"), read_qrels(paths["qrels"]),
                         where=str(directory), max_questions=max_questions)  # fmt: skip
