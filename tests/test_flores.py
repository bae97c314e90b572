"""FLORES-200 bitext retrieval (scoring.bitext, benchmarks.flores) on real FLORES rows: oracle and random encoders,
pytrec_eval agreement, seen/unseen groups from a training record, topic domains, resource levels, bad codes, the
run directory."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from hybridir.cli import main
from hybridir.data.flores import TOPICS, flores_codes, resource_levels
from hybridir.evaluation.benchmarks.flores import load_flores_task, training_record
from hybridir.evaluation.metrics import rank_relevant, trec_eval_per_query
from hybridir.evaluation.scoring.bitext import PIVOT, evaluate_flores
from hybridir.infra.errors import ConfigError, DataError
from hybridir.study.runner import cell_metrics


class RowEncoder:
    """A sentence -> one-hot of its FLORES row (the same vector in every language): a perfect aligner.
    ``perfect_rows``: rows encoded perfectly; every other sentence gets a fixed random vector per (prompt, text)."""

    def __init__(self, task, perfect_rows=None) -> None:
        self.row = {t: i for texts in task.split.texts.values() for i, t in enumerate(texts)}
        self.n = len(task.split.index_ids)
        self.perfect = set(range(self.n) if perfect_rows is None else perfect_rows)

    def __call__(self, texts, prompt_name, langs=None):
        return np.stack([self._vec(t, prompt_name) for t in texts])

    def _vec(self, text: str, prompt: str) -> np.ndarray:
        v = np.zeros(self.n + 32, np.float32)
        if self.row[text] in self.perfect:
            v[self.row[text]] = 1
        else:
            seed = int(hashlib.sha1(f"{prompt}|{text}".encode()).hexdigest()[:12], 16)
            v[self.n :] = np.random.default_rng(seed).standard_normal(32)
            v /= np.linalg.norm(v)
        return v


@pytest.fixture(scope="module")
def task(data_root):
    return load_flores_task(None, ["de", "yo", "zh"], data_root)


def test_identity_encoder_is_perfect_in_both_directions_and_the_pool(task, data_root):
    body, per_query = evaluate_flores(RowEncoder(task), task, show_progress=False)
    s = body["summary"]
    assert s["x_en_acc@1"] == s["en_x_acc@1"] == s["mrr@10"] == 1.0
    assert s["multi_map"] == 1.0 and s["cross_map"] == 1.0 and s["rank_distance"] == 0.0  # own sentence left out
    assert sorted(body["bitext"]) == ["deu_Latn", "yor_Latn", "zho_Hans"] and PIVOT not in body["bitext"]
    assert body["pool"]["languages"] == ["deu_Latn", "eng_Latn", "yor_Latn", "zho_Hans"]
    assert per_query["bitext/x_en:yor_Latn"].shape == (204,) == per_query["qids/x_en:yor_Latn"].shape
    short = load_flores_task(None, ["yo"], data_root, max_queries=50)
    body, per_query = evaluate_flores(RowEncoder(short), short, show_progress=False)
    assert per_query["bitext/en_x:yor_Latn"].shape == (50,) and body["summary"]["acc@1"] == 1.0
    assert body["data"]["queries_per_language"] == 50 and body["data"]["sentences"] == 204  # pools stay whole


def test_random_encoder_scores_at_chance(task):
    body, _ = evaluate_flores(RowEncoder(task, perfect_rows=[]), task, show_progress=False)
    s = body["summary"]
    n = 204
    assert s["acc@1"] == pytest.approx(1 / n, abs=0.006)  # 1224 queries
    assert s["mrr@10"] == pytest.approx(np.sum(1 / np.arange(1, 11)) / n, abs=0.008)
    # a language-blind random ranking: the query language's top-10 share equals its share of the pool
    assert s["top10_query_lang_share"] == pytest.approx(s["top10_unbiased_share"], abs=0.03)


def test_metrics_match_pytrec_eval(task):
    enc = RowEncoder(task, perfect_rows=range(0, 204, 3))  # a third right, the rest random: ranks of all sizes
    _, per_query = evaluate_flores(enc, task, show_progress=False)
    ids = task.split.index_ids
    for x in ("yor_Latn", "zho_Hans"):
        q, c = enc(task.split.texts[x], "query"), enc(task.split.texts[PIVOT], "passage")
        scores = q @ c.T
        run = {f"q{a}": {b: float(scores[i, j]) for j, b in enumerate(ids)} for i, a in enumerate(ids)}
        run10 = {qid: dict(sorted(r.items(), key=lambda kv: (-kv[1], kv[0]))[:10]) for qid, r in run.items()}
        qrels = {f"q{a}": {a: 1} for a in ids}
        ev = trec_eval_per_query(qrels, run, {"success"})
        ev10 = trec_eval_per_query(qrels, run10, {"recip_rank"})
        np.testing.assert_allclose(per_query[f"bitext/x_en:{x}"], [ev10[f"q{a}"]["recip_rank"] for a in ids], atol=1e-6)
        acc = np.array([ev[f"q{a}"]["success_1"] for a in ids])
        assert 0.3 < acc.mean() < 0.5 and np.array_equal(per_query[f"bitext/x_en:{x}"] == 1.0, acc == 1.0)


def test_excluded_candidate_leaves_the_pool():
    g = torch.Generator().manual_seed(0)
    q, c = torch.randn(6, 8, generator=g), torch.randn(10, 8, generator=g)
    rel = [np.array([(i + 1) % 10]) for i in range(6)]
    full = rank_relevant(q, c, rel).ranks()[:, 0]
    cut = rank_relevant(q, c, rel, exclude=np.arange(6)).ranks()[:, 0]
    above = (q @ c.T)[np.arange(6), np.arange(6)] > (q @ c.T)[np.arange(6), [(i + 1) % 10 for i in range(6)]]
    np.testing.assert_array_equal(full - cut, above.numpy().astype(float))


def test_seen_groups_and_topics_follow_the_training_record(tmp_path, data_root):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    config = {"languages": ["de", "en", "fil"], "train_topics": ["travel", "health"], "data": "ntrex+flores"}
    (run / "train_summary.json").write_text(json.dumps({"config": config}))
    assert training_record(run / "final")[1] == run / "train_summary.json"
    task = load_flores_task(str(run / "final"), ["de", "yo"], data_root)
    assert task.seen == {"deu_Latn", "eng_Latn"} and "fil not in FLORES-200" in task.seen_from
    assert task.in_domain == ["travel", "health"] and "train_summary.json" in task.topics_from
    body, _ = evaluate_flores(RowEncoder(task, perfect_rows=[]), task, show_progress=False)
    assert body["bitext"]["deu_Latn"]["seen"] and not body["bitext"]["yor_Latn"]["seen"]
    assert body["groups"]["seen"]["members"] == ["deu_Latn"] and body["groups"]["low"]["members"] == ["yor_Latn"]
    assert body["summary"]["seen_acc@1"] == body["bitext"]["deu_Latn"]["score"]
    # explicit options win over the record; a model without one has every language unseen and no domain split
    task = load_flores_task(str(run / "final"), ["de", "yo"], data_root, seen_languages=["yor_Latn"],
                            in_domain_topics=["sports"])  # fmt: skip
    assert task.seen == {"yor_Latn"} and task.in_domain == ["sports"]
    zero = load_flores_task("e5-small", ["de"], data_root)
    assert zero.seen == set() and "unseen by hybridir training" in zero.seen_from and zero.in_domain is None


def test_in_and_out_of_domain_follow_the_topics(data_root):
    task = load_flores_task(None, ["de", "yo"], data_root, in_domain_topics=["travel", "sports"])
    inside = [i for i, t in enumerate(task.split.topics) if t in ("travel", "sports")]
    body, _ = evaluate_flores(RowEncoder(task, perfect_rows=inside), task, show_progress=False)
    s, topics = body["summary"], body["topics"]
    assert s["mrr@10_in_domain"] == 1.0 and s["mrr@10_out_domain"] < 0.2
    assert s["domain_gap"] == pytest.approx(1.0 - s["mrr@10_out_domain"])
    assert {t for t, v in topics.items() if v["in_domain"]} == {"travel", "sports"} and set(topics) == set(TOPICS)
    assert sum(v["sentences"] for v in topics.values()) == 204 and topics["travel"]["mrr@10"] == 1.0
    with pytest.raises(ConfigError, match="unknown FLORES topic"):
        load_flores_task(None, ["de"], data_root, in_domain_topics=["cooking"])


def test_resource_levels_cover_every_flores_code(data_root):
    levels = resource_levels()
    assert set(flores_codes(data_root)) <= set(levels)
    counts = {lv: sum(v == lv for v in levels.values()) for lv in ("high", "low", "n/a")}
    assert counts == {"high": 54, "low": 150, "n/a": 1}  # NLLB-200: 150 low-resource languages
    assert levels["yor_Latn"] == "low" and levels["deu_Latn"] == "high" and levels["nqo_Nkoo"] == "n/a"


def test_unknown_flores_code_is_one_clear_line(data_root, capsys):
    with pytest.raises(DataError, match="unknown language code 'xx_Zzzz'"):
        load_flores_task(None, ["de", "xx_Zzzz"], data_root)
    assert main(["evaluate", "--dataset", "flores", "--languages", "de,klingon", "--data-dir", str(data_root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown language code 'klingon'" in err[0]
    with pytest.raises(ConfigError, match="at least one other language"):
        load_flores_task(None, ["en"], data_root)


def test_cli_writes_table_plot_and_flat_summary(tmp_path, data_root, tiny_model_dir):
    out = tmp_path / "cell" / "eval" / "flores"
    rc = main(["evaluate", "--model", str(tiny_model_dir), "--dataset", "flores", "--languages", "de,yo",
               "--in-domain-topics", "travel", "--data-dir", str(data_root), "--out", str(out),
               "--backend", "torch", "--max-questions", "40"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["in_domain_topics"] == ["travel"] and set(res["bitext"]) == {"deu_Latn", "yor_Latn"}
    md = (out / "results.md").read_text()
    assert "| yor_Latn | no | low |" in md and "In-domain topics (--in-domain-topics): travel" in md
    assert (out / "flores_languages.png").stat().st_size > 10_000
    flat = cell_metrics(tmp_path / "cell", ["flores"])  # what a study's table picks up
    assert {"flores/acc@1", "flores/domain_gap", "flores/unseen_mrr@10", "flores/low_acc@1"} <= set(flat)


def test_study_yaml_takes_flores_with_in_domain_topics(tmp_path):
    from hybridir.study import load_study_config

    text = """
name: topics
grid: {models: [e5-small], samplers: [zero-shot, xy], languages: [de, en], seeds: [0], steps: [2]}
train: {data: ntrex+flores, train_topics: [travel], batch_size: 4}
eval: {datasets: {flores: {languages: [de, yo], in_domain_topics: [travel]}}}
"""
    path = tmp_path / "study.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_study_config(path).datasets == {"flores": {"languages": ["de", "yo"], "in_domain_topics": ["travel"]}}
    path.write_text(text.replace("in_domain_topics: [travel]", "in_domain_topics: [cooking]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="eval.flores.in_domain_topics: unknown FLORES topic"):
        load_study_config(path)


def test_a_model_trained_on_flores_topics_reports_its_groups(tmp_path, data_root, tiny_model_dir):
    from hybridir.evaluation.evaluate import evaluate
    from hybridir.training.loop import TrainConfig, train

    final = train(TrainConfig(model=str(tiny_model_dir), data="flores", data_dir=str(data_root), sampler="xy",
                              languages=["de", "en"], train_topics=["travel"], steps=2, batch_size=4,
                              dev_fraction=0.0, out=str(tmp_path / "run"), show_progress=False))  # fmt: skip
    res = evaluate(str(final), "flores", data_dir=data_root, languages=["de", "yo"], max_questions=30,
                   plots=False, show_progress=False, backend="torch")  # fmt: skip
    assert res["data"]["in_domain_topics"] == ["travel"] and "train_summary.json" in res["data"]["topics_from"]
    assert res["data"]["seen_languages"] == ["deu_Latn", "eng_Latn"]
    assert res["bitext"]["deu_Latn"]["seen"] and not res["bitext"]["yor_Latn"]["seen"]
    assert {"mrr@10_in_domain", "mrr@10_out_domain", "domain_gap", "seen_acc@1"} <= set(res["summary"])
