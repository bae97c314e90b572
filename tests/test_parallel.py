"""Training data loaders: ICT over line-aligned files (NTREX), JSONL/TSV, SQuAD, validation errors, dev split."""

from __future__ import annotations

import json

import pytest

from hybridir.data.languages import NTREX_CODES
from hybridir.data.training.items import TrainingData
from hybridir.data.training.parallel import (
    data_sources,
    load_aligned,
    load_flores_pairs,
    load_ntrex,
    load_pairs,
    load_squad,
)
from hybridir.data.training.sources import load_train_dev, load_training_data
from hybridir.infra.errors import ConfigError, DataError

LANGS = ("en", "de", "zh")


def write_aligned(root, docs=(("a", 5), ("b", 3), ("c", 6))):
    """Line-aligned files whose line k reads '<lang> s<k>.' in every language, plus DOCUMENT_IDS.tsv."""
    root.mkdir(parents=True, exist_ok=True)
    ids = [d for d, n in docs for _ in range(n)]
    for lang in LANGS:
        (root / f"{lang}.txt").write_text("".join(f"{lang} s{k}.\n" for k in range(len(ids))), encoding="utf-8")
    (root / "DOCUMENT_IDS.tsv").write_text("".join(f"{d}\n" for d in ids))
    return root, ids


def sentence_numbers(text: str) -> list[int]:
    return [int(tok[1:].rstrip(".")) for tok in text.replace(".", ". ").split() if tok.startswith("s")]


@pytest.mark.parametrize("remove_prob", [0.0, 1.0, 0.5])
def test_ict_windows_stay_in_document_and_match_across_languages(tmp_path, remove_prob):
    root, ids = write_aligned(tmp_path / "al")
    data = load_aligned({lang: root / f"{lang}.txt" for lang in LANGS}, root / "DOCUMENT_IDS.tsv",
                        window=3, remove_prob=remove_prob, seed=1)  # fmt: skip
    assert len(data.items) == len(ids) and data.parallel and data.languages == sorted(LANGS)
    removed = 0
    for it in data.items:
        assert set(it.pairs) == set(LANGS) and it.group == ids[it.position]
        nums = {lang: sentence_numbers(p.passage) for lang, p in it.pairs.items()}
        assert nums["en"] == nums["de"] == nums["zh"]  # same window in every language
        assert all(ids[k] == it.group for k in nums["en"])  # never crosses the document
        assert sentence_numbers(it.pairs["en"].query) == [it.position]
        removed += it.position not in nums["en"]
        assert nums["en"] and max(nums["en"]) - min(nums["en"]) <= 2
    if remove_prob == 0:
        assert removed == 0
    elif remove_prob == 1:
        assert removed == len(ids)
    else:
        assert 0 < removed < len(ids)


def test_aligned_validation_errors(tmp_path):
    root, _ = write_aligned(tmp_path / "al")
    files = {lang: root / f"{lang}.txt" for lang in LANGS}
    (root / "de.txt").write_text("de s0.\n")
    with pytest.raises(DataError, match="different line counts.*de.txt: 1"):
        load_aligned(files)
    root, _ = write_aligned(tmp_path / "al2")
    (root / "zh.txt").write_text((root / "zh.txt").read_text().replace("zh s3.", "  "))
    with pytest.raises(DataError, match=r"zh.txt, line 4: empty text"):
        load_aligned({lang: root / f"{lang}.txt" for lang in LANGS})
    (root / "zh.txt").write_text("")
    with pytest.raises(DataError, match="no data"):
        load_aligned({lang: root / f"{lang}.txt" for lang in LANGS})
    with pytest.raises(DataError, match="unknown language code 'English'"):
        load_aligned({"English": root / "en.txt"})


def test_folder_spec_and_missing_language(tmp_path):
    root, ids = write_aligned(tmp_path / "al")
    data = load_training_data(str(root), ["en", "de"])
    assert data.languages == ["de", "en"] and len(data.items) == len(ids)
    with pytest.raises(DataError, match="fr"):
        load_training_data(str(root), ["en", "fr"])
    with pytest.raises(ConfigError):
        load_training_data(str(tmp_path / "x.json"), ["en", "de"])


def test_dev_split_holds_out_whole_documents(tmp_path):
    root, _ = write_aligned(tmp_path / "al", docs=tuple((f"d{i}", 4) for i in range(10)))
    data = load_training_data(str(root), list(LANGS))
    train, dev = data.split(0.2, seed=0)
    tg, dg = {it.group for it in train.items}, {it.group for it in dev.items}
    assert len(dg) == 2 and not tg & dg and len(train.items) + len(dev.items) == len(data.items)
    assert data.split(0.2, seed=0)[1].items == dev.items
    assert data.split(0.0)[1] is None


def test_hard_negative_never_contains_the_query_nor_a_batch_item(tmp_path):
    root, _ = write_aligned(tmp_path / "al", docs=(("a", 12), ("b", 3)))
    data = load_aligned({lang: root / f"{lang}.txt" for lang in LANGS}, root / "DOCUMENT_IDS.tsv",
                        window=3, remove_prob=0.0)  # fmt: skip
    for i, it in enumerate(data.items):
        batch = {i, (i + 1) % len(data.items)}
        neg = data.hard_negative(i, "de", batch)
        assert it.position not in sentence_numbers(neg)
        assert all(neg != data.items[j].pairs["de"].passage for j in batch)


def test_jsonl_and_tsv_user_format(tmp_path):
    recs = [{"id": "1", "lang": "en", "query": "q1", "passage": "p1"},
            {"id": "1", "lang": "de", "query": "f1", "passage": "a1", "negative": "n1"},
            {"id": "2", "lang": "en", "query": "q2", "passage": "p2", "group": "g"}]  # fmt: skip
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    data = load_pairs(path)
    assert data.counts() == {"de": 1, "en": 2} and data.parallel
    assert set(data.pools()) == {"xx:en", "xx:de", "xy:en-de", "xy:de-en"} and data.pools()["xy:en-de"] == [0]
    assert data.example(0, "en", "de").negative == "n1" and data.items[1].group == "g"
    tsv = tmp_path / "d.tsv"
    tsv.write_text("id\tlang\tquery\tpassage\n1\ten\tq1\tp1\n1\tde\tf1\ta1\n")
    assert load_pairs(tsv).pools()["xy:de-en"] == [0]
    bad = [('{"id": "1", "lang": "en", "query": "", "passage": "p"}', r"line 1: field 'query'"),
           ('{"id": "1", "lang": "english", "query": "q", "passage": "p"}', "unknown language code"),
           ("not json", "line 1: not valid JSON")]  # fmt: skip
    for line, msg in bad:
        path.write_text(line + "\n")
        with pytest.raises(DataError, match=msg):
            load_pairs(path)
    path.write_text(json.dumps(recs[0]) + "\n" + json.dumps(recs[0]) + "\n")
    with pytest.raises(DataError, match="line 2: id '1' already has a record"):
        load_pairs(path)
    tsv.write_text("id\tquery\n")
    with pytest.raises(DataError, match="lacks column"):
        load_pairs(tsv)


def test_squad_questions_of_one_paragraph_share_a_dedup_key(tmp_path):
    squad = {"data": [{"title": "T", "paragraphs": [
        {"context": "ctx one", "qas": [{"id": "a", "question": "qa?"}, {"id": "b", "question": "qb?"},
                                       {"id": "c", "question": "qc?", "is_impossible": True}]},
        {"context": "ctx two", "qas": [{"id": "d", "question": "qd?"}]}]}]}  # fmt: skip
    path = tmp_path / "s.json"
    path.write_text(json.dumps(squad))
    data = load_squad(path, "ja")
    assert [it.id for it in data.items] == ["a", "b", "d"] and not data.parallel
    assert data.items[0].dedup_key == data.items[1].dedup_key != data.items[2].dedup_key
    assert list(data.pools()) == ["xx:ja"]


def test_training_data_requires_items():
    with pytest.raises(DataError, match="no training items"):
        TrainingData([], "empty")


def test_real_ntrex(data_root):
    data = load_ntrex(["en", "de", "th", "zh"], data_root)
    assert len(data.items) == 1997 and data.info["documents"] == 123
    assert data.counts() == {lang: 1997 for lang in ("de", "en", "th", "zh")}
    assert {len(p) for p in data.pools().values()} == {1997} and len(data.pools()) == 4 + 12
    it = data.items[100]
    assert it.pairs["en"].query != it.pairs["de"].query and it.pairs["zh"].passage
    assert load_ntrex(["eng-GB", "zho-TW"], data_root).languages == ["eng-GB", "zho-TW"]
    with pytest.raises(DataError, match="unknown language code 'xx'"):
        load_ntrex(["en", "xx"], data_root)
    assert all(v for v in NTREX_CODES.values())


@pytest.mark.parametrize("suffix, header", [(".jsonl", b""), (".tsv", b"id\tlang\tquery\tpassage\n"),
                                            (".txt", b"")])  # fmt: skip
def test_text_that_is_not_utf8_names_file_line_and_byte(tmp_path, suffix, header):
    good = b'{"id": "1", "lang": "en", "query": "q", "passage": "p"}\n' if suffix == ".jsonl" else b"1\ten\tq\tp\n"
    path = tmp_path / f"data{suffix}"
    path.write_bytes(header + good + b"caf\xe9 latin-1\n")
    line = 3 if header else 2
    with pytest.raises(DataError, match=rf"data{suffix}, line {line}: not UTF-8 text \(byte {len(header + good) + 3}"):
        load_pairs(path) if suffix != ".txt" else load_aligned({"en": path})


def test_flores_items_are_bitext_with_x_y_pools_only(data_root):
    data = load_flores_pairs(["en", "de", "yor_Latn"], "train", data_dir=data_root)
    assert len(data.items) == 701 and all(it.bitext for it in data.items) and data.languages == ["de", "en", "yor_Latn"]
    it = data.items[0]
    assert it.pairs["de"].query == it.pairs["de"].passage != it.pairs["en"].query
    ex = data.example(0, "de", "en")
    assert (ex.query, ex.passage) == (it.pairs["de"].query, it.pairs["en"].query)
    assert not any(k.startswith("xx:") for k in data.pools()) and len(data.pools()) == 6
    travel = load_flores_pairs(["en", "de"], "dev", topics=["travel", "sports"], data_dir=data_root)
    assert 0 < len(travel.items) < 99 and travel.info["topics"] == ["travel", "sports"]
    with pytest.raises(ConfigError, match="unknown FLORES topic"):
        load_flores_pairs(["en", "de"], topics=["cooking"], data_dir=data_root)
    some = load_flores_pairs(["en", "dv", "az", "to"], "dev", data_dir=data_root)  # NTREX has dv, to; FLORES not
    assert some.languages == ["az", "en"] and some.info["not_in_flores"] == ["dv", "to"]
    with pytest.raises(DataError, match="none of the languages dv, to"):
        load_flores_pairs(["dv", "to"], "dev", data_dir=data_root)


def test_ntrex_plus_flores_keeps_sources_apart(data_root):
    train, dev = load_train_dev("ntrex+flores", ["en", "de"], data_root, dev_fraction=0.1, seed=0)
    assert train.info["sources"] == {"ntrex": len(train.items) - 701, "flores-train": 701}
    assert {it.source for it in dev.items} == {"ntrex", "flores-dev"}
    assert sum(it.source == "flores-dev" for it in dev.items) == 99
    assert len({it.id for it in train.items + dev.items}) == len(train.items) + len(dev.items)
    pools = train.pools()
    assert len(pools["xx:en"]) == len(train.items) - 701 and len(pools["xy:en-de"]) == len(train.items)
    same, _ = load_train_dev(["ntrex"], ["en", "de"], data_root, dev_fraction=0.1, seed=0, dev_only="flores")
    assert len(same.items) == len(train.items) - 701
    assert data_sources("ntrex+flores") == ["ntrex", "flores"]
    with pytest.raises(ConfigError, match="each once"):
        data_sources("ntrex+ntrex")
    with pytest.raises(ConfigError, match="no FLORES source"):
        load_train_dev("ntrex", ["en", "de"], data_root, topics=["travel"])
