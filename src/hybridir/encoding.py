"""Encoding: every unique text once, with an on-disk embedding cache, timed and counted.

Evaluation hands its texts to an :class:`Encoder`; the encoder decides how they become vectors (which backend,
batching) and remembers them per model fingerprint so that no text is encoded twice across settings, runs or
study cells.
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write_bytes


class Encoder:
    """Encodes each unique text once, timing the model and counting texts; optional on-disk cache.

    The cache lives in ``cache_dir/<model fingerprint>/<prompt, length, normalisation hash>/`` as ``.npz``
    shards of (text hash, embedding) rows written atomically, so any later call (another subset, another
    setting, another run) reuses every text it has seen.

    Example::

        enc = Encoder(model, cache_dir=Path("~/.cache/hybridir/emb"))
        q = enc(["what is x?"], "query")
    """

    def __init__(self, model: Any, batch_size: int = 64, cache_dir: Path | None = None,
                 show_progress: bool = True) -> None:  # fmt: skip
        from .models import fingerprint

        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.fingerprint = fingerprint(model)
        # cosine models are scored by dot products of unit vectors; "dot" models keep their norms
        self.normalize = model.similarity_fn_name != "dot"
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.seconds = 0.0
        self.encoded = 0
        self.from_cache = 0

    def _cache_folder(self, prompt_name: str) -> Path | None:
        if self.cache_dir is None:
            return None
        prompt = (self.model.prompts or {}).get(prompt_name, "")
        key = hashlib.sha1(f"{prompt}|{self.model.max_seq_length}|{self.normalize}".encode()).hexdigest()[:12]
        return self.cache_dir / self.fingerprint / key

    def __call__(self, texts: list[str], prompt_name: str) -> np.ndarray:
        """float32 embeddings of ``texts`` (duplicates encoded once)."""
        unique = list(dict.fromkeys(texts))
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in unique]
        folder = self._cache_folder(prompt_name)
        known: dict[str, np.ndarray] = {}
        if folder is not None and folder.is_dir():
            wanted = set(keys)
            for shard in sorted(folder.glob("*.npz")):
                with np.load(shard) as z:
                    for k, row in zip(z["keys"].tolist(), z["emb"], strict=True):
                        if k in wanted:
                            known[k] = row
        missing = [i for i, k in enumerate(keys) if k not in known]
        self.from_cache += len(unique) - len(missing)
        if missing:
            start = time.perf_counter()
            emb = self.model.encode([unique[i] for i in missing], prompt_name=prompt_name,
                                    batch_size=self.batch_size, show_progress_bar=self.show_progress,
                                    convert_to_numpy=True, normalize_embeddings=self.normalize)  # fmt: skip
            self.seconds += time.perf_counter() - start
            self.encoded += len(missing)
            new_keys = [keys[i] for i in missing]
            known.update(zip(new_keys, emb, strict=True))
            if folder is not None:
                buf = io.BytesIO()
                np.savez(buf, keys=np.array(new_keys), emb=emb.astype(np.float32))
                name = hashlib.sha1("".join(new_keys).encode()).hexdigest()[:16]
                atomic_write_bytes(folder / f"{name}.npz", buf.getvalue())
        row = {t: known[k] for t, k in zip(unique, keys, strict=True)}
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        return np.stack([row[t] for t in texts]).astype(np.float32, copy=False)
