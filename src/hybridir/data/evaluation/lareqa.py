"""XQuAD-R and MLQA-R (LAReQA): SQuAD-layout JSON with ``sentences`` and ``sentence_breaks`` per paragraph.

One file per language (``<lang>.json``). Candidates are the paragraph sentences, one per (paragraph, position),
so all questions about a sentence share one candidate; the relevant candidate of a question in a language is
the sentence holding the answer start in that language's version of the question (same question id). MLQA-R is
only partly parallel (a question exists in 2-4 languages) and loads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...infra.errors import DataError
from ..squad import field, read_squad
from .evalset import EvalSet

MLQA_R_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")
#: folder names under the data root (``mlqa-dev-r`` is the name in the LAReQA repository)
LAREQA_DIRS = {"xquad-r": ("xquad-r",), "mlqa-r": ("mlqa-r", "mlqa-dev-r")}


@dataclass
class _Lang:
    """One parsed language file."""

    path: Path
    sentences: list[tuple[str, str, str]]  # (cand_id, sentence, paragraph)
    questions: dict[str, tuple[str, int]]  # question id -> (question text, index into sentences)


def _answer_sentence(st: int, breaks: list, context: str, where: str, path: Path) -> int:
    """Index of the sentence whose [start, end) span holds character ``st``.

    An answer start on the whitespace between two sentences moves to the next non-space character (it belongs
    to the sentence that follows); anything else outside every sentence is an error.
    """
    while 0 <= st < len(context) and context[st].isspace():
        st += 1
    for i, (b, e) in enumerate(breaks):
        if b <= st < e:
            return i
    raise DataError(f"{path}: {where}: answer_start {st} lies outside every sentence (breaks {breaks})")


def _parse_file(path: Path, lang: str) -> _Lang:
    sentences: list[tuple[str, str, str]] = []
    questions: dict[str, tuple[str, int]] = {}
    for para in read_squad(path):
        sents = field(para.record, "sentences", para.where, path)
        breaks = field(para.record, "sentence_breaks", para.where, path)
        if len(sents) != len(breaks):
            raise DataError(f"{path}: {para.where}: {len(sents)} sentences but {len(breaks)} sentence_breaks")
        first = len(sentences)
        sentences += [(f"{lang}/{para.article:03d}/{para.index:03d}/{si:03d}", s, para.context)
                      for si, s in enumerate(sents)]  # fmt: skip
        for q in para.questions:
            answers = field(q.record, "answers", q.where, path)
            if not answers:
                raise DataError(f"{path}: {q.where}: no answers")
            start = field(answers[0], "answer_start", q.where + ".answers[0]", path)
            if q.id in questions:
                raise DataError(f"{path}: {q.where}: question id appears twice in this file")
            questions[q.id] = (q.text, first + _answer_sentence(int(start), breaks, para.context, q.where, path))
    return _Lang(path, sentences, questions)


def lareqa_dir(dataset: str, data_root: Path) -> Path:
    """The folder of ``dataset`` ("xquad-r" or "mlqa-r") under the data root."""
    names = LAREQA_DIRS[dataset]
    for name in names:
        if (data_root / name).is_dir():
            return data_root / name
    raise DataError(f"{dataset}: no folder {' or '.join(names)} under {data_root}")


def load_lareqa(
    directory: str | Path,
    languages: list[str] | None = None,
    *,
    max_questions: int | None = None,
    name: str | None = None,
) -> EvalSet:
    """Load every ``<lang>.json`` in ``directory`` and keep ``languages`` (all by default).

    Every file is parsed even when only some languages are kept, so that a question id present in one
    language only is caught as the data error it is. ``max_questions`` keeps the first N question ids (the
    same questions in every language); the candidate pools always stay complete.
    """
    directory = Path(directory)
    files = sorted(directory.glob("*.json"))
    if not files:
        raise DataError(f"{directory}: no <lang>.json files found")
    available = [f.stem for f in files]
    wanted = sorted(set(languages or available))
    if unknown := [lang for lang in wanted if lang not in available]:
        raise DataError(
            f"{directory}: unknown language code(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    parsed = {f.stem: _parse_file(f, f.stem) for f in files}
    for lang in wanted:
        if not parsed[lang].sentences:
            raise DataError(f"{parsed[lang].path}: empty candidate pool (no paragraph sentences)")

    owner: dict[str, list[str]] = {}
    for lang in available:
        for qid in parsed[lang].questions:
            owner.setdefault(qid, []).append(lang)
    if len(available) > 1:
        for qid, langs in owner.items():
            if len(langs) == 1:
                raise DataError(f"{parsed[langs[0]].path}: question id {qid} is present in this language only")

    order = [qid for qid, langs in owner.items() if any(lang in wanted for lang in langs)]
    if max_questions is not None:
        order = order[:max_questions]
    keep = set(order)

    cand_ids, cand_texts, cand_langs, contexts, offset = [], [], [], [], {}
    for lang in wanted:
        offset[lang] = len(cand_ids)
        for cid, sent, ctx in parsed[lang].sentences:
            cand_ids.append(cid)
            cand_texts.append(sent)
            cand_langs.append(lang)
            contexts.append(ctx)
    answer = {qid: {lang: offset[lang] + parsed[lang].questions[qid][1]
                    for lang in wanted if qid in parsed[lang].questions} for qid in order}  # fmt: skip
    q_ids, q_texts, q_langs, q_groups, qrels = [], [], [], [], []
    for lang in wanted:
        for qid, (text, _) in parsed[lang].questions.items():
            if qid in keep:
                q_ids.append(f"{lang}/{qid}")
                q_texts.append(text)
                q_langs.append(lang)
                q_groups.append(qid)
                qrels.append(np.array(sorted(answer[qid].values()), dtype=np.int64))
    return EvalSet(
        name=name or directory.name, query_ids=q_ids, query_texts=q_texts, query_langs=q_langs,
        query_groups=q_groups, cand_ids=cand_ids, cand_texts=cand_texts, cand_langs=cand_langs, qrels=qrels,
        cand_contexts=contexts, source={lang: str(parsed[lang].path) for lang in wanted},
    )  # fmt: skip
