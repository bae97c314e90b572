"""Atomic outputs: a failed write leaves the previous file (or nothing), never half a file or a stray temp."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hybridir.infra import files


def test_json_with_numpy_and_readable_mode(tmp_path):
    path = files.atomic_write_json(tmp_path / "a" / "r.json", {"x": np.float32(0.5), "v": np.arange(3)})
    assert json.loads(path.read_text()) == {"x": 0.5, "v": [0, 1, 2]}
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_failed_replace_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = files.atomic_write_text(tmp_path / "r.txt", "old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), files.atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with files.atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"w")
    assert (target / "weights.bin").read_bytes() == b"w"
    with files.atomic_dir(target) as tmp:  # replacing an existing directory swaps it in one rename
        (tmp / "v2.bin").write_bytes(b"2")
    assert sorted(p.name for p in target.iterdir()) == ["v2.bin"] and len(list(tmp_path.iterdir())) == 1
