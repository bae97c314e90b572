"""The one reader of SQuAD-format JSON (``data`` -> ``paragraphs`` -> ``qas``), for every loader that takes it:
SQuAD training files and the CMRC 2018 trial set (``training/``), XQuAD-R / MLQA-R and the monolingual QA sets
(``evaluation/``).

The reader checks the structure they all rely on: a ``data`` list of articles, each with a ``paragraphs`` list,
each paragraph with a ``context`` string and a ``qas`` list, each question with an ``id`` and a ``question``
string. Anything else (answers, ``is_impossible``, LAReQA's ``sentences``) is the caller's to read from the
records, with :func:`field` for a one-line error naming the file and the record.

Example::

    for para in read_squad(path):
        for q in para.questions:
            print(q.where, q.id, q.text, para.context[:20], q.answers)   # data[3].paragraphs[1].qas[0] (id 7) ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..infra.errors import DataError
from . import read_utf8

_KINDS = {list: "a list", str: "a string"}


def field(record: object, key: str, where: str, path: Path, kind: type | None = None) -> Any:
    """``record[key]``; a DataError ``"<file>: <where>: missing field 'key'"`` when it is absent (or ``record`` is
    not an object), and ``"... field 'key' is not a list"`` (or a string) when it is not of ``kind``."""
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{path}: {where}: missing field {key!r}")
    value = record[key]
    if kind is not None and not isinstance(value, kind):
        raise DataError(f"{path}: {where}: field {key!r} is not {_KINDS[kind]}")
    return value


@dataclass(frozen=True)
class Question:
    """One ``qas`` entry. ``where`` names it for errors: ``data[3].paragraphs[1].qas[0] (id <id>)``."""

    where: str
    id: str
    text: str
    record: dict  # the entry as the file has it

    @property
    def answers(self) -> Any:
        """The ``answers`` value as given (None when the entry has none)."""
        return self.record.get("answers")

    @property
    def is_impossible(self) -> bool:
        """SQuAD 2's flag for a question the paragraph does not answer."""
        return bool(self.record.get("is_impossible", False))


@dataclass(frozen=True)
class Paragraph:
    """One paragraph: ``article`` / ``index`` are its positions, ``where`` is ``data[<article>].paragraphs[<index>]``,
    ``record`` / ``article_record`` the objects as the file has them (titles, ids, extra fields)."""

    where: str
    article: int
    index: int
    context: str
    questions: list[Question]
    record: dict
    article_record: dict


def read_squad(path: str | Path) -> Iterator[Paragraph]:
    """The paragraphs of a SQuAD-format file in file order, with their questions; a file that cannot be read, is
    not JSON or lacks the structure is a one-line DataError naming the file and the record."""
    path = Path(path)
    try:
        doc = json.loads(read_utf8(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON: {e}") from e
    for a, article in enumerate(field(doc, "data", "top level", path, list)):
        for p, para in enumerate(field(article, "paragraphs", f"data[{a}]", path, list)):
            where = f"data[{a}].paragraphs[{p}]"
            context = field(para, "context", where, path, str)
            questions = []
            for q, qa in enumerate(field(para, "qas", where, path, list)):
                qid = str(field(qa, "id", f"{where}.qas[{q}]", path))
                qwhere = f"{where}.qas[{q}] (id {qid})"
                questions.append(Question(qwhere, qid, field(qa, "question", qwhere, path, str), qa))
            yield Paragraph(where, a, p, context, questions, para, article)
