"""Cached vectors of a frozen model for training: the distillation teacher's English targets and the starting
model's cache of dev vectors. Both are keyed by the model's fingerprint, which the run's state keeps, so a resumed
run reuses them and notices a teacher that changed.

Their vectors go through the project's one embedding cache (:func:`frozen_vectors`, on
:func:`hybridir.encoders.cache.cached`: a folder per fingerprint, prompt and length, rows keyed by a hash of the
text), so a resumed run, or another run with the same teacher and texts, does not encode them again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.training.items import ParallelItem, TrainingData
from ..encoders.cache import cached
from ..encoders.models import embedding_dim, fingerprint, load_encoder
from ..infra.errors import DataError, ModelError
from .losses import uses_teacher


def encode(model: Any, texts: Sequence[str], prompt_name: str, max_length: int, *, normalize: bool = False,
           batch_size: int = 64) -> np.ndarray:  # fmt: skip
    """Encode with a prompt and a token limit (the same tokenization as a training step), leaving the model's
    mode and ``max_seq_length`` as they were. The live training model's own call, not an
    :class:`~hybridir.encoders.encoding.Encoder` (which picks an inference path, precision and cache for a saved
    model): dev metrics and teacher targets must be the fp32 torch vectors of the weights being trained."""
    was_training, old_len = model.training, model.max_seq_length
    try:
        model.max_seq_length = max_length
        return model.encode(list(texts), prompt_name=prompt_name, batch_size=batch_size, convert_to_numpy=True,
                            normalize_embeddings=normalize, show_progress_bar=False)  # fmt: skip
    finally:
        model.max_seq_length = old_len
        model.train(was_training)


def frozen_vectors(root: Path, model_fingerprint: str, texts: Sequence[str], prompt_name: str, max_length: int,
                   model: Callable[[], Any], normalize: bool = False) -> np.ndarray:  # fmt: skip
    """One row per text of a frozen model, through the embedding cache (:func:`hybridir.encoders.cache.cached`) in
    ``<root>/<fingerprint>/<prompt>-<max_length>[-norm]/``; ``model()`` is called (to load or return the model) only
    if some text is missing. The missing texts are one work unit, encoded in one call: sentence-transformers batches
    a call's texts by length, so a vector is the same whichever texts were already cached."""
    folder = Path(root) / model_fingerprint / f"{prompt_name}-{max_length}{'-norm' if normalize else ''}"
    vecs, _ = cached(list(texts), folder, lambda batch: encode(model(), batch, prompt_name, max_length,
                     normalize=normalize), lambda: embedding_dim(model()), unit=len(texts))  # fmt: skip
    return vecs


def load_teacher(name: str) -> Any:
    """The frozen teacher, or a ModelError that says it is the KD teacher that failed."""
    try:
        teacher = load_encoder(name)
    except Exception as e:  # noqa: BLE001 - any failure to load is reported as the teacher's
        raise ModelError(f"KD teacher {name!r} cannot be loaded: {e}") from e
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def start_cache(model: Any, state: dict[str, Any], cache_root: Path) -> Callable[..., np.ndarray]:
    """:func:`frozen_vectors` of the starting model (its dev vectors are the same in every run that starts from it);
    its fingerprint is taken before the first step and kept in ``state`` (and so in the checkpoints)."""
    if "start_fingerprint" not in state:
        state["start_fingerprint"] = fingerprint(model)
    return functools.partial(frozen_vectors, cache_root, state["start_fingerprint"])


def pivot(item: ParallelItem) -> str | None:
    """The language whose teacher vectors are an item's KD target: English, else its one language with a passage."""
    if "en" in item.pairs and item.pairs["en"].passage:
        return "en"
    with_passage = [lang for lang, pair in item.pairs.items() if pair.passage]
    return with_passage[0] if len(with_passage) == 1 else None


def teacher_targets(cfg: Any, data: TrainingData, model: Any, state: dict[str, Any],
                    cache_root: Path) -> np.ndarray | None:  # fmt: skip
    """KD targets, (items, 2, dim): the teacher's vectors of every training item's English query (query prompt) and
    passage (passage prompt), from the cache when there; None when the loss needs no teacher. An item without
    English but with one language that has a passage (a Thai or Chinese QA question) is its own target, which holds
    the student near the teacher there. The default teacher is the starting model: before the first step that is
    ``model``; on resume it is loaded only if the cache lacks a text."""
    if not uses_teacher(cfg):
        return None
    items = data.items
    pivots = [pivot(it) for it in items]
    if lacking := [it.id for it, lang in zip(items, pivots, strict=True) if lang is None]:
        raise DataError(f"{data.source}: distillation needs the English side of every item (or one language with a "
                        f"passage); {len(lacking)} lack it (e.g. {lacking[0]!r})")  # fmt: skip
    name = cfg.teacher or cfg.model
    fresh = cfg.teacher is None and state["step"] == 0
    loaded: list[Any] = []

    def teacher() -> Any:
        if not loaded:
            loaded.append(model if fresh else load_teacher(name))
            fp = fingerprint(loaded[0])
            if state.setdefault("teacher_fingerprint", fp) != fp:
                raise ModelError(f"KD teacher {name!r} changed since this run started (fingerprint {fp}, "
                                 f"was {state['teacher_fingerprint']}); use another --out")  # fmt: skip
        return loaded[0]

    if "teacher_fingerprint" not in state:
        teacher()
    cache = functools.partial(frozen_vectors, cache_root, state["teacher_fingerprint"])
    q = cache([it.pairs[lang].query for it, lang in zip(items, pivots, strict=True)], "query", cfg.max_query_length,
              teacher)  # fmt: skip
    p = cache([it.pairs[lang].passage for it, lang in zip(items, pivots, strict=True)], "passage",
              cfg.max_passage_length, teacher)  # fmt: skip
    dim = embedding_dim(model)
    if q.shape[1] != dim:
        raise ModelError(f"KD teacher {name!r} gives {q.shape[1]}-dim vectors, the student {dim}-dim")
    return np.stack([q, p], axis=1)
