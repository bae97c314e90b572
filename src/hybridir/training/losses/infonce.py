"""InfoNCE, ``infonce`` (the default): sentence-transformers' ``MultipleNegativesRankingLoss`` over in-batch
negatives (its GradCache twin ``CachedMultipleNegativesRankingLoss`` when ``mini_batch_size`` is set), cosine
scaled by ``1 / temperature``, optionally symmetric, or on per-language centred vectors (``centered``,
:mod:`.centered_infonce`). With ``distill_weight > 0`` the distillation term (:mod:`.kd`) is added, which keeps the
student near the teacher while the contrastive part aligns languages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Objective
from .kd import KDTerm

if TYPE_CHECKING:
    import torch


class InfoNCE(Objective):
    """In-batch-negative InfoNCE, plus ``distill_weight`` times the KD term."""

    def __init__(self, model: Any, config: Any, gather_across_devices: bool = False,
                 state: dict[str, Any] | None = None) -> None:  # fmt: skip
        from sentence_transformers.sentence_transformer import losses

        from .centered_infonce import CenteredInfoNCE

        super().__init__(model, config, gather_across_devices, state)
        self.infonce = None
        self.centered = CenteredInfoNCE(1.0 / config.temperature, state if state is not None else {}) \
            if config.centered else None  # fmt: skip
        if not config.centered:
            kwargs: dict[str, Any] = {"scale": 1.0 / config.temperature, "gather_across_devices": gather_across_devices}
            if config.symmetric:  # InfoNCE both ways: query -> passages and passage -> queries, one softmax each
                kwargs.update(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")
            if config.mini_batch_size:
                kwargs["mini_batch_size"] = config.mini_batch_size
                self.infonce = losses.CachedMultipleNegativesRankingLoss(model, **kwargs)
            else:
                self.infonce = losses.MultipleNegativesRankingLoss(model, **kwargs)
        self.kd = KDTerm(model) if self.uses_teacher(config) else None
        self.kd_weight = config.distill_weight

    @classmethod
    def uses_teacher(cls, config: Any) -> bool:
        return config.distill_weight > 0

    def use_state(self, state: dict[str, Any]) -> None:
        if self.centered is not None:  # the running language means continue from the checkpoint's
            self.centered.state = state

    def backward(self, features: list[dict[str, Any]], labels: torch.Tensor | None,
                 langs: tuple[list[str], list[str]] | None = None) -> dict[str, float]:  # fmt: skip
        from sentence_transformers.base.losses.merged_forward import embed_columns

        parts: dict[str, float] = {}
        if self.centered is not None:
            assert langs is not None, "the centred objective needs each row's languages"
            emb = embed_columns(self.model, features)
            loss = self.centered(emb, *langs)
            if self.kd is not None:
                kd = self.kd(emb[:2], labels.to(self.model.device))
                loss = loss + self.kd_weight * kd
                parts["kd"] = float(kd.detach())
            loss.backward()
            return parts | {"loss": float(loss.detach())}
        if self.kd is None:
            loss = self.infonce(features, None)
            loss.backward()
            return {"loss": float(loss.detach())}
        labels = labels.to(self.model.device)
        if not self.mini_batch_size:  # one forward pass feeds both terms
            emb = embed_columns(self.model, features)
            info = self.infonce.compute_loss_from_embeddings(emb, None)
            kd = self.kd(emb[:2], labels)
            (info + self.kd_weight * kd).backward()
            parts = {"infonce": float(info.detach()), "kd": float(kd.detach())}
        else:  # GradCache InfoNCE (it runs its own chunked backward), then KD chunk by chunk
            info = self.infonce(features, None)
            info.backward()
            parts["infonce"] = float(info.detach())
            parts["kd"] = self.kd.backward_in_chunks(features, labels, self.kd_weight, self.mini_batch_size)
        parts["loss"] = parts["infonce"] + self.kd_weight * parts["kd"]
        return parts


OBJECTIVE = InfoNCE
