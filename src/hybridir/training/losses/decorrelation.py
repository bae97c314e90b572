"""Language decorrelation (LANCER-style, Huang et al. EMNLP 2024): a training term that removes the language
component the post-hoc modes remove, so a model is nearly neutral with no post-processing.

Each step a multilingual probe batch of training passages (``languages`` x ``per_language`` texts, drawn by a
generator seeded by the run's seed and the step, so a resumed run draws the same probes) is embedded with the
model; the term is the mean absolute Pearson correlation between every embedding dimension and every language's
one-hot indicator over the probe. It is added to any objective (InfoNCE, InfoNCE + distillation, kd) with
``TrainConfig.decorrelate`` as its weight, and backpropagated on its own (gradients add up).

Example::

    term = LanguageDecorrelation(model, probe_texts={"de": [...], "en": [...]}, seed=0)
    value = term.backward(step=3, weight=1.0)    # gradients filled; returns the term's value
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: probe size a step (languages x passages each), fixed before any run: 32 extra passages a step
PROBE_LANGUAGES, PROBE_PER_LANGUAGE = 8, 4


def language_correlation(emb: torch.Tensor, langs: list[str]) -> torch.Tensor:
    """Mean |corr(dimension d, 1[language = l])| over the dimensions of ``emb`` (rows) and the languages present."""
    names = sorted(set(langs))
    onehot = torch.tensor([[float(x == name) for name in names] for x in langs], dtype=emb.dtype, device=emb.device)
    e = emb - emb.mean(0, keepdim=True)
    y = onehot - onehot.mean(0, keepdim=True)
    cov = e.T @ y / len(langs)
    std = e.pow(2).mean(0).clamp_min(1e-12).sqrt()[:, None] * y.pow(2).mean(0).clamp_min(1e-12).sqrt()[None, :]
    return (cov / std).abs().mean()


class LanguageDecorrelation:
    """The probe sampler and the term; ``probe_texts``: language -> training passages in it (two languages or
    more)."""

    def __init__(self, model: Any, probe_texts: dict[str, list[str]], seed: int, max_length: int = 64,
                 languages: int = PROBE_LANGUAGES, per_language: int = PROBE_PER_LANGUAGE) -> None:  # fmt: skip
        self.model, self.seed, self.max_length = model, seed, max_length
        self.texts = {lang: texts for lang, texts in sorted(probe_texts.items()) if texts}
        if len(self.texts) < 2:
            raise ValueError("the decorrelation probe needs training text in two languages or more")
        self.languages, self.per_language = min(languages, len(self.texts)), per_language

    def probe(self, step: int) -> tuple[list[str], list[str]]:
        """The probe of ``step``: (texts, their languages), the same on every rerun of that step."""
        rng = np.random.default_rng([self.seed, step])
        names = list(self.texts)
        chosen = [names[i] for i in sorted(rng.choice(len(names), self.languages, replace=False))]
        texts, langs = [], []
        for lang in chosen:
            pool = self.texts[lang]
            for i in rng.choice(len(pool), min(self.per_language, len(pool)), replace=False):
                texts.append(pool[int(i)])
                langs.append(lang)
        return texts, langs

    def backward(self, step: int, weight: float) -> float:
        """Embed the probe of ``step`` (passage prompt), backpropagate ``weight`` x the term; return the term."""
        texts, langs = self.probe(step)
        feats = self.model.preprocess(texts, prompt=(self.model.prompts or {}).get("passage") or None,
                                      max_length=self.max_length)  # fmt: skip
        feats = {k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in feats.items()}
        emb = torch.nn.functional.normalize(self.model(feats)["sentence_embedding"], dim=-1)
        term = language_correlation(emb, langs)
        (weight * term).backward()
        return float(term.detach())
