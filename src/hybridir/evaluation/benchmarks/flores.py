"""FLORES-200 bitext retrieval, ``flores``: X <-> English in all 205 codes (or the languages asked), groups (seen /
unseen in training, NLLB resource level), topic domains and a multilingual pool (:mod:`..scoring.bitext`).

Loading settles the groups: the languages a hybridir-trained model saw come from its training record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...data.flores import check_topics, flores_code, flores_codes, load_flores
from ...data.languages import XQUAD_LANGUAGES
from ...data.training.parallel import data_sources
from ...infra.errors import ConfigError, DataError
from ..scoring.bitext import PIVOT, FloresTask, evaluate_flores
from .base import Benchmark, Request

#: the multilingual pool ranks n x 204 sentences against each other (memory ~ n^3): beyond this, name fewer
MAX_POOL_LANGUAGES = 50


def training_record(model: str | os.PathLike) -> tuple[dict[str, Any], Path] | None:
    """(TrainConfig fields, file) of a model trained by hybridir: ``train_summary.json`` of its run (the run
    directory or its ``final`` model) or ``state.json`` of a checkpoint; None for any other model."""
    path = Path(model).expanduser()
    for f in (path / "train_summary.json", path.parent / "train_summary.json", path.parent / "state.json"):
        if f.is_file():
            return json.loads(f.read_text(encoding="utf-8"))["config"], f
    return None


def _codes(langs: list[str], data_dir: str | os.PathLike | None) -> tuple[list[str], list[str]]:
    """(FLORES codes, the given codes FLORES does not have) of training languages such as ``de`` or ``zho-TW``."""
    found, missing = [], []
    for lang in langs:
        try:
            found.append(flores_code(lang, data_dir))
        except DataError:
            missing.append(lang)
    return found, missing


def load_flores_task(
    model: str | os.PathLike | None,
    languages: list[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    seen_languages: list[str] | None = None,
    in_domain_topics: list[str] | None = None,
    max_queries: int | None = None,
) -> FloresTask:
    """Read the test split and settle the groups: ``languages`` (short or FLORES codes; all 205 when None) also
    form the multilingual pool when given (else the 11 XQuAD-R languages); ``seen_languages`` and
    ``in_domain_topics`` override what the model's training record says."""
    codes = sorted({flores_code(x, data_dir) for x in languages} | {PIVOT}) if languages else flores_codes(data_dir)
    if codes == [PIVOT]:
        raise ConfigError("FLORES-200 retrieval pairs languages with English: name at least one other language")
    pool = codes if languages else sorted({flores_code(x, data_dir) for x in XQUAD_LANGUAGES})
    if len(pool) > MAX_POOL_LANGUAGES:
        raise ConfigError(f"--languages: {len(pool)} languages, but the multilingual pool ranks every sentence "
                          f"against all of them, which needs memory growing with the cube of their number: name at "
                          f"most {MAX_POOL_LANGUAGES}, or none for all 205 (the pool is then the 11 XQuAD-R "
                          "languages)")  # fmt: skip
    record = training_record(model) if model is not None else None
    seen, seen_from = set(), "no hybridir training record: every language counts as unseen by hybridir training"
    if seen_languages is not None:
        seen, seen_from = {flores_code(x, data_dir) for x in seen_languages}, "--seen-languages"
    elif record:
        found, missing = _codes(record[0]["languages"], data_dir)
        seen, seen_from = set(found), f"training languages in {record[1]}"
        if missing:
            seen_from += f" ({', '.join(missing)} not in FLORES-200)"
    topics, topics_from = check_topics(in_domain_topics) or None, "--in-domain-topics"
    if topics is None and record and record[0].get("train_topics") and "flores" in data_sources(record[0]["data"]):
        topics, topics_from = check_topics(record[0]["train_topics"]), f"train_topics in {record[1]}"
    split = load_flores(codes, "test", data_dir)
    return FloresTask(split, [c for c in codes if c != PIVOT], pool, seen, seen_from, topics,
                      topics_from if topics else None, max_queries)  # fmt: skip


class Flores(Benchmark):
    name = pattern = "flores"
    description = "FLORES-200 bitext retrieval X <-> English in 205 languages, topics, a multilingual pool"
    protocol = "bitext"
    settings = ("x_en", "en_x", "pool")
    metrics = ("acc@1", "mrr@10", "map", "rank_distance")
    per_query = ("reciprocal rank per sentence under bitext/x_en:<code> and bitext/en_x:<code>, ids under "
                 "qids/<direction>:<code>; the pool's under pool_cross/<code>, pool_multi/<code>, "
                 "pool_rank_distance/<code>")  # fmt: skip
    columns = (("acc@1", "FLORES acc@1"), ("mrr@10", "FLORES MRR@10"), ("mrr@10_in_domain", "FLORES MRR@10 in-domain"),
               ("mrr@10_out_domain", "out-of-domain"), ("domain_gap", "domain gap"))  # fmt: skip
    tested = {"bitext": "mrr@10"}

    def load(self, spec: tuple, req: Request) -> FloresTask:
        return load_flores_task(req.model, req.languages, req.data_dir, req.seen_languages, req.in_domain_topics,
                                req.max_questions)  # fmt: skip

    def task_languages(self, task: FloresTask) -> set[str]:
        return {*task.languages, *task.pool, PIVOT}

    def score(self, enc: Any, task: FloresTask, *, with_context: bool, fusion: str | None,
              show_progress: bool) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
        return evaluate_flores(enc, task, show_progress=show_progress)


BENCHMARK = Flores()
