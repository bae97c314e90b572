"""Any BEIR-layout folder, ``beir:<dir>`` (corpus.jsonl, queries.jsonl, qrels/test.tsv or dev.tsv)."""

from __future__ import annotations

from pathlib import Path

from ...data.evaluation.beir import load_beir
from .base import Request, RetrievalBenchmark


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
        return [load_beir(spec, split, max_questions=req.max_questions)]


BENCHMARK = Beir()
