"""hybridir index: corpus formats, languages, bad input (one line naming file and line), resume after kill -9."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hybridir.cli import main
from hybridir.infra.errors import ConfigError, DataError
from hybridir.retrieval.corpus import read_corpus
from hybridir.retrieval.index import build_index, load_index

REPO = Path(__file__).resolve().parents[1]
PASSAGES = [
    {"id": "en-berlin", "title": "Berlin", "text": "Berlin is the capital and largest city of Germany by area."},
    {"id": "de-berlin", "title": "Berlin", "text": "Berlin ist die Hauptstadt und die bevölkerungsreichste Stadt "
                                                   "Deutschlands, mit rund 3,7 Millionen Einwohnern."},
    {"id": "zh-berlin", "title": "柏林", "text": "柏林是德国首都，也是德国最大的城市，拥有约三百七十万人口。"},
    {"id": "en-paris", "title": "Paris", "text": "Paris is the capital and most populous city of France.",
     "lang": "en"},
    {"id": "fr-paris", "text": "Paris est la capitale de la France et la commune la plus peuplée du pays."},
    {"id": "es-madrid", "title": "Madrid", "text": "Madrid es la capital de España y la ciudad más poblada del país."},
    {"id": "de-rhein", "title": "Rhein", "text": "Der Rhein ist ein Strom in Mitteleuropa, der in den Alpen entspringt "
                                                 "und in die Nordsee mündet."},
    {"id": "en-rhine", "title": "Rhine", "text": "The Rhine is a major river in Europe that rises in the Alps and "
                                                 "flows into the North Sea."},
]  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", PASSAGES)


def test_build_stores_vectors_ids_texts_languages_and_manifest(tiny_model_dir, corpus, tmp_path):
    stats = build_index(tiny_model_dir, corpus, tmp_path / "idx", shard_size=3, show_progress=False)
    assert stats["shards_encoded"] == 3 and stats["shards_reused"] == 0
    idx = load_index(tmp_path / "idx")
    m = idx.manifest
    from hybridir.encoders.encoding import Encoder
    from hybridir.encoders.models import load_encoder

    auto = Encoder(load_encoder(str(tiny_model_dir), device="cpu")).path  # what auto picks on this CPU
    assert (m["count"], m["dim"], m["index"]["type"], m["inference_path"]) == (8, 32, "flat", auto)
    assert m["model"] == str(Path(tiny_model_dir).resolve()) and len(m["fingerprint"]) == 16
    assert [d.id for d in idx.docs] == [p["id"] for p in PASSAGES]
    langs = {d.id: d.lang for d in idx.docs}
    assert langs["en-paris"] == "en"  # given
    assert (langs["de-berlin"], langs["zh-berlin"], langs["fr-paris"], langs["es-madrid"]) == ("de", "zh", "fr", "es")
    assert sum(m["languages"].values()) == 8
    assert idx.vectors.shape == (8, 32) and np.allclose(np.linalg.norm(idx.vectors, axis=1), 1, atol=1e-5)
    assert not (tmp_path / "idx" / "shards").exists()
    again = build_index(tiny_model_dir, corpus, tmp_path / "idx", shard_size=3, show_progress=False)
    assert again["shards_encoded"] == 0  # complete: left as it is


def test_a_load_hashes_only_files_changed_since_they_were_last_found_intact(
    tiny_model_dir, corpus, tmp_path, monkeypatch
):
    import hybridir.retrieval.index as index_module

    build_index(tiny_model_dir, corpus, tmp_path / "idx", show_progress=False)
    hashed = []
    real = index_module.file_sha256
    monkeypatch.setattr(index_module, "file_sha256", lambda path: hashed.append(path.name) or real(path))
    load_index(tmp_path / "idx")
    assert hashed == []  # the build has just hashed every file and recorded their stat
    vectors = tmp_path / "idx" / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes())  # rewritten, same bytes: its stat changed, so it is checked again
    load_index(tmp_path / "idx")
    assert hashed == ["vectors.npy"]
    hashed.clear()
    load_index(tmp_path / "idx")
    assert hashed == []  # found intact and recorded
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes: only the hash can tell
    vectors.write_bytes(bytes(data))
    with pytest.raises(DataError, match="vectors.npy: fails the index's checksum .SHA-256 differs"):
        load_index(tmp_path / "idx")
    assert hashed == ["vectors.npy"]


def test_beir_miracl_and_tsv_corpora(tmp_path):
    beir = tmp_path / "beir"
    beir.mkdir()
    write_jsonl(beir / "corpus.jsonl", [{"_id": "a", "title": "T", "text": "one"}, {"_id": "b", "text": "two"}])
    assert [(p.id, p.title) for p in read_corpus(beir)] == [("a", "T"), ("b", "")]
    miracl = tmp_path / "miracl-corpus-v1.0-yo"
    miracl.mkdir()
    with gzip.open(miracl / "docs-0.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"docid": "598#0", "title": "Ìbàdàn", "text": "Ìlú ni Ìbàdàn."}) + "\n")
    assert list(read_corpus(miracl)) == list(read_corpus(miracl / "docs-0.jsonl.gz"))
    assert [(p.id, p.lang) for p in read_corpus(miracl)] == [("598#0", "yo")]  # language from the folder name
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\ttext\ttitle\nx\tsome text\tA title\ny\tmore\n", encoding="utf-8")
    assert [(p.id, p.text, p.title, p.lang) for p in read_corpus(tsv, lang="en")] == [
        ("x", "some text", "A title", "en"), ("y", "more", "", "en")]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), [
    (b'{"title": "no id", "text": "x"}', "missing id"),
    (b'{"id": "en-berlin", "text": "again"}', "duplicate id 'en-berlin' (first at corpus.jsonl:1)"),
    (b'{"id": "e", "text": "  "}', "empty text"),
    (b'{"id": "u", "text": "caf\xe9"}', "not UTF-8 (byte 0xe9"),
    (b'{"id": "j", "text": "unterminated}', "not valid JSON"),
    (b'["a", "list"]', "expected a JSON object"),
])  # fmt: skip
def test_bad_corpus_line_is_one_line_naming_file_and_line(tiny_model_dir, tmp_path, capsys, line, message):
    path = write_jsonl(tmp_path / "corpus.jsonl", PASSAGES[:2])
    path.write_bytes(path.read_bytes() + line + b"\n")
    with pytest.raises(DataError, match="corpus.jsonl:3: ") as err:
        list(read_corpus(path))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert main(["index", "--model", str(tiny_model_dir), "--corpus", str(path), "--out", str(tmp_path / "i")]) == 2
    err_line = capsys.readouterr().err.strip()
    assert err_line.startswith("hybridir: error: ") and f"{path}:3:" in err_line and "\n" not in err_line
    assert not (tmp_path / "i").exists()  # checked before any encoding


def test_an_index_of_another_model_is_refused(tiny_model_dir, tmp_path, corpus):
    from conftest import build_tiny_encoder

    other = build_tiny_encoder(tmp_path / "other", seed=1)
    build_index(tiny_model_dir, corpus, tmp_path / "idx", show_progress=False)
    with pytest.raises(ConfigError, match=r"idx/manifest.json: built with model .* not .*other"):
        build_index(other, corpus, tmp_path / "idx", show_progress=False)


def test_a_second_build_into_a_folder_in_use_is_a_one_line_error(tiny_model_dir, corpus, tmp_path, capsys):
    from hybridir.infra.locks import DirLock

    with DirLock(tmp_path / "idx", "index"):
        assert main(["index", "--model", str(tiny_model_dir), "--corpus", str(corpus), "--out",
                     str(tmp_path / "idx"), "--backend", "torch"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("hybridir: error: ") and "in use by hybridir index" in err
    assert not (tmp_path / "idx" / "shards").exists()
    build_index(tiny_model_dir, corpus, tmp_path / "idx", backend="torch", show_progress=False)  # free again
    assert (tmp_path / "idx" / "manifest.json").is_file() and not (tmp_path / "idx" / ".hybridir.lock").exists()


def test_approximate_indexes_find_what_exact_search_finds(tiny_model_dir, corpus, tmp_path):
    exact = load_index(build_index(tiny_model_dir, corpus, tmp_path / "flat", show_progress=False)["manifest"] and
                       tmp_path / "flat")  # fmt: skip
    queries = exact.vectors[:4] + 0.01
    _, want = exact.search(queries, 3)
    for kind in ("hnsw", "ivf"):
        build_index(tiny_model_dir, corpus, tmp_path / kind, index=kind, show_progress=False)
        idx = load_index(tmp_path / kind)
        assert (tmp_path / kind / "index.faiss").is_file() and idx.manifest["index"]["type"] == kind
        assert np.array_equal(idx.search(queries, 3)[1], want)


def test_kill_9_then_rerun_gives_the_same_index_as_an_uninterrupted_build(tiny_model_dir, tmp_path):
    # enough shards that the build cannot finish between a poll and the kill (the CI machine wrote 20 in one poll)
    n_shards = 500
    rows = [{"id": f"p{i}", "text": f"passage number {i} " + "word " * (i % 7)} for i in range(2 * n_shards)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "hybridir.cli", "index", "--model", str(tiny_model_dir), "--corpus",
                str(corpus), "--out", str(out), "--shard-size", "2", "--quiet"]  # fmt: skip

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # start-up alone (torch, the model) can take minutes on a busy machine
    while len(list((killed / "shards").glob("0*"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the build finished before it could be killed"
    done_before = len(list((killed / "shards").glob("0*")))
    assert 3 <= done_before < n_shards and not (killed / "manifest.json").exists()
    resumed = subprocess.run(command(killed), env=env, capture_output=True, text=True, check=True)
    fresh = tmp_path / "fresh"
    subprocess.run(command(fresh), env=env, capture_output=True, check=True)
    assert f"{n_shards - done_before} shard(s) encoded, {done_before} reused" in resumed.stdout
    # .verified.json records the files' stat (mtime, inode): it differs between any two builds by design
    names = sorted(p.name for p in fresh.iterdir() if p.name != ".verified.json")
    killed_names = sorted(p.name for p in killed.iterdir() if p.name != ".verified.json")
    assert (
        names
        == killed_names
        == ["docs.jsonl", "language_means.json", "language_means.npz", "manifest.json", "vectors.npy"]
    )
    for name in names:
        assert (killed / name).read_bytes() == (fresh / name).read_bytes(), name


def test_languages_restrict_the_detector_and_the_labels_detected_are_counted(tiny_model_dir, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "Die Katze schläft auf dem Sofa."}\n'
                      '{"id": "b", "text": "Tesla died on 7 January 1943."}\n'
                      '{"id": "c", "text": "The cat sleeps.", "lang": "en"}\n')  # fmt: skip
    stats = build_index(tiny_model_dir, corpus, tmp_path / "idx", show_progress=False, languages=["en", "de"])
    assert stats["detected"] == 2 and stats["manifest"]["detect_among"] == ["en", "de"]
    assert stats["manifest"]["languages"] == {"en": 2, "de": 1}  # unrestricted, lingua reads the Tesla line as yo
