"""InfoNCE on per-language centred vectors: training for the space that language centering scores in.

Post-hoc centering (:mod:`hybridir.encoders.centering`) removes each language's mean vector after training. This
objective removes it during training instead: every query vector minus the running mean query vector of its
language, every passage vector minus the running mean passage vector of its language, renormalised, then InfoNCE
over in-batch negatives as usual. The running means are exponential moving averages of the batches' own
(detached) vectors, kept in the run's state so a resumed run continues with the same means. A model trained so
is meant to be scored with ``--centering center``; whether that beats post-hoc centering of a model trained the
usual way is what the ``hybrid-c`` arm of studies/centering.yaml measures.

Example::

    loss = CenteredInfoNCE(scale=100.0, state={})
    value = loss(embeddings, query_langs=["de"] * 16, passage_langs=["en"] * 16)
"""

from __future__ import annotations

from typing import Any

import torch

#: weight of the old running mean in each update (a language's first batch sets it outright)
MOMENTUM = 0.9


class CenteredInfoNCE:
    """Cross-entropy of centred, scaled cosine scores; ``state["center_means"]`` holds the running means."""

    def __init__(self, scale: float, state: dict[str, Any], momentum: float = MOMENTUM) -> None:
        self.scale, self.state, self.momentum = scale, state, momentum
        self.state.setdefault("center_means", {})

    def _center(self, x: torch.Tensor, langs: list[str], side: str) -> torch.Tensor:
        means: dict[str, list[float]] = self.state["center_means"]
        out = x.clone()
        for lang in sorted(set(langs)):
            rows = torch.tensor([i for i, y in enumerate(langs) if y == lang], device=x.device)
            batch = x[rows].detach().mean(0)
            key = f"{side}:{lang}"
            old = torch.tensor(means[key], dtype=x.dtype, device=x.device) if key in means else batch
            mean = self.momentum * old + (1 - self.momentum) * batch if key in means else batch
            means[key] = mean.cpu().tolist()
            out[rows] = x[rows] - mean
        return torch.nn.functional.normalize(out, dim=-1)

    def __call__(self, embeddings: list[torch.Tensor], query_langs: list[str],
                 passage_langs: list[str]) -> torch.Tensor:  # fmt: skip
        """``embeddings``: query, passage (and hard-negative) columns, one row per item."""
        q = self._center(embeddings[0], query_langs, "query")
        passages = torch.cat([self._center(e, passage_langs, "passage") for e in embeddings[1:]])
        scores = q @ passages.T * self.scale
        return torch.nn.functional.cross_entropy(scores, torch.arange(len(q), device=q.device))
