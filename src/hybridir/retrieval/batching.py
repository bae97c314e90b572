"""Dynamic batching for ``hybridir serve``: requests that arrive while the encoder is busy are encoded together.

A request is put on a bounded queue (full: :class:`Busy`, which the server answers with 503) and gets a future. One
worker thread takes the oldest request, everything queued behind it, and what arrives within ``max_wait_ms``, up to
``max_batch`` requests, and hands them to ``work`` in one call (one encoder pass, one matrix product), as
text-embeddings-inference and Triton batch. The worker is the only caller of ``work``, so an encoder is never used
by two threads at once. A request whose caller has given up (timed out, future cancelled) before its batch starts
is dropped from it; each result goes to the future of the request it was computed for.

Example::

    batcher = Batcher(lambda texts: [t.upper() for t in texts], max_batch=64, max_wait_ms=5)
    print(batcher.submit("hello").result(timeout=1))
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from ..infra.errors import ConfigError

if TYPE_CHECKING:  # concurrent.futures costs ~10 ms to import: the CLI parser reads this module's defaults
    from concurrent.futures import Future

Item = TypeVar("Item")
Result = TypeVar("Result")

#: defaults of ``hybridir serve``: requests per batch, wait for a batch to fill, requests queued, seconds a request
#: waits for its answer
MAX_BATCH, MAX_WAIT_MS, QUEUE_SIZE, TIMEOUT_S = 64, 5.0, 1024, 30.0
#: option -> (lowest, highest)
LIMITS = {"max_batch": (1, 4096), "max_wait_ms": (0, 1000), "queue_size": (1, 1_000_000), "timeout_s": (0.001, 3600)}


def check(option: str, value: float) -> None:
    """A batching option outside its range is one ConfigError line (``option``: a key of :data:`LIMITS`)."""
    low, high = LIMITS[option]
    if not low <= value <= high:
        raise ConfigError(f"--{option.replace('_', '-')} must be between {low} and {high}, got {value:g}")


class Busy(Exception):
    """The queue is full: the caller should answer "try again later" (HTTP 503)."""


class Batcher(Generic[Item, Result]):
    """Runs ``work`` (a list of items -> their results, in order) on batches of submitted items, on one thread."""

    def __init__(self, work: Callable[[list[Item]], list[Result]], *, max_batch: int = MAX_BATCH,
                 max_wait_ms: float = MAX_WAIT_MS, queue_size: int = QUEUE_SIZE) -> None:  # fmt: skip
        for option, value in (("max_batch", max_batch), ("max_wait_ms", max_wait_ms), ("queue_size", queue_size)):
            check(option, value)
        self.work, self.max_batch, self.max_wait = work, max_batch, max_wait_ms / 1000
        self.queue: queue.Queue[tuple[Item, Future[Result]] | None] = queue.Queue(maxsize=queue_size)
        #: batch size -> how many batches of that size ran
        self.sizes: Counter[int] = Counter()
        self._thread = threading.Thread(target=self._run, name="hybridir-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> Future[Result]:
        """``item``'s future result; :class:`Busy` when the queue holds ``queue_size`` requests already."""
        from concurrent.futures import Future

        future: Future[Result] = Future()
        try:
            self.queue.put_nowait((item, future))
        except queue.Full:
            raise Busy(f"server busy: {self.queue.maxsize} queries waiting (--queue-size); retry later") from None
        return future

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        self.queue.put(None)
        self._thread.join()

    def _take(self) -> list[tuple[Item, Future[Result]]] | None:
        """The next batch (None: closed): the oldest request, then others until ``max_batch`` or ``max_wait``."""
        first = self.queue.get()
        if first is None:
            return None
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                left = deadline - time.monotonic()
                nxt = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:  # closing: finish this batch, then stop
                self.queue.put(None)
                break
            batch.append(nxt)
        return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
            if not live:
                continue
            self.sizes[len(live)] += 1
            try:
                results = self.work([item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"{len(live)} requests but {len(results)} results")
            except Exception as e:  # every request of the batch hears of it; the worker goes on
                for _, future in live:
                    future.set_exception(e)
                continue
            for (_, future), result in zip(live, results, strict=True):
                future.set_result(result)
