"""Language-neutral scoring (hybridir.encoders.centering): the modes' arithmetic, means from non-evaluation text,
means stored with a model, bad input as one line, and the dev-data rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hybridir.cli import main
from hybridir.encoders.centering import (
    MEANS_FILE,
    Centering,
    CenteringSpec,
    LanguageMeans,
)
from hybridir.encoders.means import compute_means
from hybridir.encoders.means_text import means_texts
from hybridir.evaluation.evaluate import evaluate
from hybridir.infra.errors import ConfigError, ModelError
from hybridir.paper.centering_choice import CANDIDATES, decide


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "text, mode, weight",
    [("none", "none", 1.0), ("shift", "shift", 1.0), ("center:0.5", "center", 0.5), ("shift:2", "shift", 2.0)],
)
def test_spec_parses_modes_and_weights(text, mode, weight):
    spec = CenteringSpec.parse(text)
    assert (spec.mode, spec.weight) == (mode, weight)
    assert CenteringSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["centre", "center:2.5", "shift:-0.1", "center:x", "none:0.5"])
def test_spec_rejects_bad_modes_and_weights(text):
    with pytest.raises(ConfigError, match="centering"):
        CenteringSpec.parse(text)


def _means(dim: int = 8, seed: int = 0) -> LanguageMeans:
    rng = np.random.default_rng(seed)
    m = LanguageMeans("fp", dim, "test")
    for lang in ("en", "de"):
        m.add(lang, rng.normal(size=dim), rng.normal(size=dim), 10, "x")
    return m


def test_shift_moves_passages_only_and_center_renormalises_both_sides():
    rng = np.random.default_rng(1)
    vecs, langs = _unit(rng.normal(size=(6, 8))).astype(np.float32), ["en", "de", "fr"] * 2
    means = _means()
    shift = Centering("shift:0.5", means)
    assert np.array_equal(shift.apply(vecs, langs, "query"), vecs)
    moved = shift.apply(vecs, langs, "passage")
    assert np.allclose(moved[0], vecs[0] - 0.5 * means.passage["en"])
    assert np.array_equal(moved[2], vecs[2])  # fr has no mean: left as it is
    center = Centering("center", means)
    q = center.apply(vecs, langs, "query")
    assert np.allclose(q[1], _unit((vecs[1] - means.query["de"])[None])[0], atol=1e-6)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)


def test_means_read_no_evaluation_text(data_root):
    """The means' texts come from NTREX-128 or FLORES train / dev, and share no text with XQuAD-R or FLORES test."""
    xquad = json.loads((data_root / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    eval_texts = {s for art in xquad["data"] for p in art["paragraphs"] for s in p["sentences"]}
    eval_texts |= {q["question"] for art in xquad["data"] for p in art["paragraphs"] for q in p["qas"]}
    texts, where = means_texts("de", roots=[data_root], n=200)
    assert "ntrex-128" in where and len(texts) == 200 and not set(texts) & eval_texts
    flores_test = (data_root / "flores-sib200" / "quy_Latn" / "test.tsv").read_text(encoding="utf-8")
    texts, where = means_texts("quy_Latn", roots=[data_root], n=1000)  # not in NTREX: FLORES train + dev
    assert "flores-sib200" in where and "test" not in where and len(texts) == 701 + 99
    assert not any(t in flores_test for t in texts)
    assert means_texts("xx", roots=[data_root]) is None


def test_shift_keeps_mono_and_cross_identical_on_a_real_slice(tiny_model_dir, data_root, tmp_path):
    """Inside one language's pool a shift adds the same q . mu to every candidate: mono and cross mAP cannot move;
    the multilingual pool does. results.json names the mode, lambda and where each mean came from."""
    kw = dict(data_dir=data_root, languages=["en", "de", "zh"], max_questions=30, plots=False, show_progress=False)
    plain = evaluate(str(tiny_model_dir), "xquad-r", **kw, centering="none")
    shift = evaluate(str(tiny_model_dir), "xquad-r", **kw, centering="shift", out_dir=tmp_path / "shift")
    for key in ("mono_map", "cross_map"):
        assert round(shift["summary"][key], 4) == round(plain["summary"][key], 4)
    assert shift["summary"]["multi_map"] != plain["summary"]["multi_map"]
    rec = json.loads((tmp_path / "shift" / "results.json").read_text())["config"]["centering"]
    assert rec["mode"] == "shift" and rec["lambda"] == 1.0 and rec["missing"] == []
    assert all("ntrex-128" in m["from"] and m["n"] == 200 for m in rec["means"].values())
    assert plain["config"]["centering"] == {"mode": "none", "lambda": None}


def test_a_model_folder_carries_its_means(tiny_model_dir, data_root, tmp_path):
    """``hybridir means`` writes them beside the weights; evaluate uses those (zero means: shift changes nothing)."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    assert main(["means", "--model", str(model), "--languages", "en,de", "--data-dir", str(data_root),
                 "--quiet"]) == 0  # fmt: skip
    stored = LanguageMeans.load(model)
    assert stored.languages == ["de", "en"] and stored.counts == {"de": 200, "en": 200}
    zero = LanguageMeans(stored.fingerprint, stored.dim, "zeros")
    for lang in stored.languages:
        zero.add(lang, np.zeros(stored.dim), np.zeros(stored.dim), 1, "zeros")
    zero.save(model)
    kw = dict(data_dir=data_root, languages=["en", "de"], max_questions=20, plots=False, show_progress=False)
    shifted = evaluate(str(model), "xquad-r", **kw, centering="shift")
    assert shifted["config"]["centering"]["means_source"] == "zeros"
    assert (
        shifted["summary"]["multi_map"]
        == evaluate(str(model), "xquad-r", **kw, centering="none")["summary"]["multi_map"]
    )


def test_training_writes_means_into_the_model(tiny_model_dir, data_root, tmp_path):
    from hybridir.encoders.models import fingerprint, load_encoder
    from hybridir.training.loop import write_means

    model = load_encoder(str(tiny_model_dir), device="cpu")
    write_means(model, ["en", "zh", "tw"], tmp_path, data_dir=data_root)  # Twi: no text in NTREX or FLORES
    means = LanguageMeans.load(tmp_path, fingerprint(model), 32)
    assert means.languages == ["en", "zh"]


def test_bad_means_files_are_one_line_and_change_nothing(tiny_model_dir, data_root, tmp_path, capsys):
    import shutil

    from hybridir.encoders.models import load_encoder

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    means = compute_means(load_encoder(str(model), device="cpu"), ["en"], data_dir=data_root)
    other = LanguageMeans("0123456789abcdef", means.dim, "x", dict(means.query), dict(means.passage),
                          dict(means.counts), dict(means.sources))  # fmt: skip
    other.save(model)
    args = ["evaluate", "--model", str(model), "--data-dir", str(data_root), "--languages", "en,de",
            "--max-questions", "5", "--centering", "shift", "--no-plots"]  # fmt: skip
    out = tmp_path / "run"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the weight-loading bar of transformers
    assert err.startswith("hybridir: error: ") and "language means of another model" in err
    assert not (out / "results.json").exists()
    with pytest.raises(ModelError, match="dimension 32, the model has 16"):
        LanguageMeans.load(model, dim=16)
    (model / MEANS_FILE).write_bytes(b"not an npz")
    with pytest.raises(ModelError, match="corrupt language means"):
        LanguageMeans.load(model)
    with pytest.raises(SystemExit) as stop:  # argparse: before any model loads
        main([*args[:-3], "--centering", "center:3", "--out", str(out)])
    assert stop.value.code == 2 and "lambda must be in [0, 2]" in capsys.readouterr().err
    assert main(["means", "--model", str(model), "--languages", "en,xx-unknown1", "--quiet"]) == 2
    assert "unknown language code" in capsys.readouterr().err
    assert main(["means", "--model", str(model), "--languages", "en,qq", "--data-dir", str(data_root)]) == 2
    assert "no text for qq" in capsys.readouterr().err


def test_bm25_refuses_centering(tmp_path):
    with pytest.raises(ConfigError, match="BM25 has none"):
        evaluate("bm25", "miracl:yo", data_dir=tmp_path, centering="shift")


def _figures(mono: float, cross: float, multi: float) -> dict[str, float]:
    return {"mono_map": mono, "cross_map": cross, "multi_map": multi, "rank_distance": 0.0}


def test_the_dev_rule_takes_the_best_allowed_candidate_and_breaks_ties_by_smaller_lambda():
    base = {c: _figures(0.8, 0.6, 0.3) for c in CANDIDATES}
    rows = {"a": dict(base), "b": dict(base)}
    rows["a"]["center:1"] = _figures(0.75, 0.7, 0.6)  # best score, but mono drops 0.05: not allowed
    rows["a"]["center:0.5"] = rows["b"]["center:0.5"] = _figures(0.8, 0.65, 0.5)
    rows["a"]["center:0.75"] = rows["b"]["center:0.75"] = _figures(0.8, 0.65, 0.503)  # within the tie margin
    out = decide(rows)
    assert not out["meets_mono_constraint"]["center:1"] and out["choice"] == "center:0.5"
    assert decide({"a": base})["choice"] == "none"


def test_study_variants_share_one_training(tmp_path):
    from hybridir.study.config import expand_grid, load_study_config, train_kwargs

    cfg_file = tmp_path / "s.yaml"
    cfg_file.write_text("name: s\ngrid: {samplers: [zero-shot, hybrid], seeds: [0], steps: [5], languages: "
                        "{two: [en, de]}, merge: [1, 0.5], centering: [none, center:0.5]}\n")  # fmt: skip
    cfg = load_study_config(cfg_file)
    cells = expand_grid(cfg)
    arms = [c.arm for c in cells]
    assert arms == ["zero-shot", "zero-shot+center:0.5", "hybrid-0.5", "hybrid-0.5+center:0.5", "hybrid-0.5+m0.5",
                    "hybrid-0.5+m0.5+center:0.5"]  # fmt: skip
    outs = {train_kwargs(cfg, c, tmp_path / "cells" / c.cell_id)["out"] for c in cells[2:]}
    assert outs == {str(tmp_path / "cells" / cells[2].cell_id / "train")}
    cfg_file.write_text("name: s\ngrid: {centering: [centre]}\n")
    with pytest.raises(ConfigError, match="grid.centering"):
        load_study_config(cfg_file)


def test_centering_without_languages_is_a_programming_error(tiny_model):
    from hybridir.encoders.encoding import Encoder

    enc = Encoder(tiny_model, show_progress=False, centering=Centering("shift"))
    with pytest.raises(ValueError, match="language of every text"):
        enc(["a"], "passage")
    assert Path(enc.path)  # the plain path still works
    assert enc.plain(["a"], "passage").shape == (1, 32)


def test_an_index_carries_its_corpus_means_and_searches_in_any_mode(tiny_model_dir, data_root, tmp_path):
    """A flat index keeps plain vectors plus per-language corpus means: shift scores q . (p - mu_corpus(lang)),
    center also moves the query by its language's mean; an hnsw index is built for one mode and refuses another."""
    from test_index import PASSAGES, write_jsonl

    from hybridir.retrieval.index import build_index, load_index
    from hybridir.retrieval.search import Searcher

    corpus = write_jsonl(tmp_path / "c.jsonl", [p | {"lang": p["id"][:2]} for p in PASSAGES])
    build_index(tiny_model_dir, corpus, tmp_path / "idx", show_progress=False, centering="shift")
    plain = load_index(tmp_path / "idx", centering="none")
    assert plain.manifest["centering"] == "shift" and load_index(tmp_path / "idx").centering.spec.mode == "shift"
    means = LanguageMeans.load(tmp_path / "idx", plain.manifest["fingerprint"])
    langs = np.array([d.lang for d in plain.docs])
    vecs = np.asarray(plain.vectors)
    assert np.allclose(means.passage["de"], vecs[langs == "de"].mean(0), atol=1e-6)
    assert means.counts == {"de": 2, "en": 3, "es": 1, "fr": 1, "zh": 1}
    searcher = Searcher(tmp_path / "idx", centering="shift")
    q = searcher.encoder(["Where does the Rhine flow?"], "query")
    expected = (vecs - np.stack([means.passage[x] for x in langs])) @ q[0]
    hits = searcher.search(["Where does the Rhine flow?"], k=8)[0]
    assert [h.id for h in hits] == [PASSAGES[i]["id"] for i in np.argsort(-expected, kind="stable")]
    assert np.allclose([h.score for h in hits], np.sort(expected)[::-1], atol=1e-5)
    assert not means.query["en"].any()  # the build encodes nothing but the corpus: query means come at search time
    center = Searcher(tmp_path / "idx", centering="center:0.5")
    query_mean = center.index.centering.means.query["en"]
    assert query_mean.any() and "ntrex-128" in center.index.centering.means.sources["en"]
    got = center.search(["Where does the Rhine flow?"], k=3, langs=["en"])[0]
    qc = _unit(q - 0.5 * query_mean)[0]
    pc = _unit(vecs - 0.5 * np.stack([means.passage[x] for x in langs]))
    assert np.isclose(got[0].score, float((pc @ qc).max()), atol=1e-5)
    build_index(tiny_model_dir, corpus, tmp_path / "hnsw", index="hnsw", show_progress=False, centering="shift")
    with pytest.raises(ConfigError, match="built for centering 'shift'"):
        load_index(tmp_path / "hnsw", centering="none")


def test_centred_infonce_removes_running_language_means():
    import torch

    from hybridir.training.losses.centered_infonce import CenteredInfoNCE

    torch.manual_seed(0)
    state: dict = {}
    loss = CenteredInfoNCE(scale=20.0, state=state, momentum=0.5)
    q, p = (torch.nn.functional.normalize(torch.randn(4, 8), dim=-1) for _ in range(2))
    value = loss([q, p], ["de"] * 4, ["en"] * 4)
    assert torch.allclose(torch.tensor(state["center_means"]["query:de"]), q.mean(0))
    qc = torch.nn.functional.normalize(q - q.mean(0), dim=-1)
    pc = torch.nn.functional.normalize(p - p.mean(0), dim=-1)
    expected = torch.nn.functional.cross_entropy(qc @ pc.T * 20.0, torch.arange(4))
    assert torch.isclose(value, expected)
    loss([q * 0 + q[0], p], ["de"] * 4, ["en"] * 4)  # second batch: half old mean, half the new batch's
    assert torch.allclose(torch.tensor(state["center_means"]["query:de"]), 0.5 * q.mean(0) + 0.5 * q[0], atol=1e-6)


def test_the_study_analysis_pairs_centred_rows_with_plain_ones_and_arms_at_the_same_mode():
    from hybridir.study.aggregate import Row
    from hybridir.study.analyses.centering import centering_gains
    from hybridir.study.config import Cell

    def row(sampler: str, centering: str | None, multi: list[float], **kw) -> Row:
        recs = [{"seed": s, "metrics": {"xquad-r/multi_map": v}} for s, v in enumerate(multi)]
        alpha = 0.5 if sampler.startswith("hybrid") and sampler != "hybrid-c" else None
        return Row(Cell("m", sampler, alpha, "ls", ("en", "de"), 60, centering=centering, **kw), recs)

    rows = [
        row("xx", None, [0.40, 0.42, 0.41]),
        row("xx", "shift", [0.50, 0.51, 0.52]),
        row("hybrid", None, [0.44, 0.45, 0.43]),
        row("hybrid", "shift", [0.52, 0.54, 0.53]),
        row("hybrid-c", "shift", [0.60, 0.61, 0.59]),
        row("hybrid-kd", "shift", [0.70, 0.70, 0.70], distill_weight=1.0),  # not what hybrid-c is compared with
        row("xy", "shift", [0.30, 0.30, 0.30], merge=0.5),
    ]  # merged: not hybrid's unmerged baseline
    found = {(g["question"], g["arm"], g["baseline"]): g for g in centering_gains(rows)}
    gain = found[("post hoc: centred minus plain", "xx+shift", "xx")]
    assert gain["n_seeds"] == 3 and gain["mean"] == pytest.approx(0.1) and gain["ci95"] > 0
    assert found[("hybrid minus xx, both shift", "hybrid-0.5+shift", "xx+shift")]["mean"] == pytest.approx(0.02)
    assert found[("trained centred minus post hoc (shift)", "hybrid-c+shift", "hybrid-0.5+shift")][
        "mean"
    ] == pytest.approx(0.07)
    assert found[("hybrid minus xx, both shift", "hybrid-0.5+kd1+shift", "xx+shift")]["mean"] == pytest.approx(0.19)
    assert {(q, a, b) for q, a, b in found if a == "hybrid-c+shift"} == {
        ("trained centred minus post hoc (shift)", "hybrid-c+shift", "hybrid-0.5+shift")
    }
    assert not [k for k in found if "xy" in k[2]]


def test_the_study_analysis_tables_every_scoring_and_pairs_merged_with_unmerged():
    """The compact table keeps each metric's own seeds (MIRACL on seed 0 only has no interval); a merged row is
    paired with the unmerged model of the same scoring, seed by seed."""
    from hybridir.study.aggregate import Row
    from hybridir.study.analyses.centering import (
        centering_gains,
        centering_markdown,
        centering_table,
        table_markdown,
        table_metrics,
    )
    from hybridir.study.config import Cell

    def row(centering: str | None, multi: list[float], merge: float | None = None) -> Row:
        recs = [{"seed": s, "metrics": {"xquad-r/multi_map": v, "xquad-r/rank_distance": 300.0 + s}} for s, v in
                enumerate(multi)]  # fmt: skip
        recs[0]["metrics"]["miracl-judged:yo:2000/ndcg@10"] = 0.8
        return Row(Cell("m", "xx", None, "ls", ("en",), 60, merge=merge, centering=centering), recs)

    rows = [row(None, [0.40, 0.42]), row("center:0.75", [0.50, 0.54]), row("center:0.75", [0.53, 0.55], merge=0.5)]
    for r in rows:  # what aggregate fills in: table_metrics reads the columns the grid has
        r.mean.update({k: 0.0 for rec in r.records for k in rec["metrics"]})
    table = centering_table(rows)
    assert [(t["arm"], t["scoring"], t["seeds"]) for t in table] == [
        ("xx", "none", [0, 1]),
        ("xx", "center:0.75", [0, 1]),
        ("xx+m0.5", "center:0.75", [0, 1]),
    ]
    multi, miracl = table[1]["metrics"]["xquad-r/multi_map"], table[1]["metrics"]["miracl-judged:yo:2000/ndcg@10"]
    assert multi["mean"] == pytest.approx(0.52) and multi["n_seeds"] == 2 and multi["ci95"] > 0
    assert miracl["n_seeds"] == 1 and math.isnan(miracl["ci95"])
    md = table_markdown(table, table_metrics(rows))
    assert "| xx+m0.5 | center:0.75 | 0,1 | " in "\n".join(md) and "| 0.800 |" in md[-1]
    found = {(g["question"], g["arm"], g["baseline"], g["metric"]): g for g in centering_gains(rows)}
    merged = found[("merged 0.5 minus unmerged, both center:0.75", "xx+m0.5+center:0.75", "xx+center:0.75",
                    "xquad-r/multi_map")]  # fmt: skip
    assert merged["mean"] == pytest.approx(0.02) and merged["n_seeds"] == 2
    pairs = "\n".join(centering_markdown(centering_gains(rows)))  # mAP to 3 decimals, rank distance whole
    assert "| merged 0.5 minus unmerged, both center:0.75 | xx+m0.5+center:0.75 | xx+center:0.75 | 2 | " in pairs
    assert "| +0.020 ± 0.127 | +0 ± 0 |" in pairs


def test_the_centering_picture_draws_every_arm_and_mode_and_skips_what_a_row_lacks(tmp_path):
    """One panel per metric, a row per arm, a marker per mode; a metric a row lacks (MIRACL off seed 0) and a
    one-seed interval (NaN) are left out, not drawn as zero; an empty table draws nothing."""
    import matplotlib.image

    from hybridir.study.analyses.centering import plot_centering, target_bars

    def entry(arm: str, scoring: str, multi: float, ci: float, miracl: float | None = None) -> dict:
        metrics = {"xquad-r/multi_map": {"mean": multi, "ci95": ci}}
        if miracl is not None:
            metrics["miracl/ndcg@10"] = {"mean": miracl, "ci95": float("nan")}
        return {"arm": arm, "scoring": scoring, "metrics": metrics}

    table = [entry("zero-shot", "none", 0.32, float("nan"), 0.7), entry("zero-shot", "center:0.75", 0.54,
             float("nan"), 0.75), entry("xx", "none", 0.41, 0.01), entry("xx", "shift", 0.51, 0.01)]  # fmt: skip
    metrics = [("xquad-r/multi_map", "multi mAP"), ("miracl/ndcg@10", "MIRACL nDCG@10")]
    bars = target_bars([{"metric": "xquad-r/multi_map", "bar": 0.59}, {"metric": "xquad-r/multi_map", "bar": 0.6}])
    assert bars == {"xquad-r/multi_map": 0.59}
    path = plot_centering(table, metrics, bars, tmp_path / "centering.png", "t")
    assert path == tmp_path / "centering.png" and matplotlib.image.imread(path).shape[0] > 100
    assert plot_centering([], metrics, bars, tmp_path / "none.png", "t") is None
    assert not (tmp_path / "none.png").exists()


def test_paired_tests_compare_hybrid_and_baselines_within_one_scoring_mode():
    """A centred hybrid row is tested against the baselines scored the same way (and zero-shot so scored), never
    against a plain or differently centred one; hybrid + distillation's ``+kd`` is part of the arm, not a variant."""
    from hybridir.study.aggregate import Row, comparisons
    from hybridir.study.config import Cell

    def cell(sampler: str, **kw) -> Cell:
        if sampler == "zero-shot":
            return Cell("e5-small", sampler, **kw)
        return Cell("e5-small", sampler, langset="g", languages=("en",), steps=60, **kw)

    cells = [cell("zero-shot"), cell("zero-shot", centering="center:0.75"), cell("xx"),
             cell("xx", centering="center:0.75"), cell("xx", merge=0.5, centering="center:0.75"), cell("kd"),
             cell("hybrid", alpha=0.5), cell("hybrid", alpha=0.5, centering="center:0.75"),
             cell("hybrid-kd", alpha=0.5, distill_weight=0.5)]  # fmt: skip
    rows = [Row(c, []) for c in cells]
    pairs = {(h.arm, b.arm) for h, b in comparisons(rows)}
    centred = "hybrid-0.5+center:0.75"
    assert pairs == {
        ("hybrid-0.5", "xx"),
        ("hybrid-0.5", "kd"),
        ("hybrid-0.5", "zero-shot"),
        (centred, "xx+center:0.75"),
        (centred, "zero-shot+center:0.75"),
        ("hybrid-0.5+kd0.5", "xx"),
        ("hybrid-0.5+kd0.5", "kd"),
        ("hybrid-0.5+kd0.5", "zero-shot"),
    }


# -- centering never fails silently: where the means' text is found, and what happens when it is not -------------


def _lareqa_only(data_root: Path, folder: Path) -> Path:
    """A data folder holding XQuAD-R and nothing else (no NTREX, no FLORES): a user's evaluation folder."""
    folder.mkdir()
    (folder / "xquad-r").symlink_to(data_root / "xquad-r")
    return folder


def _ntrex_subset(data_root: Path, folder: Path, codes: tuple[str, ...]) -> Path:
    """A means-data root whose ntrex-128/ holds only the files of ``codes`` (NTREX codes, 'eng' the source)."""
    ntrex = folder / "ntrex-128"
    ntrex.mkdir(parents=True)
    for code in codes:
        name = "newstest2019-src.eng.txt" if code == "eng" else f"newstest2019-ref.{code}.txt"
        (ntrex / name).symlink_to(data_root / "ntrex-128" / name)
    return folder


def test_an_evaluation_folder_without_ntrex_finds_the_means_in_the_data_root_chain(tiny_model_dir, data_root,
                                                                                 tmp_path, monkeypatch):  # fmt: skip
    """The MLQA-R case: --data-dir holds the benchmark only; every language is still centred, with NTREX text
    found further down the chain ($HYBRIDIR_DATA here), and scores equal the run whose data dir has NTREX."""
    monkeypatch.setenv("HYBRIDIR_DATA", str(data_root))
    kw = dict(languages=["en", "de", "zh"], max_questions=20, plots=False, show_progress=False, centering="center:0.75")
    bare = evaluate(str(tiny_model_dir), "xquad-r", data_dir=_lareqa_only(data_root, tmp_path / "mine"), **kw)
    full = evaluate(str(tiny_model_dir), "xquad-r", data_dir=data_root, **kw)
    rec = bare["config"]["centering"]
    assert rec["missing"] == [] and sorted(rec["means"]) == ["de", "en", "zh"]
    assert all("ntrex-128" in m["from"] for m in rec["means"].values())
    assert bare["summary"] == full["summary"]


def test_a_language_without_means_is_an_error_before_encoding_unless_allowed(tiny_model_dir, data_root, tmp_path,
                                                                             capsys):  # fmt: skip
    """--means-data names the only root searched: a language it lacks stops the run (one line, naming it and the
    fixes) before any encoding; --allow-missing-means scores it uncentred with a warning on stderr."""
    means_data = _ntrex_subset(data_root, tmp_path / "means", ("eng", "deu"))
    kw = dict(data_dir=data_root, languages=["en", "de", "zh"], max_questions=20, plots=False, show_progress=False)
    with pytest.raises(ConfigError, match=r"center:0.75: no language means for zh .*--means-data.*"
                                          r"--allow-missing-means") as err:  # fmt: skip
        evaluate(str(tiny_model_dir), "xquad-r", **kw, centering="center:0.75", means_data=means_data,
                 out_dir=tmp_path / "run")  # fmt: skip
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()
    res = evaluate(str(tiny_model_dir), "xquad-r", **kw, centering="center:0.75", means_data=means_data,
                   allow_missing_means=True)  # fmt: skip
    assert "warning: centering center:0.75: no language means for zh" in capsys.readouterr().err
    rec = res["config"]["centering"]
    assert rec["missing"] == ["zh"] and all(str(means_data) in m["from"] for m in rec["means"].values())
    with pytest.raises(ConfigError, match="holds neither ntrex-128/ nor flores-sib200/"):
        evaluate(str(tiny_model_dir), "xquad-r", **kw, means_data=tmp_path)
    assert evaluate(str(tiny_model_dir), "xquad-r", **kw, centering="none", means_data=means_data)["summary"]


def test_the_means_cache_is_keyed_by_the_text_it_came_from(tiny_model, data_root, tmp_path):
    """The same language's means from another text are computed anew, never read from the other text's cache."""
    from hybridir.encoders.encoding import Encoder

    enc = Encoder(tiny_model, show_progress=False)
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "de.txt").write_text("Ein ganz anderer Satz.\nNoch einer.\n", encoding="utf-8")
    first = Centering("center", source="default", data_dir=data_root, cache=tmp_path / "cache")
    first.ensure(["de"], enc.plain, enc.fingerprint, 32, enc.path)
    other = Centering("center", source=str(txt), cache=tmp_path / "cache")
    other.ensure(["de"], enc.plain, enc.fingerprint, 32, enc.path)
    assert other.computed == {"de"} and other.means.counts["de"] == 2
    assert not np.allclose(other.means.query["de"], first.means.query["de"])
    again = Centering("center", source="default", data_dir=data_root, cache=tmp_path / "cache")
    again.ensure(["de"], enc.plain, enc.fingerprint, 32, enc.path)
    assert again.computed == set() and np.array_equal(again.means.query["de"], first.means.query["de"])


def _beir_with_langs(folder: Path, lang_field: bool) -> Path:
    from test_beir import write_beir

    write_beir(folder)
    texts = {"en": "the river flows through the old city", "de": "der Fluss fließt durch die alte Stadt"}
    for name in ("corpus.jsonl", "queries.jsonl"):
        rows = [json.loads(x) for x in (folder / name).read_text().splitlines()]
        for i, row in enumerate(rows):
            lang = "de" if i % 2 else "en"
            row["text"] = f"{texts[lang]} {i}"
            if lang_field:
                row["lang"] = lang
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder


def test_a_beir_set_carries_languages_from_its_lang_field_or_languages_or_detection(tiny_model_dir, data_root,
                                                                                    tmp_path):  # fmt: skip
    kw = dict(data_dir=data_root, plots=False, show_progress=False, centering="center:0.75")
    labelled = evaluate(str(tiny_model_dir), f"beir:{_beir_with_langs(tmp_path / 'a', True)}", **kw)
    assert labelled["config"]["languages_from"] == "field 'lang'"
    assert sorted(labelled["config"]["centering"]["means"]) == ["de", "en"]
    plain = _beir_with_langs(tmp_path / "b", False)
    detected = evaluate(str(tiny_model_dir), f"beir:{plain}", **kw)
    assert detected["config"]["languages_from"].startswith("detected")
    assert [*detected["summary"].values()] == [*labelled["summary"].values()]  # detected as what they are
    one = evaluate(str(tiny_model_dir), f"beir:{plain}", **kw, languages=["en"])
    assert one["config"]["languages_from"] == "--languages en" and list(one["config"]["centering"]["means"]) == ["en"]
    rows = [json.loads(x) for x in (plain / "queries.jsonl").read_text().splitlines()]
    (plain / "queries.jsonl").write_text("".join(json.dumps(r | {"lang": "xx"}) + "\n" for r in rows))
    with pytest.raises(ConfigError, match="no language means for xx"):
        evaluate(str(tiny_model_dir), f"beir:{plain}", **kw)
