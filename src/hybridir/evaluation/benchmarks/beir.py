"""Any BEIR-layout folder, ``beir:<dir>`` (corpus.jsonl, queries.jsonl, qrels/test.tsv or dev.tsv).

Languages (what centering needs): a corpus or query row's ``lang`` field, else ``--languages`` (one language
labels every row; several: the detector chooses among them), else detected per text (lingua). results.json says
which under ``config.languages_from``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...data.evaluation.beir import load_beir
from ...data.evaluation.evalset import EvalSet
from .base import Request, RetrievalBenchmark


def label_languages(es: EvalSet, languages: list[str] | None, needed: bool) -> str:
    """Fill ``es``'s unlabeled rows (``""``) in place; returns where its labels came from. ``needed``: a centering
    will use them (otherwise rows without a label are marked ``und`` and nothing is detected)."""
    unlabeled = [i for i, x in enumerate(es.query_langs) if not x], [i for i, x in enumerate(es.cand_langs) if not x]
    if not any(unlabeled):
        return "field 'lang'"
    some = len(unlabeled[0]) + len(unlabeled[1]) < len(es.query_langs) + len(es.cand_langs)
    if languages and len(languages) == 1:
        labels, how = lambda texts: [languages[0]] * len(texts), f"--languages {languages[0]}"
    elif needed:
        from ...retrieval.corpus import detect_languages

        labels = lambda texts: detect_languages(texts, languages)  # noqa: E731
        how = "detected (lingua" + (f", among {','.join(languages)})" if languages else ")")
    else:
        labels, how = lambda texts: ["und"] * len(texts), "none (no centering)"
    for rows, texts, langs in ((unlabeled[0], es.query_texts, es.query_langs),
                               (unlabeled[1], es.cand_texts, es.cand_langs)):  # fmt: skip
        for i, lang in zip(rows, labels([texts[i] for i in rows]), strict=True):
            langs[i] = lang
    es.__post_init__()  # the language arrays the filters read
    return ("field 'lang' where present, else " if some else "") + how


class Beir(RetrievalBenchmark):
    name = "beir"
    pattern = "beir:DIR"
    description = "a BEIR-layout folder (test qrels, else dev)"
    in_studies = False  # the name is a path: no results folder or column can be named after it

    def parse(self, dataset: str) -> Path | None:
        kind, sep, folder = dataset.partition(":")
        return Path(folder).expanduser() if kind == self.name and sep else None

    def load(self, spec: Path, req: Request) -> list:
        split = "test" if (spec / "qrels" / "test.tsv").is_file() else "dev"
        es = load_beir(spec, split, max_questions=req.max_questions)
        es.languages_from = label_languages(es, req.languages, req.languages_needed)
        return [es]

    def describe_task(self, task: Any) -> dict[str, Any]:
        return {"languages_from": task[0].languages_from}


BENCHMARK = Beir()
