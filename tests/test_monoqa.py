"""Monolingual QA retrieval sets: SQuAD / SQuAD 2 / iapp JSONL parsing, unanswerable questions, errors, real counts."""

from __future__ import annotations

import json

import pytest

from hybridir.data.evaluation.monoqa import MONOQA_SETS, load_monoqa, load_qa_retrieval
from hybridir.infra.errors import DataError


def _squad(paragraphs: list[tuple[str, list[tuple[str, bool]]]]) -> dict:
    return {"data": [{"title": "t", "paragraphs": [
        {"context": ctx, "qas": [{"id": f"id-{q}", "question": q, "is_impossible": impossible,
                                  "answers": [] if impossible else [{"text": ctx[:3], "answer_start": 0}]}
                                 for i, (q, impossible) in enumerate(qs)]}
        for ctx, qs in paragraphs]}]}  # fmt: skip


def test_squad2_skips_unanswerable_and_merges_identical_paragraphs(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_squad([("alpha text", [("q1", False), ("q2", True)]), ("beta text", [("q3", False)]),
                                       ("alpha text", [("q4", False)])])))  # fmt: skip
    es = load_qa_retrieval(path, "fa")
    assert es.query_texts == ["q1", "q3", "q4"]
    assert es.cand_texts == ["alpha text", "beta text"]  # the unanswerable question's paragraph stays in the pool
    assert [es.cand_texts[r[0]] for r in es.qrels] == ["alpha text", "beta text", "alpha text"]
    assert set(es.query_langs) == {"fa"}


def test_iapp_jsonl_and_its_errors(tmp_path):
    rows = [{"question_id": "a_0", "question": "q?", "context": "ctx one", "answers": {"text": ["x"]}},
            {"question_id": "a_1", "question": "q2?", "context": "ctx two", "answers": {"text": []}}]  # fmt: skip
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    es = load_qa_retrieval(path, "th", "iapp")
    assert es.query_ids == ["a_0"] and len(es.cand_ids) == 2
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"test\.jsonl, line 2: not valid JSON"):
        load_qa_retrieval(path, "th", "iapp")
    path.write_text(json.dumps({"question": "q", "context": "c"}) + "\n")
    with pytest.raises(DataError, match=r"test\.jsonl, line 1: missing field 'question_id'"):
        load_qa_retrieval(path, "th", "iapp")


def test_bad_squad_files(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[1, 2")
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON"):
        load_qa_retrieval(path, "ja")
    path.write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}))
    with pytest.raises(DataError, match=r"bad\.json: data\[0\]\.paragraphs\[0\]: missing field"):
        load_qa_retrieval(path, "ja")
    with pytest.raises(DataError, match="unknown monolingual set"):
        load_monoqa("klingon", tmp_path)
    with pytest.raises(DataError, match="file not found"):
        load_monoqa("jsquad-ja", tmp_path)


def test_real_sets_match_their_readme_counts(data_root):
    # (paragraphs, answerable questions) from ../shared/data/README.md; PersianQA: 930 minus 279 unanswerable
    expected = {"jsquad-ja": (1145, 4442), "cmrc2018-zh": (848, 3219), "drcd-zh-tw": (1000, 3524),
                "iapp-th": (192, 739), "persianqa-fa": (93, 651)}  # fmt: skip
    assert set(expected) == set(MONOQA_SETS)
    for name, (n_par, n_q) in expected.items():
        es = load_monoqa(name, data_root)
        assert (len(es.cand_ids), len(es.query_ids)) == (n_par, n_q), name
        assert all(len(r) == 1 for r in es.qrels)
