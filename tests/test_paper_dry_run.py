"""The paper's whole path on the CPU, no download: mMARCO-layout files in three languages and MIRACL-layout hub files
written by fixtures, a tiny randomly initialised XLM-R built from a config, and a miniature of
``studies/paper_published.yaml`` run end to end (hard negatives, early stopping, XQuAD-R / MLQA-R / MIRACL, the
paper's numbers beside the study's). The real hub calls stay in the code; here ``huggingface_hub`` serves the
fixture's folders."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from conftest import REPO, build_tiny_encoder
from test_lareqa import write_lareqa
from test_miracl import write_official

from hybridir.cli import main
from hybridir.data.training.mmarco import TRIPLES, load_mmarco, mmarco_files
from hybridir.evaluation.evaluate import evaluate
from hybridir.infra.errors import DataError
from hybridir.training.loop import TrainConfig, _Run, train
from hybridir.training.sampling import parse_key

LANGS = ["en", "de", "zh"]
WORDS = ["river", "mountain", "city", "paper", "music", "garden", "winter", "market", "doctor", "window", "bread"]
N_QUERIES = 16


def passage(lang: str, pid: int) -> str:
    """Passage ``pid`` "translated" into ``lang`` (the same words behind a language tag, so tests can check it)."""
    return f"{lang} passage {pid}: " + " ".join(WORDS[(pid * 3 + k) % len(WORDS)] for k in range(6))


def query(lang: str, qid: int) -> str:
    return f"{lang} question {qid} " + " ".join(WORDS[(qid * 3 * 2 + k) % len(WORDS)] for k in range(3))


def write_mmarco(root: Path) -> Path:
    """mMARCO's release layout (its file names) in en / de / zh: query q's positive is passage 2q, its negative
    passage 2q + 1; a second triple per query (another negative) is one the loader must skip."""
    names = {"en": "english", "de": "german", "zh": "chinese"}
    for rel in mmarco_files(LANGS):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{q}\t{2 * q}\t{2 * q + 1}\n{q}\t{2 * q}\t{(2 * q + 3) % (2 * N_QUERIES)}\n" for q in range(N_QUERIES)]
    (root / TRIPLES).write_text("".join(lines))
    for lang, name in names.items():
        (root / f"data/google/collections/{name}_collection.tsv").write_text(
            "".join(f"{p}\t{passage(lang, p)}\n" for p in range(2 * N_QUERIES + 4)))  # fmt: skip
        (root / f"data/google/queries/train/{name}_queries.train.tsv").write_text(
            "".join(f"{q}\t{query(lang, q)}\n" for q in range(N_QUERIES + 3)))  # fmt: skip
    return root


def miracl_files(root: Path, lang: str = "sw") -> Path:
    """A small MIRACL language in the official layout: 6 dev topics, graded qrels, 30 passages in two shards."""
    docs = [{"docid": f"{i}#0", "title": f"T{i}", "text": passage("en", i)} for i in range(30)]
    topics = [(f"q{i}", query("en", i)) for i in range(6)]
    qrels = [(f"q{i}", f"{2 * i}#0", 1) for i in range(6)] + [("q0", "5#0", 0), ("q1", "7#0", 1)]
    write_official(root, lang, topics, qrels, docs[:20])
    extra = root / f"miracl-corpus-v1.0-{lang}/docs-1.jsonl.gz"
    extra.write_bytes(gzip.compress("".join(json.dumps(d) + "\n" for d in docs[20:]).encode()))
    return root


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-xlmr"), arch="xlm-roberta")


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A fake hub: ``<hub>/<repo id>/<file>``, served by patched ``hf_hub_download`` / ``snapshot_download``;
    the cache (mMARCO selections, embeddings) goes to a temporary folder."""
    root = tmp_path / "hub"
    monkeypatch.setenv("HYBRIDIR_CACHE", str(tmp_path / "cache"))

    def download(repo_id, filename, repo_type=None, **kw):
        assert repo_type == "dataset"
        if not (path := root / repo_id / filename).is_file():
            raise huggingface_hub.errors.EntryNotFoundError(f"{repo_id}/{filename}")
        return str(path)

    def snapshot(repo_id, repo_type=None, allow_patterns=None, **kw):
        assert repo_type == "dataset" and allow_patterns
        return str(root / repo_id)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    return root


def test_parallel_ids_give_translated_positives_and_the_triples_negative_local_or_hub(tmp_path, hub):
    local = load_mmarco(LANGS, root=write_mmarco(tmp_path / "mmarco"), max_queries=10, show_progress=False)
    assert len(local.items) == 10 and local.languages == sorted(LANGS)
    for i, it in enumerate(local.items):
        q = int(it.id.split(":")[1])
        for ql in LANGS:
            for pl in LANGS:  # X-X and X-Y from the same ids: the positive is the translation of the query's
                ex = local.example(i, ql, pl)
                assert (ex.query, ex.passage, ex.negative) == (query(ql, q), passage(pl, 2 * q), passage(pl, 2 * q + 1))
    assert {it.dedup_key for it in local.items} == {f"p{2 * q}" for q in range(10)}  # same positive: never together
    write_mmarco(hub / "unicamp-dl/mmarco")
    (tmp_path / "empty").mkdir()  # a data root without mmarco/: the hub
    online = load_mmarco(LANGS, data_dir=tmp_path / "empty", max_queries=10, show_progress=False)
    assert [(it.id, it.pairs) for it in online.items] == [(it.id, it.pairs) for it in local.items]


def test_offline_machine_gets_one_line_naming_the_files_and_where_to_put_them(tmp_path, hub, capsys):
    (tmp_path / "data").mkdir()
    code = main(["train", "--data", "mmarco", "--data-dir", str(tmp_path / "data"), "--languages", "en,de",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    for name in (TRIPLES, "data/google/collections/german_collection.tsv", "english_queries.train.tsv",
                 f"under {tmp_path / 'data' / 'mmarco'}/"):  # fmt: skip
        assert name in err[0]
    partial = write_mmarco(tmp_path / "data" / "mmarco")
    (partial / "data/google/collections/german_collection.tsv").unlink()
    with pytest.raises(DataError, match=r"mmarco: mMARCO layout incomplete, missing data/google/collections/german_"):
        load_mmarco(["en", "de"], data_dir=tmp_path / "data")


def test_every_batch_has_its_hard_negatives(tmp_path, hub, tiny_xlmr):
    data = write_mmarco(tmp_path / "mmarco")
    cfg = TrainConfig(model=str(tiny_xlmr), data=str(data), languages=LANGS, steps=16, batch_size=4,
                      hard_negatives=True, out=str(tmp_path / "run"), show_progress=False,
                      dev_fraction=0.25)  # fmt: skip
    run = _Run(cfg)
    kinds = set()
    for rows in run.sampler:
        (queries, passages, negatives), kind, keys, items = run.batch_texts(rows)
        kinds.add(kind)
        assert len(negatives) == len(passages) == 4
        for j, (key, item) in enumerate(zip(keys, items, strict=True)):
            _, ql, pl = parse_key(key)
            q = int(run.train_data.items[item].id.split(":")[1])
            assert queries[j] == query(ql, q) and passages[j] == passage(pl, 2 * q)
            assert negatives[j] == passage(pl, 2 * q + 1) and negatives[j] not in passages
    assert kinds == {"xx", "xy"}


def test_early_stopping_restores_the_best_checkpoint(tmp_path, hub, tiny_xlmr, monkeypatch):
    from hybridir.encoders.models import fingerprint, load_encoder
    from hybridir.training.early_stopping import EarlyStopping

    losses, seen = iter([3.0, 2.0, 2.5, 2.7, 2.9]), {}

    def scripted(self):  # the held-out loss as a script; the weights it was computed on, by step
        seen[len(seen) + 1] = fingerprint(self.model)
        return next(losses)

    monkeypatch.setattr(EarlyStopping, "held_out_loss", scripted)
    cfg = TrainConfig(model=str(tiny_xlmr), data=str(write_mmarco(tmp_path / "mmarco")), languages=LANGS, steps=20,
                      batch_size=4, lr=1e-3, hard_negatives=True, eval_every=2, early_stopping_patience=2,
                      out=str(tmp_path / "run"), show_progress=False, dev_fraction=0.25, save_every=5)  # fmt: skip
    final = train(cfg)
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    es = summary["early_stopping"]
    assert (es["best_step"], es["stopped"], summary["steps"]) == (4, True, 8)  # best at 4; 6 and 8 worse: stop
    assert [h[0] for h in es["history"]] == [2, 4, 6, 8] and seen[2] != seen[4]
    assert fingerprint(load_encoder(str(final), device="cpu")) == seen[2]  # the step-4 weights, not step 8's
    assert train(cfg) == final and len(seen) == 4  # run again: it had stopped, nothing more is trained


def test_miracl_from_the_hub_reads_exactly_like_the_local_official_files(tmp_path, hub, tiny_xlmr):
    local = miracl_files(tmp_path / "data" / "miracl")
    for repo in ("miracl/miracl", "miracl/miracl-corpus"):
        shutil.copytree(local, hub / repo)
    (tmp_path / "offline").mkdir()
    cache = tmp_path / "emb"
    opts = {"show_progress": False, "cache_dir": cache, "centering": "none"}  # no means: the count is the corpus's
    a = evaluate(str(tiny_xlmr), "miracl:sw", data_dir=tmp_path / "data", **opts)
    b = evaluate(str(tiny_xlmr), "miracl:sw", data_dir=tmp_path / "offline", **opts)
    assert a["summary"] == b["summary"] and a["summary"]["ndcg@10"] > 0
    assert (a["timing"]["texts_encoded"], b["timing"]["texts_encoded"]) == (36, 0)  # corpus encoded once per model


def test_miniature_of_paper_published_runs_end_to_end(tmp_path, hub, tiny_xlmr):
    data = tmp_path / "data"
    write_mmarco(data / "mmarco")
    write_lareqa(data / "xquad-r")
    write_lareqa(data / "mlqa-r")
    for repo in ("miracl/miracl", "miracl/miracl-corpus"):  # MIRACL only on the (fake) hub
        miracl_files(hub / repo)
    study = yaml.safe_load((REPO / "studies/paper_published.yaml").read_text())
    model = str(tiny_xlmr)
    study.update(out=str(tmp_path / "study"), data_dir=str(data), cache_dir=str(tmp_path / "emb"),
                 paper={model: "xlm-r"})  # fmt: skip
    study["grid"].update(models=[model], languages={"mini": LANGS}, steps=[6])
    study["train"].update(data=f"mmarco:{N_QUERIES}", batch_size=4, dev_fraction=0.25, dev_max_items=20,
                          eval_every=2, early_stopping_patience=2, save_every=6, max_query_length=16,
                          max_passage_length=32, freeze_embeddings=True)  # fmt: skip
    study["eval"] = {"batch_size": 16, "datasets": ["xquad-r", "mlqa-r", "miracl:sw"]}
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(study))
    assert main(["study", str(tmp_path / "mini.yaml"), "--quiet"]) == 0
    out = tmp_path / "study"
    for arm in ("xx", "xy", "hybrid-0.5"):
        cell = next((out / "cells").glob(f"*__{arm}__mini__*"))
        summary = json.loads((cell / "train" / "train_summary.json").read_text())
        assert summary["config"]["hard_negatives"] and summary["early_stopping"]["history"]
        assert any("dev_loss" in r for r in map(json.loads, (cell / "train/train_log.jsonl").read_text().splitlines()))
    result = json.loads((out / "study.json").read_text())
    assert result["cells_finished"] == result["cells_total"] == 4
    assert all(k in result["rows"][1]["mean"] for k in ("xquad-r/multi_map", "mlqa-r/multi_map", "miracl:sw/ndcg@10"))
    md = (out / "study.md").read_text()
    section = md.split("## The paper's published numbers beside this study's")[1]
    assert "| hybrid-0.5 | xquad-r/mono_map | 0.798 |" in section and "| not run |" not in section
    assert "(1 languages)" in section
