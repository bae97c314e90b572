"""LAReQA loader (XQuAD-R / MLQA-R): candidates, judgements, partial parallelism, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridir.data.evaluation.lareqa import load_lareqa
from hybridir.infra.errors import DataError


def lareqa_doc(lang: str, n_par: int = 3, n_sent: int = 3, skip: set[int] | None = None) -> dict:
    """A LAReQA-format document: paragraph p has n_sent sentences; question p*n_sent+s is answered in sentence s.

    ``skip``: question numbers absent from this language (MLQA-R style partial parallelism).
    """
    paragraphs = []
    for p in range(n_par):
        sents = [f"{lang} fact {p}-{s}: topic{p}x{s} is described here." for s in range(n_sent)]
        context = " ".join(sents)
        starts = [sum(len(x) + 1 for x in sents[:s]) for s in range(n_sent)]
        qas = [{"id": f"q{p * n_sent + s:03d}", "question": f"{lang} what about topic{p}x{s}?",
                "answers": [{"text": "topic", "answer_start": starts[s] + len(f"{lang} fact {p}-{s}: ")}]}
               for s in range(n_sent) if p * n_sent + s not in (skip or set())]  # fmt: skip
        breaks = [[b, b + len(x)] for b, x in zip(starts, sents, strict=True)]
        paragraphs.append({"context": context, "sentences": sents, "qas": qas, "sentence_breaks": breaks})
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


def write_lareqa(folder: Path, langs=("de", "en", "zh"), **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        (folder / f"{lang}.json").write_text(json.dumps(lareqa_doc(lang, **kw)), encoding="utf-8")
    return folder


def test_loads_candidates_and_judgements(tmp_path):
    es = load_lareqa(write_lareqa(tmp_path / "x"))
    assert len(es.cand_ids) == 3 * 9 and len(es.query_ids) == 3 * 9
    assert es.languages == ["de", "en", "zh"]
    for qi, group in enumerate(es.query_groups):
        rel = es.qrels[qi]
        assert len(rel) == 3  # one answer sentence per language
        assert sorted(es.cand_langs[c] for c in rel) == ["de", "en", "zh"]
        n = int(group[1:])
        for c in rel:  # the answer is sentence n % 3 of paragraph n // 3 in each language
            assert es.cand_texts[c].endswith(f"topic{n // 3}x{n % 3} is described here.")
    q = es.query_ids.index("en/q004")
    assert [es.cand_langs[c] for c in es.relevant(q, ["zh"])] == ["zh"]
    assert len(es.pool(["de"])) == 9 and len(es.pool()) == 27


def test_language_subset_and_max_questions(tmp_path):
    es = load_lareqa(write_lareqa(tmp_path / "x"), ["zh", "en"], max_questions=4)
    assert sorted(set(es.query_groups)) == ["q000", "q001", "q002", "q003"]
    assert len(es.query_ids) == 8 and len(es.cand_ids) == 18  # pools stay complete
    assert set(es.cand_langs) == {"en", "zh"}


def test_partial_parallelism_like_mlqa(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for lang, skip in (("ar", {0, 1}), ("de", {2}), ("en", set())):
        (folder / f"{lang}.json").write_text(json.dumps(lareqa_doc(lang, skip=skip)))
    es = load_lareqa(folder)
    q0 = [i for i, g in enumerate(es.query_groups) if g == "q000"]
    assert sorted(es.query_langs[i] for i in q0) == ["de", "en"]
    assert all(len(es.qrels[i]) == 2 for i in q0)
    assert len(es.pool(["ar"])) == 9  # the pool keeps every sentence even where questions are missing


def test_answer_start_on_whitespace_goes_to_next_sentence(tmp_path):
    doc = lareqa_doc("en")
    para = doc["data"][0]["paragraphs"][0]
    para["qas"][1]["answers"][0]["answer_start"] = para["sentence_breaks"][0][1]  # the space after sentence 0
    (tmp_path / "en.json").write_text(json.dumps(doc))
    es = load_lareqa(tmp_path)
    assert es.cand_texts[es.qrels[es.query_ids.index("en/q001")][0]] == para["sentences"][1]


def _broken(tmp_path: Path, edit) -> Path:
    folder = write_lareqa(tmp_path / "bad", langs=("de", "en"))
    doc = json.loads((folder / "en.json").read_text())
    edit(doc)
    (folder / "en.json").write_text(json.dumps(doc) if isinstance(doc, dict) else doc)
    return folder


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["data"][0]["paragraphs"][1]["qas"][0].pop("answers"), r"en\.json: data\[0\]\.paragraphs\[1\]\.qas\[0\] \(id q003\): missing field 'answers'"),  # noqa: E501
    (lambda d: d["data"][0]["paragraphs"][0].pop("sentence_breaks"), r"en\.json: data\[0\]\.paragraphs\[0\]: missing field 'sentence_breaks'"),  # noqa: E501
    (lambda d: d["data"][0]["paragraphs"][2]["qas"][1]["answers"][0].update(answer_start=10**6), r"en\.json: .*qas\[1\] \(id q007\): answer_start 1000000 lies outside every sentence"),  # noqa: E501
    (lambda d: d["data"][0]["paragraphs"][0]["qas"].append({**d["data"][0]["paragraphs"][0]["qas"][0], "id": "only-here"}), r"en\.json: question id only-here is present in this language only"),  # noqa: E501
])  # fmt: skip
def test_bad_input_names_file_and_record(tmp_path, edit, message):
    with pytest.raises(DataError, match=message):
        load_lareqa(_broken(tmp_path, edit))


def test_malformed_json_empty_pool_and_unknown_language(tmp_path):
    folder = write_lareqa(tmp_path / "a", langs=("de", "en"))
    (folder / "de.json").write_text('{"data": [')
    with pytest.raises(DataError, match=r"de\.json: malformed JSON"):
        load_lareqa(folder)
    folder = write_lareqa(tmp_path / "b", langs=("de",))
    (folder / "en.json").write_text(json.dumps({"data": []}))
    with pytest.raises(DataError, match=r"en\.json: empty candidate pool"):
        load_lareqa(folder, ["en"])
    with pytest.raises(DataError, match=r"unknown language code\(s\) xx.*available: de, en"):
        load_lareqa(folder, ["de", "xx"])
    with pytest.raises(DataError, match="no <lang>.json"):
        load_lareqa(tmp_path / "nothing-here")


def test_real_xquad_r_matches_published_counts(data_root):
    """Candidate counts per language as published in the LAReQA README; 1190 questions, 11-way parallel."""
    published = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219, "th": 852,
                 "tr": 1167, "vi": 1209, "zh": 1196}  # fmt: skip
    es = load_lareqa(data_root / "xquad-r")
    assert {lang: len(es.pool([lang])) for lang in published} == published
    assert all(len(es.queries_of(lang)) == 1190 for lang in published)
    assert {len(r) for r in es.qrels} == {11}
    # the answer text lies inside the relevant sentence for (nearly) every English question
    doc = json.loads((data_root / "xquad-r" / "en.json").read_text())
    answers = {qa["id"]: qa["answers"][0]["text"] for a in doc["data"] for p in a["paragraphs"] for qa in p["qas"]}
    en = es.queries_of("en")
    inside = np.mean([answers[es.query_groups[i]] in es.cand_texts[es.relevant(i, ["en"])[0]] for i in en])
    assert inside > 0.98
