"""hybridir.retrieval.ann: IVF-PQ built from vectors on disk reaches exact search's top-10 once re-ranked, shards
merge to exact search, vectors stay memory-mapped, the manifest records recall, bad parameters are one line."""

from __future__ import annotations

import numpy as np
import pytest
from test_index import write_jsonl

from hybridir.cli import main
from hybridir.infra.errors import ConfigError
from hybridir.retrieval import ann
from hybridir.retrieval.exact import exact_search
from hybridir.retrieval.index import build_index, load_index


def clustered(n: int, dim: int = 64, centres: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres (uniform noise would make every neighbour as near as any other)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    x = c[rng.integers(0, centres, n)] / np.sqrt(dim) + 0.5 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> ann.VectorFile:
    path = tmp_path_factory.mktemp("ann") / "vectors.npy"
    np.save(path, clustered(6000))
    return ann.VectorFile(path)


def recall(found: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(w)) / len(w) for f, w in zip(found, want, strict=True)]))


def test_ivfpq_built_block_by_block_and_re_ranked_finds_the_exact_top_10(stored):
    queries = clustered(100, seed=1)
    want = exact_search(queries, ann.scan(stored), 10)[1]
    index, params = ann.build("ivfpq", stored, train_max=3000)
    assert index.ntotal == len(stored) and (params["m"], params["nbits"]) == (8, 8)
    ann.tune(index, nprobe=params["nprobe"])
    plain_pq = recall(index.search(queries, 10)[1], want)
    refined = ann.Refined(index, stored, refine=params["refine"])
    assert recall(refined.search(queries, 10)[1], want) >= 0.95 > plain_pq  # the re-rank is what reaches exact
    check = ann.sample_recall(refined, stored)
    assert check["recall@10"] >= 0.95 and check["recall_queries"] == ann.RECALL_QUERIES


def test_shards_trained_once_merge_to_the_exact_answer(stored):
    queries = clustered(20, seed=2)
    want_s, want = exact_search(queries, ann.scan(stored), 10)
    flat, _ = ann.build_shards("flat", stored, 3)
    got_s, got = flat.search(queries, 10)
    assert [first for first, _ in flat.parts] == [0, 2000, 4000]
    assert np.array_equal(got, want) and np.allclose(got_s, want_s, atol=1e-5)
    pq, params = ann.build_shards("ivfpq", stored, 2, nlist=32)
    refined = ann.Shards([(first, ann.Refined(part, stored, first=first)) for first, part in pq.parts])
    ann.tune(refined, nprobe=32)
    assert recall(refined.search(queries, 10)[1], want) >= 0.95


def test_vector_file_reads_blocks_without_keeping_a_map(stored):
    whole = np.load(stored.path)
    assert np.array_equal(np.vstack([x for _, x in stored.blocks(1000)]), whole)
    block = stored.block(10, 20)
    assert type(block) is np.ndarray and np.array_equal(block, whole[10:20])
    assert np.array_equal(stored.take(np.array([3, 7, 5999])), whole[[3, 7, 5999]])


def test_an_ivfpq_index_is_memory_mapped_records_its_recall_and_finds_the_exact_hits(tiny_model_dir, tmp_path,
                                                                                     capsys):  # fmt: skip
    from test_index import PASSAGES

    corpus = write_jsonl(tmp_path / "corpus.jsonl", PASSAGES)
    build_index(tiny_model_dir, corpus, tmp_path / "flat", show_progress=False)
    exact = load_index(tmp_path / "flat", centering="shift")
    assert main(["index", "--model", str(tiny_model_dir), "--corpus", str(corpus), "--out", str(tmp_path / "pq"),
                 "--index", "ivfpq", "--centering", "shift", "--quiet"]) == 0  # fmt: skip
    assert "recall@10 vs exact search 1.0" in capsys.readouterr().out
    idx = load_index(tmp_path / "pq", nprobe=1, refine=3)  # 3 x 3 candidates: all 8 rows re-ranked
    built = idx.manifest["index"]
    assert built["type"] == "ivfpq" and built["recall@10"] == 1.0 and built["recall_queries"] == len(PASSAGES)
    assert (built["nlist"], built["m"], built["nbits"]) == (1, 4, 3)  # 8 passages x 32 dimensions
    assert isinstance(idx.vectors, np.memmap) and isinstance(idx.faiss, ann.Refined) and idx.faiss.refine == 3
    queries = exact.vectors[:4] + 0.01
    (got_s, got), (want_s, want) = idx.search(queries, 3), exact.search(queries, 3)
    assert np.allclose(got_s, want_s, atol=1e-5)  # re-ranked as centred
    clear = np.abs(want_s) > 1e-3  # a language with one passage centres it to zero: those rows tie at 0
    assert clear.sum() >= 8 and np.array_equal(got[clear], want[clear])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ann.parameters("annoy", 100, 8), "unknown index type 'annoy': use flat, hnsw, ivf, ivfpq"),
    (lambda: ann.parameters("ivfpq", 100, 8, nlist=101), "nlist 101 is not between 1 and the corpus size (100"),
    (lambda: ann.parameters("ivf", 100, 8, nlist=0), "nlist 0 is not between 1"),
    (lambda: ann.parameters("ivfpq", 100, 384, m=7), "PQ m 7 does not divide the dimension 384"),
    (lambda: ann.parameters("ivfpq", 100, 8, nbits=8), "PQ nbits 8: needs 1-12 and at least 2**nbits training"),
    (lambda: ann.parameters("ivfpq", 1, 8), "an ivfpq index needs at least 2 vectors"),
    (lambda: ann.Refined(None, None, refine=0), "refine must be at least 1, got 0"),
])  # fmt: skip
def test_bad_parameters_are_one_line(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_build_options_are_refused_before_the_model_loads(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}])
    for options, message in (
        ({"index": "ivfpq", "nlist": 5}, "nlist 5 is not between 1 and the corpus size (2"),
        ({"index": "hnsw", "nlist": 5}, "--nlist applies to ivf and ivfpq indexes, not to hnsw"),
    ):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            build_index("no-such-model", corpus, tmp_path / "i", show_progress=False, **options)
        assert not (tmp_path / "i").exists()
    np.save(tmp_path / "two.npy", clustered(2))
    with pytest.raises(ConfigError, match="3 shards for 2 vectors"):
        ann.build_shards("flat", ann.VectorFile(tmp_path / "two.npy"), 3)
