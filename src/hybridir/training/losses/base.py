"""What an objective is: a run's loss, which fills the gradients of one batch and names what it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class Objective:
    """A run's loss. Subclasses set what they need: ``uses_teacher`` (teacher vectors come as ``labels``),
    ``backward`` (the step) and, when theirs differs, ``held_out_loss``."""

    def __init__(self, model: Any, config: Any, gather_across_devices: bool = False,
                 state: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.model, self.config, self.mini_batch_size = model, config, config.mini_batch_size
        self._held_out: Any = None

    @classmethod
    def uses_teacher(cls, config: Any) -> bool:
        """Whether a run with ``config`` needs the teacher's vectors as labels."""
        return False

    def backward(self, features: list[dict[str, Any]], labels: torch.Tensor | None,
                 langs: tuple[list[str], list[str]] | None = None) -> dict[str, float]:  # fmt: skip
        """``features``: query, passage (and negative) columns; ``labels``: (batch, 2, dim) teacher vectors of the
        query and passage columns, or None without a teacher; ``langs``: each row's query and passage language.
        Fills the gradients; returns ``loss`` (the total) and its parts."""
        raise NotImplementedError

    def held_out_loss(self, features: list[dict[str, Any]]) -> torch.Tensor:
        """Early stopping's figure for one dev batch: plain InfoNCE at the run's temperature by default, the same
        for every arm of a study (X-X, X-Y, hybrid, with or without a teacher), so their stopping points compare."""
        if self._held_out is None:
            from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

            self._held_out = MultipleNegativesRankingLoss(self.model, scale=1.0 / self.config.temperature)
        return self._held_out(features, None)

    def use_state(self, state: dict[str, Any]) -> None:
        """Continue from a resumed run's state (objectives that keep running values there read them back)."""
