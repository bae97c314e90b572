"""One writer per directory: a lock file naming the holder's pid and host, for run, index and study cell directories.

Two ``hybridir train`` processes on one directory would overwrite each other's checkpoints; the second one gets a
one-line :class:`LockError` instead. The lock is an ``flock`` on ``<dir>/.hybridir.lock``, which the kernel drops
when its process dies, so a lock file left by a killed run (``kill -9``, a crash, a full disk) is taken over with
a warning and rerunning the same command always works. A study locks each cell while it runs it (another study
process on the same directory takes another cell), its shared training runs under a second lock file
(``name``), and its summary files under a short lock that the other study processes wait for (``wait``).

Example::

    with DirLock(out, "train"):
        ...  # only this process writes under out/
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from .errors import LockError, warn

LOCK_NAME = ".hybridir.lock"


class DirLock:
    """Hold ``<directory>/.hybridir.lock`` (created if needed) while the block runs; the file goes on exit, and so
    do the directory and the parents this lock created when they are still empty (a command that failed early).

    ``what`` names the command in the lock file and in the error a second process gets (``study``, ``train``, ...).
    ``name`` is the lock file's name, for a second lock on the same directory. With ``wait`` a lock held by a live
    process of the same ``what`` is waited for (polling every ``poll_s``) instead of refused: for writes that take
    seconds, such as the summary files that every process of a study rewrites (an empty lock file is one whose
    holder is writing it: waited for too); any other holder, or this process itself, is still an error.
    """

    def __init__(
        self, directory: str | os.PathLike, what: str, *, name: str = LOCK_NAME, wait: bool = False,
        poll_s: float = 0.2,
    ) -> None:  # fmt: skip
        self.dir = Path(directory)
        self.path = self.dir / name
        self.what = what
        self.wait = wait
        self.poll_s = poll_s
        self.fd: int | None = None

    def __enter__(self) -> DirLock:
        self.created = [d for d in (self.dir, *self.dir.parents) if not d.exists()]  # removed on exit if still empty
        self.dir.mkdir(parents=True, exist_ok=True)
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                if _dead(holder):  # its process is gone, a forked child of it still holds the flock: break it
                    warn(f"{self.dir}: breaking the lock of hybridir {holder.get('command', '')} (pid "
                         f"{holder.get('pid')}), whose process is gone")  # fmt: skip
                    self.path.unlink(missing_ok=True)
                    continue
                if self.wait and holder.get("command", self.what) == self.what and holder.get("pid") != os.getpid():
                    time.sleep(self.poll_s)
                    continue
                raise LockError(
                    f"{self.dir} is in use by hybridir {holder.get('command', '')} (pid "
                    f"{holder.get('pid', '?')} on {holder.get('host', '?')} since "
                    f"{holder.get('since', '?')}); wait for it, stop it or use another directory"
                ) from None
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                self.fd = fd
            else:  # the previous holder removed the file between our open and flock: lock the new one
                os.close(fd)
        if (stale := _read(self.fd)) and stale.get("pid") != os.getpid():
            warn(
                f"{self.dir}: taking over the lock of hybridir {stale.get('command', '')} (pid "
                f"{stale.get('pid', '?')} on {stale.get('host', '?')}), which ended without releasing it"
            )
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.what,
              "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(me).encode(), 0)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # before unlocking: a waiting process then sees a fresh file
            os.close(self.fd)
            self.fd = None
        for folder in getattr(self, "created", []):  # a command that failed before writing leaves nothing behind
            try:
                folder.rmdir()
            except OSError:  # not empty (the command wrote something) or gone
                break


def lock_holder(directory: str | os.PathLike, name: str = LOCK_NAME) -> dict | None:
    """Who holds ``<directory>/<name>`` (pid, host, command, since), or None when no live process does. Reads the
    file only (never takes the lock, so it cannot get in a taker's way): a lock file whose process is gone, left by
    a killed run, counts as free; a holder on another host counts as live."""
    try:
        info = json.loads((Path(directory) / name).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info and not _dead(info) else None


def _dead(holder: dict) -> bool:
    """Whether the recorded holder was a process of this host that no longer runs (a zombie counts as gone)."""
    if holder.get("host") != socket.gethostname() or not isinstance(pid := holder.get("pid"), int):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _read(fd: int) -> dict:
    """The holder recorded in an open lock file; {} when it is empty or unreadable."""
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
