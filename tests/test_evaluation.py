"""Evaluation harness: oracle and random embeddings, construction of the settings, the run directory, caching."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from test_lareqa import write_lareqa

from hybridir.data.evaluation.evalset import EvalSet
from hybridir.data.evaluation.lareqa import load_lareqa
from hybridir.encoders.encoding import Encoder
from hybridir.evaluation.evaluate import evaluate
from hybridir.evaluation.metrics import average_precision
from hybridir.evaluation.scoring.lareqa import evaluate_lareqa
from hybridir.evaluation.scoring.retrieval import evaluate_retrieval, search


class OracleEncoder:
    """Question -> one-hot of its question id; sentence -> one-hot of every question it answers (any language)."""

    def __init__(self, es: EvalSet) -> None:
        groups = {g: i for i, g in enumerate(sorted(set(es.query_groups)))}
        self.dim = len(groups)
        self.vec = {"query": {}, "passage": {}}
        for qi, (text, group) in enumerate(zip(es.query_texts, es.query_groups, strict=True)):
            self.vec["query"].setdefault(text, np.zeros(self.dim, np.float32))[groups[group]] = 1
            for c in es.qrels[qi]:
                self.vec["passage"].setdefault(es.cand_texts[c], np.zeros(self.dim, np.float32))[groups[group]] = 1

    def __call__(self, texts, prompt_name, langs=None):
        zero = np.zeros(self.dim, np.float32)
        return np.stack([self.vec[prompt_name].get(t, zero) for t in texts])


def random_encoder(texts, prompt_name, langs=None):
    """A fixed random unit vector per (prompt, text): a retriever that knows nothing."""
    out = []
    for t in texts:
        seed = int(hashlib.sha1(f"{prompt_name}|{t}".encode()).hexdigest()[:12], 16)
        v = np.random.default_rng(seed).standard_normal(32)
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


def test_oracle_gives_perfect_scores_and_no_bias(tmp_path):
    es = load_lareqa(write_lareqa(tmp_path / "x", langs=("de", "en", "es", "zh")))
    res, per_query = evaluate_lareqa(OracleEncoder(es), es, show_progress=False)
    s = res["summary"]
    for setting in ("mono", "cross", "multi"):
        assert s[f"{setting}_map"] == 1.0 and s[f"{setting}_recall@10"] == 1.0 and s[f"{setting}_ndcg@10"] == 1.0
    assert s["mono_recall@1"] == s["cross_recall@1"] == 1.0 and s["multi_recall@1"] == 0.25  # 4 relevant, 1 slot
    assert s["rank_distance"] == 0.0
    assert s["top10_unbiased_share"] == pytest.approx(0.25)
    assert np.all(per_query["multi/en"] == 1.0) and np.all(per_query["rank_distance/zh"] == 0)


def test_oracle_on_real_xquad_r_slice(data_root):
    es = load_lareqa(data_root / "xquad-r", ["de", "en", "zh"], max_questions=120)
    res, _ = evaluate_lareqa(OracleEncoder(es), es, show_progress=False)
    assert res["summary"]["multi_map"] == pytest.approx(1.0)
    assert res["summary"]["cross_map"] == pytest.approx(1.0)
    assert res["summary"]["rank_distance"] == 0.0


def test_random_embeddings_give_chance_level(data_root):
    es = load_lareqa(data_root / "xquad-r", ["de", "en", "zh"])
    res, _ = evaluate_lareqa(random_encoder, es, show_progress=False)
    for lang in ("de", "en", "zh"):
        n = res["data"]["candidates"][lang]
        chance = np.sum(1 / np.arange(1, n + 1)) / n  # E[1/rank] for one relevant item at a uniform rank
        assert res["mono"][lang]["map"] == pytest.approx(chance, abs=0.004)
        assert res["mono"][lang]["recall@100"] == pytest.approx(100 / n, abs=0.03)
    pool = res["data"]["multilingual_pool"]
    rng = np.random.default_rng(0)  # expected AP of 3 relevant items at uniform random ranks in the pool
    sim = np.array([np.sort(rng.choice(pool, 3, replace=False) + 1.0) for _ in range(20000)])
    expected = average_precision(sim, np.full(len(sim), 3)).mean()
    assert res["summary"]["multi_map"] == pytest.approx(expected, rel=0.25)
    # a language-blind random ranking: the query language's top-10 share equals its pool share
    assert res["summary"]["top10_query_lang_share"] == pytest.approx(res["summary"]["top10_unbiased_share"], abs=0.03)


def test_settings_are_symmetric_in_construction(data_root):
    es = load_lareqa(data_root / "xquad-r", ["ar", "en", "th"], max_questions=40)
    res, per_query = evaluate_lareqa(random_encoder, es, show_progress=False)
    langs = ["ar", "en", "th"]
    assert res["data"]["candidates"] == {"ar": 1222, "en": 1180, "th": 852}
    assert res["data"]["multilingual_pool"] == 1222 + 1180 + 852
    assert sorted((x, y) for x in res["cross"] for y in res["cross"][x]) == [
        (x, y) for x in langs for y in langs if x != y
    ]  # every ordered pair, both directions
    for x in langs:
        assert res["multi"][x]["queries"] == res["mono"][x]["queries"] == 40
        assert all(t["queries"] == 40 for t in res["cross"][x].values())
        assert list(per_query[f"qids/{x}"]) == list(per_query["qids/ar"])  # same question order in every language
        assert np.nanmean(per_query[f"mono/{x}"]) == pytest.approx(res["mono"][x]["map"])
        pair_means = np.mean([res["cross"][x][y]["map"] for y in res["cross"][x]])
        assert np.mean(per_query[f"cross/{x}"]) == pytest.approx(pair_means)


def test_evaluate_writes_run_directory_and_reuses_cache(tmp_path, tiny_model):
    data = write_lareqa(tmp_path / "data", langs=("de", "en", "zh"))
    out = tmp_path / "run"
    res = evaluate(tiny_model, "xquad-r", data_dir=data, out_dir=out, cache_dir=tmp_path / "cache",
                   show_progress=False)  # fmt: skip
    assert {p.name for p in out.iterdir()} == {"results.json", "results.md", "per_query.npz", "map_heatmap.png",
                                               "bias.png"}  # fmt: skip
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["summary"] == pytest.approx(res["summary"])
    for key in (
        "mono_map",
        "cross_map",
        "multi_map",
        "mono_map@20",
        "cross_ndcg@10",
        "multi_mrr@10",
        "rank_distance",
        "top10_query_lang_share",
        "top10_unbiased_share",
    ):
        assert key in res["summary"]
    assert set(res["versions"]) == {"python", "torch", "transformers", "sentence-transformers", "hybridir"}
    assert res["model"]["fingerprint"] and "git_commit" in res
    assert res["timing"]["texts_encoded"] == 27 + 27  # unique questions and sentences, once each
    with np.load(out / "per_query.npz") as z:
        assert {"mono/en", "multi/en", "cross/en", "qids/en"} <= set(z.files)
        assert z["mono/de"].shape == (9,) and z["qids/zh"].dtype.kind == "U"
    md = (out / "results.md").read_text()
    assert "| multilingual X->all |" in md and "X->Y mAP" in md
    again = evaluate(tiny_model, "xquad-r", data_dir=data, cache_dir=tmp_path / "cache", show_progress=False)
    assert again["timing"]["texts_encoded"] == 0 and again["timing"]["texts_from_cache"] == 54
    assert again["summary"] == pytest.approx(res["summary"])
    ctx = evaluate(tiny_model, "xquad-r", data_dir=data, with_context=True, show_progress=False, plots=False)
    assert ctx["config"]["with_context"] and ctx["summary"]["mono_map"] != res["summary"]["mono_map"]


def test_encoder_encodes_each_unique_text_once(tiny_model):
    enc = Encoder(tiny_model, show_progress=False)
    emb = enc(["a b", "c", "a b", "c", "a b"], "query")
    assert enc.encoded == 2 and emb.shape[0] == 5
    np.testing.assert_array_equal(emb[0], emb[2])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_blockwise_encoding_matches_one_call(tiny_model):
    enc = Encoder(tiny_model, show_progress=False)
    texts = [f"document number {i} about {i % 7} things" for i in range(60)]
    q = enc(["about 3 things", "number 12"], "query")
    s1, i1 = search(enc, q, texts, k=10)
    s2, i2 = search(enc, q, texts, k=10, encode_at_once=0, encode_block=16)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-6)
    assert (i1 == i2).mean() > 0.9  # identical up to the order of exactly tied scores


def test_retrieval_oracle_and_per_query_output(tiny_model):
    docs = [f"paragraph {i}" for i in range(30)]
    es = EvalSet(name="toy", query_ids=[f"q{i}" for i in range(30)], query_texts=[f"question {i}" for i in range(30)],
                 query_langs=["xx"] * 30, query_groups=[f"q{i}" for i in range(30)],
                 cand_ids=[f"d{i}" for i in range(30)], cand_texts=docs, cand_langs=["xx"] * 30,
                 qrels=[np.array([i]) for i in range(30)])  # fmt: skip

    class Oracle(Encoder):
        def __call__(self, texts, prompt_name, langs=None):
            return np.eye(30, dtype=np.float32)[[int(t.split()[-1]) for t in texts]]

    res, per_query = evaluate_retrieval(Oracle(tiny_model, show_progress=False), [es])
    assert res["summary"]["ndcg@10"] == 1.0 and res["summary"]["mrr@10"] == 1.0
    assert res["summary"]["toy/recall@100"] == 1.0
    assert per_query["monoqa/toy"].shape == (30,) and list(per_query["qids/toy"][:2]) == ["q0", "q1"]


@pytest.mark.slow
def test_e5_small_on_real_xquad_r_slice(tmp_path, data_root, e5_small):
    res = evaluate(e5_small, "xquad-r", data_dir=data_root, languages=["de", "en"], max_questions=60,
                   out_dir=tmp_path / "run", show_progress=False)  # fmt: skip
    s = res["summary"]
    assert s["mono_map"] > 0.5 and s["cross_map"] > 0.3 and s["multi_map"] > 0.3  # far above chance (~0.006)
    assert (tmp_path / "run" / "map_heatmap.png").stat().st_size > 1000


def test_dataset_names_and_data_dir_errors(tmp_path, monkeypatch):
    from hybridir.data import resolve_data_dir
    from hybridir.evaluation.benchmarks import Request, load
    from hybridir.infra.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="unknown dataset 'squad'"):
        load("squad")
    with pytest.raises(DataError, match="data directory not found"):
        resolve_data_dir(tmp_path / "missing")
    monkeypatch.setenv("HYBRIDIR_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    with pytest.raises(DataError, match="xquad-r: no folder xquad-r"):
        load("xquad-r")
    bench, sets = load("xquad-r", Request(write_lareqa(tmp_path / "direct"), languages=["en"]))
    assert bench.protocol == "lareqa" and sets[0].languages == ["en"]
