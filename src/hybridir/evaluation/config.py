"""``EvalConfig``: how :func:`~hybridir.evaluation.evaluate.evaluate` runs, and its command-line form.

One list of options serves three places: ``evaluate()``'s keyword arguments build an EvalConfig, ``hybridir
evaluate``'s options are generated from its fields (:func:`add_cli_arguments`, by the rules of
:mod:`hybridir.infra.options`), and a study YAML's ``eval`` section accepts the fields marked ``study``
(:mod:`hybridir.study.config`). Importing this module loads no torch, so ``hybridir --help`` stays fast.

The argparse value types of the evaluation and retrieval commands live here too: :func:`codes` (the generic one,
defined with the option builder) and :func:`centering_arg`, which checks a centering spec and so belongs with the
field that takes it.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..encoders import BACKEND_CHOICES, PRECISION_CHOICES
from ..infra.errors import ConfigError
from ..infra.options import add_arguments, codes, option, values_from_args

if TYPE_CHECKING:
    from ..encoders.centering import CenteringSpec
    from ..infra.shards import Shard

#: ``--fusion`` -> ranx.fuse's (norm, method): "bm25": min-max normalised dense and BM25 scores summed with equal
#: weights, the normalised form of MIRACL's BM25 + mDPR interpolation; "bm25-rrf": reciprocal rank fusion (k = 60),
#: which ignores scores altogether. Here, not in the scoring code, so the command line checks it without torch.
FUSION = {"bm25": ("min-max", "wsum"), "bm25-rrf": (None, "rrf")}


__all__ = ["FUSION", "STUDY_KEYS", "EvalConfig", "add_cli_arguments", "centering_arg", "codes", "config_from_args"]


def centering_arg(text: str) -> str:
    """argparse type: a centering spec (``center:0.5``), checked before any model loads."""
    from ..encoders.centering import CenteringSpec  # numpy: only when a command is given a mode

    try:
        return str(CenteringSpec.parse(text))
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _option(default: Any, help: str | None, *, study: bool = False, **cli: Any) -> Any:
    """A field that is also a ``hybridir evaluate`` option (``cli``: its argparse keywords) and, with ``study``, a
    key of a study's ``eval`` section."""
    return option(default, help, meta={"study": study}, **cli)


@dataclass(frozen=True)
class EvalConfig:
    """Everything but the model and the dataset that an evaluation depends on (``evaluate``'s docstring says what
    each does). The fields made by ``_option`` are ``hybridir evaluate`` options, in the order its ``--help`` lists
    them; ``show_progress`` and ``shard`` are set by the caller (the CLI's ``--shard`` is :mod:`hybridir.infra.shards`).

    Example::

        evaluate("e5-small", "xquad-r", EvalConfig(languages=["en", "de"], max_questions=100))
    """

    fusion: str | None = _option(
        None, "retrieval sets: also run BM25 and fuse it with the dense run (bm25: min-max normalised scores summed, "
        "like MIRACL's hybrid; bm25-rrf: reciprocal rank fusion)", choices=tuple(FUSION))  # fmt: skip
    data_dir: Path | None = _option(None, "data root (default $HYBRIDIR_DATA or ../shared/data)", type=Path)
    out_dir: Path | None = _option(None, "run directory for results.json / results.md / plots", type=Path,
                                   flag="--out", metavar="OUT")  # fmt: skip
    languages: list[str] | None = _option(
        None, "comma-separated subset of languages (flores: short or FLORES codes such as yo or yor_Latn; they also "
        "form its multilingual pool)", study=True, type=codes)  # fmt: skip
    seen_languages: list[str] | None = _option(
        None, "flores: the languages the model was trained on (default: from a hybridir run's train_summary.json; "
        "none for other models)", type=codes)  # fmt: skip
    in_domain_topics: list[str] | None = _option(
        None, "flores: topics counted in-domain for the MRR@10 gap (default: the run's train_topics)", study=True,
        type=codes)  # fmt: skip
    centering: str | CenteringSpec | None = _option(
        None, "language-neutral scoring: none, shift[:lambda] (passages minus their language's mean) or "
        "center[:lambda] (both sides, renormalised); lambda in [0, 2] (default: the choice made on dev data, "
        "docs/studies.md)", type=centering_arg, metavar="MODE[:LAMBDA]")  # fmt: skip
    means_source: str = _option(
        "default", "text the language means are taken from: default (the model folder's own means, else NTREX-128, "
        "else FLORES-200 train), ntrex, flores, or a folder of <lang>.txt", metavar="SOURCE")  # fmt: skip
    means_data: Path | None = _option(
        None,
        "data root holding ntrex-128/ or flores-sib200/ for the language means (default: --data-dir, then "
        "$HYBRIDIR_DATA, then ../shared/data: the first that has a language's text)",
        type=Path,
        metavar="DIR",
    )
    allow_missing_means: bool = _option(
        False,
        "score languages that have no means uncentred, with a warning (default: an error before encoding)",
        action="store_true",
    )
    max_questions: int | None = _option(None, "first N question ids only (quick look)", study=True, type=int)
    batch_size: int = _option(64, None, study=True, type=int)
    with_context: bool = _option(False, "encode candidates with their paragraph (LAReQA)", study=True,
                                 action="store_true")  # fmt: skip
    cache_dir: Path | None = _option(None, "on-disk embedding cache (opt-in)", type=Path)
    plots: bool = _option(True, None, study=True, flag="--no-plots", action="store_false")
    backend: str = _option("auto", "inference path: auto = the fastest path measured faithful on this kind of CPU",
                           choices=BACKEND_CHOICES)  # fmt: skip
    precision: str = _option(
        "auto", "fp32 (torch: the reference), bf16, int8w (openvino: int8 weights), int8 (openvino: static, "
        "calibrated; torch: dynamic); auto follows the backend (docs/metrics.md)",
        choices=PRECISION_CHOICES)  # fmt: skip
    show_progress: bool = True
    shard: Shard | None = None


#: the keys a study's ``eval`` section takes from EvalConfig (the study adds ``datasets`` and ``seeds``)
STUDY_KEYS = frozenset(f.name for f in dataclasses.fields(EvalConfig) if f.metadata.get("study"))


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per EvalConfig field made by ``_option`` (``--max-questions``...). Use with
    :func:`config_from_args`."""
    add_arguments(parser, EvalConfig)


def config_from_args(args: argparse.Namespace, **fixed: Any) -> EvalConfig:
    """EvalConfig from a namespace filled by :func:`add_cli_arguments`; ``fixed``: fields the command sets itself."""
    return EvalConfig(**(values_from_args(EvalConfig, args) | fixed))
