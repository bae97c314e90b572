"""Batched serving: queries arriving together are encoded together, every answer is the one a query alone gets, a
full queue is a 503, a slow answer a 504, and no request is lost or answered with another's results."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_index import write_jsonl
from test_serve import serving

from hybridir.retrieval.batching import Batcher, Busy
from hybridir.retrieval.index import build_index
from hybridir.retrieval.search import Searcher
from hybridir.retrieval.serve import create_app

WORDS = ["river", "city", "capital", "mountain", "Berlin", "Paris", "Rhein", "Hauptstadt", "ville", "fleuve", "首都",
         "河流", "music", "history", "king", "war", "school", "bridge", "island", "lake"]  # fmt: skip


def texts(n: int, seed: int) -> list[str]:
    """``n`` distinct short texts of the fixture words (3-9 words each)."""
    import random

    rng, out = random.Random(seed), []
    while len(out) < n:
        t = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + f" {len(out)}"
        out.append(t)
    return out


@pytest.fixture(scope="module")
def searcher(tiny_model_dir, tmp_path_factory) -> Searcher:
    root = tmp_path_factory.mktemp("batching")
    corpus = write_jsonl(root / "corpus.jsonl", [{"id": f"p{i:03d}", "text": t, "lang": "en"}
                                                 for i, t in enumerate(texts(300, seed=0))])  # fmt: skip
    build_index(tiny_model_dir, corpus, root / "idx", show_progress=False)
    return Searcher(root / "idx")


def get(url: str, query: str, k: int = 10) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}api/search?{urllib.parse.urlencode({'q': query, 'k': k})}", timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_200_queries_sent_concurrently_get_exactly_the_answers_they_get_alone(searcher):
    queries = texts(200, seed=1)
    app = create_app([searcher], k=10, max_batch=64, max_wait_ms=20)
    with serving(app) as url:
        alone = [get(url, q) for q in queries]  # one at a time: every batch holds one query
        assert set(app.state.batcher.sizes) == {1}
        with ThreadPoolExecutor(32) as pool:
            together = list(pool.map(lambda q: get(url, q), queries))
    assert max(app.state.batcher.sizes) > 1  # batches were formed
    for q, (code_a, a), (code_t, t) in zip(queries, alone, together, strict=True):
        assert code_a == code_t == 200 and a["query"] == t["query"] == q  # each answer is its own request's
        ha, ht = a["results"][0]["hits"], t["results"][0]["hits"]
        assert [h["id"] for h in ht] == [h["id"] for h in ha]  # the same ranking
        assert max(abs(x["score"] - y["score"]) for x, y in zip(ha, ht, strict=True)) <= 1e-6
    direct = searcher.scored_as("none").search([queries[0]], 10)[0]  # the library's single-query search (plain)
    assert [h.id for h in direct] == [h["id"] for h in alone[0][1]["results"][0]["hits"]]


class Slow:
    """An encoder that takes ``seconds`` a call: to fill the queue or exceed the timeout on purpose."""

    def __init__(self, encoder, seconds: float) -> None:
        self.encoder, self.seconds = encoder, seconds

    def __call__(self, *args, **kwargs):
        time.sleep(self.seconds)
        return self.encoder(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)


def test_a_full_queue_is_a_503_a_slow_answer_a_504_and_the_server_goes_on(searcher):
    slow = searcher.scored_as("none")
    slow.encoder = Slow(searcher.encoder, 0.5)
    app = create_app([slow], k=5, max_batch=1, max_wait_ms=0, queue_size=2, timeout_s=5)
    with serving(app) as url, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: get(url, f"river {i}"), range(8)))
        codes = [c for c, _ in answers]
        assert codes.count(200) >= 3 and codes.count(503) >= 1 and set(codes) <= {200, 503}
        assert all("server busy" in body["error"] for c, body in answers if c == 503)
        assert all(body["query"] == f"river {i}" for i, (c, body) in enumerate(answers) if c == 200)
    app = create_app([slow], k=5, timeout_s=0.1)
    with serving(app) as url:
        code, body = get(url, "river")
        assert code == 504 and "no answer within 0.1 s" in body["error"]
        slow.encoder.seconds = 0
        time.sleep(0.5)  # the timed-out request's batch has finished
        assert get(url, "river")[0] == 200


def test_the_batcher_keeps_results_with_their_requests_and_bounds_its_batches():
    release = threading.Event()
    seen: list[list[int]] = []

    def work(items: list[int]) -> list[int]:
        release.wait()
        seen.append(items)
        if -1 in items:
            raise ValueError("bad item")
        return [x * x for x in items]

    b = Batcher(work, max_batch=4, max_wait_ms=50, queue_size=6)
    first = b.submit(0)  # taken by the worker, which waits on the event with it
    time.sleep(0.2)
    queued = [b.submit(i) for i in range(1, 7)]
    with pytest.raises(Busy, match="server busy: 6 queries waiting"):
        b.submit(99)
    queued[1].cancel()  # its caller gave up: dropped from its batch
    release.set()
    assert first.result(5) == 0 and [f.result(5) for i, f in enumerate(queued) if i != 1] == [1, 9, 16, 25, 36]
    assert max(map(len, seen)) <= 4 and 2 not in sum(seen, [])
    bad = b.submit(-1)
    with pytest.raises(ValueError, match="bad item"):
        bad.result(5)
    good = b.submit(3)
    assert good.result(5) == 9  # the worker goes on after a failed batch
    b.close()


def test_batching_options_are_checked(searcher):
    from hybridir.infra.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-batch must be between 1 and 4096, got 0"):
        Batcher(lambda x: x, max_batch=0)
    with pytest.raises(ConfigError, match="--timeout-s must be between"):
        create_app([searcher], timeout_s=0)
