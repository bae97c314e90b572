"""Training loop: config validation, outputs, checkpoints, exact resume after kill -9, GradCache, real NTREX run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hybridir.infra.errors import ConfigError
from hybridir.training.dev_metrics import dev_metrics
from hybridir.training.loop import TrainConfig, train

LANGS = ["en", "de", "th"]
WORDS = [
    "river",
    "mountain",
    "city",
    "paper",
    "music",
    "garden",
    "winter",
    "market",
    "train",
    "doctor",
    "window",
    "bread",
]


def synthetic_folder(root: Path, n_docs: int = 8, per_doc: int = 8) -> Path:
    """Line-aligned '<lang>.txt' files of word sentences, 'translated' by a per-language prefix."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(WORDS[(i * 7 + k * 5) % len(WORDS)] for k in range(4 + i % 3)) + f" {i}."
             for i in range(n_docs * per_doc)]  # fmt: skip
    for lang in LANGS:
        (root / f"{lang}.txt").write_text("".join(f"{lang}{s}\n" for s in lines))
    (root / "DOCUMENT_IDS.tsv").write_text("".join(f"d{i // per_doc}\n" for i in range(len(lines))))
    return root


def tiny_config(model_dir, data, out, **kw) -> TrainConfig:
    base = dict(model=str(model_dir), data=str(data), languages=LANGS, steps=10, batch_size=6, lr=1e-3,
                save_every=4, out=str(out), show_progress=False, dev_fraction=0.25, dev_max_items=20,
                max_passage_length=48, decorrelate=0.0)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def read_log(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("bad, match", [
    ({"alpha": 1.5}, "alpha"), ({"sampler": "mixed"}, "unknown sampler"), ({"languages": ["en", "English"]},
    "unknown language code"), ({"mini_batch_size": 64}, "mini_batch_size"), ({"batch_size": 1}, "batch_size"),
    ({"languages": ["en"]}, "two languages"), ({"dev_fraction": 1.0}, "dev_fraction")])  # fmt: skip
def test_config_validation(bad, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**bad)
    assert TrainConfig(languages="en,de").languages == ["en", "de"]


def test_train_writes_model_log_summary_and_plots(tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    data = synthetic_folder(tmp_path / "data")
    out = tmp_path / "run"
    final = train(tiny_config(tiny_model_dir, data, out, hard_negatives=True, symmetric=True))
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(1, 11)) and all(r["loss"] > 0 for r in log)
    summary = json.loads((out / "train_summary.json").read_text())
    assert sum(summary["batch_types"].values()) == 10 and set(summary["batch_types"]) <= {"xx", "xy"}
    assert sum(v for k, v in summary["languages"].items() if k.startswith("q:")) == 10 * 6
    assert summary["data"]["dev_items"] == 16 and 0 < summary["dev_start"]["n_items"] <= 16
    assert {"mono_map", "cross_map", "multi_map", "rank_distance"} <= set(summary["dev_end"])
    assert summary["frozen_parameters"] > 0 and summary["pairs_per_second"] > 0
    assert (out / "loss.png").stat().st_size > 0 and (out / "batches.png").stat().st_size > 0
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-000008", "step-000010"]  # keep_checkpoints=2
    assert (out / "checkpoints" / "step-000008" / "optimizer.safetensors").exists()
    assert list((out / "checkpoints" / "step-000008" / "model").glob("*.safetensors"))
    model = SentenceTransformer(str(final), device="cpu")
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    with pytest.raises(ConfigError, match="different configuration"):
        train(tiny_config(tiny_model_dir, data, out, alpha=0.2))


def test_a_saved_run_counts_a_field_it_does_not_name_as_the_value_it_had_then():
    """trajectory_diff: a saved configuration without ``decorrelate`` ran without the term, so it differs from
    today's default (1) and matches a run that says 0; paths and checkpointing never count."""
    import dataclasses

    saved = {k: v for k, v in dataclasses.asdict(TrainConfig()).items() if k != "decorrelate"}
    saved |= {"out": "elsewhere", "save_every": 7}
    assert TrainConfig().trajectory_diff(saved) == {"decorrelate": (0.0, 1.0)}
    assert TrainConfig(decorrelate=0).trajectory_diff(saved) == {}
    assert TrainConfig(decorrelate=0, steps=5).trajectory_diff(saved) == {"steps": (200, 5)}


def test_decorrelation_is_off_with_a_warning_when_the_training_text_has_one_language(capsys):
    from types import SimpleNamespace

    from hybridir.training.loop import _decorrelation

    one = SimpleNamespace(items=[SimpleNamespace(pairs={"de": SimpleNamespace(passage="ein Satz")})] * 3)
    assert _decorrelation(None, one, TrainConfig()) is None
    assert "decorrelate 1 is off for this run: its training text has one language" in capsys.readouterr().err


def test_xx_sampler_on_monolingual_data_and_gradcache(tiny_model_dir, tmp_path):
    data = synthetic_folder(tmp_path / "data")
    out = tmp_path / "run"
    train(tiny_config(tiny_model_dir, data, out, sampler="xx", steps=3, mini_batch_size=2, dev_fraction=0.0))
    log = read_log(out)
    assert all(r["type"] == "xx" for r in log) and len(log) == 3
    assert json.loads((out / "train_summary.json").read_text())["dev_start"] is None


_CHILD = """
import sys, torch
torch.set_num_threads(1)
from hybridir.training.loop import TrainConfig, train
train(TrainConfig(**__import__("json").loads(sys.argv[1])))
"""


def kill_after_checkpoint(config: TrainConfig, step: int, timeout: float = 600) -> int:
    """Run ``config`` in a child process and SIGKILL it as soon as checkpoint ``step`` exists."""
    import dataclasses

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(dataclasses.asdict(config))], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    target = Path(config.out) / "checkpoints" / f"step-{step:06d}"
    deadline = time.time() + timeout
    while not target.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    return child.wait()


def test_resume_after_kill_continues_the_same_batches_and_losses(tiny_model_dir, tmp_path):
    data = synthetic_folder(tmp_path / "data")
    whole = tiny_config(tiny_model_dir, data, tmp_path / "whole", steps=16, save_every=4)
    train(whole)
    cut = tiny_config(tiny_model_dir, data, tmp_path / "cut", steps=16, save_every=4)
    assert kill_after_checkpoint(cut, 4) == -signal.SIGKILL
    done = [p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()]
    assert "step-000016" not in done and not (tmp_path / "cut" / "final").exists()
    train(cut)
    a, b = read_log(tmp_path / "whole"), read_log(tmp_path / "cut")
    assert [r["step"] for r in b] == list(range(1, 17))
    assert [r["keys"] for r in a] == [r["keys"] for r in b]
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-4, abs=1e-5)


def test_two_cpu_processes_on_gloo_share_batches_and_stay_in_sync(tiny_model_dir, tmp_path):
    """torchrun with 2 CPU processes: the process group is joined (gloo), every step has one batch type and key
    on both ranks, passages are gathered across ranks, and averaged gradients keep the weights identical."""
    data, out = synthetic_folder(tmp_path / "data"), tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "hybridir.cli", "train", "--model", str(tiny_model_dir), "--data", str(data), "--languages", "en,de,th",
           "--steps", "6", "--batch-size", "4", "--lr", "1e-3", "--save-every", "3", "--out", str(out),
           "--no-show-progress", "--dev-fraction", "0.25", "--dev-max-items", "10"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    a, b = summary["rank_checksums"]
    assert a == pytest.approx(b, rel=1e-9)
    assert [r["step"] for r in read_log(out)] == list(range(1, 7)) and (out / "final" / "model.safetensors").exists()


def test_dev_metrics_rank_identical_texts_first(tiny_model):
    from hybridir.data.training.items import Pair, ParallelItem, TrainingData

    items = [ParallelItem(str(i), {lang: Pair(f"{w} {i}", f"{w} {i}") for lang in ("en", "de")}, str(i))
             for i, w in enumerate(WORDS)]  # fmt: skip
    m = dev_metrics(tiny_model, TrainingData(items, "toy"))
    assert m["n_items"] == len(WORDS) and 0 < m["mono_map"] <= 1
    assert set(m["per_source"]["toy"]["per_pair"]) == {"en>en", "en>de", "de>en", "de>de"}
    assert m["mono_map"] >= m["cross_map"] - 1e-9  # same text with identical prompts: x-x at least as easy


@pytest.mark.slow
def test_real_ntrex_run_loss_goes_down_and_resumes_after_kill(data_root, tmp_path):
    """e5-small on NTREX en/de/th, batch 8, 16 steps, 32/64 tokens: loss goes down; kill -9 and resume."""
    import torch

    cfg = TrainConfig(model="e5-small", data="ntrex", data_dir=str(data_root), languages=["en", "de", "th"],
                      steps=16, batch_size=8, lr=5e-5, max_query_length=32, max_passage_length=64, save_every=6,
                      out=str(tmp_path / "run"), show_progress=False, dev_max_items=30)  # fmt: skip
    assert kill_after_checkpoint(cfg, 6, timeout=600) == -signal.SIGKILL
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the child: on a shared 2-core box one thread per process is faster
    try:
        train(cfg)
    finally:
        torch.set_num_threads(threads)
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log] == list(range(1, 17))
    losses = [r["loss"] for r in log]
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["dev_start"]["n_items"] == 30 and summary["dev_end"]["cross_map"] > 0.3  # chance: about 0.13


def test_cli_arguments_mirror_the_config():
    import argparse

    from hybridir.training.config import add_cli_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--languages", "en,de", "--alpha", "0.3", "--mini-batch-size", "8",
                                              "--no-freeze-embeddings", "--symmetric"]))  # fmt: skip
    assert cfg.languages == ["en", "de"] and cfg.alpha == 0.3 and cfg.mini_batch_size == 8
    assert cfg.freeze_embeddings is False and cfg.symmetric is True and cfg.steps == TrainConfig().steps
    with pytest.raises(ConfigError):
        config_from_args(parser.parse_args(["--alpha", "2"]))


#: ``hybridir train``'s resolved configuration with no options
DEFAULT_TRAIN = {
    "model": "e5-small", "data": "ntrex+afriqa+iapp-th+cmrc-trial", "data_dir": None, "languages": [
        "ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh", "ha", "ig", "rw", "yo", "zu", "tw", "bem"],
    "train_topics": [], "dev_data": "", "qa_target": "sentence", "source_weights": "auto", "sampler": "hybrid",
    "alpha": 0.5, "loss": "infonce", "distill_weight": 0.0, "teacher": None, "mixed_languages": False, "steps": 200,
    "batch_size": 32, "mini_batch_size": None, "lr": 5e-05, "warmup_ratio": 0.1, "weight_decay": 0.01, "merge": 1.0,
    "max_grad_norm": 1.0, "temperature": 0.01, "symmetric": False, "centered": False, "decorrelate": 1.0,
    "neutral": False, "hard_negatives": False, "freeze_embeddings": True, "freeze_layers": 0, "max_query_length": 32,
    "max_passage_length": 128, "ict_window": 4, "ict_remove_prob": 0.9, "seed": 0, "out": "runs/hybrid",
    "save_every": 50, "keep_checkpoints": 2, "dev_fraction": 0.1, "dev_max_items": 200, "eval_every": 0,
    "early_stopping_patience": 0, "cache_dir": None, "show_progress": True,
}  # fmt: skip


def test_the_default_recipe_leaves_every_default_as_it_was():
    """``hybridir train``, ``hybridir train --recipe qa`` and ``TrainConfig()`` resolve to the same configuration,
    field by field; an option given beside the recipe wins over it."""
    import dataclasses

    from hybridir.cli import build_parser
    from hybridir.training.config import config_from_args

    def parsed(*argv: str) -> TrainConfig:
        return config_from_args(build_parser("train").parse_args(["train", *argv]))

    for cfg in (parsed(), parsed("--recipe", "qa"), TrainConfig()):
        assert dataclasses.asdict(cfg) == DEFAULT_TRAIN
        assert cfg.weights_by_source == {"iapp-th": 3.0, "cmrc-trial": 3.0, "afriqa:xx": 3.0, "afriqa:xy": 100.0}
    mine = parsed("--recipe", "qa", "--data", "ntrex", "--temperature", "0.05", "--languages", "en,de")
    assert (mine.data, mine.temperature, mine.languages, mine.source_weights) == ("ntrex", 0.05, ["en", "de"], "auto")


class _FixedEncoder:
    """Stands in for a SentenceTransformer in dev_metrics: each text's vector is looked up, so ranks are known."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors, self.training, self.max_seq_length = vectors, False, 32

    def encode(self, texts, **kw):
        import numpy as np

        v = np.array([self.vectors[t] for t in texts], dtype=float)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def train(self, mode=True):
        self.training = mode


def test_dev_metrics_mono_cross_multi_and_rank_distance_by_hand():
    """Two items in en/de. Every query finds its passage in its own language first; the de query of item 0 ranks
    item 1's en passage (and de passage) above its own en passage: de->en RR 1/2, multilingual ranks 1 and 4."""
    from hybridir.data.training.items import Pair, ParallelItem, TrainingData

    vec = {"qe0": [1, 0, 0], "qe1": [0, 1, 0], "qd0": [0.5, 0.5, 1], "qd1": [0, 1, 0.1],
           "pe0": [1, 0, 0], "pe1": [0.4, 1, 0], "pd0": [0.9, 0, 1], "pd1": [0, 1, 0.2]}  # fmt: skip
    items = [ParallelItem(str(i), {"en": Pair(f"qe{i}", f"pe{i}"), "de": Pair(f"qd{i}", f"pd{i}")}, str(i))
             for i in range(2)]  # fmt: skip
    m = dev_metrics(_FixedEncoder(vec), TrainingData(items, "toy"))
    pairs = m["per_source"]["toy"]["per_pair"]
    assert pairs["en>en"] == pairs["de>de"] == pairs["en>de"] == 1.0
    assert pairs["de>en"] == pytest.approx(0.75)  # query 0: rank 2, query 1: rank 1
    assert m["mono_map"] == 1.0 and m["cross_map"] == pytest.approx(0.875)
    # multi: de query 0 finds pd0, pd1, pe1, pe0: relevant at 1 and 4 (AP 0.75, distance 3); the others 1 and 2
    assert m["multi_map"] == pytest.approx((1 + (0.75 + 1) / 2) / 2)
    assert m["rank_distance"] == pytest.approx((1 + (3 + 1) / 2) / 2)


def test_bitext_dev_items_have_no_mono_and_never_find_themselves():
    from hybridir.data.training.items import Pair, ParallelItem, TrainingData

    vec = {"e0": [1, 0], "e1": [0, 1], "d0": [1, 0.1], "d1": [0.1, 1]}
    items = [ParallelItem(str(i), {"en": Pair(f"e{i}", f"e{i}"), "de": Pair(f"d{i}", f"d{i}")}, str(i),
                          bitext=True) for i in range(2)]  # fmt: skip
    m = dev_metrics(_FixedEncoder(vec), TrainingData(items, "bi"))
    assert "mono_map" not in m and m["cross_map"] == 1.0 and m["multi_map"] == 1.0 and m["rank_distance"] == 0
    alone = dev_metrics(_FixedEncoder(vec), TrainingData(items, "bi").select(["de"]))  # nothing to find
    assert alone["n_items"] == 2 and not set(alone) & {"mono_map", "cross_map", "multi_map"}


def test_out_that_is_an_existing_file_is_a_one_line_error(tiny_model_dir, tmp_path):
    from hybridir.cli import main

    data, out = synthetic_folder(tmp_path / "data"), tmp_path / "taken"
    out.write_text("not a run\n")
    with pytest.raises(ConfigError, match=r"taken must be a run directory, but .*taken is an existing file"):
        train(tiny_config(tiny_model_dir, data, out))
    assert main(["train", "--model", str(tiny_model_dir), "--data", str(data), "--languages", "en,de",
                 "--out", str(out / "sub"), "--no-show-progress"]) == 2  # fmt: skip


def test_config_rules_for_flores_topics_and_distillation():
    with pytest.raises(ConfigError, match="FLORES gives translation pairs only"):
        TrainConfig(data="flores", sampler="xx", languages=["en"])
    with pytest.raises(ConfigError, match="train_topics"):
        TrainConfig(data="ntrex", train_topics="travel")
    with pytest.raises(ConfigError, match="must include 'en'"):
        TrainConfig(languages=["de", "th"], loss="kd")
    with pytest.raises(ConfigError, match="distill_weight"):
        TrainConfig(loss="kd", distill_weight=0.5)
    assert TrainConfig(data=["ntrex", "flores"], train_topics="travel,health").data == "ntrex+flores"


def test_kd_teacher_that_cannot_be_loaded_says_so(tiny_model_dir, tmp_path):
    from hybridir.infra.errors import ModelError

    data = synthetic_folder(tmp_path / "data")
    cfg = tiny_config(tiny_model_dir, data, tmp_path / "run", distill_weight=1.0, teacher=str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="KD teacher .*nope.* cannot be loaded"):
        train(cfg)


def test_kd_with_gradcache_moves_the_student_towards_the_teacher(tiny_model_dir, tmp_path):
    data = synthetic_folder(tmp_path / "data")
    out = tmp_path / "kd"
    train(tiny_config(tiny_model_dir, data, out, loss="kd", sampler="xy", steps=8, mini_batch_size=2,
                      dev_fraction=0.0))  # fmt: skip
    log = read_log(out)
    assert all(r["type"] == "xy" and "infonce" not in r and r["kd"] == r["loss"] > 0 for r in log)
    assert sum(r["kd"] for r in log[-3:]) < sum(r["kd"] for r in log[:3])
    assert len(list((out / "cache").glob("*/query-32/*.npz"))) == 1


def test_hybrid_plus_distillation_resumes_exactly_from_the_teacher_cache(tiny_model_dir, tmp_path, monkeypatch):
    """A killed hybrid + KD run resumes with the same batches and losses, reading the teacher's vectors from its
    cache: the teacher is never loaded again."""
    import hybridir.training.teacher as teacher

    data = synthetic_folder(tmp_path / "data")
    kw = dict(steps=12, save_every=4, distill_weight=2.0, symmetric=True)
    train(tiny_config(tiny_model_dir, data, tmp_path / "whole", **kw))
    cut = tiny_config(tiny_model_dir, data, tmp_path / "cut", **kw)
    assert kill_after_checkpoint(cut, 4) == -signal.SIGKILL

    def no_teacher(name):
        raise AssertionError("the teacher was loaded although its vectors are cached")

    monkeypatch.setattr(teacher, "load_teacher", no_teacher)
    train(cut)
    a, b = read_log(tmp_path / "whole"), read_log(tmp_path / "cut")
    assert [r["keys"] for r in a] == [r["keys"] for r in b]
    for key in ("loss", "infonce", "kd"):
        assert [r[key] for r in a] == pytest.approx([r[key] for r in b], rel=1e-4, abs=1e-6)
    assert all(r["loss"] == pytest.approx(r["infonce"] + 2.0 * r["kd"], rel=1e-5) for r in a)


def test_merge_interpolates_trained_and_starting_weights_fresh_or_after_the_run(tiny_model_dir, tmp_path):
    """WiSE-FT: final = start + merge x (trained - start) on the trainable weights; the same whether merged at the
    end of the run (start kept in memory) or by re-running a finished run with another merge (start reloaded)."""
    from safetensors.torch import load_file

    def weights(final: Path) -> dict:
        return load_file(str(next(final.rglob("model.safetensors"))))

    data = synthetic_folder(tmp_path / "data")
    start = weights(Path(tiny_model_dir))
    trained = weights(train(tiny_config(tiny_model_dir, data, tmp_path / "a", steps=4, dev_fraction=0.0)))
    half = weights(train(tiny_config(tiny_model_dir, data, tmp_path / "b", steps=4, dev_fraction=0.0, merge=0.5)))
    remerged = weights(train(tiny_config(tiny_model_dir, data, tmp_path / "a", steps=4, dev_fraction=0.0, merge=0.5)))
    assert len(read_log(tmp_path / "a")) == 4  # re-merging did not train again
    moved = [k for k in trained if not trained[k].equal(start[k])]
    assert moved and any("word_embeddings" in k for k in start)
    assert all("word_embeddings" not in k for k in moved)  # frozen
    for k in start:
        expect = start[k] + 0.5 * (trained[k] - start[k]) if start[k].is_floating_point() else start[k]
        assert half[k].allclose(expect, atol=1e-6) and remerged[k].allclose(expect, atol=1e-6), k
    with pytest.raises(ConfigError, match="merge"):
        TrainConfig(merge=1.5)


def test_a_centred_run_resumes_exactly_with_its_running_language_means(tiny_model_dir, tmp_path):
    """InfoNCE on centred vectors (centered_infonce.py): killed after a checkpoint, the run resumes with the running
    means it had saved, so its losses match an unbroken run's."""
    data = synthetic_folder(tmp_path / "data")
    kw = dict(steps=8, save_every=4, centered=True)
    train(tiny_config(tiny_model_dir, data, tmp_path / "whole", **kw))
    cut = tiny_config(tiny_model_dir, data, tmp_path / "cut", **kw)
    assert kill_after_checkpoint(cut, 4) == -signal.SIGKILL
    train(cut)
    a, b = read_log(tmp_path / "whole"), read_log(tmp_path / "cut")
    assert [r["keys"] for r in a] == [r["keys"] for r in b]
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-4, abs=1e-6)
    with pytest.raises(ConfigError, match="centered: InfoNCE only"):
        tiny_config(tiny_model_dir, data, tmp_path / "x", centered=True, symmetric=True).validate()


def test_language_correlation_sees_a_language_offset_and_not_noise():
    import torch

    from hybridir.training.losses.decorrelation import language_correlation

    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(64, 16, generator=gen)
    langs = ["de", "en"] * 32
    offset = noise + torch.tensor([[3.0] * 16 if x == "de" else [0.0] * 16 for x in langs])
    assert float(language_correlation(offset, langs)) > 0.8 > 0.2 > float(language_correlation(noise, langs))


def test_the_decorrelation_term_lowers_language_correlation_and_neutral_saves_the_projection(
        tiny_model_dir, tmp_path, monkeypatch):  # fmt: skip
    """--decorrelate adds the term to the loss each step (logged) and the trained model's passages correlate less
    with their language than without it; --neutral saves the model with the projection inside (Dense + Normalize)
    and its language means taken over the neutral vectors."""
    import torch

    import hybridir.encoders.projection as projection
    from hybridir.encoders.centering import LanguageMeans
    from hybridir.encoders.models import fingerprint, load_encoder
    from hybridir.training.losses.decorrelation import language_correlation

    monkeypatch.setattr(projection, "DEFAULT_RANK", 4)  # the tiny model has 32 dimensions
    data = synthetic_folder(tmp_path / "data")
    plain = train(tiny_config(tiny_model_dir, data, tmp_path / "plain", steps=8, dev_fraction=0.0))
    final = train(tiny_config(tiny_model_dir, data, tmp_path / "dec", steps=8, dev_fraction=0.0, decorrelate=5.0,
                              neutral=True))  # fmt: skip
    log = read_log(tmp_path / "dec")
    assert all("decorrelation" in r and r["loss"] >= r["decorrelation"] * 5.0 - 1e-6 for r in log)
    texts = [f"{lang}{line}" for lang in LANGS for line in (data / "en.txt").read_text().splitlines()[40:56]]
    langs = [lang for lang in LANGS for _ in range(16)]

    def corr(model_dir: Path) -> float:
        model = load_encoder(str(model_dir), device="cpu")
        with torch.no_grad():
            emb = torch.from_numpy(model.encode(texts, prompt_name="passage", normalize_embeddings=True))
        return float(language_correlation(emb, langs))

    proj = projection.Projection.load(final)
    mods = json.loads((final / "modules.json").read_text())
    assert proj.rank == 4 and [m["type"].rsplit(".", 1)[1] for m in mods][-2:] == ["Dense", "Normalize"]
    neutral = load_encoder(str(final), device="cpu")
    assert LanguageMeans.load(final).fingerprint == fingerprint(neutral) != proj.fingerprint
    undecorrelated = train(
        tiny_config(tiny_model_dir, data, tmp_path / "dec", steps=8, dev_fraction=0.0, decorrelate=5.0, neutral=False)
    )  # re-saves the same weights, no projection
    assert corr(undecorrelated) < corr(plain)
