"""hybridir search: the table, TREC run files that ranx scores exactly as ``hybridir evaluate`` does, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_index import PASSAGES, write_jsonl

from hybridir.cli import main
from hybridir.infra.errors import ConfigError, DataError
from hybridir.retrieval.index import build_index
from hybridir.retrieval.search import Searcher, read_queries

QUERIES = [("q1", "capital of Germany"), ("q2", "Hauptstadt von Frankreich"), ("q3", "river from the Alps"),
           ("q4", "西班牙的首都")]  # fmt: skip
QRELS = [("q1", "en-berlin", 1), ("q1", "de-berlin", 1), ("q1", "zh-berlin", 0), ("q2", "fr-paris", 1),
         ("q3", "en-rhine", 1), ("q3", "de-rhein", 1), ("q4", "es-madrid", 1)]  # fmt: skip


@pytest.fixture(scope="module")
def beir(tmp_path_factory) -> Path:
    """A BEIR folder: corpus.jsonl (with a duplicate passage text: tied scores), queries.jsonl, qrels/test.tsv."""
    folder = tmp_path_factory.mktemp("beir")
    rows = [{"_id": p["id"], "title": p.get("title", ""), "text": p["text"]} for p in PASSAGES]
    write_jsonl(folder / "corpus.jsonl", [*rows, {**rows[0], "_id": "en-berlin-copy"}])
    write_jsonl(folder / "queries.jsonl", [{"_id": q, "text": t} for q, t in QUERIES])
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                               "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS))  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def index(tiny_model_dir, beir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "tiny"
    build_index(tiny_model_dir, beir, out, show_progress=False)
    return out


def test_hits_are_ranked_best_first_with_language_title_and_text(index):
    hits = Searcher(index).search(["capital of Germany", "Rhein"], k=3)
    assert [len(h) for h in hits] == [3, 3]
    first = hits[0]
    assert [h.rank for h in first] == [1, 2, 3]
    assert all(a.score >= b.score for a, b in zip(first, first[1:], strict=False))
    assert {h.lang for hs in hits for h in hs} <= {"en", "de", "zh", "fr", "es"}
    berlin = {h.id: h for h in Searcher(index).search(["Berlin is the capital"], k=9)[0]}
    assert berlin["en-berlin"].score == berlin["en-berlin-copy"].score  # a tie: higher id first, as trec_eval
    assert berlin["en-berlin-copy"].rank < berlin["en-berlin"].rank


def test_run_file_scored_by_ranx_equals_evaluate(tiny_model_dir, beir, index, tmp_path):
    """Plain scoring on both sides: centred, an index takes its passage means from its own corpus and evaluate from
    NTREX-128 (it reads no evaluation text), so their centred scores differ by design (docs/search.md)."""
    from ranx import Qrels, Run, evaluate

    from hybridir.evaluation.evaluate import evaluate as hybridir_evaluate

    run = Searcher(index, centering="none").write_run(beir / "queries.jsonl", tmp_path / "run.trec")
    lines = run.read_text().splitlines()
    assert len(lines) == 4 * 9 and lines[0].split()[:4] == ["q1", "Q0", lines[0].split()[2], "1"]
    assert all(len(line.split()) == 6 and line.endswith(" tiny") for line in lines)
    qrels = Qrels({q: {d: g for qq, d, g in QRELS if qq == q} for q, _ in QUERIES})
    ranx_ndcg = evaluate(qrels, Run.from_file(str(run), kind="trec"), "ndcg@10")
    ours = hybridir_evaluate(str(tiny_model_dir), f"beir:{beir}", plots=False, show_progress=False, centering="none")
    assert round(ranx_ndcg, 4) == round(ours["summary"]["ndcg@10"], 4)


def test_cli_prints_a_table_and_writes_a_run(index, beir, tmp_path, capsys):
    assert main(["search", str(index), "Hauptstadt von Deutschland", "--k", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["rank", "score", "lang", "title", "snippet"] and len(table) == 3
    assert main(["search", str(index), "--queries", str(beir / "queries.jsonl"), "--run", str(tmp_path / "r.trec"),
                 "--k", "5", "--tag", "my run"]) == 0  # fmt: skip
    assert len((tmp_path / "r.trec").read_text().splitlines()) == 20
    assert (tmp_path / "r.trec").read_text().splitlines()[0].endswith(" my_run")
    assert main(["search", str(index)]) == 2
    assert "give either one QUERY" in capsys.readouterr().err


def test_an_index_searched_with_another_model_is_one_line_error(index, tmp_path, capsys):
    from conftest import build_tiny_encoder

    other = build_tiny_encoder(tmp_path / "other", seed=1)
    with pytest.raises(ConfigError, match=r"tiny/manifest.json: index built with model .* not with .*other"):
        Searcher(index, str(other))
    assert main(["search", str(index), "x", "--model", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's loading bars
    assert err.startswith("hybridir: error: ") and "manifest.json: index built with model" in err


def test_query_files_tsv_and_jsonl_and_their_errors(tmp_path):
    tsv = tmp_path / "topics.tsv"
    tsv.write_text("1\tTa ni Obasanjo?\n2\tKí ni Ìbàdàn?\n", encoding="utf-8")
    assert read_queries(tsv) == [("1", "Ta ni Obasanjo?"), ("2", "Kí ni Ìbàdàn?")]
    tsv.write_text("1\tone\n1\tagain\n", encoding="utf-8")
    with pytest.raises(DataError, match="query id '1' appears twice"):
        read_queries(tsv)
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(json.dumps({"_id": "a", "text": "x"}) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(DataError, match="q.jsonl:2: not valid JSON"):
        read_queries(jsonl)
    with pytest.raises(DataError, match="not found"):
        read_queries(tmp_path / "missing.tsv")
