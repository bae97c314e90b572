"""QA training / dev data (hybridir.data.training.qa): answer sentences, parallel AfriQA items, official dev splits,
skipped records, one-line errors, mixes with NTREX, source weights, and the QA dev figures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hybridir.data.training.items import Pair, ParallelItem, TrainingData
from hybridir.data.training.qa import answer_target, load_qa, sentence_spans
from hybridir.data.training.sources import load_train_dev
from hybridir.infra.errors import ConfigError, DataError

EN = "The Lozi kingdom has a king. The U.S. Army came in 1900 to the valley. Its capital is Lealui on the plain."


def _write_gz(path: Path, rows: list[dict | str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def _iapp_row(qid: str, article: str, question: str, context: str, start: int) -> dict:
    answers = str({"text": [context[start : start + 4]], "answer_start": [start]})  # iapp stores a dict's repr
    return {"question_id": qid, "article_id": article, "question": question, "context": context, "answers": answers}


def qa_root(tmp_path: Path) -> Path:
    """A data root with the three QA sets in their release layouts, a few records each."""
    root = tmp_path / "data"
    th = "ประเทศไทยมีพระมหากษัตริย์เป็นประมุขแห่งรัฐมาตั้งแต่สมัยโบราณกาล" * 2 + " " + "กรุงเทพมหานครเป็นเมืองหลวงของประเทศ" * 4
    _write_gz(root / "qa/iapp-th/train.jsonl.gz", [
        _iapp_row("a1", "art1", "ใครเป็นประมุข", th, 5),
        _iapp_row("a2", "art1", "เมืองหลวงคืออะไร", th, th.index("กรุงเทพ")),
        _iapp_row("a3", "art2", "", th, 5),  # empty question in the release: skipped
        _iapp_row("a4", "art3", "คำถาม", "บริบทสั้น", -1),  # answer not in the passage: skipped
    ])  # fmt: skip
    _write_gz(root / "qa/iapp-th/valid.jsonl.gz", [_iapp_row("v1", "art9", "ใครเป็นประมุข", th, 5)])
    (root / "qa/cmrc2018-trial-zh").mkdir(parents=True)
    zh = "北京是中国的首都。上海是最大的城市。广州在南方。"
    arts = [{"id": f"T{a}", "title": f"t{a}", "paragraphs": [{"context": zh, "qas": [
        {"id": f"T{a}_Q0", "question": "首都是哪里？", "answers": [{"text": "北京", "answer_start": 0}]}]}]}
        for a in range(10)]  # fmt: skip
    (root / "qa/cmrc2018-trial-zh/cmrc2018_trial.json").write_text(json.dumps({"data": arts}, ensure_ascii=False))
    for split in ("train", "dev"):
        path = root / f"qa/afriqa/gold_passages/hau/gold_span_passages.afriqa.hau.en.{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {
                "id": "0",
                "question_lang": "Wane ne sarkin Lozi?",
                "question_translated": "Who is the Lozi king?",
                "context": EN,
                "answer_pivot": {"answer_start": [EN.index("Lealui")], "text": ["Lealui"]},
                "title": "Lozi",
            },
            {
                "id": "1",
                "question_lang": "Yaushe?",
                "question_translated": "When did the army come?",
                "context": EN,
                "answer_pivot": {"answer_start": [EN.index("1900")], "text": ["1900"]},
                "title": "Lozi",
            },
        ]
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\nNaN_line_placeholder\n".replace(
            "NaN_line_placeholder", '{"id": "2", "question_lang": NaN, "question_translated": "x", "context": null, '
            '"answer_pivot": {"answer_start": [], "text": ["y"]}, "title": null}'))  # fmt: skip
    return root


def test_sentence_spans_keep_abbreviations_and_split_cjk_and_thai():
    spans = [EN[s:e] for s, e in sentence_spans(EN, "en")]
    assert spans == ["The Lozi kingdom has a king.", "The U.S. Army came in 1900 to the valley.",
                     "Its capital is Lealui on the plain."]  # fmt: skip
    zh = "北京是中国首都。上海很大！广州在南方。"
    assert [zh[s:e] for s, e in sentence_spans(zh, "zh")] == ["北京是中国首都。", "上海很大！广州在南方。"]
    thai = "ก" * 50 + " " + "ข" * 80 + " " + "ค" * 130 + " " + "ง" * 10
    assert [e - s for s, e in sentence_spans(thai, "th")] == [131, 141]  # clauses gather up to >= 120 characters


def test_answer_target_shapes():
    start = EN.index("Lealui")
    assert answer_target(EN, start, "en", "sentence") == ("Its capital is Lealui on the plain.",
                                                         "The U.S. Army came in 1900 to the valley.")  # fmt: skip
    sent, neg = answer_target(EN, 0, "en", "sentence-context")
    assert sent == f"The Lozi kingdom has a king. {EN}" and neg.startswith("The U.S. Army") and neg.endswith(EN)
    assert answer_target(EN, 3, "en", "passage") == (EN, None)
    assert answer_target(EN, -1, "en", "sentence") is None and answer_target(EN, len(EN) + 5, "en", "sentence") is None


def test_iapp_items_share_a_dedup_key_per_passage_and_skip_what_the_release_lacks(tmp_path):
    train, dev = load_qa("iapp-th", ["th"], data_dir=qa_root(tmp_path))
    assert [it.id for it in train.items] == ["iapp-th:a1", "iapp-th:a2"] and train.info["skipped"] == 2
    assert train.items[0].dedup_key == train.items[1].dedup_key  # one passage: never in one batch
    assert train.items[0].pairs["th"].passage != train.items[1].pairs["th"].passage  # different answer sentences
    assert "กรุงเทพ" in train.items[1].pairs["th"].passage and train.items[1].pairs["th"].negative
    assert dev.source == "iapp-th (dev)" and [it.id for it in dev.items] == ["iapp-th:v1"]
    assert list(train.pools()) == ["xx:th"]


def test_afriqa_items_are_parallel_question_only_in_the_african_language(tmp_path):
    root = qa_root(tmp_path)
    train, dev = load_qa("afriqa", ["en", "ha"], data_dir=root)
    assert len(train.items) == 2 and train.info["skipped"] == 1  # the NaN / null-context record
    it = train.items[0]
    assert it.pairs["ha"] == Pair("Wane ne sarkin Lozi?", "", None)
    assert it.pairs["en"].query == "Who is the Lozi king?" and it.pairs["en"].passage.startswith("Its capital")
    assert set(train.pools()) == {"xx:en", "xy:ha-en"}  # no Hausa passage: no xx:ha, no xy:en-ha
    assert train.example(0, "ha", "en") == Pair("Wane ne sarkin Lozi?", it.pairs["en"].passage,
                                                it.pairs["en"].negative)  # fmt: skip
    assert dev.source == "afriqa (dev)" and len(dev.items) == 2
    only_en, _ = load_qa("afriqa", ["en"], data_dir=root)
    assert set(only_en.pools()) == {"xx:en"}


def test_cmrc_holds_out_whole_articles(tmp_path):
    train, dev = load_qa("cmrc-trial", ["zh"], data_dir=qa_root(tmp_path), seed=0, dev_fraction=0.2)
    assert len(train.items) == 8 and len(dev.items) == 2
    assert not {it.group for it in train.items} & {it.group for it in dev.items}
    assert train.items[0].pairs["zh"].passage == "北京是中国的首都。"
    assert train.items[0].pairs["zh"].negative == "上海是最大的城市。广州在南方。"  # the short tail joins its neighbour


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", r"train\.jsonl\.gz, line 2: not valid JSON"),
    ('["a list"]', r"line 2: expected a JSON object"),
    ('{"question_id": "x", "article_id": "a", "question": 5, "context": "c", "answers": "{}"}',
     r"line 2: field 'question' is missing or not a string"),
    ('{"question_id": "x", "article_id": "a", "question": "q", "context": "c", "answers": "{oops"}',
     r"line 2: field 'answers' is not a readable answer record"),
    ('{"question_id": "x", "article_id": "a", "question": "q", "context": "c", "answers": {"text": ["c"]}}',
     r"line 2: field 'answers' has no answer_start"),
])  # fmt: skip
def test_malformed_lines_are_one_line_errors_naming_file_and_line(tmp_path, line, message):
    root = qa_root(tmp_path)
    _write_gz(root / "qa/iapp-th/train.jsonl.gz", [_iapp_row("a1", "art1", "q", "context text", 0), line])
    with pytest.raises(DataError, match=message) as e:
        load_qa("iapp-th", ["th"], data_dir=root)
    assert "\n" not in str(e.value)


def test_bad_target_source_or_languages(tmp_path):
    root = qa_root(tmp_path)
    with pytest.raises(ConfigError, match="unknown QA target 'answer'"):
        load_qa("iapp-th", ["th"], target="answer", data_dir=root)
    with pytest.raises(ConfigError, match="unknown QA source 'squad'"):
        load_qa("squad", ["en"], data_dir=root)
    with pytest.raises(DataError, match="iapp-th: none of the languages de"):
        load_qa("iapp-th", ["de"], data_dir=root)


def test_a_mix_takes_from_each_source_the_languages_it_has(data_root):
    train, dev = load_train_dev("ntrex+afriqa", ["en", "de", "ha", "tw"], data_root, dev_fraction=0.1)
    assert train.info["sources"]["afriqa"] > 0 and set(train.languages) == {"en", "de", "ha", "tw"}
    assert {it.source for it in train.items if "tw" in it.pairs} == {"afriqa"}  # NTREX has no Twi
    assert {it.source for it in dev.items} == {"ntrex", "afriqa (dev)"}  # NTREX keeps its name in its held-out part
    with pytest.raises(DataError, match="no source has the requested language"):
        load_train_dev("ntrex+afriqa", ["en", "xx"], data_root)


def test_a_mix_leaves_out_a_source_without_the_languages_and_says_so(data_root, capsys):
    train, _ = load_train_dev("ntrex+iapp-th", ["en", "de"], data_root, dev_fraction=0.1)
    assert train.source == "ntrex"
    assert "training source 'iapp-th' has none of the languages en, de: left out" in capsys.readouterr().err
    with pytest.raises(DataError, match="iapp-th\\+cmrc-trial: no source has any of the languages de"):
        load_train_dev("iapp-th+cmrc-trial", ["de"], data_root)


def test_real_qa_sets(data_root):
    """The release files as shipped: counts after skipping what has no gold passage or answer."""
    iapp, iapp_dev = load_qa("iapp-th", ["th"], data_dir=data_root)
    afr, afr_dev = load_qa("afriqa", ["en", "ha", "ig", "rw", "yo", "zu", "tw", "bem"], data_dir=data_root)
    cmrc, cmrc_dev = load_qa("cmrc-trial", ["zh"], data_dir=data_root)
    assert len(iapp.items) + iapp.info["skipped"] == 5761 and len(iapp_dev.items) + iapp_dev.info["skipped"] == 742
    assert len(cmrc.items) + len(cmrc_dev.items) + cmrc.info["skipped"] == 1002
    assert "yo" not in afr_dev.languages and {"yo", "tw"} <= set(afr.languages)  # Yoruba has no dev split
    assert 1500 < len(afr.items) < 2100 and all(it.pairs["en"].passage for it in afr.items)


def test_source_weights_give_per_source_pools_and_weights():
    items = [ParallelItem(f"n{i}", {"en": Pair("q", f"p{i}"), "de": Pair("q", f"d{i}")}, "g", source="ntrex")
             for i in range(4)] + [ParallelItem("a0", {"ha": Pair("q", ""), "en": Pair("q", "s")}, "g2",
                                                source="afriqa")]  # fmt: skip
    data = TrainingData(items, "mix")
    keys, pools, _, weights = data.sampler_inputs(("xx", "xy"), {"afriqa:xy": 50, "ntrex": 0.5})
    got = dict(zip(keys, weights, strict=True))
    assert got == {"xx:de@ntrex": 0.5, "xx:en@afriqa": 1.0, "xx:en@ntrex": 0.5, "xy:de-en@ntrex": 0.5,
                   "xy:en-de@ntrex": 0.5, "xy:ha-en@afriqa": 50}  # fmt: skip
    assert data.sampler_inputs()[3] is None and "xx:en" in data.sampler_inputs()[0]  # default: shared pools
    with pytest.raises(ConfigError, match="source_weights name flores"):
        data.sampler_inputs(("xx",), {"flores": 2})


def test_sampler_weights_shift_the_key_choice():
    from torch.utils.data import ConcatDataset

    from hybridir.training.sampling import HybridBatchSampler

    parts = [list(range(100)), list(range(100))]
    draws = {}
    for w in (1.0, 9.0):
        s = HybridBatchSampler(ConcatDataset(parts), keys=["xx:en@a", "xx:en@b"], alpha=1.0, batch_size=2,
                               num_batches=400, weights=[1.0, w], seed=0)  # fmt: skip
        draws[w] = np.mean([s.locate(b[0])[0].endswith("@b") for b in s])
    assert 0.4 < draws[1.0] < 0.6 and 0.85 < draws[9.0] < 0.95
    with pytest.raises(ConfigError, match="weights must be >= 0"):
        HybridBatchSampler(ConcatDataset(parts), keys=["xx:en", "xx:de"], alpha=1.0, batch_size=2, weights=[1, -1])


def test_qa_dev_figures_by_hand():
    """AfriQA-like items (Hausa question only, English twin -> English sentence) and a Thai item; two questions
    share one passage, which is one candidate. Vectors put every query on its passage except ha1 (rank 2)."""
    from hybridir.training.dev_metrics import dev_metrics
    from tests.test_training import _FixedEncoder

    vec = {"h0": [1, 0, 0], "h1": [0.8, 0.6, 0], "e0": [1, 0, 0], "e1": [0, 1, 0], "s0": [1, 0, 0], "s1": [0, 1, 0],
           "t0": [0, 0, 1], "ts": [0, 0.1, 1]}  # fmt: skip
    afr = [ParallelItem(f"afriqa:{i}", {"ha": Pair(f"h{i}", ""), "en": Pair(f"e{i}", f"s{i}")}, "g", span=(0, 0),
                        source="afriqa (dev)") for i in range(2)]  # fmt: skip
    afr.append(ParallelItem("afriqa:2", {"ha": Pair("h0", ""), "en": Pair("e0", "s0")}, "g", span=(0, 0),
                            source="afriqa (dev)"))  # fmt: skip
    th = [ParallelItem("iapp-th:0", {"th": Pair("t0", "ts")}, "a", span=(0, 0), source="iapp-th (dev)")]
    m = dev_metrics(_FixedEncoder(vec), TrainingData(afr + th, "qa"))
    per = m["per_source"]["afriqa (dev)"]
    assert per["per_pair"] == {"en>en": 1.0, "ha>en": pytest.approx((1 + 0.5 + 1) / 3)}
    assert m["qa_mono_map"] == 1.0 and m["qa_cross_map"] == pytest.approx(5 / 6)
    # pooled: h1 (0.8, 0.6, 0) ranks s0 (0.8) above s1 (0.6) above ts: AP 1/2; every other query is first
    assert m["qa_pooled_map"] == pytest.approx(np.mean([np.mean([1, 1, 1]), np.mean([1, 0.5, 1]), 1.0]))
    assert "parallel_multi_map" not in m


def test_train_config_new_fields_validate():
    from hybridir.training.config import TrainConfig

    assert TrainConfig(source_weights="iapp-th=3, afriqa:xy=100").weights_by_source == {
        "iapp-th": 3.0,
        "afriqa:xy": 100.0,
    }
    for bad in ("afriqa", "afriqa=x", "=2", "afriqa=-1"):
        with pytest.raises(ConfigError, match="source_weights"):
            TrainConfig(source_weights=bad)
    with pytest.raises(ConfigError, match="qa_target"):
        TrainConfig(qa_target="answer")


def test_the_default_is_the_recipe_chosen_on_qa_dev_and_auto_weights_follow_the_sources():
    from hybridir.training.config import TrainConfig
    from hybridir.training.recipes import RECIPES

    default = TrainConfig()
    assert default.data == "ntrex+afriqa+iapp-th+cmrc-trial" and default.temperature == 0.01
    assert default.weights_by_source == RECIPES["qa"].weights and {"ha", "yo", "th", "zh"} <= set(default.languages)
    assert TrainConfig(data="ntrex+iapp-th").weights_by_source == {"iapp-th": 3.0}
    assert TrainConfig(data="ntrex").weights_by_source == {}  # one source: shared pools, as before the recipe
    assert TrainConfig(source_weights="").weights_by_source == {}
    # once loaded: auto keeps the weights of the sources that made it into the mix; explicit weights stay as given
    assert default.weights_for({"ntrex", "iapp-th"}) == {"iapp-th": 3.0}
    explicit = TrainConfig(source_weights="iapp-th=3,afriqa:xy=100")
    assert explicit.weights_for({"ntrex"}) == {"iapp-th": 3.0, "afriqa:xy": 100.0}
    with pytest.raises(ConfigError, match="freeze_layers"):
        TrainConfig(freeze_layers=-1)


def test_kd_pivot_and_frozen_lower_layers(tiny_model_dir):
    from hybridir.encoders.models import load_encoder
    from hybridir.training.loop import _freeze_lower_layers
    from hybridir.training.teacher import pivot

    assert pivot(ParallelItem("a", {"ha": Pair("q", ""), "en": Pair("q", "p")}, "g")) == "en"
    assert pivot(ParallelItem("t", {"th": Pair("q", "p")}, "g")) == "th"
    assert pivot(ParallelItem("x", {"de": Pair("q", "p"), "fr": Pair("q", "p")}, "g")) is None
    model = load_encoder(str(tiny_model_dir), device="cpu")
    n = _freeze_lower_layers(model, 1)
    hf = model[0].auto_model
    assert n == sum(p.numel() for m in (hf.embeddings, hf.encoder.layer[0]) for p in m.parameters())
    assert all(p.requires_grad for p in hf.encoder.layer[1].parameters())
    with pytest.raises(ConfigError, match="freeze_layers=3: the model has 2 encoder layers"):
        _freeze_lower_layers(load_encoder(str(tiny_model_dir), device="cpu"), 3)
