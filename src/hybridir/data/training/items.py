"""The one data model of training: parallel items (one id, a query/passage pair per language) and monolingual
pairs, so that samplers and the training loop never care where text came from (the loaders are
:mod:`.parallel`, :mod:`.qa`, :mod:`.mmarco` and :mod:`.sources`).

Example::

    data = load_ntrex(languages=["en", "de", "th"])     # hybridir.data.training.parallel
    train, dev = data.split(dev_fraction=0.1, seed=0)   # whole documents held out
    train.pools()["xy:en-de"]                           # item indices that have both en and de
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ...infra.errors import ConfigError, DataError


@dataclass(frozen=True)
class Pair:
    """One training example in one language. ``negative`` is an optional hard-negative passage."""

    query: str
    passage: str
    negative: str | None = None


@dataclass
class ParallelItem:
    """One id with a query/passage pair per language (one language for monolingual data).

    ``group`` is the document (NTREX) or paragraph (SQuAD) the item comes from: the held-out split never cuts a
    group, and the sampler never puts two items of one paragraph in a batch (``dedup_key``). ``position`` and
    ``span`` place the query sentence and its passage window inside the group, for ICT hard negatives.
    ``bitext``: query and passage are the same sentence (FLORES), so the item gives X-Y pairs (translations) only;
    an X-X pair would be a sentence retrieving itself. ``source``: the data set it came from (set by
    :class:`TrainingData`), for per-source dev metrics.
    """

    id: str
    pairs: dict[str, Pair]
    group: str
    position: int = 0
    span: tuple[int, int] = (0, 1)
    dedup_key: str = ""
    bitext: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        self.dedup_key = self.dedup_key or self.id


@dataclass
class TrainingData:
    """A list of items plus where they came from; pools, language selection and the held-out split.

    Example::

        data = load_pairs("my_pairs.jsonl")
        data.languages, data.parallel, data.pools()
    """

    items: list[ParallelItem]
    source: str
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.items:
            raise DataError(f"{self.source}: no training items")
        for it in self.items:
            it.source = it.source or self.source

    @classmethod
    def concat(cls, parts: Sequence[TrainingData]) -> TrainingData:
        """Several sources as one (``ntrex+flores``); an id in two sources is an error, never a silent merge."""
        if len(parts) == 1:
            return parts[0]
        seen: dict[str, str] = {}
        items = []
        for k, part in enumerate(parts):
            for it in part.items:
                if seen.setdefault(it.id, part.source) != part.source:
                    raise DataError(f"item id {it.id!r} is in both {seen[it.id]} and {part.source}")
                items.append(dataclasses.replace(it, dedup_key=f"{k}/{it.dedup_key}"))  # dedup within a source
        info = {"sources": {p.source: len(p.items) for p in parts}}
        return cls(items, "+".join(p.source for p in parts), info)

    @property
    def languages(self) -> list[str]:
        return sorted({lang for it in self.items for lang in it.pairs})

    @property
    def parallel(self) -> bool:
        """True when some item has two or more languages, i.e. X-Y batches are possible."""
        return any(len(it.pairs) > 1 for it in self.items)

    def counts(self) -> dict[str, int]:
        """Items per language."""
        out: dict[str, int] = {}
        for it in self.items:
            for lang in it.pairs:
                out[lang] = out.get(lang, 0) + 1
        return dict(sorted(out.items()))

    def pools(self, kinds: Iterable[str] = ("xx", "xy"), by_source: bool = False) -> dict[str, list[int]]:
        """Item indices per sampler key: ``xx:<lang>`` for every language, ``xy:<q>-<p>`` for every ordered pair
        of different languages that share items (a query in q, a passage in p: a language with questions only,
        like AfriQA's, gives X-Y keys but no X-X key). Sizes drive the sampler's proportional choice.
        ``by_source``: one pool per source and key (``xx:en@afriqa``), so a mix can weight its sources."""
        kinds = set(kinds)
        pools: dict[str, list[int]] = {}
        langs = self.languages
        for i, it in enumerate(self.items):
            tag = f"@{it.source}" if by_source else ""
            for q in langs:
                if q not in it.pairs:
                    continue
                if "xx" in kinds and not it.bitext and it.pairs[q].passage:
                    pools.setdefault(f"xx:{q}{tag}", []).append(i)
                if "xy" in kinds:
                    for p in langs:
                        if p != q and p in it.pairs and it.pairs[p].passage:
                            pools.setdefault(f"xy:{q}-{p}{tag}", []).append(i)
        return dict(sorted(pools.items()))

    def sampler_inputs(
        self, kinds: Iterable[str] = ("xx", "xy"), source_weights: Mapping[str, float] | None = None
    ) -> tuple[list[str], list[list[int]], list[list[str]], list[float] | None]:
        """(keys, item indices per key, dedup ids per key, weight per key): what ``HybridBatchSampler`` needs
        beside the rows. With ``source_weights`` (``source`` or ``source:xx`` / ``source:xy`` -> weight, default 1)
        the pools are per source and a key's chance is its size times its weight; without, pools are shared across
        sources (chance by size). Kinds need their own weights because a parallel source has far more X-Y keys
        than X-X keys (NTREX in 17 languages: 17 X-X, 272 X-Y)."""
        sources = {it.source for it in self.items}
        if unknown := {name for name in source_weights or {} if name.split(":")[0] not in sources}:
            raise ConfigError(f"source_weights name {', '.join(sorted(unknown))}, not a source of the data "
                              f"({', '.join(sorted(sources))})")  # fmt: skip
        pools = self.pools(kinds, by_source=bool(source_weights))
        ids = [[self.items[i].dedup_key for i in pool] for pool in pools.values()]
        weights = None
        if source_weights:
            weights = []
            for key, pool in pools.items():
                src, kind = self.items[pool[0]].source, key.split(":")[0]
                weights.append(source_weights.get(f"{src}:{kind}", source_weights.get(src, 1.0)))
        return list(pools), list(pools.values()), ids, weights

    def to_dataset_dict(self, kinds: Iterable[str] = ("xx", "xy"), hard_negatives: bool = False):
        """A ``datasets.DatasetDict`` keyed ``xx:<lang>`` / ``xy:<q>-<p>`` with columns query, passage (and
        negative) for sentence-transformers' trainer, plus the dedup ids to give ``HybridBatchSampler``."""
        from datasets import Dataset, DatasetDict

        from ...training.sampling import parse_key

        keys, pools, ids, _ = self.sampler_inputs(kinds)
        parts = {}
        for key, pool in zip(keys, pools, strict=True):
            _, q, p = parse_key(key)
            cols: dict[str, list[str]] = {"query": [], "passage": []}
            if hard_negatives:
                cols["negative"] = []
            for i in pool:
                ex = self.example(i, q, p)
                cols["query"].append(ex.query)
                cols["passage"].append(ex.passage)
                if hard_negatives:
                    cols["negative"].append(self.hard_negative(i, p, {i}))
            parts[key] = Dataset.from_dict(cols)
        return DatasetDict(parts), ids

    def select(self, languages: Sequence[str]) -> TrainingData:
        """Keep only ``languages``; a requested language absent from the data is an error, not a silent skip."""
        have = set(self.languages)
        missing = [lang for lang in languages if lang not in have]
        if missing:
            raise DataError(
                f"{self.source}: requested language(s) {', '.join(missing)} not in the data "
                f"(it has: {', '.join(sorted(have))})"
            )
        keep = set(languages)
        items = []
        for it in self.items:
            pairs = {lang: p for lang, p in it.pairs.items() if lang in keep}
            if pairs:
                items.append(dataclasses.replace(it, pairs=pairs))
        return TrainingData(items, self.source, dict(self.info))

    def split(self, dev_fraction: float, seed: int = 0) -> tuple[TrainingData, TrainingData | None]:
        """Hold out ``dev_fraction`` of the groups (whole documents), chosen by ``seed``; returns (train, dev)."""
        if not 0 <= dev_fraction < 1:
            raise ConfigError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
        groups = sorted({it.group for it in self.items})
        n_dev = math.ceil(dev_fraction * len(groups)) if dev_fraction > 0 else 0
        if n_dev >= len(groups):
            raise DataError(f"{self.source}: only {len(groups)} group(s); cannot hold out {dev_fraction:.0%}")
        if n_dev == 0:
            return self, None
        dev_groups = set(np.random.default_rng(seed).permutation(groups)[:n_dev].tolist())
        train = [it for it in self.items if it.group not in dev_groups]
        dev = [it for it in self.items if it.group in dev_groups]
        info = dict(self.info, dev_groups=sorted(dev_groups))
        return TrainingData(train, self.source, info), TrainingData(dev, f"{self.source} (dev)", info)

    def example(self, item: int, query_lang: str, passage_lang: str) -> Pair:
        """The (query in ``query_lang``, passage in ``passage_lang``) pair of one item."""
        it = self.items[item]
        q, p = it.pairs[query_lang], it.pairs[passage_lang]
        return Pair(q.query, p.passage, p.negative)

    def hard_negative(self, item: int, lang: str, exclude: set[int]) -> str:
        """A hard negative passage in ``lang`` for ``item``: its own one if the data has it, else (ICT) the window
        nearest to the query sentence in the same document that does not contain it, else the next item's passage.
        Items in ``exclude`` (the batch) are skipped so a negative is never another example's positive.
        Deterministic: no randomness beyond the sampler's."""
        it = self.items[item]
        if it.pairs[lang].negative:
            return it.pairs[lang].negative
        # Windows of neighbouring items can be identical texts: ban the batch's passages by text, not by index.
        banned = {self.items[j].pairs[lang].passage for j in exclude if lang in self.items[j].pairs}
        best, best_d = None, None
        for j in self._by_group.get(it.group, []):
            other = self.items[j]
            if (
                lang not in other.pairs
                or other.pairs[lang].passage in banned
                or other.span[0] <= it.position < other.span[1]
            ):
                continue
            d = abs(other.position - it.position)
            if best_d is None or d < best_d:
                best, best_d = j, d
        if best is None:
            n = len(self.items)
            best = next((j % n for j in range(item + 1, item + n) if lang in self.items[j % n].pairs
                         and self.items[j % n].pairs[lang].passage not in banned
                         and self.items[j % n].dedup_key != it.dedup_key), None)  # fmt: skip
            if best is None:
                raise DataError(f"{self.source}: no possible hard negative for item {it.id!r} in {lang}")
        return self.items[best].pairs[lang].passage

    @cached_property
    def _by_group(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, it in enumerate(self.items):
            groups.setdefault(it.group, []).append(i)
        return groups
