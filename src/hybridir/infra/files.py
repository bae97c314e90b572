"""Atomic file output: every result, checkpoint and plot is written to a temporary name, then renamed.

A reader (or a resumed run) therefore sees either the old file or the complete new one, never half of it. A write
that fills the disk leaves no temporary behind and becomes a one-line :class:`DiskSpaceError` naming the directory.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DiskSpaceError


def umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's 0600 would hide results from other users)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def _full_disk_named(path: Path) -> Iterator[None]:
    """Turn ENOSPC into a DiskSpaceError that names the directory and says a rerun resumes. safetensors' Rust
    errors carry no errno, only the OS message, hence the text test."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "errno", None) != errno.ENOSPC and "No space left on device" not in str(exc):
            raise
        raise DiskSpaceError(f"{path.parent}: no space left on device while writing {path.name} (nothing half-written "
                             "was kept); free space and run the same command again to resume") from exc  # fmt: skip


@contextmanager
def _temp_beside(path: Path, stem: str, suffix: str) -> Iterator[tuple[int, str]]:
    """A temporary file (descriptor, name) in ``path``'s directory, so that the rename stays on one file system;
    when the block ends it becomes ``path`` with the mode a plain ``open()`` gives, or is removed on an error."""
    with _full_disk_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.", suffix=suffix)
        try:
            yield fd, tmp
            os.chmod(tmp, umask_mode())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename."""
    path = Path(path)
    with _temp_beside(path, path.name, ".tmp") as (fd, _), os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def as_json(obj: Any) -> Any:
    """``obj`` as read back from the JSON :func:`atomic_write_json` writes (tuples become lists, numpy values
    Python ones), so a stored and a current value compare equal."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays and paths appear in results; make them JSON without callers converting."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_savefig(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (PNG by default)."""
    path = Path(path)
    with _temp_beside(path, path.stem, path.suffix or ".png") as (fd, tmp):
        os.close(fd)
        fig.savefig(tmp, **kwargs)
    return path


def clear_stale_tmp(path: str | os.PathLike) -> None:
    """Remove the temporary siblings :func:`atomic_dir` left for ``path`` when its process was killed. Only for a
    caller that holds the directory's lock, so no live writer owns one of them."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` in one rename.

    If another process created ``path`` meanwhile (a race to build the same cache entry), the
    finished directory already there wins and ours is discarded.
    """
    path = Path(path)
    with _full_disk_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        try:
            yield tmp
            if path.exists():
                old = path.with_name(f".{path.name}.old.{os.getpid()}")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                try:
                    os.replace(tmp, path)
                except OSError:
                    if not path.exists():
                        raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
