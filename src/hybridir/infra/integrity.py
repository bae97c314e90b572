"""Caches that verify themselves: a SHA-256 stored with every cache file (embedding shards, teacher vectors) and a
``manifest.json`` of sizes and SHA-256 sums in every cache folder (exported models, the offline e5-small).

A cache entry cut short by ``kill -9`` or a full disk, or damaged on disk, fails its checksum; it is reported once
(one warning line), removed and recomputed by the caller, never used. Files written before checksums existed have
none and are treated the same way (recomputed once).

Example::

    write_sealed(folder / "shard.npz", data)           # data + checksum, atomically
    good = read_sealed([folder / "shard.npz"], "embedding cache")   # {path: data} for entries that verify
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import warn
from .files import atomic_write_bytes, atomic_write_json

_TAG = b"\nHYBRIDIR-SHA256 "  # trailer: tag + 64 hex digits of the SHA-256 of everything before it
_TRAILER = len(_TAG) + 64
MANIFEST = "manifest.json"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()


def write_sealed(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` and its checksum trailer atomically (:func:`hybridir.infra.files.atomic_write_bytes`)."""
    return atomic_write_bytes(path, data + _TAG + _sha256(data))


def _unseal(blob: bytes) -> bytes | None:
    body, tag, digest = blob[:-_TRAILER], blob[-_TRAILER:-64], blob[-64:]
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


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks (exported models are hundreds of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def seal_dir(folder: str | os.PathLike, **info: Any) -> None:
    """Write ``manifest.json`` (size and SHA-256 of every file under ``folder``, plus ``info``); call it last,
    inside :func:`hybridir.infra.files.atomic_dir`."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}  # fmt: skip
    atomic_write_json(folder / MANIFEST, {**info, "files": files})


def intact_dir(folder: str | os.PathLike) -> bool:
    """Whether every file that ``folder``'s manifest lists is there with its size and SHA-256."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
        return bool(files) and all((p := folder / rel).is_file() and p.stat().st_size == meta["size"]
                                   and file_sha256(p) == meta["sha256"] for rel, meta in files.items())  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return False


def verified_dir(folder: str | os.PathLike, what: str) -> bool:
    """:func:`intact_dir`, reporting a folder that exists but fails (one warning line); the caller rebuilds it
    (``atomic_dir`` replaces it whole)."""
    if intact_dir(folder):
        return True
    if Path(folder).exists():
        warn(f"{what} {folder} failed its checksum (truncated, corrupt or unverified); rebuilding it")
    return False
