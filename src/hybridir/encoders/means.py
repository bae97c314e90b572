"""A model's language means computed through :class:`~.encoding.Encoder` (the path evaluation uses), for
``hybridir means`` and the model that ``hybridir train`` saves, and the query means a centred index search needs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .centering import Centering, LanguageMeans
from .encoding import Encoder


def compute_means(model: Any, languages: Iterable[str], source: str = "default",
                  data_dir: str | os.PathLike | None = None, show_progress: bool = False) -> LanguageMeans:  # fmt: skip
    """The language means of ``model`` (a loaded SentenceTransformer) for ``languages`` from ``source``, through
    the same inference path evaluation uses; languages no source has are left out."""
    enc = Encoder(model, show_progress=show_progress)
    centering = Centering("center", source=source, data_dir=data_dir)
    centering.ensure(languages, enc.plain, enc.fingerprint, enc.dim() or 0, enc.path)
    assert centering.means is not None
    return centering.means


def fill_query_means(means: LanguageMeans, enc: Encoder) -> LanguageMeans:
    """An index's means (:func:`~hybridir.encoders.centering.corpus_means`: passages only) with the model's mean
    query vector of each language that has text (computed once per model, then read from the user cache), for a
    ``center`` search; languages without text keep a zero query mean (their queries stay as they are), named in one
    warning line."""
    from ..infra.errors import warn
    from .offline_e5 import cache_root

    model = Centering("center", cache=cache_root() / "means")
    model.ensure(means.languages, enc.plain, enc.fingerprint, means.dim, enc.path)
    if model.missing:
        warn(
            f"no query means for {', '.join(sorted(model.missing))} (no NTREX-128 / FLORES-200 text under "
            f"{', '.join(map(str, model.roots)) or 'any data root'}): their queries are searched uncentred"
        )
    for lang in means.languages:
        if model.means is not None and lang in model.means.query:
            means.query[lang] = model.means.query[lang]
            means.sources[lang] = f"passages: the corpus; queries: {model.means.sources[lang]}"
    return means
