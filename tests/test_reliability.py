"""One writer per directory (locks), caches that verify themselves, and a full disk: each case ends in one line,
leaves no half-written file, and the rerun of the same command works. The kill -9 harness is tests/test_faults.py."""

from __future__ import annotations

import errno
import io
import json
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from test_beir import write_beir
from test_study import BASE, write_yaml
from test_training import synthetic_folder, tiny_config

from hybridir.cli import main
from hybridir.encoders.encoding import Encoder
from hybridir.infra.errors import DiskSpaceError, LockError
from hybridir.infra.integrity import read_sealed, seal_dir, verified_dir, write_sealed
from hybridir.infra.locks import LOCK_NAME, DirLock
from hybridir.training.loop import train


def one_line_error(capsys, *words: str) -> str:
    """The last stderr line (above it only library progress bars) is the error; no traceback."""
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith("hybridir: error:") and err.count("hybridir: error") == 1 and "Traceback" not in err, err
    assert all(w in line for w in words), line
    return line


# ------------------------------------------------------------------------------------------------------------ locks
def test_study_on_a_directory_another_command_holds_is_a_one_line_error(tmp_path, capsys, fakes):
    """Other study processes are welcome (they share the cells, tests/test_study.py); another command is not."""
    config, out = write_yaml(tmp_path, BASE), tmp_path / "out"
    with DirLock(out, "evaluate"):
        assert main(["study", str(config), "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, str(out), "in use by hybridir evaluate", "pid")
    assert fakes.train_calls == [] and not (out / "cells").exists()


def test_train_and_evaluate_refuse_a_locked_run_directory(tmp_path, tiny_model_dir, capsys):
    with DirLock(tmp_path / "run", "train"), pytest.raises(LockError, match="in use by hybridir train"):
        train(tiny_config(tiny_model_dir, synthetic_folder(tmp_path / "data"), tmp_path / "run"))
    with DirLock(tmp_path / "eval", "evaluate"):
        assert main(["evaluate", "--model", str(tiny_model_dir), "--dataset", f"beir:{write_beir(tmp_path / 'b')}",
                     "--out", str(tmp_path / "eval"), "--backend", "torch"]) == 2  # fmt: skip
    one_line_error(capsys, "in use by hybridir evaluate")


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, capsys, fakes):
    config, out = write_yaml(tmp_path, BASE), tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 7, "host": "gone", "command": "study"}))
    assert main(["study", str(config), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("taking over the lock of hybridir study (pid 4194311 on gone)") == 1
    assert (out / "study.json").is_file() and not (out / LOCK_NAME).exists()  # released at the end


def test_lock_is_released_on_error_and_reentry_works(tmp_path):
    with pytest.raises(RuntimeError), DirLock(tmp_path, "train"):
        raise RuntimeError("crash")
    with DirLock(tmp_path, "train") as lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "train" and lock.fd is not None


# ------------------------------------------------------------------------------------------------- corrupt caches
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "bit flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    else:  # "no checksum": a shard written before checksums existed
        path.write_bytes(data[: data.rindex(b"\nHYBRIDIR-SHA256 ")])


@pytest.mark.parametrize("how", ["truncated", "bit flip", "no checksum"])
def test_damaged_embedding_shard_is_reported_once_and_recomputed(tiny_model, tmp_path, capsys, how):
    texts = [f"text number {i}" for i in range(20)]
    fresh = Encoder(tiny_model, cache_dir=tmp_path, backend="torch", show_progress=False)(texts, "passage")
    (shard,) = tmp_path.rglob("*.npz")
    _damage(shard, how)
    capsys.readouterr()
    enc = Encoder(tiny_model, cache_dir=tmp_path, backend="torch", show_progress=False)
    np.testing.assert_array_equal(enc(texts, "passage"), fresh)
    assert enc.encoded == 20 and enc.from_cache == 0  # the damaged rows were never used
    enc(texts, "passage")
    err = capsys.readouterr().err
    assert err.count("embedding cache file(s) failed their checksum") == 1 and enc.from_cache == 20


def test_damaged_teacher_vector_cache_is_recomputed(tiny_model, tmp_path, capsys):
    from hybridir.training.teacher import frozen_vectors

    texts = ["one", "two", "three"]
    first = frozen_vectors(tmp_path, "fp", texts, "query", 16, lambda: tiny_model)
    (path,) = tmp_path.rglob("*.npz")
    _damage(path, "truncated")
    again = frozen_vectors(tmp_path, "fp", texts, "query", 16, lambda: tiny_model)
    np.testing.assert_array_equal(first, again)
    assert "embedding cache file(s) failed their checksum" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["truncated", "bit flip", "missing file", "no manifest"])
def test_export_folder_that_fails_its_manifest_is_rebuilt(tmp_path, capsys, how):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.xml").write_text("<xml/>")
    (folder / "model.bin").write_bytes(bytes(range(256)) * 4)
    seal_dir(folder)
    assert verified_dir(folder, "OpenVINO export")
    {"truncated": lambda: _damage(folder / "model.bin", "truncated"),
     "bit flip": lambda: _damage(folder / "model.bin", "bit flip"),
     "missing file": lambda: (folder / "model.xml").unlink(),
     "no manifest": lambda: (folder / "manifest.json").unlink()}[how]()  # fmt: skip
    assert not verified_dir(folder, "OpenVINO export")
    assert capsys.readouterr().err.count("failed its checksum") == 1


def test_openvino_export_cache_is_rebuilt_when_corrupt(tiny_model, tmp_path, capsys):
    from hybridir.encoders.encoding import openvino_available, openvino_model

    if not openvino_available():
        pytest.skip("openvino not installed")
    xml = openvino_model(tiny_model, "fp", tmp_path)
    _damage(xml.with_suffix(".bin"), "truncated")
    assert openvino_model(tiny_model, "fp", tmp_path) == xml and verified_dir(xml.parent, "OpenVINO export")
    assert "OpenVINO export" in capsys.readouterr().err


def test_sealed_bytes_round_trip(tmp_path):
    write_sealed(tmp_path / "a.bin", b"payload")
    assert read_sealed([tmp_path / "a.bin", tmp_path / "gone.bin"], "x") == {tmp_path / "a.bin": b"payload"}


# ------------------------------------------------------------------------------------------------------ full disk
Usage = namedtuple("Usage", "total used free")


def test_training_checks_free_space_first(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("hybridir.infra.space.shutil.disk_usage", lambda p: Usage(10**9, 10**9, 2**20))
    data, out = synthetic_folder(tmp_path / "data"), tmp_path / "run"
    args = ["train", "--model", str(tiny_model_dir), "--data", str(data), "--languages", "en,de,th", "--steps", "4",
            "--batch-size", "6", "--out", str(out), "--no-show-progress"]  # fmt: skip
    assert main(args) == 2
    one_line_error(capsys, str(out), "needs", "MB free, only 1.0 MB is free", "trainable")
    assert not (out / "checkpoints").exists()


def test_embedding_cache_checks_free_space_before_encoding(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr("hybridir.infra.space.shutil.disk_usage", lambda p: Usage(10**9, 10**9, 1000))
    enc = Encoder(tiny_model, cache_dir=tmp_path / "cache", backend="torch", show_progress=False)
    with pytest.raises(DiskSpaceError, match=r"the embedding cache needs .* MB free, only 0.0 MB is free"):
        enc(["a", "b"], "query")
    assert enc.encoded == 0


def test_enospc_in_a_checkpoint_leaves_nothing_half_written_and_the_rerun_resumes(tiny_model_dir, tmp_path,
                                                                                  monkeypatch):  # fmt: skip
    import safetensors.torch
    from safetensors.numpy import load_file

    data = synthetic_folder(tmp_path / "data")
    whole = train(tiny_config(tiny_model_dir, data, tmp_path / "whole", steps=8, save_every=2))
    real, calls = safetensors.torch.save_file, []

    def full_disk(tensors, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint's optimizer file
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    cut = tiny_config(tiny_model_dir, data, tmp_path / "cut", steps=8, save_every=2)
    with pytest.raises(DiskSpaceError, match=r"cut/checkpoints: no space left on device while writing step-000004"):
        train(cut)
    ckpts = tmp_path / "cut" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000002"]  # no temporary, no half step-000004
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    again = train(cut)
    a, b = load_file(whole / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_enospc_in_an_atomic_write_leaves_no_temporary(tmp_path, monkeypatch):
    from hybridir.infra.files import atomic_write_bytes

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hybridir.infra.files.os.fsync", fsync)
    with pytest.raises(DiskSpaceError, match="no space left on device while writing x.bin"):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_a_real_full_filesystem(tmp_path):
    """A 1 MB tmpfs (needs root; skipped elsewhere): the write fails in one line and leaves the old file intact."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        from hybridir.infra.files import atomic_write_bytes

        atomic_write_bytes(mnt / "cache.npz", b"old")
        with pytest.raises(DiskSpaceError, match="small: no space left on device while writing cache.npz"):
            write_sealed(mnt / "cache.npz", bytes(2 * 2**20))
        assert [p.name for p in mnt.iterdir()] == ["cache.npz"] and (mnt / "cache.npz").read_bytes() == b"old"
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(["k"]), emb=np.zeros((1, 4), np.float32))
        write_sealed(mnt / "cache.npz", buf.getvalue())  # space is back: the rerun's write succeeds
        assert read_sealed([mnt / "cache.npz"], "x")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
