"""What a benchmark is: a small class with metadata, found by name through :mod:`hybridir.evaluation.benchmarks`.

A benchmark declares its name pattern, how it loads (``load``: data -> the task its protocol scores), which
settings and metrics it reports, which languages a per-language study arm (mono-ft) can be scored on, and the
layout of its ``per_query.npz``. The protocol (``score``) is shared: LAReQA's one-pass mono / cross / multi
settings, truncated-run retrieval, or FLORES bitext retrieval. :func:`hybridir.evaluation.evaluate.evaluate` is generic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...data import resolve_data_dir
from ...data.evaluation.lareqa import lareqa_dir, load_lareqa
from ...infra.errors import ConfigError


@dataclass(frozen=True)
class Request:
    """What ``evaluate`` asks a benchmark to load (``model``: the model reference, for benchmarks that read its
    training record)."""

    data_dir: str | os.PathLike | None = None
    languages: list[str] | None = None
    max_questions: int | None = None
    model: str | os.PathLike | None = None
    seen_languages: list[str] | None = None
    in_domain_topics: list[str] | None = None
    languages_needed: bool = True  # a centering will use every text's language (a BEIR set detects unlabeled ones)


class Benchmark:
    """One benchmark. Subclasses set the metadata and ``load``; the protocol bases below set ``score``."""

    name: ClassVar[str]  # the name, or its part before the first ':'
    pattern: ClassVar[str]  # the name grammar, as the CLI help and the docs table show it
    description: ClassVar[str]
    protocol: ClassVar[str]  # "lareqa", "retrieval" or "bitext"
    settings: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[str, ...]]
    per_query: ClassVar[str]  # the per_query.npz layout
    #: usable in a study (eval.datasets): its results folder and columns need a fixed, path-free name
    in_studies: ClassVar[bool] = True
    #: (summary metric, label) columns of the study table; empty for benchmarks whose name varies (added by name)
    columns: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: per-query setting (the part of a per_query.npz key before '/') -> the summary metric its paired test marks
    tested: ClassVar[dict[str, str]] = {}
    #: a study's name for its per-query settings where another benchmark has the same ones (``mlqa-r:`` + mono)
    setting_prefix: ClassVar[str] = ""

    def parse(self, dataset: str) -> Any:
        """The parts of ``dataset`` when it names this benchmark, else None; ConfigError for a malformed name of it."""
        return () if dataset == self.name else None

    def load(self, spec: Any, req: Request) -> Any:
        """The task ``score`` runs on; DataError / ConfigError before any model is loaded."""
        raise NotImplementedError

    def task_languages(self, task: Any) -> set[str]:
        """The language labels ``score`` passes with the texts of ``task``: the languages a centering needs means
        for (checked before the model loads). Default: every language of the task's EvalSets."""
        return {lang for es in task for lang in es.languages}

    def describe_task(self, task: Any) -> dict[str, Any]:
        """What results.json's ``config`` records of the loaded task beyond the request (BEIR: where its language
        labels came from)."""
        return {}

    def arm_languages(self, spec: Any) -> tuple[str, ...] | None:
        """The languages a per-language arm can be scored on (None: not a per-language benchmark)."""
        return None

    def check_languages(self, spec: Any, languages: list[str]) -> None:
        """ConfigError when a language filter asks for what it does not have (checked when a study is loaded)."""

    def check_for_study(self, spec: Any) -> None:
        """Stricter name checks for a study, where a typo would fail hours in (``evaluate`` accepts any data)."""

    def score(self, enc: Any, task: Any, *, with_context: bool, fusion: str | None,
              show_progress: bool) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
        """(results body with ``summary`` and ``scoring_seconds``, per-query arrays) of ``enc`` on ``task``."""
        raise NotImplementedError


class LareqaBenchmark(Benchmark):
    """The LAReQA protocol: mono X->X, cross X->Y and multi X->all from one encoding and one scoring pass."""

    protocol = "lareqa"
    settings = ("mono", "cross", "multi", "bias")
    metrics = ("map", "map@20", "ndcg@10", "mrr@10", "recall@1", "recall@10", "rank_distance")
    per_query = ("AP per query under mono/<x>, cross/<x> (mean over targets), multi/<x>; rank_distance/<x>; "
                 "query ids under qids/<x>")  # fmt: skip
    title: ClassVar[str]  # as in messages: XQuAD-R
    languages: ClassVar[tuple[str, ...]]

    def check_languages(self, spec: Any, languages: list[str]) -> None:
        if bad := [x for x in languages if x not in self.languages]:
            raise ConfigError(f"not {self.title} languages: {', '.join(bad)} (it has "
                              f"{' '.join(self.languages)})")  # fmt: skip

    def score(self, enc: Any, task: Any, *, with_context: bool, fusion: str | None,
              show_progress: bool) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
        from ..scoring.lareqa import evaluate_lareqa

        return evaluate_lareqa(enc, task[0], with_context=with_context, show_progress=show_progress)


class RetrievalBenchmark(Benchmark):
    """Truncated-run retrieval (top 100): nDCG@10, Recall@100, MRR@10; BM25 and fusion baselines allowed."""

    protocol = "retrieval"
    settings = ("retrieval",)
    metrics = ("ndcg@10", "recall@100", "mrr@10")
    per_query = "nDCG@10 per query under monoqa/<set> (and <run>/<set> with --fusion); query ids under qids/<set>"

    def score(self, enc: Any, task: Any, *, with_context: bool, fusion: str | None,
              show_progress: bool) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
        from ..scoring.retrieval import evaluate_retrieval

        return evaluate_retrieval(enc, task, fusion=fusion)


def load_lareqa_set(name: str, req: Request) -> list[Any]:
    """A LAReQA set from ``req.data_dir`` when that folder holds its JSON files, else from the data root."""
    folder = Path(req.data_dir) if req.data_dir and any(Path(req.data_dir).glob("*.json")) else None
    folder = folder or lareqa_dir(name, resolve_data_dir(req.data_dir))
    return [load_lareqa(folder, req.languages, max_questions=req.max_questions, name=name)]
