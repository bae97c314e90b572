"""Free-space checks before long writes: a run fails at once with one line (the directory, the space needed and
the space free) instead of hours later on ENOSPC.

The estimates are deliberately simple upper bounds, in bytes:

- a checkpoint = the model's weights (4 bytes per parameter) + AdamW's two moments (8 bytes per trainable
  parameter); a run holds ``keep_checkpoints`` of them plus the one being written, then the final model;
- cached vectors = texts x dimension x 4 bytes (float32).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from .errors import DiskSpaceError

SLACK = 16 * 2**20  # tokenizer, configs, logs, results: a few MB on top of the tensors


def checkpoint_bytes(parameters: int, trainable: int) -> int:
    """One checkpoint: fp32 weights plus AdamW's first and second moments of the trainable parameters."""
    return 4 * parameters + 8 * trainable


def training_bytes(parameters: int, trainable: int, steps: int, save_every: int, keep: int) -> int:
    """A whole run: the checkpoints on disk at once (``keep`` + the one being written) and the final model."""
    saves = math.ceil(steps / save_every)
    return min(keep + 1, saves) * checkpoint_bytes(parameters, trainable) + 4 * parameters + SLACK


def vector_bytes(texts: int, dim: int) -> int:
    """float32 vectors of ``texts`` texts."""
    return 4 * texts * dim


def used_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (what a resumed run already holds and will rotate out)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def require_free(directory: str | os.PathLike, needed: int, what: str) -> None:
    """DiskSpaceError unless the filesystem of ``directory`` (or of its nearest existing parent) has ``needed``
    bytes free."""
    path = Path(directory).resolve()
    while not path.exists():
        path = path.parent
    free = shutil.disk_usage(path).free
    if needed > free:
        raise DiskSpaceError(f"{directory}: {what} needs {_size(needed)} free, only {_size(free)} is free; free "
                             "space or choose another directory, then rerun the same command")  # fmt: skip


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"
