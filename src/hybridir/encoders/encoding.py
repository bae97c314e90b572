"""Encoding: every unique text once, through a chosen inference path, with an on-disk embedding cache.

Evaluation hands its texts to an :class:`Encoder`; the encoder decides how they become vectors and remembers
them per model fingerprint and path, so that no text is encoded twice across settings, runs or study cells.

Inference paths (``backend``-``precision``), measured side by side by ``bench/eval_speed.py --only-paths``:

- ``torch-fp32``: sentence-transformers' own ``model.encode``, the reference every other path is checked against.
- ``openvino-fp32`` / ``openvino-bf16``: the model's transformer compiled by OpenVINO with fp32 arithmetic, or
  bfloat16 on CPUs with native bf16 (AVX512-BF16 / AMX); tokenisation, prompts, pooling and normalisation stay the
  model's own modules.
- ``openvino-int8w``: int8-compressed weights (NNCF, per-channel asymmetric), fp32 activations.
- ``openvino-int8``: static int8 (weights and activations) calibrated by NNCF on NTREX-128 training sentences and
  passages, never on evaluation data.
- ``torch-bf16`` (autocast) and ``torch-int8`` (dynamic quantisation of the Linear layers): no extra package;
  torch-int8 is measurably unfaithful (cosine ~0.97 to fp32), so it stays available by name only.

``auto`` (the default) is :func:`choose_path` of the installed packages and the CPU's features: the fastest path
that met the faithfulness bound (XQuAD-R mAP within 0.003 and MIRACL-yo nDCG@10 within 0.005 of torch-fp32) on that
kind of CPU, as written down in :data:`FAITHFUL`. The path used and the CPU's features are recorded in every
results.json.

Sentence-transformers' own ``backend="onnx" | "openvino"`` need ``optimum``, whose releases pin transformers
versions this project cannot use (optimum-onnx < 4.58; optimum-intel pulls another torch); OpenVINO's runtime is
used directly instead.

Example::

    enc = Encoder(load_encoder("e5-small"), cache_dir=Path("~/.cache/hybridir/embeddings"))
    q = enc(["what is x?"], "query")
    enc.path   # "openvino-bf16" on a bf16 CPU, "openvino-int8w" on an AVX2-only one, with hybridir[fast]
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..infra.errors import ConfigError
from ..infra.files import atomic_dir
from ..infra.integrity import seal_dir, verified_dir
from ..infra.shards import Shard
from . import PRECISIONS
from .cache import cached
from .centering import Centering
from .models import embedding_dim

#: default token budget of one batch (rows x longest row) for the non-reference paths
MAX_TOKENS = 4096
#: the CPU flags (as Linux /proc/cpuinfo names them) that decide which paths are fast and faithful
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")

# The paths measured faithful (XQuAD-R mono / cross / multi mAP within 0.003 and MIRACL-yo nDCG@10 within 0.005 of
# torch-fp32) on each kind of CPU, fastest first, measured by
#   .venv/bin/python bench/eval_speed.py --only-paths --onnx   (tables in docs/metrics.md, "Inference paths")
# bf16: the development machine with AMX (openvino-bf16 5.4x); avx2: a 2-core AMD EPYC with AVX2 + FMA only
# (openvino-int8w 2.4x / 2.5x on XQuAD-R / MIRACL, mAP diff <= 0.0018, nDCG diff +0.0031; openvino-fp32 2.5x / 2.3x,
# cosine 1.00000; static openvino-int8 cross mAP -0.0091: unfaithful there). A path measured outside
# the bounds, or not measured on a kind, is never chosen for it (it stays available by name). CPU kinds never
# measured get openvino-fp32: fp32 arithmetic, cosine 1.00000 to the reference on every CPU measured.
# int8w left avx2's list on 2026-12-02: faithful on the starting model, but on a fine-tuned one (paper_qa X-Y seed 0,
# temperature 0.01) it read mono / cross mAP +0.015 / +0.013 above openvino-fp32, which bf16 matched within 0.0005
# (reports/paper_qa.md, "Two runs"); openvino-fp32 is about as fast on those machines.
FAITHFUL: dict[str, tuple[str, ...]] = {
    "bf16": ("openvino-bf16", "openvino-fp32"),
    "avx2": ("openvino-fp32",),
}
UNMEASURED = ("openvino-fp32",)
#: what each path needs beyond torch (``nncf`` builds the quantised models once; the build is cached)
NEEDS: dict[str, frozenset[str]] = {
    "openvino-fp32": frozenset({"openvino"}), "openvino-bf16": frozenset({"openvino"}),
    "openvino-int8w": frozenset({"openvino", "nncf"}), "openvino-int8": frozenset({"openvino", "nncf"}),
}  # fmt: skip


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise ConfigError(
            "backend 'openvino' needs the openvino package: pip install 'hybridir[fast]' (or pip install openvino)"
        ) from e
    return openvino


def _nncf() -> Any:
    try:
        import nncf
    except ImportError as e:
        raise ConfigError("the int8 OpenVINO paths need the nncf package: pip install 'hybridir[fast]'") from e
    return nncf


def openvino_available() -> bool:
    try:
        _openvino()
    except ConfigError:
        return False
    return True


def installed() -> frozenset[str]:
    """The optional inference packages importable here (``openvino``, ``nncf``)."""
    return frozenset(name for name in ("openvino", "nncf") if importlib.util.find_spec(name) is not None)


@functools.cache
def cpu_features() -> frozenset[str]:
    """The :data:`CPU_FLAGS` this CPU has: /proc/cpuinfo on Linux, else torch's and OpenVINO's capability reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split()) & frozenset(CPU_FLAGS)
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", "DEFAULT", ...
    found = {"avx2", "fma"} if capability.startswith(("AVX2", "AVX512")) else set()
    found |= {"avx512f"} if capability.startswith("AVX512") else set()
    if openvino_available() and "BF16" in _openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        found.add("avx512_bf16")
    return frozenset(found)


def cpu_kind(features: frozenset[str]) -> str:
    """``bf16`` (native bf16), ``avx512``, ``avx2`` (AVX2 + FMA) or ``other``: the rows of :data:`FAITHFUL`."""
    if features & {"avx512_bf16", "amx_bf16"}:
        return "bf16"
    if "avx512f" in features:
        return "avx512"
    return "avx2" if {"avx2", "fma"} <= features else "other"


def candidates(packages: frozenset[str], features: frozenset[str]) -> list[str]:
    """The faithful paths for this CPU whose packages are installed, fastest first, ending with torch-fp32."""
    measured = FAITHFUL.get(cpu_kind(features), UNMEASURED)
    return [p for p in measured if NEEDS[p] <= packages] + ["torch-fp32"]


def choose_path(packages: frozenset[str], features: frozenset[str]) -> str:
    """``auto``'s choice for a CPU model: the fastest path measured faithful on this kind of CPU that can run here."""
    return candidates(packages, features)[0]


def resolve_path(model: Any, backend: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """(backend, precision) for ``model``; ``auto`` as in the module docstring. ConfigError on unknown choices.

    A pinned half takes the first faithful candidate that matches it (``--backend openvino``: the fastest faithful
    OpenVINO path; ``--precision fp32``: the fastest fp32 one), else the backend's fp32 / torch at that precision.
    """
    on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
    if backend != "auto" and backend not in PRECISIONS:
        raise ConfigError(f"unknown backend {backend!r}: use auto, {', '.join(PRECISIONS)}")
    paths = [tuple(p.split("-")) for p in (candidates(installed(), cpu_features()) if on_cpu else ["torch-fp32"])]
    match = [(b, p) for b, p in paths if backend in ("auto", b) and precision in ("auto", p)]
    backend, precision = match[0] if match else (
        "torch" if backend == "auto" else backend, "fp32" if precision == "auto" else precision)  # fmt: skip
    if precision not in PRECISIONS[backend]:
        raise ConfigError(f"backend {backend!r} has no precision {precision!r}: use {', '.join(PRECISIONS[backend])}")
    if backend == "openvino":
        _openvino()
        if not on_cpu:
            raise ConfigError(f"backend 'openvino' runs on the CPU, the model is on {model.device}: use backend torch")
        if precision in ("int8w", "int8"):
            _nncf()
    return backend, precision


class _TokenEmbeddings(torch.nn.Module):
    """``(input_ids, attention_mask) -> last_hidden_state``: the part of the model OpenVINO compiles."""

    def __init__(self, hf_model: Any) -> None:
        super().__init__()
        self.hf_model = hf_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


#: how each quantised OpenVINO model is made; part of its cache keys, so a new recipe never reads an old model
RECIPES = {
    "int8w": "nncf.compress_weights int8_asym per-channel",
    "int8": "nncf.quantize transformer, fast bias correction, 300 NTREX-128 texts (12 languages, seed 0) v1",
}
#: NTREX-128 languages of the int8 calibration texts: several scripts, high and low resource (training data only)
CALIBRATION_LANGUAGES = ("en", "de", "es", "fr", "ru", "ar", "hi", "th", "zh", "ja", "sw", "yo")


def calibration_texts(model: Any, n: int = 300, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``n`` single-text model inputs for static int8 calibration: NTREX-128 ICT queries and passages (training
    text, never evaluation data) in :data:`CALIBRATION_LANGUAGES`, each with the model's own prompt."""
    from ..data.training.parallel import load_ntrex

    data = load_ntrex(CALIBRATION_LANGUAGES, seed=seed)
    rng = np.random.default_rng(seed)
    prompts = model.prompts or {}
    texts = [(prompts.get(kind), getattr(pair, kind)) for i in rng.permutation(len(data.items))
             for pair in data.items[i].pairs.values() for kind in ("query", "passage")]  # fmt: skip
    texts = [texts[i] for i in rng.choice(len(texts), min(n, len(texts)), replace=False)]
    feats = [model.preprocess([text], prompt=prompt) for prompt, text in texts]
    return [{k: f[k].numpy() for k in ("input_ids", "attention_mask")} for f in feats]


def openvino_model(model: Any, fingerprint: str, cache_dir: Path | None = None, precision: str = "fp32") -> Path:
    """The OpenVINO IR (``model.xml`` + ``.bin``) of ``model``'s transformer, built once per fingerprint into
    ``cache_dir`` (default: the user cache) through a temporary directory renamed when complete: fp32 weights
    in ``<fingerprint>/``, the quantised ``int8w`` / ``int8`` ones (made from that fp32 IR) beside it in
    ``<fingerprint>-<variant>/``, so that rebuilding one never removes another."""
    from .offline_e5 import cache_root

    ov = _openvino()
    name = f"{fingerprint}-{variant(precision)}" if precision in RECIPES else fingerprint
    folder = Path(cache_dir or cache_root() / "openvino").expanduser() / name
    xml = folder / "model.xml"
    if verified_dir(folder, "OpenVINO export"):
        return xml
    if precision in RECIPES:
        nncf = _nncf()
        fp32 = ov.Core().read_model(str(openvino_model(model, fingerprint, cache_dir)))
        if precision == "int8w":
            converted = nncf.compress_weights(fp32, mode=nncf.CompressWeightsMode.INT8_ASYM)
        else:
            converted = nncf.quantize(fp32, nncf.Dataset(calibration_texts(model)), subset_size=300,
                                      model_type=nncf.ModelType.TRANSFORMER)  # fmt: skip
    else:
        hf = copy.deepcopy(model[0].auto_model).float().eval()  # tracing may touch module state: convert a copy
        example = model.preprocess(["passage: example text", "short"], prompt=None)
        with torch.no_grad():
            converted = ov.convert_model(_TokenEmbeddings(hf), example_input={
                "input_ids": example["input_ids"], "attention_mask": example["attention_mask"]})  # fmt: skip
    with atomic_dir(folder) as tmp:
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
        seal_dir(tmp)
    return xml


def variant(precision: str) -> str:
    """``precision`` plus a hash of its :data:`RECIPES` entry (the quantised model's folder and cache-key tag)."""
    return f"{precision}-{hashlib.sha1(RECIPES[precision].encode()).hexdigest()[:8]}"


class Encoder:
    """Encodes each unique text once through one inference path, timing the model; optional on-disk cache.

    The cache lives in ``cache_dir/<model fingerprint>/<path, prompt, length, normalisation hash>/`` as ``.npz``
    shards of (text hash, embedding) rows written atomically with a checksum (a shard that fails it is recomputed,
    :mod:`hybridir.infra.integrity`), so any later call (another subset, another
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
                 backend: str = "auto", precision: str = "auto", max_tokens: int = MAX_TOKENS,
                 centering: Centering | None = None, shard: Shard | None = None) -> None:  # fmt: skip
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
        self.centering = centering
        self.shard = shard or Shard()  # this process's share of the encoding (hybridir.infra.shards)

    @property
    def path(self) -> str:
        """The inference path, e.g. ``openvino-bf16``."""
        return f"{self.backend}-{self.precision}"

    def describe(self) -> dict[str, Any]:
        """What results.json records about how its embeddings were made."""
        budget = None if self.path == "torch-fp32" else self.max_tokens
        features = cpu_features()
        return {"path": self.path, "backend": self.backend, "precision": self.precision,
                "batch_size": self.batch_size, "max_tokens": budget,
                "cpu": {"kind": cpu_kind(features), "features": sorted(features)}}  # fmt: skip

    def dim(self) -> int | None:
        """The embedding size."""
        return embedding_dim(self.model)

    def _cache_folder(self, prompt_name: str) -> Path | None:
        if self.cache_dir is None:
            return None
        prompt = (self.model.prompts or {}).get(prompt_name, "")
        # fp32 keeps the key it always had, so caches written before the fast paths stay valid; a quantised path's
        # key names its recipe, so vectors of an older quantisation are never read
        tag = "" if self.path == "torch-fp32" else f"|{self.path}"
        tag += f"|{variant(self.precision)}" if self.backend == "openvino" and self.precision in RECIPES else ""
        key = f"{prompt}|{self.model.max_seq_length}|{self.normalize}{tag}"
        return self.cache_dir / self.fingerprint / hashlib.sha1(key.encode()).hexdigest()[:12]

    def __call__(self, texts: list[str], prompt_name: str, langs: list[str] | None = None) -> np.ndarray:
        """float32 embeddings of ``texts`` (duplicates encoded once), with ``langs`` (one per text) centred as
        ``self.centering`` says (:mod:`hybridir.encoders.centering`); an active centering needs ``langs``."""
        vecs = self.plain(texts, prompt_name)
        if self.centering is None or not self.centering.active or self.shard.partial:
            return vecs  # a partial shard's vectors are incomplete: no language means are made of them
        if langs is None and self.centering.spec.centres:
            raise ValueError("centering needs the language of every text (langs=...)")
        langs = langs if langs is not None else [""] * len(texts)  # the projection alone needs no labels
        # a few hundred texts a language, encoded whole by every rank: never waiting on another rank's share
        whole = functools.partial(self.plain, shard=Shard())
        self.centering.ensure(langs, whole, self.fingerprint, vecs.shape[1], self.path)
        return self.centering.apply(vecs, langs, "query" if prompt_name == "query" else "passage", self.normalize)

    def plain(self, texts: list[str], prompt_name: str, shard: Shard | None = None) -> np.ndarray:
        """float32 embeddings of ``texts`` as the model gives them (never centred), through the cache: this process
        encodes its share (``shard``, default ``self.shard``) of the missing units (:mod:`hybridir.infra.shards`),
        then reads the others' from disk."""
        shard = shard or self.shard
        folder = self._cache_folder(prompt_name)
        if folder is None and shard.world > 1:
            raise ConfigError("sharded encoding shares its vectors through the embedding cache: give --cache-dir, "
                              "a folder every rank sees")  # fmt: skip

        def encode(batch: list[str]) -> np.ndarray:
            start = time.perf_counter()
            emb = self.encode(batch, prompt_name, progress=False)
            self.seconds += time.perf_counter() - start
            self.encoded += len(batch)
            return emb

        vecs, reused = cached(texts, folder, encode, lambda: self.dim() or 0, shard=shard,
                              desc=f"encode ({self.path})", progress=self.show_progress, what=prompt_name)  # fmt: skip
        self.from_cache += reused
        return vecs

    # --- the inference paths ---------------------------------------------------------------------------------
    def encode(self, texts: list[str], prompt_name: str, progress: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts`` through this encoder's path, without the cache (``progress``: a bar, default
        ``show_progress``)."""
        progress = self.show_progress if progress is None else progress
        if self.path == "torch-fp32":
            return self.model.encode(texts, prompt_name=prompt_name, batch_size=self.batch_size,
                                     show_progress_bar=progress, convert_to_numpy=True,
                                     normalize_embeddings=self.normalize)  # fmt: skip
        forward = self._forward or self._build_forward()
        self.model.eval()  # as model.encode does: no dropout
        prompt = (self.model.prompts or {}).get(prompt_name) or None
        out = np.zeros((len(texts), self.dim()), dtype=np.float32)
        bar = tqdm(total=len(texts), desc=f"encode ({self.path})", disable=not progress)
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
            folder = self.cache_dir and self.cache_dir / "openvino"
            xml = openvino_model(model, self.fingerprint, folder, self.precision)
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
