"""The ``hybridir`` command: subcommands parse, bad input ends in one line and exit code 2, not a traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import save_shifted

from hybridir.cli import main


def test_every_subcommand_has_help(capsys):
    for command in (
        "models",
        "evaluate",
        "train",
        "merge",
        "means",
        "debias",
        "choose-centering",
        "choose-projection",
        "study",
        "index",
        "search",
        "serve",
    ):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"usage: hybridir {command}" in capsys.readouterr().out


def test_training_names_checked_without_torch_match_the_samplers_and_losses():
    from hybridir.training import config as train_config
    from hybridir.training import losses, sampling

    assert all(issubclass(getattr(sampling, c), sampling.HybridBatchSampler) for c in train_config.SAMPLERS.values())
    assert all(issubclass(losses.objective_class(name), losses.base.Objective) for name in losses.LOSSES)


def test_evaluate_options_are_evalconfig_and_checked_without_torch():
    """`hybridir evaluate`'s options are EvalConfig's fields (one source), --fusion's choices FUSION's keys."""
    from hybridir.cli import build_parser
    from hybridir.evaluation.config import FUSION, EvalConfig, config_from_args

    assert build_parser("evaluate").parse_args(["evaluate", "--fusion", "bm25-rrf"]).fusion in FUSION
    args = build_parser("evaluate").parse_args(["evaluate", "--languages", "en,de", "--no-plots", "--out", "r"])
    config = config_from_args(args, out_dir=Path("runs/r"), show_progress=False)  # as the command sets them
    assert config == EvalConfig(languages=["en", "de"], plots=False, out_dir=Path("runs/r"), show_progress=False)
    assert config_from_args(build_parser("evaluate").parse_args(["evaluate"])) == EvalConfig()
    every = ["--fusion", "bm25", "--data-dir", "d", "--seen-languages", "yo", "--in-domain-topics", "travel",
             "--centering", "center:0.5", "--means-source", "ntrex", "--means-data", "m", "--allow-missing-means",
             "--max-questions", "3", "--batch-size", "8", "--with-context", "--cache-dir", "c", "--backend", "torch",
             "--precision", "fp32"]  # fmt: skip
    assert config_from_args(build_parser("evaluate").parse_args(["evaluate", *every])) == EvalConfig(
        fusion="bm25", data_dir=Path("d"), seen_languages=["yo"], in_domain_topics=["travel"], centering="center:0.5",
        means_source="ntrex", means_data=Path("m"), allow_missing_means=True, max_questions=3, batch_size=8,
        with_context=True, cache_dir=Path("c"), backend="torch", precision="fp32")  # fmt: skip


def test_help_and_argument_errors_import_no_heavy_library():
    """`hybridir --help` and an argument error answer in well under a second (bench/cli_start.py measures it):
    neither torch, transformers, sentence-transformers nor faiss is imported for them."""
    import subprocess
    import sys

    heavy = ("torch", "transformers", "sentence_transformers", "faiss", "openvino")
    probe = ("import sys; from hybridir.cli import main\ntry: main(sys.argv[1:])\nexcept SystemExit: pass\n"
             f"print(sorted(m for m in {heavy!r} if m in sys.modules))")  # fmt: skip
    for argv in (
        ["--help"],
        ["search", "idx", "q", "--k", "many"],
        ["train", "--alpha", "1.5", "--out", "unused"],
        ["serve", "idx", "--port", "99999"],
        ["index", "--corpus", "missing.jsonl", "--out", "x"],
    ):
        out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == "[]", (argv, out.stdout[-300:], out.stderr[-300:])


def test_models_lists_the_offline_default_and_hub_families(capsys):
    assert main(["models"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names[0] == "e5-small" and "e5-small-l4" in names and "labse" in names


def test_bad_train_option_is_one_line_and_exit_2(capsys):
    assert main(["train", "--alpha", "1.5", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hybridir: error:") and "alpha" in err and "\n" not in err


def test_bad_study_file_names_the_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""
        name: bad
        grid: {samplers: [zero-shot, hybrid], alpha: [2.0]}
    """)
    )
    assert main(["study", str(bad), "--list"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "grid.alpha" in err


def test_study_list_shows_every_cell_without_running(tmp_path, capsys):
    config = tmp_path / "s.yaml"
    config.write_text("name: s\ngrid: {samplers: [zero-shot, xx], languages: [en, de], seeds: [0, 1], steps: [2]}\n")
    assert main(["study", str(config), "--list", "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("s: 3 cells") and all(line.startswith("to do") for line in lines[1:])
    assert not (tmp_path / "out").exists()


def test_merge_writes_the_interpolated_checkpoint(tiny_model_dir, tmp_path, capsys):
    import torch

    from hybridir.encoders.models import load_encoder

    save_shifted(tiny_model_dir, tmp_path / "tuned", 1.0)
    args = ["merge", "--model", str(tmp_path / "tuned"), "--start", str(tiny_model_dir), "--out", str(tmp_path / "m")]
    assert main([*args, "--weight", "0.25"]) == 0
    assert "parameters interpolated" in capsys.readouterr().out
    start, merged = load_encoder(str(tiny_model_dir)), load_encoder(str(tmp_path / "m"))
    assert merged.prompts == start.prompts
    for (name, a), b in zip(start.named_parameters(), merged.parameters(), strict=True):
        assert torch.allclose(b, a + 0.25, atol=1e-5), name
    capsys.readouterr()
    assert main([*args, "--weight", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hybridir: error:") and "merge weight" in err and "\n" not in err


def test_library_progress_bars_stay_off_and_quiet_silences_hybridirs_own(tiny_model_dir, tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "Die Katze schläft."}\n{"id": "b", "text": "The cat sleeps."}\n')
    argv = ["index", "--model", str(tiny_model_dir), "--corpus", str(corpus), "--backend", "torch"]
    assert main([*argv, "--out", str(tmp_path / "loud")]) == 0
    err = capsys.readouterr().err
    assert "Loading weights" not in err and "FutureWarning" not in err and "encode" in err, err  # hybridir's bar
    assert main([*argv, "--quiet", "--out", str(tmp_path / "quiet")]) == 0
    err = capsys.readouterr().err
    assert "Loading weights" not in err and "%|" not in err, err


def test_library_warnings_stay_off_the_console_and_hybridirs_own_do_not(capsys, monkeypatch):
    """Every command runs with Python warnings off (torch's TracerWarning, transformers' FutureWarning...), with
    or without --quiet; hybridir's own warnings are printed lines and still show."""
    import warnings

    from hybridir import cli
    from hybridir.infra.errors import warn

    def noisy(args):
        warnings.warn("from a library", FutureWarning, stacklevel=1)
        warnings.warn("traced", UserWarning, stacklevel=1)
        warn("a stale lock was removed")

    monkeypatch.setattr(cli, "_models", noisy)
    assert main(["models"]) == 0
    err = capsys.readouterr().err
    assert "from a library" not in err and "traced" not in err and "a stale lock was removed" in err
    with warnings.catch_warnings(record=True) as seen:  # the filters are restored after the command
        warnings.simplefilter("always")
        warnings.warn("after", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["after"]
