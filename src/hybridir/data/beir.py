"""BEIR / MIRACL layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``, plus the MIRACL hub loader.

BEIR files: corpus lines ``{"_id", "title", "text"}``, query lines ``{"_id", "text"}``, qrels TSV
``query-id  corpus-id  score`` with a header. TREC qrels (``qid Q0 docid rel``) are read as well, which is how
MIRACL ships its judgements. Judgements with score <= 0 are non-relevant and dropped; queries without a
relevant document are skipped, as BEIR does.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError
from .evalset import EvalSet

MIRACL_LANGS = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th",
                "yo", "zh")  # fmt: skip


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: malformed JSON: {e}") from e


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (3 columns, header) or TREC qrels (4 columns) -> ``{qid: {docid: grade}}``, grade > 0 only."""
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
            if score > 0:
                qrels.setdefault(qid, {})[docid] = score
    return qrels


def build_evalset(name: str, lang: str, corpus: Iterable[tuple[str, str]], queries: Iterable[tuple[str, str]],
                  qrels: dict[str, dict[str, int]], *, where: str,
                  max_questions: int | None = None) -> EvalSet:  # fmt: skip
    """EvalSet from (doc id, text) and (query id, text) pairs and trec qrels; unknown doc ids are an error."""
    cand_ids, cand_texts, index = [], [], {}
    for docid, text in corpus:
        if docid in index:
            raise DataError(f"{where}: corpus id {docid!r} appears twice")
        index[docid] = len(cand_ids)
        cand_ids.append(docid)
        cand_texts.append(text)
    q_ids, q_texts, rels, grades = [], [], [], []
    for qid, text in queries:
        if qid not in qrels or (max_questions is not None and len(q_ids) >= max_questions):
            continue
        if missing := [d for d in qrels[qid] if d not in index]:
            raise DataError(f"{where}: qrels of query {qid!r} name documents missing from the corpus: {missing[:3]}")
        docs = sorted(qrels[qid], key=index.__getitem__)
        q_ids.append(qid)
        q_texts.append(text)
        rels.append(np.array([index[d] for d in docs], dtype=np.int64))
        grades.append(np.array([qrels[qid][d] for d in docs], dtype=np.int64))
    return EvalSet(
        name=name, query_ids=q_ids, query_texts=q_texts, query_langs=[lang] * len(q_ids), query_groups=list(q_ids),
        cand_ids=cand_ids, cand_texts=cand_texts, cand_langs=[lang] * len(cand_ids), qrels=rels, qrel_grades=grades,
        source={lang: where},
    )  # fmt: skip


def _doc_text(row: dict) -> str:
    """BEIR convention (as in sentence-transformers' examples): title and text joined by a space."""
    title = (row.get("title") or "").strip()
    return f"{title} {row['text']}" if title else row["text"]


def load_beir(directory: str | Path, split: str = "test", *, lang: str = "xx",
              max_questions: int | None = None) -> EvalSet:  # fmt: skip
    """A BEIR-layout folder; ``lang`` only labels the results."""
    directory = Path(directory)
    paths = {"corpus": directory / "corpus.jsonl", "queries": directory / "queries.jsonl",
             "qrels": directory / "qrels" / f"{split}.tsv"}  # fmt: skip
    for key, path in paths.items():
        if not path.is_file() and key != "qrels" and path.with_suffix(".jsonl.gz").is_file():
            paths[key] = path.with_suffix(".jsonl.gz")
        elif not path.is_file():
            raise DataError(f"{directory}: missing {path.relative_to(directory)} (BEIR layout)")

    def rows(key: str, fields: tuple[str, ...]) -> Iterator[dict]:
        for lineno, row in _jsonl(paths[key]):
            if missing := [f for f in fields if f not in row]:
                raise DataError(f"{paths[key]}:{lineno}: missing field {missing[0]!r}")
            yield row

    corpus = ((str(r["_id"]), _doc_text(r)) for r in rows("corpus", ("_id", "text")))
    queries = ((str(r["_id"]), r["text"]) for r in rows("queries", ("_id", "text")))
    return build_evalset(directory.name, lang, corpus, queries, read_qrels(paths["qrels"]), where=str(directory),
                         max_questions=max_questions)  # fmt: skip


def load_miracl(lang: str, split: str = "dev", *, max_questions: int | None = None) -> EvalSet:
    """MIRACL from the Hugging Face hub (online only): topics and qrels of ``miracl/miracl``, passages of
    ``miracl/miracl-corpus`` read with ``datasets``. Offline it raises a DataError that says so."""
    if lang not in MIRACL_LANGS:
        raise DataError(f"unknown MIRACL language {lang!r}; known: {', '.join(MIRACL_LANGS)}")
    try:
        from datasets import load_dataset
        from huggingface_hub import constants, hf_hub_download

        if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise ConnectionError("HF_HUB_OFFLINE is set")
        base = f"miracl-v1.0-{lang}"
        topics = hf_hub_download("miracl/miracl", f"{base}/topics/topics.{base}-{split}.tsv", repo_type="dataset")
        qrels_file = hf_hub_download("miracl/miracl", f"{base}/qrels/qrels.{base}-{split}.tsv", repo_type="dataset")
        corpus = load_dataset(
            "json",
            split="train",
            data_files=f"hf://datasets/miracl/miracl-corpus/miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz",
        )
    except Exception as e:  # any hub or network failure means the same thing to the user
        raise DataError(
            f"miracl:{lang}: could not download MIRACL from the Hugging Face hub ({type(e).__name__}: {e}). "
            "It needs internet; offline, put the files in BEIR layout and use --dataset beir:<dir>."
        ) from e
    with open(topics, encoding="utf-8") as f:
        queries = [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]
    docs = ((row["docid"], _doc_text(row)) for row in corpus)
    return build_evalset(f"miracl-{lang}", lang, docs, queries, read_qrels(Path(qrels_file)),
                         where=f"miracl/miracl {lang} {split}", max_questions=max_questions)  # fmt: skip
