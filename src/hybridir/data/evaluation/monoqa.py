"""Monolingual question-to-paragraph retrieval from extractive QA sets (standing in for MIRACL offline).

SQuAD-layout JSON (JSQuAD, CMRC 2018, DRCD, PersianQA) and the iapp-wiki-qa JSONL format. The candidate pool is
every distinct paragraph of the file; a question's one relevant candidate is its own paragraph. Unanswerable
questions (SQuAD 2 ``is_impossible`` or no answer) are skipped, as MIRACL-style judgements need an answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...infra.errors import DataError
from .. import read_jsonl
from ..squad import read_squad
from .evalset import EvalSet

#: name -> (file under the data root's ``monoqa/``, format, language)
MONOQA_SETS: dict[str, tuple[str, str, str]] = {
    "jsquad-ja": ("jsquad-ja/valid-v1.3.json", "squad", "ja"),
    "cmrc2018-zh": ("cmrc2018-zh/cmrc2018_dev.json", "squad", "zh"),
    "drcd-zh-tw": ("drcd-zh-tw/DRCD_dev.json", "squad", "zh-tw"),
    "iapp-th": ("iapp-th/test.jsonl", "iapp", "th"),
    "persianqa-fa": ("persianqa-fa/pqa_test.json", "squad", "fa"),
}


def _squad_records(path: Path) -> Iterator[tuple[str, str, str, bool]]:
    """(question id, question, paragraph, answerable) from SQuAD-layout JSON."""
    for para in read_squad(path):
        for q in para.questions:
            yield q.id, q.text, para.context, not q.is_impossible and bool(q.answers)


def _iapp_records(path: Path) -> Iterator[tuple[str, str, str, bool]]:
    """(question id, question, paragraph, answerable) from iapp-wiki-qa JSONL (one object per line)."""
    for where, row in read_jsonl(path):
        for key in ("question_id", "question", "context"):
            if key not in row:
                raise DataError(f"{where}: missing field {key!r}")
        answers = row.get("answers") or {}
        texts = answers.get("text") if isinstance(answers, dict) else answers
        yield str(row["question_id"]), row["question"], row["context"], bool(texts and any(texts))


def load_qa_retrieval(path: str | Path, lang: str, fmt: str = "squad", *, name: str | None = None,
                      max_questions: int | None = None) -> EvalSet:  # fmt: skip
    """Question-to-paragraph retrieval set from one QA file (``fmt`` "squad" or "iapp")."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records = {"squad": _squad_records, "iapp": _iapp_records}[fmt](path)
    paragraphs: dict[str, int] = {}  # identical paragraph text is one candidate
    q_ids, q_texts, qrels = [], [], []
    for qid, question, context, answerable in records:
        pid = paragraphs.setdefault(context, len(paragraphs))
        if answerable and (max_questions is None or len(q_ids) < max_questions):
            q_ids.append(qid)
            q_texts.append(question)
            qrels.append(np.array([pid], dtype=np.int64))
    if len(set(q_ids)) != len(q_ids):
        dup = next(q for q in q_ids if q_ids.count(q) > 1)
        raise DataError(f"{path}: question id {dup!r} appears more than once")
    n = len(paragraphs)
    return EvalSet(
        name=name or path.stem, query_ids=q_ids, query_texts=q_texts, query_langs=[lang] * len(q_ids),
        query_groups=list(q_ids), cand_ids=[f"p{i:06d}" for i in range(n)], cand_texts=list(paragraphs),
        cand_langs=[lang] * n, qrels=qrels, source={lang: str(path)},
    )  # fmt: skip


def load_monoqa(name: str, data_root: str | Path, *, max_questions: int | None = None) -> EvalSet:
    """One of ``MONOQA_SETS`` from ``<data_root>/monoqa``."""
    if name not in MONOQA_SETS:
        raise DataError(f"unknown monolingual set {name!r}; known: {', '.join(MONOQA_SETS)}")
    rel, fmt, lang = MONOQA_SETS[name]
    return load_qa_retrieval(Path(data_root) / "monoqa" / rel, lang, fmt, name=name, max_questions=max_questions)
