"""The language-neutral projection (hybridir.encoders.projection): the subspace it removes, the model it writes
(loaded by plain sentence-transformers in a fresh process, no hybridir import), and bad input as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hybridir.cli import main
from hybridir.encoders.centering import LanguageMeans
from hybridir.encoders.encoding import Encoder
from hybridir.encoders.models import load_encoder
from hybridir.encoders.projection import PROJECTION_FILE, Projection, check_rank, subspace
from hybridir.infra.errors import ConfigError, ModelError

LANGS = ["deu", "eng", "fra", "zho-CN"]


def _means(dim: int = 16, n: int = 6, seed: int = 0) -> LanguageMeans:
    rng = np.random.default_rng(seed)
    m = LanguageMeans("fp", dim, "test")
    for i in range(n):
        m.add(f"l{i}", rng.normal(size=dim), rng.normal(size=dim), 10, "x")
    return m


def test_the_subspace_is_the_means_top_singular_directions_and_the_projection_removes_it():
    means = _means()
    basis = subspace(means, 3)
    assert basis.shape == (16, 3) and np.allclose(basis.T @ basis, np.eye(3), atol=1e-5)
    proj = Projection(basis, "fp", False, tuple(means.languages))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 16)).astype(np.float32)
    y = proj.apply(x)
    assert np.allclose(y @ basis, 0, atol=1e-5) and np.allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)
    assert np.allclose(proj.apply(x, normalize=False), x @ proj.matrix().T, atol=1e-5)  # the Dense layer's map
    stacked = np.stack([means.query[x] for x in means.languages] + [means.passage[x] for x in means.languages])
    kept = stacked - (stacked @ basis) @ basis.T  # no rank-3 subspace removes more of the means' energy
    _, s, _ = np.linalg.svd(stacked)
    assert np.isclose((kept**2).sum(), (s[3:] ** 2).sum(), rtol=1e-4)
    centred = subspace(means, 3, recentre=True)
    assert not np.allclose(np.abs(centred.T @ basis), np.eye(3), atol=1e-3)  # recentring changes the directions


@pytest.mark.parametrize("rank, dim, n, msg", [(0, None, None, ">= 1"), (16, 16, None, "below the model's dimension"),
                                               (13, 16, 12, "span at most 12")])  # fmt: skip
def test_a_rank_out_of_range_is_one_line(rank, dim, n, msg):
    with pytest.raises(ConfigError, match=msg):
        check_rank(rank, dim, n)


def test_a_debiased_model_loads_in_plain_sentence_transformers_with_hybridirs_vectors(tiny_model_dir, data_root,
                                                                                     tmp_path):  # fmt: skip
    """``hybridir debias`` writes a model whose modules.json ends in Dense + Normalize; a fresh Python process
    with no hybridir import encodes with it, and its vectors equal the projection applied to the start's (1e-5)."""
    out = tmp_path / "neutral"
    assert main(["debias", "--model", str(tiny_model_dir), "--out", str(out), "--rank", "3", "--languages",
                 ",".join(LANGS), "--data-dir", str(data_root), "--quiet"]) == 0  # fmt: skip
    mods = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in mods][-2:] == ["Dense", "Normalize"]
    assert all(m["type"].startswith("sentence_transformers.models.") for m in mods)
    proj = Projection.load(out)
    assert proj.rank == 3 and proj.languages == tuple(LANGS)
    texts = ["where is the river?", "Wo ist der Fluss?", "河在哪里？", "Où est la rivière ?"]
    code = (f"import sys, numpy as np\nfrom sentence_transformers import SentenceTransformer\n"
            f"v = SentenceTransformer({str(out)!r}, device='cpu').encode({texts!r}, prompt_name='query')\n"
            f"np.save({str(tmp_path / 'st.npy')!r}, v)\nassert 'hybridir' not in sys.modules\n")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    plain_st = np.load(tmp_path / "st.npy")
    start = Encoder(load_encoder(str(tiny_model_dir)), show_progress=False, backend="torch", precision="fp32")
    ours = Encoder(load_encoder(str(out)), show_progress=False, backend="torch", precision="fp32")
    assert np.abs(plain_st - ours.encode(texts, "query")).max() < 1e-5
    assert np.abs(plain_st - proj.apply(start.encode(texts, "query"))).max() < 1e-5
    assert proj.fingerprint == start.fingerprint != ours.fingerprint


def test_bad_projections_are_one_line_and_write_nothing(tiny_model_dir, data_root, tmp_path, capsys):
    out = tmp_path / "neutral"
    base = ["debias", "--model", str(tiny_model_dir), "--languages", ",".join(LANGS), "--data-dir", str(data_root),
            "--quiet"]  # fmt: skip
    assert main([*base, "--out", str(out), "--rank", "2"]) == 0
    saved = out / PROJECTION_FILE
    cases = {"--rank 0": ([*base, "--out", str(tmp_path / "a"), "--rank", "0"], "must be a whole number >= 1"),
             "rank >= dim": ([*base, "--out", str(tmp_path / "b"), "--rank", "32"], "below the model's dimension"),
             "rank > means": ([*base, "--out", str(tmp_path / "c"), "--rank", "9"], "span at most 8")}  # fmt: skip
    from conftest import build_tiny_encoder

    other = build_tiny_encoder(tmp_path / "other-model", seed=1)
    cases["another model"] = ([*base, "--model", str(other), "--out", str(tmp_path / "d"), "--projection",
                               str(saved)], "language projection of another model")  # fmt: skip
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / PROJECTION_FILE).write_bytes(b"not a zip")
    (bad / "language_projection.json").write_text((out / "language_projection.json").read_text())
    cases["corrupt"] = ([*base, "--out", str(tmp_path / "e"), "--projection", str(bad)], "corrupt language projection")
    info = json.loads((out / "language_projection.json").read_text()) | {"dim": 16}
    wrong = tmp_path / "wrong-dim"
    wrong.mkdir()
    (wrong / PROJECTION_FILE).write_bytes(saved.read_bytes())
    (wrong / "language_projection.json").write_text(json.dumps(info))
    cases["dimension"] = ([*base, "--out", str(tmp_path / "f"), "--projection", str(wrong)], "corrupt language proj")
    for name, (argv, msg) in cases.items():
        capsys.readouterr()
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, (name, err)
        assert not Path(argv[argv.index("--out") + 1]).exists(), name  # nothing written
    again = tmp_path / "again"
    assert main([*base, "--out", str(again), "--projection", str(out)]) == 0  # its own model's projection: reused
    assert np.array_equal(Projection.load(again).basis, Projection.load(out).basis)
    with pytest.raises(ModelError, match="already has a Dense module"):
        from hybridir.encoders.projection import with_projection

        with_projection(load_encoder(str(out)), Projection.load(out))


def _figures(mono: float, cross: float, multi: float) -> dict[str, float]:
    return {"mono_map": mono, "cross_map": cross, "multi_map": multi, "rank_distance": 0.0}


def test_the_dev_rule_takes_the_best_allowed_candidate_and_ties_go_to_the_smallest_change():
    from hybridir.paper.projection_choice import CANDIDATES, decide, parse

    assert parse("r16cs0.5") == (16, True, 0.5) and parse("r8") == (8, False, 1.0) and parse("none") is None
    base = {c: _figures(0.80, 0.60, 0.30) for c in CANDIDATES}
    rows = {"a": dict(base), "b": dict(base)}
    rows["a"]["r64"] = _figures(0.75, 0.70, 0.60)  # the best score, but mono drops 0.05: not allowed
    rows["a"]["r32"] = rows["b"]["r32"] = _figures(0.80, 0.66, 0.50)
    rows["a"]["r16c"] = rows["b"]["r16c"] = _figures(0.80, 0.66, 0.497)  # within 0.002 of r32: tied, smaller rank
    result = decide(rows)
    assert not result["meets_mono_constraint"]["r64"] and result["choice"] == "r16c"
    assert result["chosen"] == {"rank": 16, "recentre": True, "strength": 1.0}
    flat = decide({"a": dict(base)})
    assert flat["choice"] == "none"  # nothing better: no projection


@pytest.mark.parametrize("text, mode, weight, project", [("proj", "none", 1.0, True),
                                                         ("proj+center:0.75", "center", 0.75, True),
                                                         ("center:0.75", "center", 0.75, False)])  # fmt: skip
def test_the_projection_is_a_scoring_mode_before_any_centering(text, mode, weight, project):
    from hybridir.encoders.centering import CenteringSpec

    spec = CenteringSpec.parse(text)
    assert (spec.mode, spec.weight, spec.project, str(spec)) == (mode, weight, project, text)
    assert spec.active and spec.centres == (mode != "none")
    with pytest.raises(ConfigError, match="unknown mode"):
        CenteringSpec.parse("proj+centre")


def test_proj_scoring_equals_the_debiased_model_and_needs_no_labels(tiny_model_dir, data_root, tmp_path, monkeypatch):
    """Scoring ``proj`` on cached vectors gives the debiased model's figures (one implementation of the map), with
    the subspace from every NTREX language; an index refuses it (the projection belongs inside the model)."""
    import hybridir.encoders.projection as projection
    from hybridir.evaluation.evaluate import evaluate

    monkeypatch.setattr(projection, "DEFAULT_RANK", 4)  # the tiny model has 32 dimensions
    kw = dict(data_dir=data_root, languages=["en", "de", "zh"], max_questions=20, plots=False, show_progress=False,
              backend="torch", precision="fp32")  # fmt: skip
    scored = evaluate(str(tiny_model_dir), "xquad-r", centering="proj", **kw)
    rec = scored["config"]["centering"]["projection"]
    assert rec["rank"] == 4 and rec["means_languages"] > 100 and "means" not in scored["config"]["centering"]
    out = tmp_path / "neutral"
    assert main(["debias", "--model", str(tiny_model_dir), "--out", str(out), "--rank", "4", "--data-dir",
                 str(data_root), "--quiet"]) == 0  # fmt: skip
    inside = evaluate(str(out), "xquad-r", centering="none", **kw)
    for key in ("mono_map", "cross_map", "multi_map"):
        assert abs(inside["summary"][key] - scored["summary"][key]) < 1e-3, key
    from hybridir.retrieval.index import build_index
    from hybridir.retrieval.search import Searcher

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"id": "1", "text": "a river", "lang": "en"}\n{"id": "2", "text": "ein Fluss", "lang": "de"}\n'
        '{"id": "3", "text": "a mountain", "lang": "en"}\n'
    )
    with pytest.raises(ConfigError, match="hybridir debias"):
        build_index(str(tiny_model_dir), corpus, tmp_path / "i", centering="proj")
    build_index(
        str(out),
        corpus,
        tmp_path / "neutral-index",
        centering="none",
        backend="torch",
        precision="fp32",
        show_progress=False,
    )  # the neutral model indexes and searches as any model does
    hits = Searcher(tmp_path / "neutral-index", centering="none").search(["the river"], k=3)[0]
    enc = Encoder(load_encoder(str(out)), show_progress=False, backend="torch", precision="fp32")
    q, docs = enc.encode(["the river"], "query"), enc.encode(["a river", "ein Fluss", "a mountain"], "passage")
    assert [h.score for h in hits] == pytest.approx(sorted((docs @ q[0]).tolist(), reverse=True), abs=1e-5)
