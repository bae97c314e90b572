"""Encoding: every unique text once, through a chosen inference path, with an on-disk embedding cache.

Evaluation hands its texts to an :class:`Encoder`; the encoder decides how they become vectors and remembers
them per model fingerprint and path, so that no text is encoded twice across settings, runs or study cells.

Inference paths (``backend``-``precision``), measured side by side by ``bench/eval_speed.py``:

- ``torch-fp32``: sentence-transformers' own ``model.encode``, the reference every other path is checked against.
- ``openvino-bf16``: the model's transformer compiled by OpenVINO with bfloat16 inference on CPUs with native
  bf16 (AVX512-BF16 / AMX); tokenisation, prompts, pooling and normalisation stay the model's own modules. About
  2x torch-fp32 on the 2-core development CPU at cosine 0.99999 to it. ``openvino-fp32`` keeps fp32 arithmetic.
- ``torch-bf16`` (autocast) and ``torch-int8`` (dynamic quantisation of the Linear layers): no extra package;
  int8 is fast but measurably unfaithful (cosine ~0.97 to fp32), so it is never chosen automatically.

``auto`` (the default) picks ``openvino-bf16`` for a CPU model when OpenVINO is installed and the CPU has native
bf16 (that path met the faithfulness bound of issue 11: XQuAD-R mAP within 0.003 and MIRACL nDCG@10 within 0.005
of fp32), else ``torch-fp32``. The path used is recorded in every results.json.

Sentence-transformers' own ``backend="onnx" | "openvino"`` need ``optimum``, whose releases pin transformers
versions this project cannot use (optimum-onnx < 4.58; optimum-intel pulls another torch); OpenVINO's runtime is
used directly instead.

Example::

    enc = Encoder(load_encoder("e5-small"), cache_dir=Path("~/.cache/hybridir/embeddings"))
    q = enc(["what is x?"], "query")
    enc.path   # "openvino-bf16" on a bf16-capable CPU with openvino installed
"""

from __future__ import annotations

import copy
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .files import atomic_dir
from .integrity import read_sealed, seal_dir, verified_dir, write_sealed
from .space import SLACK, require_free, vector_bytes

PRECISIONS: dict[str, tuple[str, ...]] = {"torch": ("fp32", "bf16", "int8"), "openvino": ("fp32", "bf16")}
#: default token budget of one batch (rows x longest row) for the non-reference paths
MAX_TOKENS = 4096


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise ConfigError(
            "backend 'openvino' needs the openvino package: pip install 'hybridir[fast]' (or pip install openvino)"
        ) from e
    return openvino


def openvino_available() -> bool:
    try:
        _openvino()
    except ConfigError:
        return False
    return True


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (OpenVINO's capability list), i.e. bf16 is fast, not emulated."""
    return openvino_available() and "BF16" in _openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_path(model: Any, backend: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """(backend, precision) for ``model``; ``auto`` as in the module docstring. ConfigError on unknown choices."""
    on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
    if backend == "auto":
        fast = on_cpu and precision in ("auto", "bf16") and cpu_has_bf16()
        backend = "openvino" if fast else "torch"
    if backend not in PRECISIONS:
        raise ConfigError(f"unknown backend {backend!r}: use auto, {', '.join(PRECISIONS)}")
    if precision == "auto":
        precision = "bf16" if backend == "openvino" and cpu_has_bf16() else "fp32"
    if precision not in PRECISIONS[backend]:
        raise ConfigError(f"backend {backend!r} has no precision {precision!r}: use {', '.join(PRECISIONS[backend])}")
    if backend == "openvino":
        _openvino()
        if not on_cpu:
            raise ConfigError(f"backend 'openvino' runs on the CPU, the model is on {model.device}: use backend torch")
    return backend, precision


class _TokenEmbeddings(torch.nn.Module):
    """``(input_ids, attention_mask) -> last_hidden_state``: the part of the model OpenVINO compiles."""

    def __init__(self, hf_model: Any) -> None:
        super().__init__()
        self.hf_model = hf_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def openvino_model(model: Any, fingerprint: str, cache_dir: Path | None = None) -> Path:
    """The OpenVINO IR (``model.xml`` + ``.bin``, fp32 weights) of ``model``'s transformer, converted once per
    fingerprint into ``cache_dir`` (default: the user cache) through a temporary directory renamed when complete."""
    from .offline_e5 import cache_root

    ov = _openvino()
    folder = Path(cache_dir or cache_root() / "openvino").expanduser() / fingerprint
    xml = folder / "model.xml"
    if verified_dir(folder, "OpenVINO export"):
        return xml
    hf = copy.deepcopy(model[0].auto_model).float().eval()  # tracing may touch module state: convert a copy
    example = model.preprocess(["passage: example text", "short"], prompt=None)
    with torch.no_grad():
        converted = ov.convert_model(_TokenEmbeddings(hf), example_input={
            "input_ids": example["input_ids"], "attention_mask": example["attention_mask"]})  # fmt: skip
    with atomic_dir(folder) as tmp:
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
        seal_dir(tmp)
    return xml


class Encoder:
    """Encodes each unique text once through one inference path, timing the model; optional on-disk cache.

    The cache lives in ``cache_dir/<model fingerprint>/<path, prompt, length, normalisation hash>/`` as ``.npz``
    shards of (text hash, embedding) rows written atomically with a checksum (a shard that fails it is recomputed,
    :mod:`hybridir.integrity`), so any later call (another subset, another
    setting, another run, another study cell with the same model) reuses every text it has seen.

    Args:
        backend, precision: the inference path (module docstring); ``auto`` picks the fast one where it is faithful.
        batch_size: rows per batch (the reference path's fixed batch; the other paths' upper bound).
        max_tokens: the other paths batch length-sorted texts up to this many tokens (rows x longest row), so
            short texts go in wide batches and long passages in narrow ones.

    Example::

        enc = Encoder(model, cache_dir=Path("~/.cache/hybridir/embeddings"))
        q = enc(["what is x?"], "query")
    """

    def __init__(self, model: Any, batch_size: int = 64, cache_dir: Path | None = None, show_progress: bool = True,
                 backend: str = "auto", precision: str = "auto", max_tokens: int = MAX_TOKENS) -> None:  # fmt: skip
        from .models import fingerprint

        self.model = model
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.show_progress = show_progress
        self.fingerprint = fingerprint(model)
        self.backend, self.precision = resolve_path(model, backend, precision)
        # cosine models are scored by dot products of unit vectors; "dot" models keep their norms
        self.normalize = model.similarity_fn_name != "dot"
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.seconds = 0.0
        self.encoded = 0
        self.from_cache = 0
        self._forward: Callable[[dict[str, Any]], torch.Tensor] | None = None

    @property
    def path(self) -> str:
        """The inference path, e.g. ``openvino-bf16``."""
        return f"{self.backend}-{self.precision}"

    def describe(self) -> dict[str, Any]:
        """What results.json records about how its embeddings were made."""
        budget = None if self.path == "torch-fp32" else self.max_tokens
        return {"path": self.path, "backend": self.backend, "precision": self.precision,
                "batch_size": self.batch_size, "max_tokens": budget}  # fmt: skip

    def _dim(self) -> int | None:
        """The embedding size (sentence-transformers renamed the method in 5.x; older versions have the old name)."""
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return get()

    def _cache_folder(self, prompt_name: str) -> Path | None:
        if self.cache_dir is None:
            return None
        prompt = (self.model.prompts or {}).get(prompt_name, "")
        # fp32 keeps the key it always had, so caches written before the fast paths stay valid
        tag = "" if self.path == "torch-fp32" else f"|{self.path}"
        key = f"{prompt}|{self.model.max_seq_length}|{self.normalize}{tag}"
        return self.cache_dir / self.fingerprint / hashlib.sha1(key.encode()).hexdigest()[:12]

    def __call__(self, texts: list[str], prompt_name: str) -> np.ndarray:
        """float32 embeddings of ``texts`` (duplicates encoded once)."""
        unique = list(dict.fromkeys(texts))
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in unique]
        folder = self._cache_folder(prompt_name)
        known: dict[str, np.ndarray] = {}
        if folder is not None and folder.is_dir():
            wanted = set(keys)
            for data in read_sealed(sorted(folder.glob("*.npz")), "embedding cache").values():
                with np.load(io.BytesIO(data)) as z:
                    for k, row in zip(z["keys"].tolist(), z["emb"], strict=True):
                        if k in wanted:
                            known[k] = row
        missing = [i for i, k in enumerate(keys) if k not in known]
        self.from_cache += len(unique) - len(missing)
        if missing and folder is not None:
            require_free(folder.parent, vector_bytes(len(missing), self._dim() or 0) + SLACK, "the embedding cache")
        if missing:
            start = time.perf_counter()
            emb = self.encode([unique[i] for i in missing], prompt_name)
            self.seconds += time.perf_counter() - start
            self.encoded += len(missing)
            new_keys = [keys[i] for i in missing]
            known.update(zip(new_keys, emb, strict=True))
            if folder is not None:
                buf = io.BytesIO()
                np.savez(buf, keys=np.array(new_keys), emb=emb.astype(np.float32))
                name = hashlib.sha1("".join(new_keys).encode()).hexdigest()[:16]
                write_sealed(folder / f"{name}.npz", buf.getvalue())
        row = {t: known[k] for t, k in zip(unique, keys, strict=True)}
        if not texts:
            return np.zeros((0, self._dim() or 0), dtype=np.float32)
        return np.stack([row[t] for t in texts]).astype(np.float32, copy=False)

    # --- the inference paths ---------------------------------------------------------------------------------
    def encode(self, texts: list[str], prompt_name: str) -> np.ndarray:
        """Embeddings of ``texts`` through this encoder's path, without the cache."""
        if self.path == "torch-fp32":
            return self.model.encode(texts, prompt_name=prompt_name, batch_size=self.batch_size,
                                     show_progress_bar=self.show_progress, convert_to_numpy=True,
                                     normalize_embeddings=self.normalize)  # fmt: skip
        from tqdm.auto import tqdm

        forward = self._forward or self._build_forward()
        self.model.eval()  # as model.encode does: no dropout
        prompt = (self.model.prompts or {}).get(prompt_name) or None
        out = np.zeros((len(texts), self._dim()), dtype=np.float32)
        bar = tqdm(total=len(texts), desc=f"encode ({self.path})", disable=not self.show_progress)
        for rows in self._batches(texts, prompt):
            feats = self.model.preprocess([texts[i] for i in rows], prompt=prompt)
            emb = forward(feats).float()
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            out[rows] = emb.numpy()
            bar.update(len(rows))
        bar.close()
        return out

    def _batches(self, texts: list[str], prompt: str | None) -> Iterator[np.ndarray]:
        """Row indices, longest texts first, in batches of at most ``max_tokens`` (padded) and ``batch_size`` rows."""
        ids = self.model.tokenizer([(prompt or "") + t for t in texts], truncation=True,
                                   max_length=self.model.max_seq_length)["input_ids"]  # fmt: skip
        lengths = np.array([len(x) for x in ids])
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            rows = max(1, min(self.batch_size, self.max_tokens // max(1, int(lengths[order[start]]))))
            yield order[start : start + rows]
            start += rows

    def _build_forward(self) -> Callable[[dict[str, Any]], torch.Tensor]:
        """features -> sentence embeddings for the non-reference paths (built once, on first use)."""
        model = self.model
        if self.backend == "openvino":
            ov = _openvino()
            xml = openvino_model(model, self.fingerprint, self.cache_dir and self.cache_dir / "openvino")
            compiled = ov.Core().compile_model(str(xml), "CPU", {
                "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
                "INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"})  # fmt: skip
            request, output, rest = compiled.create_infer_request(), compiled.output(0), list(model)[1:]

            def forward(feats: dict[str, Any]) -> torch.Tensor:
                inputs = {k: feats[k].numpy() for k in ("input_ids", "attention_mask")}
                feats["token_embeddings"] = torch.from_numpy(request.infer(inputs)[output].copy())
                with torch.inference_mode():
                    for module in rest:  # pooling, dense, normalise: the model's own modules
                        feats = module(feats)
                return feats["sentence_embedding"]
        else:
            net = model
            if self.precision == "int8":
                net = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
            device = str(model.device).split(":")[0]

            def forward(feats: dict[str, Any]) -> torch.Tensor:
                feats = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in feats.items()}
                with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=self.precision == "bf16"):
                    return net(feats)["sentence_embedding"].cpu()

        self._forward = forward
        return forward
