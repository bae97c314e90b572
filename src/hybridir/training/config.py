"""``TrainConfig``: everything a training run depends on, validated at construction, and its command-line form.

Kept apart from the loop (:mod:`hybridir.training.loop`) so that the loop reads in one sitting; ``hybridir train``'s
options are generated from the dataclass (:func:`add_cli_arguments`, by the rules of :mod:`hybridir.infra.options`),
so the CLI never drifts from it. The data, languages, source weights and temperature default to a named recipe
(:mod:`.recipes`; ``--recipe``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..data.languages import check_language
from ..data.training.parallel import data_sources
from ..data.training.qa import TARGETS
from ..infra.errors import ConfigError, DataError
from ..infra.files import as_json
from ..infra.options import add_arguments, option, values_from_args
from .losses import LOSSES, uses_teacher
from .recipes import DEFAULT_RECIPE, RECIPES, recipe

#: ``--sampler`` name -> its class in :mod:`.sampling` (looked up there by name, so that checking a training
#: configuration, as `hybridir train` does before anything loads, needs no torch import)
SAMPLERS = {"hybrid": "HybridBatchSampler", "xx": "XXBatchSampler", "xy": "XYBatchSampler"}

#: the default recipe's options (:data:`.recipes.DEFAULT_RECIPE`), TrainConfig's defaults for those fields
_DEFAULTS = RECIPES[DEFAULT_RECIPE].options()

# Fields that may change between a run and its resumption; any other change would alter the trajectory.
# ``merge`` only changes what is saved at the end: a finished run re-run with another value re-merges, no training.
RESUMABLE_FIELDS = {
    "out",
    "data_dir",
    "save_every",
    "show_progress",
    "keep_checkpoints",
    "cache_dir",
    "merge",
    "neutral",
}

#: The value a field absent from a saved run's configuration had in that run, where it is not the field's
#: default now: a run saved before the decorrelation term existed trained without it.
ABSENT_MEANS: dict[str, Any] = {"decorrelate": 0.0}


@dataclass
class TrainConfig:
    """Everything a run depends on; saved into every checkpoint and ``train_summary.json``.

    ``mixed_languages=False`` (default): one language (X-X) or one language pair (X-Y) per batch, as in the
    hybrid-batch paper; in-batch negatives then share the query's language, so language identity cannot be a
    shortcut. ``freeze_embeddings=True`` (default): the 250k x 384 word embedding is 96M of e5-small's 118M
    parameters; freezing it saves about 2 GB of AdamW state and ~20% of step time on CPU, and with a few thousand
    training sentences most of its rows would get no or noisy updates anyway. ``merge < 1`` saves a WiSE-FT
    interpolation of the trained and the starting weights (``_Run.merge_with_start``).

    Example::

        TrainConfig(model="e5-small", data="ntrex", languages=["en", "de"], sampler="hybrid", alpha=0.5)
    """

    model: str = option("e5-small", "registry name (hybridir models), hub id or local checkpoint")
    data: str = option(
        _DEFAULTS["data"],
        "ntrex | flores | DIR of <lang>.txt | FILE.jsonl | FILE.tsv | SQuAD FILE.json | hf:NAME, or several "
        "joined with + (ntrex+flores) (docs/data_formats.md)",
    )
    data_dir: str | None = option(None, "data root (default $HYBRIDIR_DATA or ../shared/data)")
    languages: list[str] = option(_DEFAULTS["languages"], "comma-separated codes")
    train_topics: list[str] = option(
        [],
        "comma-separated FLORES topics to keep (science/technology, travel, politics, sports, health, "
        "entertainment, geography); default all",
    )
    dev_data: str = option(
        "",
        "extra sources whose held-out part joins the dev metrics only (e.g. flores), so that runs with "
        "different --data are selected on the same dev set",
    )
    qa_target: str = option(
        "sentence",
        "QA sources (iapp-th, cmrc-trial, afriqa): the positive is the answer sentence, the sentence "
        "followed by its passage (sentence-context) or the passage",
    )
    source_weights: str = option(
        _DEFAULTS["source_weights"],
        "weight the sources of a mix, e.g. iapp-th=3,afriqa:xy=100 (SOURCE or SOURCE:xx / SOURCE:xy): "
        "a key's chance is its size times its weight; auto: the default recipe's weights for the sources "
        "given (iapp-th=3,cmrc-trial=3,afriqa:xx=3,afriqa:xy=100); empty: pools shared, by size",
    )
    sampler: str = option("hybrid", f"batch sampler: {' | '.join(SAMPLERS)}")
    alpha: float = option(0.5, "hybrid only: probability that a batch is X-X (else X-Y)")
    loss: str = option(
        "infonce",
        f"{' | '.join(LOSSES)}: contrastive (in-batch negatives) or distillation to the teacher's English "
        "vectors (hybridir.training.losses)",
    )
    distill_weight: float = option(
        0.0, "infonce only: add this weight times the KD term (mean squared distance to the teacher)"
    )
    teacher: str | None = option(None, "KD teacher model (default: the starting --model, frozen)")
    mixed_languages: bool = option(False, "mix languages (pairs) within a batch instead of one per batch")
    steps: int = option(200, None)
    batch_size: int = option(32, None)
    mini_batch_size: int | None = option(
        None, "GradCache chunk size: batches larger than memory (CachedMultipleNegativesRankingLoss)", type=int
    )
    lr: float = option(5e-5, None)  # chosen on dev data only (studies/recipe_search.yaml; docs/studies.md)
    warmup_ratio: float = option(0.1, None)
    weight_decay: float = option(0.01, None)
    merge: float = option(
        1.0,
        "WiSE-FT: the saved model is start + MERGE x (trained - start); 1 keeps the trained weights, 0.5 "
        "averages them with the starting model's",
    )
    max_grad_norm: float = option(1.0, None)
    temperature: float = option(_DEFAULTS["temperature"], "InfoNCE temperature (scale = 1 / temperature)")
    symmetric: bool = option(False, "add the passage-to-query InfoNCE direction")
    centered: bool = option(
        False,
        "InfoNCE on per-language centred vectors (running mean query / passage vector of each language "
        "removed, renormalised; centered_infonce.py): train for --centering center scoring",
    )
    decorrelate: float = option(
        1.0,
        "weight of the language-decorrelation term (mean |correlation| between embedding dimensions and "
        "language over a probe of 8 languages x 4 training passages a step; losses/decorrelation.py), chosen on "
        "dev data (reports/decorrelation_choice.md); 0 = off; a run on one language trains without it",
    )
    neutral: bool = option(
        False,
        "save the model with its language-neutral projection inside (hybridir debias: Dense + Normalize "
        "modules, the dev-chosen rank), after any --merge",
    )
    hard_negatives: bool = option(False, "add one ICT hard negative per pair")
    freeze_embeddings: bool = option(True, "freeze the word embedding (less memory, faster steps on CPU)")
    freeze_layers: int = option(
        0, "freeze the first N transformer layers (and the embedding block) so training moves only the top"
    )
    max_query_length: int = option(32, None)
    max_passage_length: int = option(128, None)
    ict_window: int = option(4, "inverse cloze task: sentences per passage window")
    ict_remove_prob: float = option(
        0.9, "inverse cloze task: probability that the query sentence is removed from its passage"
    )
    seed: int = option(0, None)
    out: str = option("runs/hybrid", None)
    save_every: int = option(50, "checkpoint every N steps (resume continues from the last one)")
    keep_checkpoints: int = option(2, None)
    dev_fraction: float = option(
        0.1, "share of training documents held out as a dev split (for choosing hyperparameters)"
    )
    dev_max_items: int = option(200, None)
    eval_every: int = option(
        0,
        "every N steps compute the InfoNCE loss on the held-out dev split and keep the best weights, which "
        "become the final model (0 = off; hybridir.training.early_stopping)",
    )
    early_stopping_patience: int = option(
        0, "stop after N held-out evaluations without a lower loss (0 = never stop early)"
    )
    cache_dir: str | None = option(None, "teacher / starting-model vector cache (default <out>/cache)")
    show_progress: bool = option(True, None)

    def __post_init__(self) -> None:
        for name in ("languages", "train_topics"):
            if isinstance(value := getattr(self, name), str):
                setattr(self, name, [x.strip() for x in value.split(",") if x.strip()])
        for name in ("data", "dev_data"):
            if isinstance(value := getattr(self, name), list | tuple):
                setattr(self, name, "+".join(value))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the bad field."""
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.centered and (self.loss != "infonce" or self.mini_batch_size or self.symmetric):
            raise ConfigError("centered: InfoNCE only, without --mini-batch-size or --symmetric")
        if not self.languages or len(set(self.languages)) != len(self.languages):
            raise ConfigError(f"languages must be a non-empty list without repeats, got {self.languages}")
        for lang in self.languages:
            try:
                check_language(lang, "languages")
            except DataError as e:
                raise ConfigError(str(e)) from None
        if self.sampler != "xx" and len(self.languages) < 2:
            raise ConfigError(f"sampler {self.sampler!r} needs X-Y batches, i.e. at least two languages")
        sources = data_sources(self.data)
        if self.effective_alpha > 0 and sources == ["flores"]:
            raise ConfigError(f"sampler {self.sampler!r} needs X-X batches, but FLORES gives translation pairs only "
                              "(X-Y); use --data ntrex+flores or --sampler xy")  # fmt: skip
        if self.train_topics and "flores" not in sources:
            raise ConfigError(f"train_topics {self.train_topics} need FLORES in --data (got {self.data!r})")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if not self.decorrelate >= 0:
            raise ConfigError(f"decorrelate must be >= 0 (0 = off), got {self.decorrelate}")
        if not self.distill_weight >= 0 or (self.loss == "kd" and self.distill_weight):
            raise ConfigError(f"distill_weight must be >= 0 and adds KD to the infonce loss only, got "
                              f"{self.distill_weight} with loss {self.loss!r}")  # fmt: skip
        if uses_teacher(self) and "en" not in self.languages:
            raise ConfigError("distillation targets the teacher's English vectors: languages must include 'en'")
        positive = {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "save_every": self.save_every,
                    "temperature": self.temperature, "max_query_length": self.max_query_length,
                    "max_passage_length": self.max_passage_length,
                    "keep_checkpoints": self.keep_checkpoints}  # fmt: skip
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2: in-batch negatives need a second example")
        if self.mini_batch_size is not None and not 0 < self.mini_batch_size <= self.batch_size:
            raise ConfigError(f"mini_batch_size must be in [1, batch_size], got {self.mini_batch_size}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.merge <= 1:
            raise ConfigError(f"merge must be in [0, 1] (1 keeps the trained weights), got {self.merge}")
        if not 0 <= self.dev_fraction < 1:
            raise ConfigError(f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if self.qa_target not in TARGETS:
            raise ConfigError(f"qa_target must be one of {', '.join(TARGETS)}, got {self.qa_target!r}")
        if self.eval_every < 0 or self.early_stopping_patience < 0:
            raise ConfigError("eval_every and early_stopping_patience must be >= 0 (0 = off)")
        if self.early_stopping_patience and not self.eval_every:
            raise ConfigError("early_stopping_patience needs eval_every > 0 (how often the held-out loss is computed)")
        if self.eval_every and not self.dev_fraction:
            raise ConfigError("eval_every needs a dev split of the training data (dev_fraction > 0)")
        if self.freeze_layers < 0:
            raise ConfigError(f"freeze_layers must be >= 0, got {self.freeze_layers}")
        _ = self.weights_by_source  # parses source_weights: a bad value fails here, not mid-run

    @property
    def weights_by_source(self) -> dict[str, float]:
        """``source_weights`` ("iapp-th=3,afriqa:xy=100") as a mapping; empty means pools shared across sources.
        ``auto`` is the default recipe's weights for the sources of ``data`` (none for a single source, whose run is
        then the same as with an empty value)."""
        if self.source_weights == "auto":
            present = set(data_sources(self.data))
            return {k: w for k, w in RECIPES[DEFAULT_RECIPE].weights.items() if k.split(":")[0] in present}
        out: dict[str, float] = {}
        for part in filter(None, (x.strip() for x in self.source_weights.split(","))):
            name, eq, value = part.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                eq = ""
            if not eq or not name.strip() or not out[name.strip()] >= 0:
                raise ConfigError(f"source_weights: expected source=weight pairs with weights >= 0 joined by ',' "
                                  f"(iapp-th=3,afriqa:xy=100) or 'auto', got {part!r}")  # fmt: skip
        return out

    def weights_for(self, loaded_sources: set[str]) -> dict[str, float]:
        """The weights a run uses once its data is loaded: with ``auto``, only for the sources that made it into the
        mix (a source without the run's languages is left out of it, and so is its weight)."""
        weights = self.weights_by_source
        if self.source_weights != "auto":
            return weights
        return {k: w for k, w in weights.items() if k.split(":")[0] in loaded_sources}

    def trajectory_diff(self, saved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Field -> (saved value, this value) for the fields, other than :data:`RESUMABLE_FIELDS`, in which a run
        saved with configuration ``saved`` (a checkpoint's or ``train_summary.json``'s) differs from this one:
        continuing or reusing that run as this one would mislabel it. A field newer than the saved run counts as
        the value it had then."""
        then = as_json({**dataclasses.asdict(TrainConfig(languages=self.languages)), **ABSENT_MEANS, **saved})
        now = as_json(dataclasses.asdict(self))
        return {k: (then.get(k), now[k]) for k in sorted(now) if k not in RESUMABLE_FIELDS and then.get(k) != now[k]}

    @property
    def effective_alpha(self) -> float:
        return {"xx": 1.0, "xy": 0.0}.get(self.sampler, self.alpha)


def add_cli_arguments(parser: Any) -> None:
    """Add ``--recipe`` and one ``--option`` per TrainConfig field (``--batch-size``, ``--no-freeze-embeddings``...)
    to an argparse parser; the recipe's fields are left out of the namespace unless given, so that
    :func:`config_from_args` fills them from the recipe."""
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, choices=tuple(RECIPES),
                        help="; ".join(f"{k}: {r.about}" for k, r in RECIPES.items())
                        + " (default: %(default)s; options given beside it win)")  # fmt: skip
    add_arguments(parser, TrainConfig, unset={name: "from --recipe" for name in _DEFAULTS})


def config_from_args(args: Any) -> TrainConfig:
    """TrainConfig from a namespace filled by :func:`add_cli_arguments`: the recipe's options, then those given
    (ConfigError on bad values)."""
    return TrainConfig(**(recipe(args.recipe).options() | values_from_args(TrainConfig, args)))
