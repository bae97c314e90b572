"""Kill -9 harness: ``train``, ``evaluate`` (with the embedding cache), ``merge`` and a small ``study`` are killed at
seeded random points, rerun with the same command, and must end with outputs equal to an uninterrupted run:
bit-identical weights and per-query arrays, results.json / train log / study.json equal up to timing fields.

Every run is ``hybridir.cli.main(argv)`` in a fresh process forked from one interpreter that imported torch and
hybridir once (``_ZYGOTE``), so a run costs its work, not ~10 s of imports on a busy CPU. The number of kill points
per command is ``$HYBRIDIR_KILL_POINTS`` (default 3); each test prints "survived / tried" (pytest -s).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import save_shifted
from test_beir import write_beir
from test_training import LANGS, synthetic_folder

KILL_POINTS = int(os.environ.get("HYBRIDIR_KILL_POINTS", "3"))
# fields that measure time or memory, which differ between any two runs
TIMING = {"timing", "seconds", "total_seconds", "encode_seconds", "scoring_seconds", "finished_at", "train_s",
          "eval_s", "total_s", "pairs_per_second", "seconds_per_step", "wall_seconds", "peak_rss_mb"}  # fmt: skip

_ZYGOTE = r"""
import json, os, sys, traceback
import torch
torch.set_num_threads(1)
import sentence_transformers, hybridir.cli, hybridir.training.loop, hybridir.evaluation.evaluate, hybridir.study  # noqa
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.update(req["env"])
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1); os.dup2(fd, 2)
        import faulthandler; faulthandler.dump_traceback_later(240, exit=True)  # a hung run leaves its stack in the log
        try:
            code = hybridir.cli.main(req["argv"])
        except BaseException:
            traceback.print_exc(); code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    print(json.dumps({"status": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}), flush=True)
"""


class Zygote:
    """Runs ``hybridir`` commands in forked processes and can SIGKILL one while it runs."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), OMP_NUM_THREADS="1",
                   TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # fmt: skip
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)  # fmt: skip

    def _line(self, timeout: float = 300) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "hybridir run timed out"
        return json.loads(self.proc.stdout.readline())

    def run(self, argv: list[str], log: Path, watch: Path, kill_after: float | None = None,
            env: dict[str, str] | None = None) -> tuple[int, float]:  # fmt: skip
        """Run ``hybridir argv`` with ``env`` set; kill it ``kill_after`` seconds after ``watch`` (a directory) gets
        its first entry, unless it finished before. Returns the exit status (-9 when killed) and the seconds from
        that first entry to the end."""
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log), "env": env or {}}) + "\n")
        self.proc.stdin.flush()
        pid = self._line()["pid"]
        seen = None
        while seen is None and not select.select([self.proc.stdout], [], [], 0.005)[0]:
            if watch.is_dir() and any(watch.iterdir()):
                seen = time.perf_counter()
        if kill_after is not None and seen is not None:
            time.sleep(kill_after)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        status = self._line()["status"]
        return status, time.perf_counter() - (seen or time.perf_counter())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


def normalised(obj, root: str):
    """JSON without timing fields, with the attempt's directory replaced by a placeholder."""
    if isinstance(obj, dict):
        return {k: normalised(v, root) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [normalised(v, root) for v in obj]
    return obj.replace(root, "<W>") if isinstance(obj, str) else obj


def snapshot(work: Path) -> dict[str, object]:
    """Every output under ``work/out`` in comparable form: safetensors as tensors, npz as arrays, JSON normalised,
    the training log without its per-step seconds; hidden files (locks, temporaries), plots and markdown are left
    out."""
    from safetensors.numpy import load_file

    out: dict[str, object] = {}
    root = str(work)
    for path in sorted((work / "out").rglob("*")):
        rel = path.relative_to(work / "out").as_posix()
        if (
            not path.is_file()
            or rel.startswith(".")
            or "/." in rel
            or path.suffix in (".png", ".md")
            or path.name == "tokenizer_config.json"
        ):  # holds the tokenizer's last truncation call, not weights
            continue
        if path.suffix == ".safetensors":
            out[rel] = {k: v.tobytes() for k, v in load_file(path).items()}
        elif path.suffix == ".npz":
            with np.load(path) as z:
                out[rel] = {k: z[k].tobytes() for k in z.files}
        elif path.suffix in (".json", ".jsonl"):
            rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.suffix == ".jsonl" \
                else [json.loads(path.read_text())]  # fmt: skip
            out[rel] = normalised(rows, root)
        elif path.suffix in (".csv", ".yaml", ".txt"):
            out[rel] = path.read_text().replace(root, "<W>")
    return out


def env(work: Path) -> dict[str, str]:
    return {"HYBRIDIR_CACHE": str(work / "user-cache")}


def survive_kills(zygote: Zygote, tmp: Path, name: str, argv_for, from_start: bool = False) -> tuple[int, int]:
    """Run ``argv_for(work)`` once whole, then kill -9 + rerun at seeded random points until ``KILL_POINTS`` kills
    landed (at most 3x as many draws; a draw that kills nothing narrows the span to that run's); every rerun must
    equal the whole run. Each attempt has its own user cache (``$HYBRIDIR_CACHE``). Kill points count from the first
    output, or ``from_start`` for a command whose outputs all appear in its last milliseconds. Returns (survived,
    tried)."""
    watch = "." if from_start else "out"  # the attempt's folder is never empty: its clock starts at the fork
    ref = tmp / f"{name}-whole"
    (ref / "out").mkdir(parents=True)
    status, span = zygote.run(argv_for(ref), ref / "log.txt", ref / watch, env=env(ref))
    assert status == 0, (ref / "log.txt").read_text()
    expected = snapshot(ref)
    assert expected, f"{name}: no outputs"
    rng = random.Random(f"{name}-0")
    tried = survived = 0
    for i in range(3 * KILL_POINTS):  # a draw after the run's end kills nothing: draw again
        if tried == KILL_POINTS:
            break
        work = tmp / f"{name}-kill{i}"
        (work / "out").mkdir(parents=True)
        status, took = zygote.run(argv_for(work), work / "log1.txt", work / watch, rng.uniform(0, span), env(work))
        tried += status == -signal.SIGKILL
        if status == 0:  # ran to its end: the whole run was slower (a cold disk cache); draw within this span
            span = min(span, took)
        assert zygote.run(argv_for(work), work / "log2.txt", work / "out", env=env(work))[0] == 0, \
            (work / "log2.txt").read_text()  # fmt: skip
        assert "Traceback" not in (work / "log2.txt").read_text()
        got = snapshot(work)
        assert got.keys() == expected.keys(), f"{name} kill {i}: {sorted(got.keys() ^ expected.keys())}"
        for key in expected:
            assert got[key] == expected[key], f"{name} kill {i}: {key} differs after kill -9 and rerun"
        survived += status == -signal.SIGKILL
    print(f"\nkill -9 harness: {name}: {survived}/{tried} kill points survived ({i + 1} drawn)")
    assert tried >= 1 and survived == tried
    return survived, tried


@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> Path:
    return synthetic_folder(tmp_path_factory.mktemp("faults-data") / "data")


def test_train_survives_kill_9(zygote, tiny_model_dir, train_data, tmp_path):
    def argv(work: Path) -> list[str]:
        return ["train", "--model", str(tiny_model_dir), "--data", str(train_data), "--languages", ",".join(LANGS),
                "--steps", "12", "--batch-size", "6", "--lr", "1e-3", "--save-every", "3", "--dev-fraction", "0.25",
                "--dev-max-items", "20", "--max-passage-length", "48", "--no-show-progress",
                "--out", str(work / "out" / "run")]  # fmt: skip

    survive_kills(zygote, tmp_path, "train", argv)


def test_evaluate_with_embedding_cache_survives_kill_9(zygote, tiny_model_dir, tmp_path):
    beir = write_beir(tmp_path / "toy", n_docs=300)

    def argv(work: Path) -> list[str]:
        return ["evaluate", "--model", str(tiny_model_dir), "--dataset", f"beir:{beir}", "--languages", "en",
                "--backend", "torch",
                "--batch-size", "16", "--no-plots", "--cache-dir", str(work / "cache"),
                "--out", str(work / "out" / "eval")]  # fmt: skip

    survive_kills(zygote, tmp_path, "evaluate", argv)


def test_merge_survives_kill_9(zygote, tiny_model_dir, tmp_path):
    save_shifted(tiny_model_dir, tmp_path / "tuned", 0.5)

    def argv(work: Path) -> list[str]:
        return ["merge", "--model", str(tmp_path / "tuned"), "--start", str(tiny_model_dir), "--weight", "0.3",
                "--out", str(work / "out" / "merged")]  # fmt: skip

    survive_kills(zygote, tmp_path, "merge", argv, from_start=True)


def test_study_survives_kill_9(zygote, tiny_model_dir, train_data, data_root, tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(textwrap.dedent(f"""
        name: faults
        data_dir: "{data_root}"
        grid:
          models: ["{tiny_model_dir}"]
          samplers: [zero-shot, hybrid]
          languages: [de, en]
          steps: [4]
        train: {{data: "{train_data}", batch_size: 4, save_every: 2, dev_max_items: 10, max_passage_length: 48}}
        eval:
          datasets:
            xquad-r: {{languages: [de, en], max_questions: 8, batch_size: 16}}
        """))  # fmt: skip

    def argv(work: Path) -> list[str]:
        return ["study", str(config), "--quiet", "--out", str(work / "out" / "study")]

    survive_kills(zygote, tmp_path, "study", argv)
