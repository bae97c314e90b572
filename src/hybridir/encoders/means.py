"""A model's language means computed through :class:`~hybridir.encoding.Encoder` (the path evaluation uses), for
``hybridir means`` and the model that ``hybridir train`` saves, and an index's means over its own corpus."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..encoding import Encoder
from .centering import Centering, LanguageMeans


def compute_means(model: Any, languages: Iterable[str], source: str = "default",
                  data_dir: str | os.PathLike | None = None, show_progress: bool = False) -> LanguageMeans:  # fmt: skip
    """The language means of ``model`` (a loaded SentenceTransformer) for ``languages`` from ``source``, through
    the same inference path evaluation uses; languages no source has are left out."""
    enc = Encoder(model, show_progress=show_progress)
    centering = Centering("center", source=source, data_dir=data_dir)
    centering.ensure(languages, enc.plain, enc.fingerprint, enc._dim() or 0, enc.path)
    assert centering.means is not None
    return centering.means


def corpus_means(vectors: np.ndarray, langs: list[str], enc: Any) -> LanguageMeans:
    """The index's language means: each language's mean passage vector over the corpus itself (what an index
    knows of its collection), and the model's mean query vector from :func:`~hybridir.encoders.centering.means_texts`
    (zeros where no text exists: such queries stay as they are)."""
    labels = np.asarray(langs)
    dim = vectors.shape[1]
    model_means = Centering("center")
    model_means.ensure(sorted(set(langs)), enc.plain, enc.fingerprint, dim, enc.path)
    known = model_means.means
    out = LanguageMeans(enc.fingerprint, dim, "passages: the corpus; queries: " + (known.source if known else "-"))
    for lang in sorted(set(langs)):
        total = np.zeros(dim, dtype=np.float64)
        for s in range(0, len(labels), 65536):
            mask = labels[s : s + 65536] == lang
            total += np.asarray(vectors[s : s + 65536])[mask].sum(0)
        n = int((labels == lang).sum())
        query = known.query.get(lang, np.zeros(dim)) if known else np.zeros(dim)
        out.add(lang, query, total / n, n, known.sources.get(lang, "corpus") if known else "corpus")
    return out
