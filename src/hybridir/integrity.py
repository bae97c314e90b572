"""Caches that verify themselves: a SHA-256 stored with every cache file (embedding shards, teacher vectors) and a
``SHA256SUMS`` manifest in every cache folder (exported models).

A cache entry cut short by ``kill -9`` or a full disk, or damaged on disk, fails its checksum; it is reported once
(one warning line), removed and recomputed by the caller, never used. Files written before checksums existed have
none and are treated the same way (recomputed once).

Example::

    write_sealed(folder / "shard.npz", data)           # data + checksum, atomically
    good = read_sealed([folder / "shard.npz"], "embedding cache")   # {path: data} for entries that verify
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import warn
from .files import atomic_write_bytes, atomic_write_text

_TAG = b"\nHYBRIDIR-SHA256 "  # trailer: tag + 64 hex digits of the SHA-256 of everything before it
_TRAILER = len(_TAG) + 64
MANIFEST = "SHA256SUMS"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()


def write_sealed(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` and its checksum trailer atomically (:func:`hybridir.files.atomic_write_bytes`)."""
    return atomic_write_bytes(path, data + _TAG + _sha256(data))


def _unseal(blob: bytes) -> bytes | None:
    body, tag, digest = blob[:-_TRAILER], blob[-_TRAILER : -64], blob[-64:]
    return body if len(blob) >= _TRAILER and tag == _TAG and _sha256(body) == digest else None


def read_sealed(paths: Iterable[Path], what: str) -> dict[Path, bytes]:
    """The contents (without trailer) of every file in ``paths`` whose checksum holds. Files that fail are removed
    and named in one warning line, so the caller recomputes their entries and the warning is not repeated."""
    good: dict[Path, bytes] = {}
    bad: list[Path] = []
    for path in paths:
        try:
            body = _unseal(Path(path).read_bytes())
        except FileNotFoundError:
            continue  # removed by another process meanwhile
        if body is None:
            bad.append(Path(path))
        else:
            good[Path(path)] = body
    if bad:
        for path in bad:
            path.unlink(missing_ok=True)
        warn(f"{len(bad)} {what} file(s) failed their checksum (truncated, corrupt or unverified; first: {bad[0]}); "
             "removed, recomputing")  # fmt: skip
    return good


def seal_dir(folder: str | os.PathLike) -> None:
    """Write ``SHA256SUMS`` over every file under ``folder``; call it last, inside :func:`hybridir.files.atomic_dir`."""
    folder = Path(folder)
    lines = [f"{_sha256(p.read_bytes()).decode()}  {p.relative_to(folder).as_posix()}\n"
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST]  # fmt: skip
    atomic_write_text(folder / MANIFEST, "".join(lines))


def verified_dir(folder: str | os.PathLike, what: str) -> bool:
    """Whether ``folder`` exists and every file its manifest lists has its checksum. A folder that exists but fails
    is reported (one warning line); the caller rebuilds it (``atomic_dir`` replaces it whole)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    try:
        entries = [line.split("  ", 1) for line in (folder / MANIFEST).read_text().splitlines()]
        ok = bool(entries) and all(_sha256((folder / name).read_bytes()).decode() == digest
                                   for digest, name in entries)  # fmt: skip
    except (OSError, ValueError):
        ok = False
    if not ok:
        warn(f"{what} {folder} failed its checksum (truncated, corrupt or unverified); rebuilding it")
    return ok

