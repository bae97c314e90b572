"""BEIR layout: reading corpus, queries and qrels (BEIR and TREC), errors, end to end (MIRACL: test_miracl.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hybridir.data.evaluation.beir import load_beir, read_qrels
from hybridir.evaluation.evaluate import evaluate
from hybridir.infra.errors import DataError


def write_beir(folder: Path, n_docs: int = 12, gz: bool = False) -> Path:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    docs = [{"_id": f"doc{i}", "title": f"Title {i}" if i % 2 else "", "text": f"body of {i}"} for i in range(n_docs)]
    corpus = "".join(json.dumps(d) + "\n" for d in docs)
    if gz:
        (folder / "corpus.jsonl.gz").write_bytes(gzip.compress(corpus.encode()))
    else:
        (folder / "corpus.jsonl").write_text(corpus)
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"about {i}"}) + "\n"
                                                  for i in range(5)))  # fmt: skip
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\tdoc0\t1\nq0\tdoc3\t2\nq1\tdoc1\t1\n"
                                               "q2\tdoc2\t0\nq3\tdoc5\t1\n")  # fmt: skip
    return folder


def test_reads_beir_layout(tmp_path):
    es = load_beir(write_beir(tmp_path / "toy"))
    assert es.query_ids == ["q0", "q1", "q3"]  # q2 has only a non-relevant judgement, q4 none: skipped as in BEIR
    assert es.cand_texts[0] == "body of 0" and es.cand_texts[1] == "Title 1 body of 1"
    assert es.qrels_dict() == {"q0": {"doc0": 1, "doc3": 2}, "q1": {"doc1": 1}, "q3": {"doc5": 1}}
    assert len(load_beir(write_beir(tmp_path / "gz", gz=True)).cand_ids) == 12


def test_trec_qrels_and_errors(tmp_path):
    path = tmp_path / "qrels.tsv"
    path.write_text("1 Q0 d1 1\n1 Q0 d2 0\n2 Q0 d9 3\n")
    assert read_qrels(path) == {"1": {"d1": 1}, "2": {"d9": 3}}
    path.write_text("1 d1\n")
    with pytest.raises(DataError, match=r"qrels\.tsv:1: expected 3 \(BEIR\) or 4 \(TREC\) columns"):
        read_qrels(path)
    folder = write_beir(tmp_path / "bad")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\tnope\t1\n")
    with pytest.raises(DataError, match=r"query 'q0' name documents missing from the corpus: \['nope'\]"):
        load_beir(folder)
    (folder / "queries.jsonl").write_text('{"_id": "q0"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\tdoc0\t1\n")
    with pytest.raises(DataError, match=r"queries\.jsonl:1: missing field 'text'"):
        load_beir(folder)
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(DataError, match=r"missing corpus\.jsonl"):
        load_beir(folder)


def test_evaluate_beir_end_to_end(tmp_path, tiny_model):
    res = evaluate(
        tiny_model,
        f"beir:{write_beir(tmp_path / 'toy')}",
        out_dir=tmp_path / "run",
        show_progress=False,
        languages=["en"],
    )  # no 'lang' field: --languages labels every row (the default centering uses it)
    assert res["config"]["languages_from"] == "--languages en"
    assert set(res["summary"]) == {"toy/ndcg@10", "toy/recall@100", "toy/mrr@10", "ndcg@10", "recall@100", "mrr@10"}
    assert res["summary"]["toy/recall@100"] == 1.0  # 12 documents: every relevant one is in the top 100
    assert res["sets"]["toy"]["queries"] == 3 and res["sets"]["toy"]["corpus"] == 12
    assert (tmp_path / "run" / "ndcg.png").exists() and (tmp_path / "run" / "per_query.npz").exists()
