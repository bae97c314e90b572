"""Samplers: alpha share, proportional keys, no duplicate items, X-Y never same-language, determinism, DDP."""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import partial
from itertools import islice
from pathlib import Path

import pytest
import torch
from torch.utils.data import ConcatDataset

from hybridir.infra.errors import ConfigError
from hybridir.training.sampling import HybridBatchSampler, XXBatchSampler, XYBatchSampler, parse_key


def parallel_parts(sizes: dict[str, int], pairs: bool = True):
    """Parts over items 0..n-1 of each language, X-Y parts over the shared items; ids are the item numbers."""
    keys, parts = [], []
    for lang, n in sizes.items():
        keys.append(f"xx:{lang}")
        parts.append(list(range(n)))
    if pairs:
        for q in sizes:
            for p in sizes:
                if q != p:
                    keys.append(f"xy:{q}-{p}")
                    parts.append(list(range(min(sizes[q], sizes[p]))))
    return keys, ConcatDataset(parts), [list(p) for p in parts]


def make(sizes=None, **kw) -> HybridBatchSampler:
    keys, ds, ids = parallel_parts(sizes or {"en": 40, "de": 40, "th": 40})
    kw.setdefault("batch_size", 8)
    return HybridBatchSampler(ds, keys=keys, item_ids=ids, **kw)


def batch_keys(s: HybridBatchSampler, batch: list[int]) -> list[str]:
    return [s.locate(i)[0] for i in batch]


def test_alpha_share_within_tolerance():
    n, alpha = 1500, 0.3
    s = make(alpha=alpha, num_batches=n)
    xx = sum(batch_keys(s, b)[0].startswith("xx") for b in s)
    assert abs(xx / n - alpha) < 4 * math.sqrt(alpha * (1 - alpha) / n)


def test_keys_proportional_to_size():
    sizes = {"en": 100, "de": 200, "th": 400}
    n = 1400
    s = make(sizes, alpha=1.0, num_batches=n)
    counts = Counter(batch_keys(s, b)[0] for b in s)
    total = sum(sizes.values())
    for lang, size in sizes.items():
        p = size / total
        assert abs(counts[f"xx:{lang}"] / n - p) < 4 * math.sqrt(p * (1 - p) / n), counts


@pytest.mark.parametrize("mixed", [False, True])
def test_no_item_twice_in_a_batch(mixed):
    s = make({"en": 12, "de": 12, "th": 12}, alpha=0.5, mixed_languages=mixed, batch_size=10, num_batches=300)
    for b in s:
        items = [s.item_ids[s.keys.index(k)][r] for k, r in map(s.locate, b)]
        assert len(set(items)) == len(items) == 10
        kinds = {k.split(":")[0] for k in batch_keys(s, b)}
        assert len(kinds) == 1  # one batch type per batch, also when mixed
        if not mixed:
            assert len(set(batch_keys(s, b))) == 1


def test_mixed_batches_mix_languages():
    s = make(alpha=1.0, mixed_languages=True, num_batches=20)
    assert any(len(set(batch_keys(s, b))) > 1 for b in s)


def test_xy_never_pairs_a_language_with_itself():
    with pytest.raises(ConfigError):
        parse_key("xy:en-en")
    keys, ds, ids = parallel_parts({"en": 30, "de": 30, "th": 30})
    s = XYBatchSampler(ds, keys=keys, item_ids=ids, batch_size=8, num_batches=200)
    for b in s:
        for key in batch_keys(s, b):
            kind, q, p = parse_key(key)
            assert kind == "xy" and q != p
    assert XXBatchSampler(ds, keys=keys, item_ids=ids, batch_size=8).alpha == 1.0


def test_deterministic_and_resumable():
    a, b, c = list(make(seed=3)), list(make(seed=3)), list(make(seed=4))
    assert a == b and a != c
    assert list(islice(iter(make(seed=3)), 5, None)) == a[5:]  # resume = skip the first steps


def test_exact_length_and_world_slices():
    s = make(world_size=2, rank=None, num_batches=7)
    batches = list(s)
    assert len(batches) == len(s) == 14
    for i in range(0, 14, 2):  # accelerate gives batch 2k to rank 0 and 2k+1 to rank 1: same key in a step
        assert set(batch_keys(s, batches[i])) == set(batch_keys(s, batches[i + 1]))
        assert not {s.locate(j)[1] for j in batches[i]} & {s.locate(j)[1] for j in batches[i + 1]}
    r1 = list(make(world_size=2, rank=1, num_batches=7))
    assert len(r1) == 7 and r1 == batches[1::2]


def test_bad_configuration_is_rejected():
    with pytest.raises(ConfigError, match="alpha"):
        make(alpha=1.5)
    keys, ds, ids = parallel_parts({"en": 30}, pairs=False)
    with pytest.raises(ConfigError, match="xy"):
        HybridBatchSampler(ds, keys=keys, item_ids=ids, batch_size=4, alpha=0.5)
    with pytest.raises(ConfigError, match="distinct items"):
        make({"en": 5, "de": 5}, batch_size=8)


def _ddp_worker(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    s = make(num_batches=25, rank=dist.get_rank())  # world size comes from torch.distributed
    mine = [(batch_keys(s, b)[0], sorted(s.locate(i)[1] for i in b)) for b in s]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, {"len": len(s), "batches": mine})
    if rank == 0:
        Path(out).write_text(json.dumps(gathered))
    dist.destroy_process_group()


def test_ddp_ranks_share_batch_type_and_key(tmp_path):
    out = tmp_path / "ddp.json"
    init = f"file://{tmp_path / 'rendezvous'}"
    torch.multiprocessing.spawn(_ddp_worker, args=(2, init, str(out)), nprocs=2, join=True)
    r0, r1 = json.loads(out.read_text())
    assert r0["len"] == r1["len"] == 25 == len(r0["batches"]) == len(r1["batches"])
    for (k0, i0), (k1, i1) in zip(r0["batches"], r1["batches"], strict=True):
        assert k0 == k1  # same batch type and language (pair) on every rank in a step
        assert not set(i0) & set(i1)  # and no item on two ranks of one step
    assert len({k for k, _ in r0["batches"]}) > 1


def test_plugs_into_sentence_transformers_trainer(tiny_model_dir, tmp_path):
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybridir.data.training.items import Pair, ParallelItem, TrainingData

    items = [ParallelItem(str(i), {lang: Pair(f"{lang} q {i}", f"{lang} passage {i}") for lang in ("en", "de")},
                          str(i)) for i in range(16)]  # fmt: skip
    dd, ids = TrainingData(items, "toy").to_dataset_dict()
    assert set(dd) == {"xx:de", "xx:en", "xy:de-en", "xy:en-de"}
    seen: list = []
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")  # a private copy: training changes it

    class Spy(HybridBatchSampler):
        def __iter__(self):
            for b in super().__iter__():
                seen.append(batch_keys(self, b))
                yield b

    args = SentenceTransformerTrainingArguments(
        str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=4,
        report_to=[],
        save_strategy="no",
        multi_dataset_batch_sampler=partial(Spy, keys=list(dd), item_ids=ids, alpha=0.5),
        use_cpu=True,
    )
    SentenceTransformerTrainer(model=model, args=args, train_dataset=dd,
                               loss=MultipleNegativesRankingLoss(model)).train()  # fmt: skip
    assert len(seen) >= 3 and all(len(set(k)) == 1 for k in seen)
