"""Sharded encoding: which share of the work units this process encodes, and how the shares meet again.

A work unit is a fixed block of texts in a deterministic order, written to disk atomically when complete: a block
of :data:`UNIT` unique texts of one embedding-cache call (:class:`Units`, used by ``hybridir evaluate``), or one
shard folder of ``hybridir index`` (``--shard-size`` passages). Process ``rank`` of ``world`` encodes the units
``u`` with ``u % world == rank`` that are not complete on disk yet; then the shares meet (:meth:`Shard.settle`):

- under ``torchrun`` (a process group, joined here when none exists: gloo on CPU, NCCL on GPUs) every rank waits at
  a barrier, then reads the others' units from disk; rank 0 alone writes results (evaluate) or joins the index.
- ``--shard i/N`` (1-based, ``1/N`` ... ``N/N``: for a batch scheduler's array job, no process group): shards 2..N
  encode their share and end; shard 1 encodes its own, then waits for the others' units as long as new ones keep
  appearing (``--shard-wait`` seconds without a new one end it with a one-line error; rerun it once they are done).
  Any later run without ``--shard`` encodes whatever is still missing itself.
- one process is ``Shard(0, 1)``: the same code, owning every unit, never waiting.

A rank killed mid-way (``kill -9``) leaves only complete units (atomic renames), so rerunning the same command
encodes just the missing ones. The units live in the embedding cache (``--cache-dir``) or the index folder, which
must be on a filesystem every rank sees.

Example::

    shard = resolve(None)                      # Shard(rank, world) under torchrun, else Shard(0, 1)
    units = Units(keys, folder)                # what the cache already holds
    for rows in units.mine(shard):
        units.add(rows, encode(rows))          # one sealed file per unit
    complete = shard.settle(units.refresh, "embedding units")
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, HybridIRError
from .integrity import read_sealed, write_sealed

if TYPE_CHECKING:  # numpy is imported where vectors are handled: the CLI's parser imports this module
    import numpy as np

#: texts per work unit: a block of the embedding cache, and the default shard of ``hybridir index`` (small enough
#: that a kill loses little, large enough to batch well)
UNIT = 4096
#: how long shard 1/N waits without a new unit from the other shards (seconds), and how often it looks
WAIT_S, POLL_S = 600.0, 2.0
#: a rank waits at the barrier while the others finish their share: a rerun after a kill can leave one rank all the
#: missing units, so the process group's timeout is long
BARRIER_TIMEOUT = timedelta(hours=12)


class ShardError(HybridIRError):
    """Shard 1/N waited in vain for units of the other shards."""


@dataclass(frozen=True)
class Shard:
    """This process's share: ``rank`` of ``world`` (0-based), joined by a process group (``group``) or not."""

    rank: int = 0
    world: int = 1
    group: bool = False
    wait_s: float = WAIT_S

    def __str__(self) -> str:
        return f"rank {self.rank}/{self.world}" if self.group else f"shard {self.rank + 1}/{self.world}"

    @property
    def leader(self) -> bool:
        """Rank 0 / shard 1: the process that scores or finalises and writes the results."""
        return self.rank == 0

    @property
    def partial(self) -> bool:
        """A ``--shard`` process other than 1/N: it sees only its own units' vectors, and writes no results."""
        return not self.group and not self.leader

    def label(self, text: str) -> str:
        """A progress bar's description, naming the rank when there are several."""
        return text if self.world == 1 else f"{text} [{self}]"

    def mine(self, unit: int) -> bool:
        return unit % self.world == self.rank

    def settle(self, missing: Callable[[], int], what: str) -> bool:
        """After this process's share: True once ``missing()`` (units not on disk, re-read each call) is 0.

        Under torchrun every rank first waits at a barrier. Shard 1/N polls while the other shards keep adding
        units; ShardError after ``wait_s`` seconds without a new one. Shards 2..N do not wait (False when units
        are missing: they leave the rest to shard 1)."""
        if self.group:
            import torch.distributed as dist

            dist.barrier()
        left, since = missing(), time.monotonic()
        while left and self.leader and not self.group:
            if time.monotonic() - since > self.wait_s:
                raise ShardError(f"{self}: {left} {what} still missing after {self.wait_s:.0f} s without a new one "
                                 "(a shard not started, queued or killed): run the missing shards, or this command "
                                 "without --shard to encode them here")  # fmt: skip
            time.sleep(min(POLL_S, self.wait_s))
            now = missing()
            since, left = (time.monotonic() if now < left else since), now
        if left and self.group and self.leader:
            raise ShardError(f"{self}: {left} {what} missing after every rank finished: run the same command again")
        return not left


def parse(text: str, wait_s: float = WAIT_S) -> Shard:
    """``--shard i/N`` (1-based) as ``Shard(i - 1, N)``; a one-line ConfigError for anything else."""
    i, sep, n = text.partition("/")
    try:
        rank, world = int(i), int(n)
    except ValueError:
        rank = world = 0
    if not sep or not 1 <= rank <= world:
        raise ConfigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, 1-based (1/4, 2/4, 3/4, 4/4)")
    if wait_s < 0:
        raise ConfigError(f"--shard-wait must be at least 0 seconds, got {wait_s:g}")
    return Shard(rank - 1, world, False, wait_s)


def from_env(wait_s: float = WAIT_S) -> Shard:
    """This rank under torchrun (``WORLD_SIZE`` > 1), in the process group that exists or one joined here (NCCL on
    ``LOCAL_RANK``'s GPU, gloo on CPU); ``Shard(0, 1)`` otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard(wait_s=wait_s)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # before the model loads: one GPU a rank
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=BARRIER_TIMEOUT)
        atexit.register(dist.destroy_process_group)
    return Shard(dist.get_rank(), dist.get_world_size(), True, wait_s)


def resolve(spec: str | None, wait_s: float = WAIT_S) -> Shard:
    """``--shard`` when given (refused under torchrun, whose ranks know their share), else :func:`from_env`."""
    if spec is None:
        return from_env(wait_s)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--shard is for separate processes; under torchrun every rank finds its share: drop --shard")
    return parse(spec, wait_s)


def _checked(text: str) -> str:
    """argparse type of ``--shard``: bad values fail with the parser's one line, before any model loads."""
    try:
        parse(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--shard I/N`` and ``--shard-wait`` for a command that encodes (evaluate, index)."""
    parser.add_argument("--shard", type=_checked, default=None, metavar="I/N",
                        help="encode share I of N (1-based) without a process group, e.g. a batch array job; 1/N "
                             "waits for the others and writes the results (docs/distributed.md)")  # fmt: skip
    parser.add_argument(
        "--shard-wait",
        type=float,
        default=WAIT_S,
        metavar="SECONDS",
        help=f"--shard 1/N: give up after this long without a new unit (default {WAIT_S:.0f})",
    )


def from_args(args: argparse.Namespace) -> Shard:
    """The share of a command's process (:func:`resolve` of its ``--shard`` / ``--shard-wait``)."""
    return resolve(args.shard, args.shard_wait)


class Units:
    """One encoding call's unique texts (by key) cut into blocks of ``size``: the embedding cache's work units, and
    the vectors known for them (read from ``folder``'s sealed ``.npz`` files; none without a folder)."""

    def __init__(self, keys: list[str], folder: Path | None, size: int | None = None) -> None:
        self.keys, self.folder, self.size = keys, folder, size or UNIT
        self.known: dict[str, np.ndarray] = {}
        self._wanted = set(keys)
        self._read: set[Path] = set()
        self.refresh()

    def __len__(self) -> int:
        return math.ceil(len(self.keys) / self.size)

    def refresh(self) -> int:
        """Read the cache files not read yet (those failing their checksum are removed); the units still missing."""
        import numpy as np

        if self.folder is not None and self.folder.is_dir():
            new = sorted(set(self.folder.glob("*.npz")) - self._read)
            for path, data in read_sealed(new, "embedding cache").items():
                self._read.add(path)
                with np.load(io.BytesIO(data)) as z:
                    for key, row in zip(z["keys"].tolist(), z["emb"], strict=True):
                        if key in self._wanted:
                            self.known[key] = row
        return sum(bool(self.missing(u)) for u in range(len(self)))

    def missing(self, unit: int) -> list[int]:
        """The rows (indices into ``keys``) of ``unit`` with no vector yet."""
        end = min(len(self.keys), (unit + 1) * self.size)
        return [i for i in range(unit * self.size, end) if self.keys[i] not in self.known]

    def mine(self, shard: Shard) -> list[list[int]]:
        """The missing rows of each unit that ``shard`` encodes."""
        return [rows for u in range(len(self)) if shard.mine(u) and (rows := self.missing(u))]

    def add(self, rows: list[int], emb: np.ndarray) -> None:
        """The vectors of ``rows``, kept and written to the cache as one sealed file named by their keys."""
        import numpy as np

        keys = [self.keys[i] for i in rows]
        self.known.update(zip(keys, emb, strict=True))
        if self.folder is not None:
            buf = io.BytesIO()
            np.savez(buf, keys=np.array(keys), emb=emb.astype(np.float32))
            path = self.folder / f"{hashlib.sha1(''.join(keys).encode()).hexdigest()[:16]}.npz"
            self._read.add(write_sealed(path, buf.getvalue()))

    def vectors(self, order: list[int], dim: int) -> np.ndarray:
        """float32 ``[len(order), dim]``: the vector of ``keys[i]`` for each ``i`` of ``order``; zeros where none is
        known (only in a ``--shard`` process other than 1/N, whose results are never written)."""
        import numpy as np

        out = np.zeros((len(order), dim), dtype=np.float32)
        for j, i in enumerate(order):
            if (vec := self.known.get(self.keys[i])) is not None:
                out[j] = vec
        return out
