"""Batch samplers for X-X, X-Y and hybrid batches (Elmahdy, Lin & Ahmad 2024), usable in sentence-transformers.

The data are a ``DatasetDict`` (or any ``ConcatDataset``) whose parts are keyed ``xx:<lang>`` (queries and passages
in one language) and ``xy:<q>-<p>`` (queries in q, passages in p != q). Each batch is X-X with probability
``alpha``, else X-Y; the key (language or language pair) is drawn in proportion to its size. With
``mixed_languages=True`` every example of a batch draws its own key (still one batch type per batch).

Guarantees, all tested:

- no item twice in a batch (``item_ids`` name the parallel item of each row; its other language versions would
  be false in-batch negatives);
- every random choice comes from one generator seeded with ``seed + epoch``, so the batch sequence is a pure
  function of the seed and ``islice`` resumes it exactly;
- on ``world_size`` processes each step draws one global batch of ``batch_size * world_size`` rows and gives
  every rank one slice, so all ranks share the batch type and key of a step; ``len()`` is exact.

Default ``mixed_languages=False``: the paper's batches hold one language (X-X) or one language pair (X-Y), so the
in-batch negatives share the query's language(s) and the model cannot win by telling languages apart.

Example (sentence-transformers' trainer; ``rank=None`` yields each step's ``world_size`` slices one after
another, which is exactly how accelerate deals batches out to ranks)::

    from functools import partial
    dd, ids = data.to_dataset_dict()     # hybridir.data.training.items.TrainingData
    args = SentenceTransformerTrainingArguments(
        "out", multi_dataset_batch_sampler=partial(HybridBatchSampler, keys=list(dd), item_ids=ids, alpha=0.5))
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterator, Sequence
from itertools import accumulate

import torch
from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler
from torch.utils.data import ConcatDataset

from ..infra.errors import ConfigError


def parse_key(key: str) -> tuple[str, str, str]:
    """``xx:en`` -> ("xx", "en", "en"); ``xy:en-de`` -> ("xy", "en", "de"). X-Y keys must pair two languages. A
    per-source key (``xx:en@afriqa``, ``TrainingData.pools(by_source=True)``) parses as its languages."""
    kind, _, langs = key.split("@", 1)[0].partition(":")
    if kind == "xx" and langs and "-" not in langs:
        return kind, langs, langs
    if kind == "xy":
        q, _, p = langs.partition("-")
        if q and p and q != p:
            return kind, q, p
    raise ConfigError(f"bad sampler key {key!r}: expected 'xx:<lang>' or 'xy:<query lang>-<passage lang>' (two "
                      "different languages)")  # fmt: skip


class HybridBatchSampler(MultiDatasetDefaultBatchSampler):
    """Each step: X-X with probability ``alpha`` else X-Y, key drawn proportionally to its size.

    Args (beyond sentence-transformers' ``dataset``, ``batch_samplers``, ``generator``, ``seed``):
        keys: the name of each part of ``dataset`` (``list(dataset_dict)``).
        alpha: probability of an X-X batch.
        mixed_languages: draw the key per example instead of per batch.
        item_ids: per part, the item of each row (rows with one id never share a batch), as given by
            ``TrainingData.sampler_inputs``. Default: every row is its own item.
        weights: per part, a multiplier of its size in the proportional choice (default 1 each), e.g. to
            weight the sources of a mix (``TrainingData.sampler_inputs(source_weights=...)``).
        num_batches: steps per epoch; default one pass over the X-X rows (the X-Y rows if there are none).
        batch_size: rows per rank; default the first child sampler's.
        world_size, rank: see the module docstring; defaults from ``torch.distributed`` when initialised.
    """

    def __init__(
        self,
        dataset: ConcatDataset,
        batch_samplers: Sequence | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        keys: Sequence[str],
        alpha: float = 0.5,
        mixed_languages: bool = False,
        item_ids: Sequence[Sequence[Hashable]] | None = None,
        weights: Sequence[float] | None = None,
        num_batches: int | None = None,
        batch_size: int | None = None,
        world_size: int | None = None,
        rank: int | None = None,
    ) -> None:
        # The parent's __init__ insists on child samplers; we draw rows ourselves, so set its fields directly.
        self.dataset, self.batch_samplers, self.seed, self.epoch = dataset, list(batch_samplers or []), seed, 0
        self.generator = generator if generator is not None else torch.Generator()
        self.batch_size = batch_size or (self.batch_samplers[0].batch_size if self.batch_samplers else 0)
        self.drop_last = True
        self.alpha, self.mixed = float(alpha), mixed_languages
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.world_size = world_size or (torch.distributed.get_world_size() if dist else 1)
        self.rank = rank
        self.keys = list(keys)
        self.sizes = [len(d) for d in dataset.datasets]
        self.offsets = [0, *accumulate(self.sizes)]
        self.item_ids = (
            [list(ids) for ids in item_ids]
            if item_ids is not None
            else [[(p, r) for r in range(n)] for p, n in enumerate(self.sizes)]
        )
        self.weights = [float(w) for w in weights] if weights is not None else [1.0] * len(self.sizes)
        self._validate()
        self.kinds = [parse_key(k)[0] for k in self.keys]
        n_xx = sum(s for s, k in zip(self.sizes, self.kinds, strict=True) if k == "xx")
        self.num_batches = num_batches or max(1, (n_xx or sum(self.sizes)) // self.global_batch)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def _validate(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.rank is not None and not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} outside world size {self.world_size}")
        if (
            len(self.keys) != len(self.sizes)
            or len(self.item_ids) != len(self.sizes)
            or len(self.weights) != len(self.sizes)
        ):
            raise ConfigError(f"{len(self.sizes)} data parts but {len(self.keys)} keys / {len(self.item_ids)} id lists "
                              f"/ {len(self.weights)} weights")  # fmt: skip
        if not all(w >= 0 for w in self.weights):
            raise ConfigError(f"sampler weights must be >= 0, got {self.weights}")
        kinds = {parse_key(k)[0] for k, n in zip(self.keys, self.sizes, strict=True) if n}
        for kind, p in (("xx", self.alpha), ("xy", 1 - self.alpha)):
            if p > 0 and kind not in kinds:
                raise ConfigError(f"alpha={self.alpha} asks for {kind.upper()} batches but the data have no "
                                  f"'{kind}:' part (monolingual data need alpha=1, i.e. sampler 'xx')")  # fmt: skip
        for key, ids, kind in zip(self.keys, self.item_ids, (parse_key(k)[0] for k in self.keys), strict=True):
            used = self.alpha if kind == "xx" else 1 - self.alpha
            if used and not self.mixed and len(set(ids)) < self.global_batch:
                raise ConfigError(f"part {key!r} has {len(set(ids))} distinct items, fewer than the global batch "
                                  f"{self.global_batch}; lower the batch size or drop that language")  # fmt: skip

    def __len__(self) -> int:
        return self.num_batches * (self.world_size if self.rank is None else 1)

    def __iter__(self) -> Iterator[list[int]]:
        g = self.generator
        g.manual_seed(self.seed + self.epoch)
        self._perms: list[list[int] | None] = [None] * len(self.sizes)
        self._pos = [0] * len(self.sizes)
        for _ in range(self.num_batches):
            rows = self._global_batch(g)
            slices = [rows[r * self.batch_size : (r + 1) * self.batch_size] for r in range(self.world_size)]
            if self.rank is None:
                yield from slices
            else:
                yield slices[self.rank]

    def _global_batch(self, g: torch.Generator) -> list[int]:
        """One step: draw the batch type, then the key(s), then distinct items; returns global row indices."""
        kind = "xx" if float(torch.rand((), generator=g)) < self.alpha else "xy"
        weights = torch.tensor([n * w if k == kind else 0.0
                                for n, w, k in zip(self.sizes, self.weights, self.kinds, strict=True)])  # fmt: skip
        rows: list[int] = []
        seen: set[Hashable] = set()
        part = int(torch.multinomial(weights, 1, generator=g))
        for _ in range(self.global_batch * 20):  # bounded: a part whose items are all in the batch is redrawn
            if len(rows) == self.global_batch:
                return rows
            if self.mixed:
                part = int(torch.multinomial(weights, 1, generator=g))
            row = self._take(part, seen, g)
            if row is not None:
                rows.append(self.offsets[part] + row)
                seen.add(self.item_ids[part][row])
        raise ConfigError(f"could not fill a {kind} batch of {self.global_batch} distinct items; lower the batch size")

    def _take(self, part: int, seen: set[Hashable], g: torch.Generator) -> int | None:
        """Next row of ``part`` in its shuffled order whose item is not in the batch; reshuffles when exhausted
        (one epoch of that part). A skipped row stays in the pass for later batches."""
        ids = self.item_ids[part]
        for attempt in range(2):
            perm, pos = self._perms[part], self._pos[part]
            if perm is None or pos >= len(perm) or attempt:
                perm = torch.randperm(self.sizes[part], generator=g).tolist()
                self._perms[part], pos = perm, 0
            for j in range(pos, len(perm)):
                if ids[perm[j]] not in seen:
                    perm[pos], perm[j] = perm[j], perm[pos]
                    self._pos[part] = pos + 1
                    return perm[pos]
        return None

    def locate(self, index: int) -> tuple[str, int]:
        """Global row index -> (key, row within its part)."""
        part = bisect.bisect_right(self.offsets, index) - 1
        return self.keys[part], index - self.offsets[part]


class XXBatchSampler(HybridBatchSampler):
    """Baseline: every batch X-X (one language per batch unless ``mixed_languages``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "alpha": 1.0})


class XYBatchSampler(HybridBatchSampler):
    """Baseline: every batch X-Y (queries in X, passages in Y != X)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "alpha": 0.0})
