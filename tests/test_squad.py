"""The one SQuAD-format reader (hybridir.data.squad): what it yields, and the same one-line error naming the file and
the record from each of the four loaders that take the format (SQuAD training files, the CMRC trial set, LAReQA,
the monolingual QA sets)."""

from __future__ import annotations

import json

import pytest

from hybridir.data.evaluation.lareqa import load_lareqa
from hybridir.data.evaluation.monoqa import load_qa_retrieval
from hybridir.data.squad import read_squad
from hybridir.data.training.parallel import load_squad
from hybridir.data.training.qa import load_qa
from hybridir.infra.errors import DataError


def test_paragraphs_questions_and_where(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"data": [
        {"title": "T0", "paragraphs": [{"context": "c0", "qas": []}]},
        {"title": "T1", "paragraphs": [{"context": "c1", "qas": [
            {"id": 7, "question": "q?", "answers": [{"text": "c", "answer_start": 0}]},
            {"id": "u", "question": "u?", "is_impossible": True, "answers": []}]}]}]}))  # fmt: skip
    paras = list(read_squad(path))
    assert [(p.where, p.article, p.index, p.context) for p in paras] == [
        ("data[0].paragraphs[0]", 0, 0, "c0"), ("data[1].paragraphs[0]", 1, 0, "c1")]  # fmt: skip
    q, u = paras[1].questions
    assert (q.where, q.id, q.text, q.answers, q.is_impossible) == (
        "data[1].paragraphs[0].qas[0] (id 7)", "7", "q?", [{"text": "c", "answer_start": 0}], False)  # fmt: skip
    assert u.is_impossible and paras[1].article_record["title"] == "T1"


def _loaders(tmp_path, doc: dict):
    """A call of each of the four loaders, each reading ``doc`` as its SQuAD-format file."""
    text = json.dumps(doc)
    (tmp_path / "s.json").write_text(text)
    (tmp_path / "lareqa").mkdir()
    (tmp_path / "lareqa" / "en.json").write_text(text)
    cmrc = tmp_path / "root" / "qa" / "cmrc2018-trial-zh"
    cmrc.mkdir(parents=True)
    (cmrc / "cmrc2018_trial.json").write_text(text)
    return [
        lambda: load_squad(tmp_path / "s.json", "ja"),
        lambda: load_qa_retrieval(tmp_path / "s.json", "ja"),
        lambda: load_lareqa(tmp_path / "lareqa"),
        lambda: load_qa("cmrc-trial", ["zh"], data_dir=tmp_path / "root", dev_fraction=0),
    ]


@pytest.mark.parametrize(("doc", "message"), [
    ({"version": 1}, r"top level: missing field 'data'"),
    ({"data": {"a": 1}}, r"top level: field 'data' is not a list"),
    ({"data": [{"title": "t"}]}, r"data\[0\]: missing field 'paragraphs'"),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, r"data\[0\]\.paragraphs\[0\]: missing field 'context'"),
    ({"data": [{"paragraphs": [{"context": "c"}]}]}, r"data\[0\]\.paragraphs\[0\]: missing field 'qas'"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q"}]}]}]},
     r"data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing field 'id'"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": None}]}]}]},
     r"data\[0\]\.paragraphs\[0\]\.qas\[0\] \(id x\): field 'question' is not a string"),
])  # fmt: skip
def test_every_loader_gives_the_same_one_line_error(tmp_path, doc, message):
    for load in _loaders(tmp_path, doc):
        with pytest.raises(DataError, match=r"\.json: " + message) as e:
            load()
        assert "\n" not in str(e.value)
