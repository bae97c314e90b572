"""Evaluation harness: any registered benchmark (:mod:`hybridir.evaluation.benchmarks`), one generic path.

``evaluate`` looks the dataset name up once, lets the benchmark load its data (bad data fails before the model
loads), builds the encoder (or BM25), lets the benchmark's protocol score it (:mod:`..scoring`) and writes
results.json with the configuration, versions and timing. Every unique text is encoded once per model (queries
with the "query" prompt, candidates with "passage"), optionally through an on-disk cache.

Example::

    from hybridir.evaluation.evaluate import evaluate
    res = evaluate("e5-small", "xquad-r", languages=["en", "de"], max_questions=100, out_dir=Path("runs/x"))
    res["summary"]["multi_map"]
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from ..encoders.centering import CenteringSpec, centering_for, check_means, default_centering
from ..encoders.encoding import Encoder
from ..infra.errors import ConfigError
from ..infra.shards import Shard
from .benchmarks import Request, load
from .bm25 import DESCRIPTION as BM25
from .config import FUSION, EvalConfig


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "sentence-transformers", "hybridir"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    """HEAD of the checkout this module runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _model_name(model: Any) -> str:
    card = getattr(model, "model_card_data", None)
    return str(getattr(card, "base_model", None) or getattr(model[0], "auto_model", model).name_or_path)


def evaluate(model: str | Any = "e5-small", dataset: str = "xquad-r", config: EvalConfig | None = None,
             **options: Any) -> dict:  # fmt: skip
    """Evaluate ``model`` on ``dataset``; write the run directory when ``out_dir`` is given; return results.json.

    ``options`` are :class:`~.config.EvalConfig` fields, given one by one (``languages=["en"]``) or as ``config``
    (both: ``options`` override ``config``).

    ``dataset``: a name of :mod:`hybridir.evaluation.benchmarks`: "xquad-r", "mlqa-r", "monoqa" (all five sets),
    "monoqa:<set>" or a set's name, "beir:<dir>", "miracl:<lang>" (local official files, else the hub),
    "miracl-judged:<lang>[:<N>]" (a smaller study pool, not MIRACL), "flores" (FLORES-200 bitext retrieval
    X <-> English in 205 languages, :mod:`hybridir.evaluation.benchmarks.flores`;
    ``seen_languages`` / ``in_domain_topics`` override the groups a hybridir-trained model records; there
    ``max_questions`` takes N sentences spread over the split, whose rows are grouped by topic).
    ``max_questions`` keeps the first N question ids (pools stay complete).
    ``model="bm25"``: the BM25 baseline (:mod:`hybridir.evaluation.bm25`) on retrieval sets. ``fusion`` ("bm25" or
    "bm25-rrf", see ``FUSION``): the dense model, BM25 and their fusion, side by side in one results.json.
    ``backend`` / ``precision``: the inference path (:mod:`hybridir.encoders.encoding`; ``auto`` = the fast one where it
    is faithful); results.json records the path used under ``config.encoder``.
    ``centering``: ``none``, ``shift[:lambda]`` or ``center[:lambda]`` (:mod:`hybridir.encoders.centering`;
    None: the mode a hybridir-trained model folder recommends, else ``DEFAULT``), with the model folder's own
    language means when it has them, else means computed from ``means_source`` (NTREX / FLORES text under
    ``means_data``, else the data root chain) and cached per model. A language without means is a ConfigError
    before the model loads, unless ``allow_missing_means`` (a warning; results.json lists it under
    ``centering.missing``).
    ``shard``: this process's share of the encoding (:mod:`hybridir.infra.shards`; default: all of it); only the
    leader (rank 0, shard 1/N) writes ``out_dir`` and returns results, the others return their share's timing.
    """
    c = dataclasses.replace(config or EvalConfig(), **options)
    shard = c.shard or Shard()
    start = time.perf_counter()
    default = "none" if model == "bm25" else default_centering(model)  # BM25 has no vectors to centre
    spec = CenteringSpec.parse(c.centering if c.centering is not None else default)
    if model == "bm25" and spec.active:
        raise ConfigError("--centering acts on dense vectors; BM25 has none (use --centering none)")
    ref = model if isinstance(model, str | Path) else None
    req = Request(c.data_dir, c.languages, c.max_questions, ref, c.seen_languages, c.in_domain_topics, spec.centres)
    bench, task = load(dataset, req)
    if not (isinstance(model, str) and model == "bm25"):  # every language scored has means, or we stop here
        check_means(bench.task_languages(task), spec, ref, c.means_source, c.data_dir, c.means_data,
                    c.allow_missing_means)  # fmt: skip
    bm25_only = isinstance(model, str) and model == "bm25"
    if (bm25_only or c.fusion) and bench.protocol != "retrieval":
        raise ConfigError(f"BM25 and --fusion need a retrieval dataset (monoqa, beir:, miracl:), not {dataset!r}")
    if c.fusion and (bm25_only or c.fusion not in FUSION):
        raise ConfigError(f"--fusion {c.fusion}: use one of {', '.join(FUSION)} together with a dense --model")
    if bm25_only:
        name, enc = "bm25", None
    else:
        if isinstance(model, str | Path):
            from ..encoders.models import load_encoder

            name, model = str(model), load_encoder(str(model))
        else:
            name = _model_name(model)
        enc = Encoder(model, batch_size=c.batch_size, cache_dir=c.cache_dir, show_progress=c.show_progress,
                      backend=c.backend, precision=c.precision, shard=shard)  # fmt: skip
        enc.centering = centering_for(ref, spec, enc, c.means_source, c.data_dir, c.means_data)
    bars = c.show_progress and shard.leader  # the other ranks show only their (labelled) encoding bar
    body, per_query = bench.score(enc, task, with_context=c.with_context, fusion=c.fusion, show_progress=bars)
    model_config = {"max_seq_length": model.max_seq_length, "similarity": model.similarity_fn_name,
                    "normalize": enc.normalize, "encoder": enc.describe()} if enc else {"encoder": BM25}  # fmt: skip
    scoring = body.pop("scoring_seconds")
    results = {
        "dataset": dataset,
        "summary": body.pop("summary"),
        "config": {
            "dataset": dataset,
            "data_dir": str(c.data_dir) if c.data_dir else None,
            "languages": c.languages,
            "max_questions": c.max_questions,
            "batch_size": c.batch_size,
            "with_context": c.with_context,
            "cache_dir": str(c.cache_dir) if c.cache_dir else None,
            "fusion": c.fusion,
            "seen_languages": c.seen_languages,
            "in_domain_topics": c.in_domain_topics,
            "centering": enc.centering.describe() if enc and enc.centering else {"mode": "none", "lambda": None},
            **bench.describe_task(task),
            "torch_threads": torch.get_num_threads(),
            **model_config,
        },  # fmt: skip
        "model": {"name": name, "fingerprint": enc.fingerprint if enc else None},
        "versions": _versions(),
        "git_commit": git_commit(),
        "timing": {
            "encode_seconds": enc.seconds if enc else 0.0,
            "scoring_seconds": scoring,
            "total_seconds": time.perf_counter() - start,
            "texts_encoded": enc.encoded if enc else 0,
            "texts_from_cache": enc.from_cache if enc else 0,
        },  # fmt: skip
        **body,
    }
    if not shard.leader:  # its share is in the cache; the leader scores and writes
        return {"dataset": dataset, "shard": str(shard), "timing": results["timing"]}
    if c.out_dir is not None:
        from .report import write_run

        write_run(Path(c.out_dir), results, per_query, plots=c.plots)
    return results
