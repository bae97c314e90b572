"""Sharded encoding (hybridir.infra.shards) on a real MIRACL-yo slice: two gloo processes, a rank killed with
kill -9 and the rerun, and ``--shard I/N`` processes, each against one process; ``--shard``'s bad values."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_miracl import lines, write_official

from hybridir.cli import main
from hybridir.infra.integrity import read_sealed
from hybridir.infra.shards import Shard, Units, parse

REPO = Path(__file__).resolve().parents[1]
#: a worker: the CLI with 64-text units (so a few hundred passages make several) and, with KILL_AT=n, a process
#: that kills itself (SIGKILL, nothing cleaned up) as it starts its n-th unit
WORKER = """import os, signal, sys
import hybridir.infra.shards as shards
shards.UNIT = 64
if os.environ.get("KILL_AT"):
    from hybridir.encoders.encoding import Encoder
    calls, encode = [], Encoder.encode
    def dying(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return encode(self, *args, **kwargs)
    Encoder.encode = dying
from hybridir.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def yo_slice(tmp_path_factory, data_root) -> Path:
    """10 real Yoruba dev queries, their judged passages and 300 other real passages, in the official layout."""
    base = data_root / "miracl"
    if not (base / "miracl-v1.0-yo").is_dir():
        pytest.skip(f"real MIRACL data not found: {base}/miracl-v1.0-yo is absent")
    topics = lines(base / "miracl-v1.0-yo/topics/topics.miracl-v1.0-yo-dev.tsv")[:10]
    keep = {t.split("\t")[0] for t in topics}
    qrels = [
        (q, d, int(g))
        for q, _, d, g in (x.split() for x in lines(base / "miracl-v1.0-yo/qrels/qrels.miracl-v1.0-yo-dev.tsv"))
        if q in keep
    ]
    judged = {d for _, d, _ in qrels}
    with gzip.open(base / "miracl-corpus-v1.0-yo/docs-0.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    others = [r for r in rows if r["docid"] not in judged]
    docs = [r for r in rows if r["docid"] in judged] + [others[i] for i in range(0, 3000, 10)]
    return write_official(tmp_path_factory.mktemp("yo-slice"), "yo", [tuple(t.split("\t", 1)) for t in topics],
                          qrels, docs)  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    return env | {"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                  "TOKENIZERS_PARALLELISM": "false"} | extra  # fmt: skip


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def run(argv: list[str], ranks: int = 1, kill_at: int | None = None, timeout: float = 600) -> list[tuple[int, str]]:
    """The CLI in ``ranks`` processes joined by gloo (as torchrun starts them; rank 1 killed at its ``kill_at``-th
    unit), or one plain process: (exit code, stderr) per rank. After a kill the survivors are stopped, as torchrun
    stops a job one of whose ranks died."""
    port = _free_port()
    procs = []
    for rank in range(ranks):
        dist = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(ranks), "RANK": str(rank),
                "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(ranks)} if ranks > 1 else {}  # fmt: skip
        dying = {"KILL_AT": str(kill_at)} if kill_at and rank == 1 else {}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, *argv], env=_env(**dist, **dying),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    if kill_at:
        procs[1].wait(timeout)
        deadline = time.monotonic() + 60
        while procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if procs[0].poll() is None:
            procs[0].send_signal(signal.SIGTERM)
    return [(p.wait(timeout), p.communicate()[1]) for p in procs]


def evaluate_argv(model: Path, data: Path, cache: Path, out: Path, *more: str) -> list[str]:
    return [
        "evaluate",
        "--model",
        str(model),
        "--dataset",
        "miracl:yo",
        "--data-dir",
        str(data),
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
        "--backend",
        "torch",
        "--centering",
        "none",
        "--no-plots",
        *more,
    ]


def comparable(out: Path) -> dict:
    """results.json without what differs between runs of the same evaluation: timing, cache folder, threads."""
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    res.pop("timing")
    for key in ("cache_dir", "torch_threads"):
        res["config"].pop(key)
    return res


def cache_files(cache: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in cache.rglob("*.npz")}


def cached_vectors(cache: Path) -> tuple[dict[str, np.ndarray], int]:
    """Every cached vector by (prompt folder, text key), and the number of rows written (a text encoded twice
    counts twice)."""
    found, rows = {}, 0
    for path, data in read_sealed(sorted(cache.rglob("*.npz")), "embedding cache").items():
        with np.load(io.BytesIO(data)) as z:
            rows += len(z["keys"])
            found |= {f"{path.parent.name}/{k}": v for k, v in zip(z["keys"].tolist(), z["emb"], strict=True)}
    return found, rows


@pytest.fixture(scope="module")
def one_process(yo_slice, tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The reference: the same evaluation in one process (cache folder, run directory)."""
    work = tmp_path_factory.mktemp("one")
    ((code, err),) = run(evaluate_argv(tiny_model_dir, yo_slice, work / "cache", work / "run"))
    assert code == 0, err
    return work / "cache", work / "run"


def assert_same(cache: Path, out: Path, reference: tuple[Path, Path]) -> None:
    mine, rows = cached_vectors(cache)
    ref, ref_rows = cached_vectors(reference[0])
    assert mine.keys() == ref.keys() and rows == ref_rows == len(ref)  # every text encoded exactly once
    assert len(ref) > 5 * 64  # several units
    for key, vec in ref.items():
        np.testing.assert_allclose(mine[key], vec, rtol=0, atol=1e-6)
    assert comparable(out) == comparable(reference[1])


def test_two_gloo_processes_equal_one(yo_slice, tiny_model_dir, tmp_path, one_process):
    results = run(evaluate_argv(tiny_model_dir, yo_slice, tmp_path / "cache", tmp_path / "run"), ranks=2)
    assert [code for code, _ in results] == [0, 0], results
    assert_same(tmp_path / "cache", tmp_path / "run", one_process)


def test_a_rank_killed_midway_leaves_complete_units_and_the_rerun_encodes_only_the_missing(
    yo_slice, tiny_model_dir, tmp_path, one_process
):
    argv = evaluate_argv(tiny_model_dir, yo_slice, tmp_path / "cache", tmp_path / "run")
    killed = run(argv, ranks=2, kill_at=2)  # rank 1 dies as it starts its second unit
    assert killed[1][0] == -signal.SIGKILL and killed[0][0] != 0  # rank 0's barrier fails: its peer is gone
    assert not (tmp_path / "run" / "results.json").exists()
    before = cache_files(tmp_path / "cache")
    written, _ = cached_vectors(tmp_path / "cache")
    assert before and len(written) < len(cached_vectors(one_process[0])[0])  # killed mid-way
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # only complete units
    assert [code for code, _ in run(argv, ranks=2)] == [0, 0]
    after = cache_files(tmp_path / "cache")
    assert {p: after[p] for p in before} == before  # no unit written again
    assert_same(tmp_path / "cache", tmp_path / "run", one_process)


def test_shard_processes_without_a_group_equal_one(yo_slice, tiny_model_dir, tmp_path, one_process):
    argv = evaluate_argv(tiny_model_dir, yo_slice, tmp_path / "cache", tmp_path / "run")
    ((code, err),) = run([*argv, "--shard", "1/2", "--shard-wait", "1"])  # shard 2/2 has not run: 1/2 gives up
    last = err.strip().splitlines()[-1]  # after the libraries' loading messages: the error, one line
    assert code == 2 and last.startswith("hybridir: error: shard 1/2:") and "still missing after 1 s" in last, err
    ((code, err),) = run([*argv, "--shard", "2/2"])  # encodes its share and ends; writes no results
    assert code == 0 and not (tmp_path / "run" / "results.json").exists(), err
    ((code, err),) = run([*argv, "--shard", "1/2"])  # finds every unit: its own from the first try, 2/2's
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "results.json").read_text())["timing"]["texts_encoded"] == 0
    assert_same(tmp_path / "cache", tmp_path / "run", one_process)


def test_index_on_two_gloo_processes_equals_one(yo_slice, tiny_model_dir, tmp_path):
    corpus = yo_slice / "miracl-corpus-v1.0-yo"
    argv = ["index", "--model", str(tiny_model_dir), "--corpus", str(corpus), "--lang", "yo", "--backend", "torch",
            "--shard-size", "64", "--quiet", "--out"]  # fmt: skip
    for out, ranks in (("one", 1), ("two", 2)):
        assert [code for code, _ in run([*argv, str(tmp_path / out)], ranks=ranks)] == [0] * ranks
    for name in ("vectors.npy", "docs.jsonl", "language_means.npz"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert not (tmp_path / "two" / "shards").exists()


@pytest.mark.parametrize("bad", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/2/3"])
def test_bad_shard_values_are_one_line(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # the parser's own one line, before any model loads
        main(["evaluate", "--out", str(tmp_path / "run"), f"--shard={bad}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard" in err and "1 <= I <= N" in err, err
    assert not (tmp_path / "run").exists()


def test_shard_under_torchrun_and_sharding_without_a_cache_are_refused(tmp_path, capsys, monkeypatch, yo_slice,
                                                                       tiny_model_dir):  # fmt: skip
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["evaluate", "--out", str(tmp_path / "a"), "--shard", "1/2"]) == 2
    assert "under torchrun every rank finds its share: drop --shard" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    argv = evaluate_argv(tiny_model_dir, yo_slice, tmp_path / "cache", tmp_path / "b", "--shard", "2/2")
    assert main([a for a in argv if a not in ("--cache-dir", str(tmp_path / "cache"))]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("hybridir: error: sharded encoding") and "give --cache-dir" in last, last
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_units_are_fixed_blocks_and_one_process_owns_them_all(tmp_path):
    keys = [f"{i:040x}" for i in range(10)]
    units = Units(keys, tmp_path, size=4)
    assert len(units) == 3 and units.mine(Shard()) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert units.mine(parse("2/2")) == [[4, 5, 6, 7]]
    units.add([4, 5, 6, 7], np.ones((4, 3), np.float32))
    again = Units(keys, tmp_path, size=4)  # read back from disk
    assert again.refresh() == 2 and again.mine(parse("2/2")) == []
    assert again.vectors([5, 0], 3).tolist() == [[1, 1, 1], [0, 0, 0]]


def test_centred_shards_encode_the_language_means_texts_whole(tiny_model, tmp_path, monkeypatch):
    """The means texts (a few hundred a language) are every rank's own work: shard 1/2 never waits for means units
    that shard 2/2, which makes no means, would have had to write."""
    import hybridir.infra.shards as shards
    from hybridir.encoders.centering import Centering
    from hybridir.encoders.encoding import Encoder

    monkeypatch.setattr(shards, "UNIT", 4)
    source = tmp_path / "means-texts"
    source.mkdir()
    for lang in ("en", "de"):
        (source / f"{lang}.txt").write_text("".join(f"{lang} sentence number {i}\n" for i in range(20)))
    texts, langs = [f"text {i}" for i in range(30)], ["en", "de"] * 15

    def centred(shard: Shard, cache: str, means: str) -> np.ndarray:
        enc = Encoder(tiny_model, cache_dir=tmp_path / cache, backend="torch", show_progress=False, shard=shard,
                      centering=Centering("center", source=str(source), cache=tmp_path / means))  # fmt: skip
        return enc(texts, "passage", langs)

    reference = centred(Shard(), "one", "means-one")
    centred(parse("2/2"), "two", "means-2")
    np.testing.assert_allclose(centred(parse("1/2", wait_s=1), "two", "means-1"), reference, rtol=0, atol=1e-6)
