"""Knowledge distillation, ``kd`` (Reimers & Gurevych 2020): a frozen teacher (by default the starting model)
embeds the *English* side of every item once, queries with the query prompt and passages with the passage prompt
(:mod:`hybridir.training.teacher`); the student learns to put the query and passage of every language (English
included) on those vectors, with sentence-transformers' ``MSELoss`` (3-D labels: one teacher vector per column).

The term is ``MSELoss`` times the embedding size, i.e. the mean squared L2 distance between student and teacher
vectors (``2 - 2 cos`` for unit vectors), so ``distill_weight = 1`` weighs a unit of cosine drift like a unit of
InfoNCE loss; ``MSELoss`` alone averages over the 384 dimensions and would need weights in the hundreds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Objective

if TYPE_CHECKING:
    import torch


def _slice(features: dict[str, Any], lo: int, hi: int, n: int) -> dict[str, Any]:
    import torch

    return {k: v[lo:hi] if torch.is_tensor(v) and v.dim() and v.shape[0] == n else v for k, v in features.items()}


class KDTerm:
    """The distillation term, also added to InfoNCE by ``distill_weight``."""

    def __init__(self, model: Any) -> None:
        from sentence_transformers.sentence_transformer.losses import MSELoss

        self.model, self.mse = model, MSELoss(model)

    def __call__(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Mean squared L2 distance to the teacher: MSELoss (mean over dimensions) times the dimension."""
        teacher = [labels[:, i] for i in range(len(embeddings))]
        return self.mse.compute_loss_from_embeddings(embeddings, teacher) * labels.shape[-1]

    def backward_in_chunks(self, features: list[dict[str, Any]], labels: torch.Tensor, weight: float,
                           chunk: int | None) -> float:  # fmt: skip
        """``weight`` times the term, its gradients filled ``chunk`` rows at a time (all at once without one), so
        that a GradCache run never holds a whole batch's activations. Returns the term."""
        from sentence_transformers.base.losses.merged_forward import embed_columns

        n = labels.shape[0]
        step = chunk or n
        total = 0.0
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            emb = embed_columns(self.model, [_slice(f, lo, hi, n) for f in features[:2]])
            kd = self(emb, labels[lo:hi]) * ((hi - lo) / n)
            (weight * kd).backward()
            total += float(kd.detach())
        return total


class Distillation(Objective):
    """The student onto the teacher's vectors, nothing else."""

    def __init__(self, model: Any, config: Any, gather_across_devices: bool = False,
                 state: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__(model, config, gather_across_devices, state)
        self.kd = KDTerm(model)

    @classmethod
    def uses_teacher(cls, config: Any) -> bool:
        return True

    def backward(self, features: list[dict[str, Any]], labels: torch.Tensor | None,
                 langs: tuple[list[str], list[str]] | None = None) -> dict[str, float]:  # fmt: skip
        kd = self.kd.backward_in_chunks(features, labels.to(self.model.device), 1.0, self.mini_batch_size)
        return {"kd": kd, "loss": 0.0 + 1.0 * kd}


OBJECTIVE = Distillation
