"""Run directory: markdown tables agree with results.json, files are complete, plots are real PNGs."""

from __future__ import annotations

import json

import numpy as np
from test_evaluation import random_encoder
from test_lareqa import write_lareqa

from hybridir.data.evaluation.lareqa import load_lareqa
from hybridir.evaluation.report import render_markdown, write_run

META = {"model": {"name": "toy-model", "fingerprint": "abc123"}, "versions": {"python": "3.11", "torch": "x"},
        "git_commit": None, "timing": {"encode_seconds": 1.0, "scoring_seconds": 0.5, "total_seconds": 2.0,
                                       "texts_encoded": 10, "texts_from_cache": 0}}  # fmt: skip


def _lareqa_results(tmp_path):
    from hybridir.evaluation.scoring.lareqa import evaluate_lareqa

    es = load_lareqa(write_lareqa(tmp_path / "d", langs=("de", "en", "zh")))
    body, per_query = evaluate_lareqa(random_encoder, es, show_progress=False)
    body.pop("scoring_seconds")
    return {"dataset": "toy-lareqa", **META, **body}, per_query


def test_markdown_tables_match_results(tmp_path):
    res, _ = _lareqa_results(tmp_path)
    md = render_markdown(json.loads(json.dumps(res)))  # renders from results.json content alone
    assert md.startswith("# toy-model on toy-lareqa")
    row = next(line for line in md.splitlines() if line.startswith("| multilingual X->all |"))
    assert row.split("|")[2].strip() == f"{res['summary']['multi_map']:.3f}"
    zh_row = next(line for line in md.splitlines() if line.startswith("| zh | ") and "|" in line[5:])
    assert f"{res['mono']['zh']['map']:.3f}" in zh_row
    matrix_rows = [line for line in md.split("X->Y mAP")[1].splitlines() if line.startswith("| de |")]
    assert matrix_rows[0].split("|")[2].strip() == f"{res['mono']['de']['map']:.3f}"  # diagonal = monolingual
    assert f"{res['cross']['de']['en']['map']:.3f}" == matrix_rows[0].split("|")[3].strip()


def test_write_run_files(tmp_path):
    res, per_query = _lareqa_results(tmp_path)
    written = write_run(tmp_path / "run", res, per_query)
    assert {p.name for p in written} == {"results.json", "results.md", "per_query.npz", "map_heatmap.png", "bias.png"}
    for png in ("map_heatmap.png", "bias.png"):
        assert (tmp_path / "run" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(tmp_path / "run" / "per_query.npz") as z:
        assert set(z.files) == set(per_query)
        np.testing.assert_array_equal(z["multi/en"], per_query["multi/en"])
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temporary files left
    assert json.loads((tmp_path / "run" / "results.json").read_text())["summary"] == res["summary"]


def test_retrieval_markdown_and_no_plots(tmp_path):
    res = {"dataset": "monoqa", **META,
           "summary": {"ndcg@10": 0.5, "recall@100": 0.9, "mrr@10": 0.45},
           "sets": {"a-ja": {"language": "ja", "queries": 3, "corpus": 10, "ndcg@10": 0.6, "recall@100": 1.0,
                             "mrr@10": 0.5},
                    "b-th": {"language": "th", "queries": 2, "corpus": 7, "ndcg@10": 0.4, "recall@100": 0.8,
                             "mrr@10": 0.4}}}  # fmt: skip
    md = render_markdown(res)
    assert "| a-ja | ja | 3 | 10 | 0.600 | 1.000 | 0.500 |" in md
    assert "| **mean** |  |  |  | 0.500 | 0.900 | 0.450 |" in md
    written = write_run(tmp_path / "r", res, {"monoqa/a-ja": np.ones(3), "qids/a-ja": np.array(["x", "y", "z"])},
                        plots=False)  # fmt: skip
    assert {p.name for p in written} == {"results.json", "results.md", "per_query.npz"}


def test_every_protocol_renders_its_own_results():
    """report.py is generic: each benchmark's protocol is in PROTOCOLS, and its module has the rendering pair."""
    import importlib

    from hybridir.evaluation import scoring
    from hybridir.evaluation.benchmarks import BENCHMARKS

    assert {b.protocol for b in BENCHMARKS} == set(scoring.PROTOCOLS)
    for name in scoring.PROTOCOLS:
        module = importlib.import_module(f"hybridir.evaluation.scoring.{name}")
        assert callable(module.markdown) and callable(module.plots)
