"""Inference paths of the Encoder: each one against the fp32 reference, batching, caches, choices and errors."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from hybridir.encoding import Encoder, cpu_has_bf16, openvino_available, resolve_path
from hybridir.errors import ConfigError

TEXTS = [f"sentence {i} " + "word " * (i % 13) for i in range(40)] + ["Die Katze", "猫在桌子上", "x"]
needs_openvino = pytest.mark.skipif(not openvino_available(), reason="openvino not installed (pip install openvino)")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference(tiny_model) -> np.ndarray:
    return Encoder(tiny_model, backend="torch", precision="fp32", show_progress=False).encode(TEXTS, "passage")


@pytest.mark.parametrize(
    ("backend", "precision", "min_cos"),
    [("torch", "bf16", 0.99), ("torch", "int8", 0.9),
     pytest.param("openvino", "fp32", 0.99999, marks=needs_openvino),
     pytest.param("openvino", "bf16", 0.99, marks=needs_openvino)],
)  # fmt: skip
def test_every_path_agrees_with_the_fp32_reference(tiny_model, reference, tmp_path, backend, precision, min_cos):
    enc = Encoder(tiny_model, backend=backend, precision=precision, cache_dir=tmp_path, show_progress=False,
                  max_tokens=64)  # fmt: skip
    emb = enc.encode(TEXTS, "passage")
    assert emb.shape == reference.shape and enc.path == f"{backend}-{precision}"
    assert cosines(emb, reference).min() > min_cos
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)  # the model's Normalize still applies
    other = Encoder(tiny_model, backend=backend, precision=precision, show_progress=False, max_tokens=10_000)
    assert cosines(other.encode(TEXTS, "passage"), emb).min() > 0.999  # the batching does not change the result


def test_token_budget_batches_cover_every_row_once_longest_first(tiny_model):
    enc = Encoder(tiny_model, backend="torch", precision="bf16", max_tokens=40, batch_size=8, show_progress=False)
    batches = list(enc._batches(TEXTS, "passage: "))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(TEXTS)))
    lengths = [len(x) for x in tiny_model.tokenizer(["passage: " + t for t in TEXTS])["input_ids"]]
    assert [lengths[i] for i in rows] == sorted(lengths, reverse=True)
    for b in batches:
        assert len(b) <= 8 and (len(b) == 1 or len(b) * lengths[b[0]] <= 40)
    assert len(batches) > len(TEXTS) // 8  # the budget, not only the row cap, cut batches


def test_paths_keep_separate_caches_and_fp32_keeps_its_old_key(tiny_model, tmp_path):
    fp32 = Encoder(tiny_model, backend="torch", precision="fp32", cache_dir=tmp_path, show_progress=False)
    bf16 = Encoder(tiny_model, backend="torch", precision="bf16", cache_dir=tmp_path, show_progress=False)
    assert fp32._cache_folder("query") != bf16._cache_folder("query")
    import hashlib

    old = f"query: |{tiny_model.max_seq_length}|True"  # the key written before there were several paths
    assert fp32._cache_folder("query").name == hashlib.sha1(old.encode()).hexdigest()[:12]
    fp32(TEXTS[:5], "query")
    bf16(TEXTS[:5], "query")
    assert fp32.encoded == bf16.encoded == 5  # bf16 did not read fp32's vectors
    again = Encoder(tiny_model, backend="torch", precision="bf16", cache_dir=tmp_path, show_progress=False)
    again(TEXTS[:5], "query")
    assert again.encoded == 0 and again.from_cache == 5
    assert bf16.describe() == {"path": "torch-bf16", "backend": "torch", "precision": "bf16", "batch_size": 64,
                               "max_tokens": 4096}  # fmt: skip


@needs_openvino
def test_openvino_model_is_converted_once_per_fingerprint(tiny_model, tmp_path):
    first = Encoder(tiny_model, backend="openvino", precision="fp32", cache_dir=tmp_path, show_progress=False)
    first.encode(TEXTS[:3], "query")
    xml = tmp_path / "openvino" / first.fingerprint / "model.xml"
    stamp = xml.stat().st_mtime_ns
    Encoder(tiny_model, backend="openvino", precision="bf16", cache_dir=tmp_path, show_progress=False).encode(
        TEXTS[:3], "query"
    )
    assert xml.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "openvino").iterdir()] == [first.fingerprint]  # no temporary left over


def test_path_choices_and_errors(tiny_model, monkeypatch):
    with pytest.raises(ConfigError, match="unknown backend 'onnx'"):
        resolve_path(tiny_model, "onnx")
    with pytest.raises(ConfigError, match="no precision 'int8'"):
        resolve_path(tiny_model, "openvino", "int8")
    assert resolve_path(tiny_model, "torch") == ("torch", "fp32")
    expected = ("openvino", "bf16") if cpu_has_bf16() else ("torch", "fp32")
    assert resolve_path(tiny_model) == expected
    assert resolve_path(tiny_model, "auto", "fp32") == ("torch", "fp32")
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(ConfigError, match=r"needs the openvino package: pip install"):
        resolve_path(tiny_model, "openvino")
    assert resolve_path(tiny_model) == ("torch", "fp32")  # auto falls back without the package


@pytest.mark.slow
@needs_openvino
def test_openvino_bf16_is_faithful_on_e5_small(e5_small, data_root):
    from hybridir.data.lareqa import load_lareqa

    es = load_lareqa(data_root / "xquad-r", ["en", "th", "zh"], max_questions=20)
    texts = es.cand_texts[::40] + es.query_texts[:20]
    ref = Encoder(e5_small, backend="torch", precision="fp32", show_progress=False).encode(texts, "passage")
    fast = Encoder(e5_small, backend="openvino", precision="bf16", show_progress=False).encode(texts, "passage")
    cos = cosines(ref, fast)
    assert cos.mean() > 0.9999 and cos.min() > 0.999
