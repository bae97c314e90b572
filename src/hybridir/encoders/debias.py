"""``hybridir debias``: a copy of any model with its language-neutral projection inside (:mod:`.projection`).

The subspace comes from the model's own NTREX-128 means (:func:`~.centering.ntrex_means`), encoded through the
same :class:`~.encoding.Encoder` path evaluation uses; the model is written atomically (nothing half-written) with
``Dense`` + ``Normalize`` appended and its ``language_projection.npz`` + ``.json`` beside the weights.

Example::

    debias("e5-small", Path("runs/e5-neutral"), rank=32)
    SentenceTransformer("runs/e5-neutral").encode(["..."])      # plain sentence-transformers: neutral vectors
"""

from __future__ import annotations

import os
from pathlib import Path

from ..infra.files import atomic_dir
from .centering import ntrex_means
from .encoding import Encoder
from .models import load_encoder
from .projection import (
    DEFAULT_RANK,
    DEFAULT_RECENTRE,
    DEFAULT_STRENGTH,
    Projection,
    check_rank,
    portable_modules,
    subspace,
    with_projection,
)


def debias(model_ref: str | os.PathLike, out: Path, rank: int = DEFAULT_RANK, recentre: bool = DEFAULT_RECENTRE,
           strength: float = DEFAULT_STRENGTH, languages: list[str] | None = None,
           data_dir: str | os.PathLike | None = None, projection: str | os.PathLike | None = None,
           show_progress: bool = True) -> Projection:  # fmt: skip
    """Write ``model_ref`` with its language-neutral projection to ``out`` (atomically: nothing half-written).
    ``projection``: a saved one to reuse (checked against this model) instead of computing it."""
    check_rank(rank)
    model = load_encoder(str(model_ref), device="cpu")
    enc = Encoder(model, show_progress=show_progress)
    if projection is not None:
        proj = Projection.load(projection, enc.fingerprint, enc._dim())
    else:
        check_rank(rank, enc._dim())
        means = ntrex_means(enc.plain, enc.fingerprint, enc._dim() or 0, enc.path, languages, data_dir)
        proj = Projection(subspace(means, rank, recentre), enc.fingerprint, recentre, tuple(means.languages),
                          strength=strength)  # fmt: skip
    with_projection(model, proj)
    with atomic_dir(out) as tmp:
        model.save(str(tmp))
        portable_modules(Path(tmp) / "modules.json")
        proj.save(tmp)
    return proj
