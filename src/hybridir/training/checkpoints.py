"""Training checkpoints: the model, AdamW and scheduler state and the torch RNG entirely in safetensors + JSON,
written atomically so that a ``kill -9`` never leaves half a checkpoint; resume restores exactly that state.

Layout: ``<out>/checkpoints/step-NNNNNN/{model/, optimizer.safetensors, state.json}``; ``state.json`` holds the
run's config, the optimizer's param groups, the scheduler and the loop's counters.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ..infra.files import atomic_dir, atomic_write_json


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state as flat safetensors-ready tensors plus the JSON-able rest (param groups)."""
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            tensors[f"{pid}.{name}"] = val if torch.is_tensor(val) else torch.tensor(val)
    return tensors, {"param_groups": sd["param_groups"]}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, val in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = val
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def checkpoints(out: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    return sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(out: Path, model: Any, opt: torch.optim.Optimizer, sched: Any, config: dict[str, Any],
                    state: dict[str, Any], keep: int) -> None:  # fmt: skip
    """Write ``step-<state.step>`` and drop all but the newest ``keep`` checkpoints."""
    from safetensors.torch import save_file

    tensors, opt_meta = _optimizer_tensors(opt)
    tensors["__torch_rng_state__"] = torch.get_rng_state()
    meta = {"config": config, "optimizer": opt_meta, "scheduler": sched.state_dict(), "state": state}
    with atomic_dir(out / "checkpoints" / f"step-{state['step']:06d}") as tmp:
        model.save(str(tmp / "model"))
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "optimizer.safetensors"))
        atomic_write_json(tmp / "state.json", meta)
    prune(out, keep)


def prune(out: Path, keep: int) -> None:
    """Drop all but the newest ``keep`` checkpoints (also on resume: a kill between a save and its pruning would
    otherwise leave one more than an uninterrupted run)."""
    for old in checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def read_meta(ckpt: Path) -> dict[str, Any]:
    """A checkpoint's ``state.json``: config, optimizer param groups, scheduler, loop counters."""
    return json.loads((ckpt / "state.json").read_text())


def restore(ckpt: Path, opt: torch.optim.Optimizer, sched: Any) -> dict[str, Any]:
    """Load optimizer, scheduler and RNG state from ``ckpt`` (the model is loaded from ``ckpt/model`` by the caller);
    returns the loop's counters."""
    from safetensors.torch import load_file

    meta = read_meta(ckpt)
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("__torch_rng_state__"))
    _load_optimizer(opt, tensors, meta["optimizer"])
    sched.load_state_dict(meta["scheduler"])
    return meta["state"]


def read_log(out: Path, step: int) -> list[dict[str, Any]]:
    """The training log up to ``step`` (a killed run may have logged steps after its last checkpoint)."""
    path = out / "train_log.jsonl"
    if not path.exists():
        return []
    return [r for r in (json.loads(x) for x in path.read_text().splitlines() if x.strip()) if r["step"] <= step]
