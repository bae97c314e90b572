"""A model's language means computed through :class:`~hybridir.encoding.Encoder` (the path evaluation uses), for
``hybridir means`` and for the model that ``hybridir train`` saves."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

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
