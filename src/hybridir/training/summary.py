"""What a finished training run leaves beside its model: ``train_summary.json`` (config, batch-type and language
histograms, speed, memory, dev metrics at start and end) and the loss and batch plots."""

from __future__ import annotations

import dataclasses
import math
import resource
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..data.training.items import TrainingData
from ..infra.files import atomic_savefig, atomic_write_json
from .sampling import parse_key


def write_train_summary(out: Path, cfg: Any, log: list[dict[str, Any]], train_data: TrainingData,
                        dev_data: TrainingData | None, world_size: int, state: dict[str, Any], frozen: int,
                        trainable: int) -> None:  # fmt: skip
    """train_summary.json (config, histograms, speed, memory, dev metrics) and the two plots."""
    langs: Counter = Counter()
    for r in log:
        for k, n in r["keys"].items():
            _, q, p = parse_key(k)
            langs[f"q:{q}"] += n
            langs[f"p:{p}"] += n
    timed = [r["seconds"] for r in log[1:]] or [r["seconds"] for r in log]
    sec = float(np.mean(timed)) if timed else math.nan
    summary = {
        "config": dataclasses.asdict(cfg),
        "data": {"source": train_data.source, "sources": train_data.info.get("sources"),
                 "train_items": len(train_data.items),
                 "dev_items": len(dev_data.items) if dev_data else 0,
                 "dev_groups": train_data.info.get("dev_groups", []), "per_language": train_data.counts()},
        "steps": len(log),
        "batch_types": dict(Counter(r["type"] for r in log)),
        "batch_keys": dict(Counter(r["key"] for r in log)),
        "languages": dict(sorted(langs.items())),
        "loss_first": log[0]["loss"] if log else None,
        "loss_parts_last10_mean": {k: float(np.mean([r[k] for r in log[-10:]])) for k in ("infonce", "kd")
                                   if log and k in log[-1]},
        "loss_last10_mean": float(np.mean([r["loss"] for r in log[-10:]])) if log else None,
        "seconds_per_step": sec,
        "world_size": world_size,
        "rank_checksums": state.get("rank_checksums"),
        "pairs_per_second": cfg.batch_size * world_size / sec if sec else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "frozen_parameters": frozen,
        "trainable_parameters": trainable,
        "dev_start": state.get("dev_start"),
        "dev_end": state.get("dev_end"),
        "early_stopping": state.get("early_stopping"),
    }  # fmt: skip
    atomic_write_json(out / "train_summary.json", summary)
    _plots(out, log, summary)


def _plots(out: Path, log: list[dict], summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.array([r["step"] for r in log])
    loss = np.array([r["loss"] for r in log])
    for kind, color in (("xx", "tab:blue"), ("xy", "tab:orange")):
        m = np.array([r["type"] == kind for r in log], dtype=bool)
        if m.any():
            ax.scatter(steps[m], loss[m], s=8, color=color, label=f"{kind.upper()} batch")
    if len(loss) >= 5:
        k = max(5, len(loss) // 20)
        ax.plot(steps[k - 1 :], np.convolve(loss, np.ones(k) / k, mode="valid"), color="black", label=f"mean of {k}")
    ax.set(xlabel="step", ylabel=f"{summary['config']['loss']} loss", title="training loss")
    ax.legend()
    atomic_savefig(fig, out / "loss.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1, 3]})
    types = summary["batch_types"]
    a1.bar(list(types), list(types.values()), color=["tab:blue" if t == "xx" else "tab:orange" for t in types])
    a1.set(title="batch types", ylabel="batches")
    langs = sorted({k[2:] for k in summary["languages"]})
    x = np.arange(len(langs))
    a2.bar(x - 0.2, [summary["languages"].get(f"q:{lang}", 0) for lang in langs], 0.4, label="queries")
    a2.bar(x + 0.2, [summary["languages"].get(f"p:{lang}", 0) for lang in langs], 0.4, label="passages")
    a2.set_xticks(x, langs)
    a2.set(title="examples per language", ylabel="examples")
    a2.legend()
    atomic_savefig(fig, out / "batches.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
