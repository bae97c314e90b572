"""The embedding cache: each unique text's vector on disk, keyed by a hash of the text, in sealed ``.npz`` work units
(:class:`hybridir.infra.shards.Units`) under one folder per model and way of encoding.

One cache for every frozen model's vectors: the :class:`~hybridir.encoders.encoding.Encoder` (evaluation, indexes)
and training's teacher targets and starting-model dev vectors (:mod:`hybridir.training.teacher`) both go through
:func:`cached`; only the folder (what the vectors depend on) and the encode function differ.

Example::

    vecs, reused = cached(texts, cache_dir / fingerprint / "query-32", model.encode, dim=lambda: 384)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..infra.shards import Shard, Units
from ..infra.space import SLACK, require_free, vector_bytes


def cached(texts: list[str], folder: Path | None, encode: Callable[[list[str]], np.ndarray], dim: Callable[[], int],
           *, shard: Shard | None = None, unit: int | None = None, desc: str = "encode", progress: bool = False,
           what: str = "") -> tuple[np.ndarray, int]:  # fmt: skip
    """float32 vectors of ``texts`` (one row per text) and how many unique texts the cache already held.

    The unique texts missing from ``folder`` (None: no cache, every text is encoded) are handed to ``encode`` unit
    by unit (``unit`` texts, default :data:`~hybridir.infra.shards.UNIT`); this process encodes its ``shard`` of
    the units and reads the others' from disk. ``dim()`` (the vector size) is asked only when something must be
    encoded or nothing is known, so a caller can load its model lazily; ``what`` names the units in a shard's
    waiting message."""
    shard = shard or Shard()
    unique = list(dict.fromkeys(texts))
    units = Units([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in unique], folder, unit)
    reused = len(units.known)
    work = units.mine(shard)
    todo = sum(map(len, work))
    if todo and folder is not None:
        require_free(folder.parent, vector_bytes(todo, dim()) + SLACK, "the embedding cache")
    bar = tqdm(total=todo, desc=shard.label(desc), disable=not (todo and progress))
    for rows in work:
        units.add(rows, encode([unique[i] for i in rows]))
        bar.update(len(rows))
    bar.close()
    shard.settle(units.refresh, f"of the {len(units)} {what} units")
    where = {t: i for i, t in enumerate(unique)}
    size = next(iter(units.known.values())).shape[0] if units.known else dim()
    return units.vectors([where[t] for t in texts], size), reused
