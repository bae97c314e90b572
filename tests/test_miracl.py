"""MIRACL from the official files: layout, conventions, the judged+sample variant, bad input, and, on a slice of
the real Yoruba data, metrics checked against pytrec_eval and against the same files read through the BEIR path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from test_lareqa import write_lareqa

from hybridir.cli import main
from hybridir.data.evaluation.miracl import JUDGED_SAMPLE, load_miracl
from hybridir.encoders.encoding import Encoder
from hybridir.evaluation.benchmarks import Request, load, lookup
from hybridir.evaluation.evaluate import evaluate
from hybridir.evaluation.scoring.retrieval import bm25_retriever, dense_retriever, retrieval_runs
from hybridir.infra.errors import ConfigError, DataError, ModelError

TREC = tuple[str, str, int]  # qid, docid, grade


def write_official(root: Path, lang: str, topics: list[tuple[str, str]], qrels: list[TREC], docs: list[dict],
                   split: str = "dev") -> Path:  # fmt: skip
    """``root/miracl-v1.0-<lang>/{topics,qrels}`` and ``root/miracl-corpus-v1.0-<lang>/docs-0.jsonl.gz``."""
    base = root / f"miracl-v1.0-{lang}"
    (base / "topics").mkdir(parents=True, exist_ok=True)
    (base / "qrels").mkdir(exist_ok=True)
    write_lines(base / f"topics/topics.miracl-v1.0-{lang}-{split}.tsv", [f"{q}\t{t}" for q, t in topics])
    write_lines(base / f"qrels/qrels.miracl-v1.0-{lang}-{split}.tsv", [f"{q}\tQ0\t{d}\t{g}" for q, d, g in qrels])
    corpus = root / f"miracl-corpus-v1.0-{lang}"
    corpus.mkdir(exist_ok=True)
    (corpus / "docs-0.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(d) + "\n" for d in docs).encode()))
    return root


def toy(root: Path) -> Path:
    docs = [{"docid": f"d{i}", "title": f"T{i}", "text": f"passage {i}"} for i in range(20)]
    qrels = [("q1", "d1", 1), ("q1", "d2", 0), ("q2", "d3", 0), ("q4", "d5", 1)]
    return write_official(root, "xx", [("q1", "first"), ("q2", "second"), ("q3", "third")], qrels, docs)


def test_official_layout_and_miracl_conventions(tmp_path):
    es = load_miracl("xx", data_dir=toy(tmp_path / "data" / "miracl"))  # data_dir: the miracl folder itself
    assert es.name == "miracl-xx" and len(es.cand_ids) == 20 and es.cand_texts[1] == "T1 passage 1"
    # grade 0 is judged non-relevant; q2 (only grade 0) and q3 (not judged) have no relevant passage: skipped
    assert es.query_ids == ["q1"] and es.qrels_dict() == {"q1": {"d1": 1}}
    bench, (same,) = load("miracl:xx", Request(tmp_path / "data"))  # <data>/miracl/... as for ../shared/data
    assert bench.protocol == "retrieval" and same.cand_ids == es.cand_ids


def test_judged_sample_variant_is_named_and_seeded(tmp_path):
    root = toy(tmp_path)
    small = load_miracl("xx", data_dir=root, sample=5)
    assert small.name == "miracl-xx-judged+5"  # never reported as MIRACL
    assert {"d1", "d2"} <= set(small.cand_ids) and len(small.cand_ids) == 7  # all judged of q1 + 5 others
    assert load_miracl("xx", data_dir=root, sample=5).cand_ids == small.cand_ids  # fixed seed
    assert load_miracl("xx", data_dir=root, sample=5, seed=1).cand_ids != small.cand_ids
    _, (es,) = load("miracl-judged:xx:3000", Request(root))
    assert es.name == "miracl-xx-judged+3k" and len(es.cand_ids) == 20
    with pytest.raises(ConfigError, match="miracl-judged:<lang>"):
        load("miracl-judged:xx:many", Request(root))


def test_one_grammar_for_miracl_names():
    """evaluate and study configs read names through the benchmark registry: full collection vs judged + N."""
    assert lookup("miracl:yo")[1] == ("yo", None)
    assert lookup("miracl-judged:yo")[1] == ("yo", JUDGED_SAMPLE)
    assert [b.name for b, _ in (lookup("miracl-judged:zh:2000"), lookup("xquad-r"))] == ["miracl-judged", "xquad-r"]
    assert lookup("miracl-judged:zh:2000")[1] == ("zh", 2000)
    with pytest.raises(ConfigError, match="unknown dataset 'miracle:yo'"):
        lookup("miracle:yo")
    for bad in ("miracl:", "miracl:yo:2000", "miracl-judged:yo:0", "miracl-judged:yo:2k"):
        with pytest.raises(ConfigError, match="expected miracl:<lang> or miracl-judged"):
            lookup(bad)


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    root = toy(tmp_path)
    qrels = root / "miracl-v1.0-xx/qrels/qrels.miracl-v1.0-xx-dev.tsv"
    qrels.write_text("q1\tQ0\td1\t1\nq1\tQ0\td2\t0\textra\n")
    with pytest.raises(DataError, match=r"qrels\.miracl-v1\.0-xx-dev\.tsv:2: expected 3 \(BEIR\) or 4 \(TREC\)"):
        load_miracl("xx", data_dir=root)
    qrels.write_text("q1\tQ0\td1\t1\nq1\tQ0\tnope\t0\n")  # a judged docid, even non-relevant, must exist
    with pytest.raises(DataError, match=r"dev\.tsv:2: judged docid 'nope' is not in the collection"):
        load_miracl("xx", data_dir=root)
    qrels.write_text("q1\tQ0\td1\t1\n")
    docs = root / "miracl-corpus-v1.0-xx/docs-0.jsonl.gz"
    docs.write_bytes(gzip.compress(b'{"docid": "d1", "text": "ok"}\n{"docid": "d2", "text": \n'))
    with pytest.raises(DataError, match=r"docs-0\.jsonl\.gz:2: malformed JSON"):
        load_miracl("xx", data_dir=root)
    docs.write_bytes(gzip.compress(b'{"docid": "d1", "body": "no text field"}\n'))
    with pytest.raises(DataError, match=r"docs-0\.jsonl\.gz:1: missing field 'text'"):
        load_miracl("xx", data_dir=root)
    docs.unlink()
    with pytest.raises(DataError, match=r"miracl-corpus-v1\.0-xx: no docs-\*\.jsonl\.gz"):
        load_miracl("xx", data_dir=root)
    docs.write_bytes(gzip.compress(b'{"docid": "d1", "text": "ok"}\n'))
    (root / "miracl-v1.0-xx/topics/topics.miracl-v1.0-xx-dev.tsv").write_text("q1 no tab here\n")
    with pytest.raises(DataError, match=r"topics\.miracl-v1\.0-xx-dev\.tsv:1: expected 'query id<TAB>query text'"):
        load_miracl("xx", data_dir=root)
    # the command line prints such errors as one line, exit code 2
    assert main(["evaluate", "--model", "bm25", "--dataset", "miracl:xx", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hybridir: error: ") and "topics.miracl-v1.0-xx-dev.tsv:1" in err[0]


def test_empty_or_non_model_directory_is_a_model_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("not a model")
    from hybridir.encoders.models import load_encoder

    with pytest.raises(ModelError, match=r"empty: an empty directory: no modules\.json .* or config\.json"):
        load_encoder(tmp_path / "empty")
    with pytest.raises(ModelError, match="notes: not a model directory"):
        load_encoder(tmp_path / "notes")
    root = toy(tmp_path / "miracl")
    assert main(["evaluate", "--model", str(tmp_path / "empty"), "--dataset", "miracl:xx", "--data-dir", str(root),
                 "--out", str(tmp_path / "run")]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_hub_fallback_fails_clearly_offline(tmp_path, monkeypatch):
    """One line whatever the environment: huggingface_hub reads HF_HUB_OFFLINE once, at import, so the test sets
    its module constant (no network attempt, as with the variable set before Python starts) and, separately, feeds
    in a wrapped multi-line hub error such as the one an unreachable hub gives without the variable."""
    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"miracl:sw: could not download MIRACL .* needs internet") as err:
        load_miracl("sw", data_dir=tmp_path)  # no local miracl-v1.0-sw: the hub, which is unreachable
    assert "\n" not in str(err.value)

    def unreachable(*args, **kwargs):
        raise OSError(
            "Got: ConnectError: [Errno -2] Name or service not known\nAn error happened while trying to "
            "locate the files on the Hub.\n  Please check your internet connection."
        )

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(DataError, match=r"miracl:sw: could not download MIRACL .* needs internet") as err:
        load_miracl("sw", data_dir=tmp_path)
    assert "\n" not in str(err.value) and "not known An error happened" in str(err.value)
    with pytest.raises(DataError, match="unknown MIRACL language"):
        load_miracl("xx", data_dir=tmp_path)


def test_bm25_and_fusion_need_a_retrieval_set(tmp_path):
    with pytest.raises(ConfigError, match="need a retrieval dataset"):
        evaluate("bm25", "xquad-r", data_dir=write_lareqa(tmp_path / "lareqa"))
    with pytest.raises(ConfigError, match="--fusion bm25: use one of"):
        evaluate("bm25", "miracl:xx", data_dir=toy(tmp_path), fusion="bm25")


# ------------------------------------------------------------------------------------ a slice of the real data
@pytest.fixture(scope="module")
def real_slice(tmp_path_factory, data_root) -> Path:
    """10 real Yoruba dev queries, every passage judged for them and 1000 other real passages, written in the
    official layout (file names, TREC qrels, gzipped JSONL) from ../shared/data/miracl."""
    base = data_root / "miracl"
    if not (base / "miracl-v1.0-yo").is_dir():
        pytest.skip(f"real MIRACL data not found: {base}/miracl-v1.0-yo is absent")
    topics = lines(base / "miracl-v1.0-yo/topics/topics.miracl-v1.0-yo-dev.tsv")
    qrels = [line.split() for line in lines(base / "miracl-v1.0-yo/qrels/qrels.miracl-v1.0-yo-dev.tsv")]
    keep_q = {line.split("\t")[0] for line in topics[:10]}
    judged = {d for q, _, d, _ in qrels if q in keep_q}
    with gzip.open(base / "miracl-corpus-v1.0-yo/docs-0.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    others = [r for r in rows if r["docid"] not in judged]
    pick = np.random.default_rng(0).choice(len(others), 1000, replace=False)
    docs = [r for r in rows if r["docid"] in judged] + [others[i] for i in sorted(pick)]
    return write_official(tmp_path_factory.mktemp("miracl-slice"), "yo",
                          [tuple(line.split("\t", 1)) for line in topics[:10]],
                          [(q, d, int(g)) for q, _, d, g in qrels if q in keep_q], docs)  # fmt: skip


def _independent(qrels_file: Path, run: dict[str, dict[str, float]]) -> dict[str, float]:
    """nDCG@10 and Recall@100 from pytrec_eval with the raw TREC qrels (grade 0 included), MRR@10 by hand."""
    qrels: dict[str, dict[str, int]] = {}
    for q, _, d, g in (line.split() for line in lines(qrels_file)):
        qrels.setdefault(q, {})[d] = int(g)
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"}).evaluate(run)
    rr = []
    for q, ranked in run.items():
        order = sorted(ranked, key=lambda d: (ranked[d], d), reverse=True)[:10]  # trec_eval's order
        rr.append(next((1 / (i + 1) for i, d in enumerate(order) if qrels[q].get(d, 0) > 0), 0.0))
    return {"ndcg@10": np.mean([v["ndcg_cut_10"] for v in ev.values()]),
            "recall@100": np.mean([v["recall_100"] for v in ev.values()]), "mrr@10": float(np.mean(rr))}  # fmt: skip


def write_beir(folder: Path, official: Path) -> Path:
    """The same files in BEIR layout: corpus.jsonl, queries.jsonl, qrels/dev.tsv (header, 3 columns)."""
    (folder / "qrels").mkdir(parents=True)
    with gzip.open(official / "miracl-corpus-v1.0-yo/docs-0.jsonl.gz", "rt", encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f]
    topics = [t.split("\t", 1) for t in lines(official / "miracl-v1.0-yo/topics/topics.miracl-v1.0-yo-dev.tsv")]
    qrels = [t.split() for t in lines(official / "miracl-v1.0-yo/qrels/qrels.miracl-v1.0-yo-dev.tsv")]
    write_lines(folder / "corpus.jsonl", [json.dumps({"_id": r["docid"], "title": r["title"], "text": r["text"]})
                                          for r in corpus])  # fmt: skip
    write_lines(folder / "queries.jsonl", [json.dumps({"_id": q, "text": t}) for q, t in topics])
    write_lines(folder / "qrels/dev.tsv", ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, _, d, g in qrels])
    return folder


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")


def test_real_slice_matches_pytrec_eval_and_the_beir_path(real_slice, tmp_path, tiny_model):
    opts = {
        "data_dir": real_slice,
        "fusion": "bm25",
        "backend": "torch",
        "precision": "fp32",
        "plots": False,
        "show_progress": False,
        "cache_dir": tmp_path / "emb",  # the cache: each text encoded once
        "centering": "none",
    }  # fmt: skip (the independent runs below score plain vectors)
    res = evaluate(tiny_model, "miracl:yo", out_dir=tmp_path / "run", **opts)
    es = load_miracl("yo", data_dir=real_slice)
    assert res["sets"]["miracl-yo"]["queries"] == 10 and len(es.cand_ids) == res["sets"]["miracl-yo"]["corpus"]
    enc = Encoder(tiny_model, show_progress=False, backend="torch", precision="fp32", cache_dir=tmp_path / "emb")
    runs = retrieval_runs(es, {"dense": dense_retriever(enc), "bm25": bm25_retriever}, fusion="bm25")
    qrels_file = real_slice / "miracl-v1.0-yo/qrels/qrels.miracl-v1.0-yo-dev.tsv"
    for name, run in runs.items():
        for metric, value in _independent(qrels_file, run).items():
            assert res["summary"][f"{name}/{metric}"] == pytest.approx(value, abs=1e-9), (name, metric)
    assert res["summary"]["ndcg@10"] == res["summary"]["fused/ndcg@10"]  # the fused run is the headline
    assert res["summary"]["bm25/ndcg@10"] > 0.3  # real text: BM25 finds the judged passages among 1000 others

    beir = evaluate(tiny_model, f"beir:{write_beir(tmp_path / 'beir', real_slice)}", **opts)
    same = ("queries", "corpus", "ndcg@10", "recall@100", "mrr@10", "runs")
    assert {k: beir["sets"]["beir"][k] for k in same} == {k: res["sets"]["miracl-yo"][k] for k in same}
