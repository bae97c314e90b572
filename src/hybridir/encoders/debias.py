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
from typing import Any

from ..infra.files import atomic_dir
from .centering import ntrex_means
from .encoding import Encoder
from .models import load_encoder
from .projection import (
    Projection,
    check_rank,
    portable_modules,
    subspace,
    with_projection,
)


def neutralize(model: Any, rank: int | None = None, recentre: bool | None = None,
               strength: float | None = None, languages: list[str] | None = None,
               data_dir: str | os.PathLike | None = None, projection: str | os.PathLike | None = None,
               show_progress: bool = True) -> Projection:  # fmt: skip
    """Append ``model``'s language-neutral projection to it, in place, and return the projection: computed from
    its NTREX-128 means, or ``projection`` (a saved one, checked against this model). ``None``: the dev choice
    (:data:`~.projection.DEFAULT_RANK` and the others, read when called)."""
    from . import projection as chosen

    rank = chosen.DEFAULT_RANK if rank is None else rank
    recentre = chosen.DEFAULT_RECENTRE if recentre is None else recentre
    strength = chosen.DEFAULT_STRENGTH if strength is None else strength
    enc = Encoder(model, show_progress=show_progress)
    if projection is not None:
        proj = Projection.load(projection, enc.fingerprint, enc.dim())
    else:
        check_rank(rank, enc.dim())
        means = ntrex_means(enc.plain, enc.fingerprint, enc.dim() or 0, enc.path, languages, data_dir)
        proj = Projection(subspace(means, rank, recentre), enc.fingerprint, recentre, tuple(means.languages),
                          strength=strength)  # fmt: skip
    with_projection(model, proj)
    return proj


def save_neutral(model: Any, proj: Projection, folder: Path) -> None:
    """Write a model that :func:`neutralize` changed into ``folder`` (a temporary directory the caller renames):
    its weights, a modules.json every sentence-transformers release loads, and the projection's record."""
    model.save(str(folder))
    portable_modules(Path(folder) / "modules.json")
    proj.save(folder)


def debias(model_ref: str | os.PathLike, out: Path, rank: int | None = None, recentre: bool | None = None,
           strength: float | None = None, languages: list[str] | None = None,
           data_dir: str | os.PathLike | None = None, projection: str | os.PathLike | None = None,
           show_progress: bool = True) -> Projection:  # fmt: skip
    """Write ``model_ref`` with its language-neutral projection to ``out`` (atomically: nothing half-written).
    ``projection``: a saved one to reuse (checked against this model) instead of computing it."""
    if rank is not None:
        check_rank(rank)
    model = load_encoder(str(model_ref), device="cpu")
    proj = neutralize(model, rank, recentre, strength, languages, data_dir, projection, show_progress)
    with atomic_dir(out) as tmp:
        save_neutral(model, proj, tmp)
    return proj
