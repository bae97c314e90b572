"""Training objectives, chosen in one place: InfoNCE, knowledge distillation (KD), or InfoNCE + weight * KD.

- ``infonce`` (default): sentence-transformers' ``MultipleNegativesRankingLoss`` over in-batch negatives (its
  GradCache twin ``CachedMultipleNegativesRankingLoss`` when ``mini_batch_size`` is set), cosine scaled by
  ``1 / temperature``, optionally symmetric.
- ``kd`` (Reimers & Gurevych 2020): a frozen teacher (by default the starting model) embeds the *English* side of
  every item once, queries with the query prompt and passages with the passage prompt; the student learns to put
  the query and passage of every language (English included) on those vectors, with sentence-transformers'
  ``MSELoss`` (3-D labels: one teacher vector per text column).
- ``infonce`` with ``distill_weight > 0``: hybrid InfoNCE plus ``distill_weight`` times the KD term, which keeps
  the student near the teacher while the contrastive part aligns languages.

The KD term is ``MSELoss`` times the embedding size, i.e. the mean squared L2 distance between student and teacher
vectors (``2 - 2 cos`` for unit vectors), so ``distill_weight = 1`` weighs a unit of cosine drift like a unit of
InfoNCE loss; ``MSELoss`` alone averages over the 384 dimensions and would need weights in the hundreds.

Teacher vectors are cached on disk (:class:`VectorCache`: one file per teacher fingerprint, prompt and length,
rows keyed by a hash of the text), so a resumed run, or another run with the same teacher and texts, does not
encode them again.

Example::

    objective = Objective(model, config)           # config: hybridir.training.loop.TrainConfig
    parts = objective.backward(features, labels)   # {"loss": ..., "infonce": ..., "kd": ...}; gradients filled
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..infra.errors import ModelError
from ..infra.integrity import read_sealed, write_sealed
from .centered_infonce import CenteredInfoNCE

LOSSES = ("infonce", "kd")


def uses_teacher(config: Any) -> bool:
    """Whether the run needs teacher vectors: the ``kd`` loss, or InfoNCE with a distillation term."""
    return config.loss == "kd" or config.distill_weight > 0


def encode(model: Any, texts: Sequence[str], prompt_name: str, max_length: int, *, normalize: bool = False,
           batch_size: int = 64) -> np.ndarray:  # fmt: skip
    """Encode with a prompt and a token limit (the same tokenization as a training step), leaving the model's
    mode and ``max_seq_length`` as they were."""
    was_training, old_len = model.training, model.max_seq_length
    try:
        model.max_seq_length = max_length
        return model.encode(list(texts), prompt_name=prompt_name, batch_size=batch_size, convert_to_numpy=True,
                            normalize_embeddings=normalize, show_progress_bar=False)  # fmt: skip
    finally:
        model.max_seq_length = old_len
        model.train(was_training)


class VectorCache:
    """Embeddings of one model on disk: ``<root>/<fingerprint>-<prompt>-<max_length>.npz`` holds text hashes and
    vectors. Only missing texts are encoded; the file is rewritten atomically with the new rows and a checksum (a
    file that fails it is recomputed, :mod:`hybridir.infra.integrity`)."""

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.root, self.fingerprint = Path(root), fingerprint

    def vectors(self, texts: Sequence[str], prompt_name: str, max_length: int, model: Callable[[], Any],
                normalize: bool = False) -> np.ndarray:  # fmt: skip
        """One row per text; ``model()`` is called (to load or return the encoder) only if some text is missing."""
        path = self.root / f"{self.fingerprint}-{prompt_name}-{max_length}{'-norm' if normalize else ''}.npz"
        known: dict[str, np.ndarray] = {}
        for data in read_sealed([path], "teacher vector cache").values():
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                known = dict(zip(npz["keys"].tolist(), npz["vectors"], strict=True))
        keys = [hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
        if missing:
            new = encode(model(), list(missing.values()), prompt_name, max_length, normalize=normalize)
            known.update(zip(missing, new.astype(np.float32), strict=True))
            buf = io.BytesIO()
            np.savez(buf, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
            write_sealed(path, buf.getvalue())
        return np.stack([known[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)


def load_teacher(name: str) -> Any:
    """The frozen teacher, or a ModelError that says it is the KD teacher that failed."""
    from ..encoders.models import load_encoder

    try:
        teacher = load_encoder(name)
    except Exception as e:  # noqa: BLE001 - any failure to load is reported as the teacher's
        raise ModelError(f"KD teacher {name!r} cannot be loaded: {e}") from e
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _slice(features: dict[str, Any], lo: int, hi: int, n: int) -> dict[str, Any]:
    return {k: v[lo:hi] if torch.is_tensor(v) and v.dim() and v.shape[0] == n else v for k, v in features.items()}


class Objective:
    """The loss of a run (see the module docstring). ``backward`` fills the gradients and returns the parts."""

    def __init__(self, model: Any, config: Any, gather_across_devices: bool = False,
                 state: dict[str, Any] | None = None) -> None:  # fmt: skip
        from sentence_transformers.sentence_transformer import losses

        self.model, self.mini_batch_size = model, config.mini_batch_size
        self.infonce = None
        self.centered = CenteredInfoNCE(1.0 / config.temperature, state if state is not None else {}) \
            if config.centered else None  # fmt: skip
        if config.loss == "infonce" and not config.centered:
            kwargs: dict[str, Any] = {"scale": 1.0 / config.temperature, "gather_across_devices": gather_across_devices}
            if config.symmetric:  # InfoNCE both ways: query -> passages and passage -> queries, one softmax each
                kwargs.update(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")
            if config.mini_batch_size:
                kwargs["mini_batch_size"] = config.mini_batch_size
                self.infonce = losses.CachedMultipleNegativesRankingLoss(model, **kwargs)
            else:
                self.infonce = losses.MultipleNegativesRankingLoss(model, **kwargs)
        self.kd = losses.MSELoss(model) if uses_teacher(config) else None
        self.kd_weight = 1.0 if config.loss == "kd" else config.distill_weight

    def _kd(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Mean squared L2 distance to the teacher: MSELoss (mean over dimensions) times the dimension."""
        teacher = [labels[:, i] for i in range(len(embeddings))]
        return self.kd.compute_loss_from_embeddings(embeddings, teacher) * labels.shape[-1]

    def backward(self, features: list[dict[str, Any]], labels: torch.Tensor | None,
                 langs: tuple[list[str], list[str]] | None = None) -> dict[str, float]:  # fmt: skip
        """``features``: query, passage (and negative) columns; ``labels``: (batch, 2, dim) teacher vectors of the
        query and passage columns, or None without KD; ``langs``: each row's query and passage language (needed
        by the centred objective). Returns ``loss`` (the total) and its parts."""
        from sentence_transformers.base.losses.merged_forward import embed_columns

        parts: dict[str, float] = {}
        if self.centered is not None:
            assert langs is not None, "the centred objective needs each row's languages"
            emb = embed_columns(self.model, features)
            loss = self.centered(emb, *langs)
            if self.kd is not None:
                kd = self._kd(emb[:2], labels.to(self.model.device))
                loss = loss + self.kd_weight * kd
                parts["kd"] = float(kd.detach())
            loss.backward()
            return parts | {"loss": float(loss.detach())}
        if self.kd is None:
            loss = self.infonce(features, None)
            loss.backward()
            return {"loss": float(loss.detach())}
        labels = labels.to(self.model.device)
        if self.infonce is not None and not self.mini_batch_size:  # one forward pass feeds both terms
            emb = embed_columns(self.model, features)
            info = self.infonce.compute_loss_from_embeddings(emb, None)
            kd = self._kd(emb[:2], labels)
            (info + self.kd_weight * kd).backward()
            parts = {"infonce": float(info.detach()), "kd": float(kd.detach())}
        else:  # GradCache InfoNCE (it runs its own chunked backward), then KD chunk by chunk
            if self.infonce is not None:
                info = self.infonce(features, None)
                info.backward()
                parts["infonce"] = float(info.detach())
            n = labels.shape[0]
            step = self.mini_batch_size or n
            total = 0.0
            for lo in range(0, n, step):
                hi = min(n, lo + step)
                emb = embed_columns(self.model, [_slice(f, lo, hi, n) for f in features[:2]])
                kd = self._kd(emb, labels[lo:hi]) * ((hi - lo) / n)
                (self.kd_weight * kd).backward()
                total += float(kd.detach())
            parts["kd"] = total
        parts["loss"] = parts.get("infonce", 0.0) + self.kd_weight * parts["kd"]
        return parts
