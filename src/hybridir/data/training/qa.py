"""Question -> passage training and dev data: iapp-wiki-qa (th), the CMRC 2018 trial set (zh) and AfriQA.

These sets have the shape of the evaluation task (a real question, a Wikipedia passage holding its answer), unlike
NTREX / FLORES sentences, and none of them overlaps an evaluation set (``../shared/data/README.md``, ``qa/``).
Each is a named training source (``--data afriqa``, ``iapp-th``, ``cmrc-trial``, joinable with ``+``) with its own
held-out dev part: iapp's ``valid`` split, AfriQA's ``dev`` split, and for CMRC (one file) a seeded share of its
articles (``dev_fraction``), so a recipe is chosen on QA-shaped held-out questions (``hybridir.training.dev_metrics``).

The candidate (``target``) is the question's **answer sentence**, cut from the passage at the answer offset
(XQuAD-R's candidates are answer sentences; LAReQA trained on that shape), the sentence followed by its passage
(``sentence-context``, as ``evaluate(..., with_context=True)`` encodes candidates), or the whole ``passage``. In the
sentence targets the hard negative is a neighbouring sentence of the same passage (a real, topical non-answer).

AfriQA items are parallel: the African-language question has no passage in its language, so the item is
``{"ha": question only, "en": (the human English translation, the English passage)}``; its X-Y pair
(``xy:ha-en``: Hausa question -> English passage) and its X-X twin (``xx:en``) come from the same example.

Records the release itself leaves without a gold passage (AfriQA has a few with ``context: null``) or without a
question (one empty CMRC question, AfriQA's NaN), or whose answer is not in the passage (yes/no answers, offset
-1), cannot give an answer sentence: they are skipped and counted in ``info["skipped"]``; a malformed line (not
JSON, a missing or non-text field) is a one-line error.

Example::

    train, dev = load_qa("afriqa", ["en", "ha", "yo"], target="sentence")
    train.pools()["xy:ha-en"]       # Hausa questions whose English answer sentence is the positive
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import regex

from ...infra.errors import ConfigError, DataError
from .. import json_object, resolve_data_dir
from ..squad import read_squad
from .items import Pair, ParallelItem, TrainingData

TARGETS = ("sentence", "sentence-context", "passage")

#: AfriQA's language folder -> hybridir's short code (ISO 639-1 where one exists)
AFRIQA_LANGUAGES = {"bem": "bem", "fon": "fon", "hau": "ha", "ibo": "ig", "kin": "rw", "twi": "tw", "yor": "yo",
                    "zul": "zu"}  # fmt: skip

# Sentence ends: Latin / Cyrillic / Arabic / Devanagari punctuation followed by space (not after an initial such as
# the S of "U.S."), CJK full stops, and for Thai (no sentence punctuation) the spaces between its clauses.
_ENDS = regex.compile(r"(?<=[.!?;؟।۔])(?<!\b\p{Lu}\.)\s+|(?<=[。！？；])|\n+")
_THAI_SPACE = regex.compile(r"\s+")
# Characters: a sentence shorter than this takes the next piece too. Thai pieces are clauses between spaces; 120
# gives sentences near XQuAD-R's Thai ones (median 176 characters). CJK sentences are short in characters.
_MIN_SENTENCE = {"th": 120, "zh": 8, "ja": 8, "zh-tw": 8}
_MIN_DEFAULT = 20


def sentence_spans(text: str, lang: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of ``text``; a sentence under the language's minimum length takes the next
    piece too (and a short last piece joins the one before), so a short Thai clause is not a sentence of its own."""
    splitter = _THAI_SPACE if lang == "th" else _ENDS
    spans: list[tuple[int, int]] = []
    start = 0
    for m in splitter.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    shortest = _MIN_SENTENCE.get(lang, _MIN_DEFAULT)
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and merged[-1][1] - merged[-1][0] < shortest:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    if len(merged) > 1 and merged[-1][1] - merged[-1][0] < shortest:  # a short tail joins the sentence before it
        merged[-2:] = [(merged[-2][0], merged[-1][1])]
    return merged


def answer_target(context: str, start: int, lang: str, target: str) -> tuple[str, str | None] | None:
    """(positive, hard negative) for the answer at character ``start`` of ``context``; None when ``start`` is not
    inside the passage. ``passage`` has no negative of its own (the trainer takes another passage of the same
    article); the sentence targets take the next sentence (the previous one for the last)."""
    if target == "passage":
        return context, None
    spans = sentence_spans(context, lang)
    k = next((i for i, (s, e) in enumerate(spans) if s <= start < e), None)
    if k is None:
        return None
    sent = context[slice(*spans[k])].strip()
    neg = context[slice(*spans[k + 1 if k + 1 < len(spans) else k - 1])].strip() if len(spans) > 1 else None
    if target == "sentence-context":  # the shape evaluate(with_context=True) gives candidates
        return f"{sent} {context}", (f"{neg} {context}" if neg else None)
    return sent, neg


def _jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """(``"<file>, line <n>"``, record) for each line of a JSONL file, plain or gzipped; one-line errors."""
    import gzip

    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    for k, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{path}, line {k}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{where}: not UTF-8 text (byte {e.start}: {e.reason})") from e
        yield where, json_object(text, where)


def _text(rec: dict, key: str, where: str) -> str:
    """A text field; null, NaN or empty comes back as "" (the release leaves a few: those records are skipped, not
    failed), any other non-text value or a missing key is an error."""
    value = rec.get(key, 0)
    if value is None or (isinstance(value, float) and math.isnan(value)):  # AfriQA writes NaN for a few
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} is missing or not a string")
    return value


def _first_start(answers: object, where: str) -> int:
    """The first answer's character offset from a SQuAD-style ``answers`` value (dict of lists, list of dicts, or
    the string of a Python dict that iapp's release stores)."""
    if isinstance(answers, str):
        try:
            answers = ast.literal_eval(answers)
        except (ValueError, SyntaxError) as e:
            raise DataError(f"{where}: field 'answers' is not a readable answer record") from e
    try:
        start = answers["answer_start"][0] if isinstance(answers, dict) else answers[0]["answer_start"]
        return int(start)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise DataError(f"{where}: field 'answers' has no answer_start") from e


class _Builder:
    """Collects items, counting the records that cannot give a positive in the chosen target."""

    def __init__(self, name: str, target: str) -> None:
        if target not in TARGETS:
            raise ConfigError(f"unknown QA target {target!r}: use one of {', '.join(TARGETS)}")
        self.name, self.target, self.items, self.skipped = name, target, [], 0

    def add(self, qid: str, questions: dict[str, str], pivot: str, context: str | None, start: int,
            group: str) -> None:  # fmt: skip
        """One question (one or more languages) whose passage is in ``pivot``; the others get queries only."""
        usable = context and context.strip() and all(q.strip() for q in questions.values())
        got = answer_target(context, start, pivot, self.target) if usable else None
        if got is None:
            self.skipped += 1
            return
        pos, neg = got
        pairs = {lang: Pair(q, pos if lang == pivot else "", neg if lang == pivot else None)
                 for lang, q in questions.items()}  # fmt: skip
        # Questions on one passage share a dedup key: never in one batch, where each would be the other's false
        # negative. span (0, 0): no ICT window, so the trainer's hard negative may be any other passage of the group.
        passage_id = hashlib.sha1(context.encode()).hexdigest()[:16]
        self.items.append(ParallelItem(f"{self.name}:{qid}", pairs, f"{self.name}:{group}", span=(0, 0),
                                       dedup_key=f"{self.name}:{passage_id}"))  # fmt: skip

    def data(self, source: str, languages: Sequence[str]) -> TrainingData:
        keep = set(languages)
        items = [it for it in self.items if keep & set(it.pairs)]
        for it in items:
            it.pairs = {lang: p for lang, p in it.pairs.items() if lang in keep}
        items = [it for it in items if any(p.passage for p in it.pairs.values())]  # a query needs its passage
        if not items:
            raise DataError(f"{source}: none of the languages {', '.join(languages)} has question -> passage pairs")
        return TrainingData(items, source, {"target": self.target, "skipped": self.skipped})


def _iapp(root: Path, split: str, target: str, languages: Sequence[str]) -> TrainingData:
    path = root / "qa" / "iapp-th" / f"{split}.jsonl.gz"
    b = _Builder("iapp-th", target)
    for where, rec in _jsonl(path):
        context = rec.get("context")
        b.add(_text(rec, "question_id", where), {"th": _text(rec, "question", where)}, "th", context,
              _first_start(rec.get("answers"), where), _text(rec, "article_id", where))  # fmt: skip
    return b.data("iapp-th" if split == "train" else "iapp-th (dev)", languages)


def _cmrc(root: Path, target: str, languages: Sequence[str]) -> TrainingData:
    path = root / "qa" / "cmrc2018-trial-zh" / "cmrc2018_trial.json"
    b = _Builder("cmrc-trial", target)
    for para in read_squad(path):
        for q in para.questions:
            b.add(q.id, {"zh": q.text}, "zh", para.context, _first_start(q.answers, f"{path}: {q.where}"),
                  str(para.article_record.get("id") or para.article))  # fmt: skip
    return b.data("cmrc-trial", languages)


def _afriqa(root: Path, split: str, target: str, languages: Sequence[str]) -> TrainingData:
    folder = root / "qa" / "afriqa" / "gold_passages"
    b = _Builder("afriqa", target)
    for code, lang in AFRIQA_LANGUAGES.items():
        for path in sorted((folder / code).glob(f"gold_span_passages.afriqa.{code}.*.{split}.json")):
            pivot = path.name.split(".")[-3]  # en, or fr for Fon
            for where, rec in _jsonl(path):
                answer = rec.get("answer_pivot") or {}
                starts = answer.get("answer_start") if isinstance(answer, dict) else None
                questions = {lang: _text(rec, "question_lang", where), pivot: _text(rec, "question_translated", where)}
                b.add(f"{code}.{split}.{rec.get('id', where)}", questions, pivot, rec.get("context"),
                      int(starts[0]) if starts else -1, str(rec.get("title") or rec.get("id")))  # fmt: skip
    return b.data("afriqa" if split == "train" else "afriqa (dev)", languages)


#: source name -> (train part, dev part) given (data root, target, languages, seed, dev_fraction)
QA_SOURCES: dict[str, Callable[..., tuple[TrainingData, TrainingData | None]]] = {
    "iapp-th": lambda root, target, langs, seed, frac: (
        _iapp(root, "train", target, langs), _iapp(root, "valid", target, langs) if frac > 0 else None),
    "afriqa": lambda root, target, langs, seed, frac: (
        _afriqa(root, "train", target, langs), _afriqa(root, "dev", target, langs) if frac > 0 else None),
    "cmrc-trial": lambda root, target, langs, seed, frac: _cmrc(root, target, langs).split(frac, seed),
}  # fmt: skip


def qa_languages() -> dict[str, set[str]]:
    """The languages each QA source can give (queries or passages), for a mix that asks for more."""
    return {"iapp-th": {"th"}, "cmrc-trial": {"zh"}, "afriqa": set(AFRIQA_LANGUAGES.values()) | {"en", "fr"}}


def load_qa(
    name: str,
    languages: Sequence[str],
    target: str = "sentence",
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    dev_fraction: float = 0.1,
) -> tuple[TrainingData, TrainingData | None]:
    """(train, dev) of one QA source in the requested languages it has. ``dev_fraction`` only sizes CMRC's
    held-out articles (iapp and AfriQA have an official dev split); 0 means no dev part."""
    if name not in QA_SOURCES:
        raise ConfigError(f"unknown QA source {name!r}: use one of {', '.join(QA_SOURCES)}")
    return QA_SOURCES[name](resolve_data_dir(data_dir), target, list(languages), seed, dev_fraction)
