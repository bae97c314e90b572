"""Inference paths of the Encoder: each one against the fp32 reference, batching, caches, choices and errors."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from hybridir.encoders import encoding
from hybridir.encoders.encoding import FAITHFUL, Encoder, choose_path, cpu_features, cpu_kind, installed, resolve_path
from hybridir.infra.errors import ConfigError

TEXTS = [f"sentence {i} " + "word " * (i % 13) for i in range(40)] + ["Die Katze", "猫在桌子上", "x"]
needs_openvino = pytest.mark.skipif("openvino" not in installed(), reason="pip install openvino")
needs_nncf = pytest.mark.skipif("nncf" not in installed(), reason="nncf not installed (pip install 'hybridir[fast]')")
AVX2 = frozenset({"avx2", "fma"})  # the AMD EPYC development machines
BF16 = frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"})  # Sapphire Rapids


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference(tiny_model) -> np.ndarray:
    return Encoder(tiny_model, backend="torch", precision="fp32", show_progress=False).encode(TEXTS, "passage")


@pytest.mark.parametrize(
    ("backend", "precision", "min_cos"),
    [("torch", "bf16", 0.99), ("torch", "int8", 0.9),
     pytest.param("openvino", "fp32", 0.99999, marks=needs_openvino),
     pytest.param("openvino", "bf16", 0.99, marks=needs_openvino),
     pytest.param("openvino", "int8w", 0.999, marks=[needs_openvino, needs_nncf]),
     pytest.param("openvino", "int8", 0.99, marks=[needs_openvino, needs_nncf])],
)  # fmt: skip
def test_every_path_agrees_with_the_fp32_reference(tiny_model, reference, tmp_path, backend, precision, min_cos,
                                                   request):  # fmt: skip
    if precision == "int8":
        request.getfixturevalue("data_root")  # calibrated on NTREX-128 training text: skipped without the data
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
    cpu = {"kind": cpu_kind(cpu_features()), "features": sorted(cpu_features())}
    assert bf16.describe() == {"path": "torch-bf16", "backend": "torch", "precision": "bf16", "batch_size": 64,
                               "max_tokens": 4096, "cpu": cpu}  # fmt: skip


@needs_openvino
@needs_nncf
def test_openvino_models_are_built_once_per_fingerprint_and_recipe(tiny_model, tmp_path, monkeypatch):
    first = Encoder(tiny_model, backend="openvino", precision="fp32", cache_dir=tmp_path, show_progress=False)
    first.encode(TEXTS[:3], "query")
    folder = tmp_path / "openvino" / first.fingerprint
    xml = folder / "model.xml"
    stamp = xml.stat().st_mtime_ns
    Encoder(tiny_model, backend="openvino", precision="bf16", cache_dir=tmp_path, show_progress=False).encode(
        TEXTS[:3], "query"
    )
    int8w = Encoder(tiny_model, backend="openvino", precision="int8w", cache_dir=tmp_path, show_progress=False)
    int8w(TEXTS[:3], "query")
    assert xml.stat().st_mtime_ns == stamp
    quantised = tmp_path / "openvino" / f"{first.fingerprint}-{encoding.variant('int8w')}" / "model.xml"
    assert sorted(p.name for p in (tmp_path / "openvino").iterdir()) == [first.fingerprint, quantised.parent.name]
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.bin", "model.xml"]  # no tmp
    stamp = quantised.stat().st_mtime_ns
    Encoder(tiny_model, backend="openvino", precision="int8w", cache_dir=tmp_path, show_progress=False).encode(
        TEXTS[:3], "passage"
    )
    assert quantised.stat().st_mtime_ns == stamp
    # a new recipe is a new model and new cached vectors, never the old ones
    old = int8w._cache_folder("query")
    monkeypatch.setitem(encoding.RECIPES, "int8w", encoding.RECIPES["int8w"] + " v2")
    again = Encoder(tiny_model, backend="openvino", precision="int8w", cache_dir=tmp_path, show_progress=False)
    assert again._cache_folder("query") != old
    again(TEXTS[:3], "query")
    assert again.encoded == 3 and (folder.parent / f"{folder.name}-{encoding.variant('int8w')}").is_dir()


@pytest.mark.parametrize(
    ("packages", "features", "expected"),
    [(frozenset({"openvino", "nncf"}), BF16, "openvino-bf16"),
     (frozenset({"openvino"}), BF16, "openvino-bf16"),
     (frozenset({"openvino", "nncf"}), AVX2, FAITHFUL["avx2"][0]),
     (frozenset({"openvino"}), AVX2, "openvino-fp32"),  # int8 models need nncf to be built
     (frozenset(), AVX2, "torch-fp32"), (frozenset(), BF16, "torch-fp32"),
     (frozenset({"openvino", "nncf"}), frozenset({"avx2", "fma", "avx512f"}), "openvino-fp32"),  # not measured
     (frozenset({"openvino", "nncf"}), frozenset(), "openvino-fp32")],
)  # fmt: skip
def test_auto_chooses_the_fastest_faithful_path_per_cpu_kind(packages, features, expected):
    assert choose_path(packages, features) == expected


def test_the_faithful_table_names_real_paths_and_never_an_unfaithful_one():
    for kind, paths in FAITHFUL.items():
        assert kind in {"bf16", "avx2", "avx512", "other"} and paths
        for path in paths:
            backend, precision = path.split("-")
            assert precision in encoding.PRECISIONS[backend]
            assert path not in ("torch-int8", "openvino-int8")  # measured unfaithful (docs/metrics.md)
    assert "openvino-bf16" not in FAITHFUL["avx2"]  # emulated bf16: slow
    assert cpu_kind(AVX2) == "avx2" and cpu_kind(BF16) == "bf16" and cpu_kind(frozenset({"avx2"})) == "other"
    assert cpu_kind(frozenset({"avx2", "fma", "avx512f"})) == "avx512"


def test_cpu_features_are_read_from_this_machine():
    features = cpu_features()
    assert features <= set(encoding.CPU_FLAGS)
    assert cpu_kind(features) in {"bf16", "avx512", "avx2", "other"}


@pytest.mark.parametrize(("features", "auto", "auto_fp32", "openvino"),
                         [(BF16, ("openvino", "bf16"), ("openvino", "fp32"), ("openvino", "bf16")),
                          (AVX2, tuple(FAITHFUL["avx2"][0].split("-")), ("openvino", "fp32"),
                           tuple(FAITHFUL["avx2"][0].split("-")))])  # fmt: skip
def test_path_choices_on_faked_cpus(tiny_model, monkeypatch, features, auto, auto_fp32, openvino):
    monkeypatch.setattr(encoding, "cpu_features", lambda: features)
    monkeypatch.setattr(encoding, "installed", lambda: frozenset({"openvino", "nncf"}))
    monkeypatch.setattr(encoding, "_nncf", lambda: None)  # the choice needs no package
    monkeypatch.setattr(encoding, "_openvino", lambda: None)
    assert resolve_path(tiny_model) == auto
    assert resolve_path(tiny_model, "auto", "fp32") == auto_fp32  # a pinned precision: the fastest at it
    assert resolve_path(tiny_model, "openvino") == openvino
    assert resolve_path(tiny_model, "auto", "bf16") == (("openvino", "bf16") if features == BF16 else ("torch", "bf16"))
    assert resolve_path(tiny_model, "auto", "int8") == ("torch", "int8")  # unfaithful paths only by full name
    assert resolve_path(tiny_model, "openvino", "int8") == ("openvino", "int8")
    assert resolve_path(tiny_model, "torch") == ("torch", "fp32")
    gpu = type("OnGpu", (), {"device": "cuda:0"})()
    assert resolve_path(gpu) == ("torch", "fp32")
    with pytest.raises(ConfigError, match="runs on the CPU, the model is on cuda:0"):
        resolve_path(gpu, "openvino")


def test_path_choices_and_errors(tiny_model, monkeypatch):
    with pytest.raises(ConfigError, match="unknown backend 'onnx'"):
        resolve_path(tiny_model, "onnx")
    with pytest.raises(ConfigError, match="no precision 'int4'"):
        resolve_path(tiny_model, "openvino", "int4")
    with pytest.raises(ConfigError, match="backend 'torch' has no precision 'int8w'"):
        resolve_path(tiny_model, "torch", "int8w")
    assert resolve_path(tiny_model, "torch") == ("torch", "fp32")
    assert resolve_path(tiny_model) == tuple(choose_path(installed(), cpu_features()).split("-"))
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    monkeypatch.setattr(encoding, "installed", lambda: frozenset())
    with pytest.raises(ConfigError, match=r"needs the openvino package: pip install"):
        resolve_path(tiny_model, "openvino")
    assert resolve_path(tiny_model) == ("torch", "fp32")  # auto falls back without the package


# per path: (mean, min) cosine to torch-fp32 that the bench's measurement (docs/metrics.md) keeps a margin under
REAL_SLICE_COSINE = {"openvino-fp32": (0.99999, 0.9999), "openvino-bf16": (0.9999, 0.999),
                     "openvino-int8w": (0.9998, 0.999), "openvino-int8": (0.995, 0.97)}  # fmt: skip


@pytest.mark.slow
@needs_openvino
@needs_nncf
@pytest.mark.parametrize("path", list(REAL_SLICE_COSINE))
def test_each_openvino_path_is_as_faithful_on_e5_small_as_measured(e5_small, data_root, path):
    """A small real slice: XQuAD-R sentences and questions in three scripts and MIRACL-yo passages; the paths
    ``auto`` may choose also rank the sentences for each question as the reference does."""
    from hybridir.data.evaluation.lareqa import load_lareqa
    from hybridir.data.evaluation.miracl import load_miracl

    es = load_lareqa(data_root / "xquad-r", ["en", "th", "zh"], max_questions=20)
    mir = load_miracl("yo", data_dir=data_root, max_questions=5, sample=0)
    passages = es.cand_texts[::40] + mir.cand_texts[:20]
    backend, precision = path.split("-")
    encoders = [Encoder(e5_small, backend=b, precision=p, show_progress=False)
                for b, p in (("torch", "fp32"), (backend, precision))]  # fmt: skip
    (ref_p, ref_q), (p, q) = [(e.encode(passages, "passage"), e.encode(es.query_texts[:20], "query")) for e in encoders]
    cos = cosines(ref_p, p)
    mean, low = REAL_SLICE_COSINE[path]
    assert cos.mean() > mean and cos.min() > low
    if any(path in paths for paths in FAITHFUL.values()):
        top = np.argsort(-(ref_q @ ref_p.T), axis=1)[:, :5], np.argsort(-(q @ p.T), axis=1)[:, :5]
        assert (top[0][:, 0] == top[1][:, 0]).mean() >= 0.95 and np.mean([len(set(a) & set(b)) for a, b in
                                                                          zip(*top, strict=True)]) >= 4.5  # fmt: skip
