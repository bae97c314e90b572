"""Contrastive training with X-X / X-Y / hybrid batches: a readable loop around sentence-transformers' model and losses.

Why not ``SentenceTransformerTrainer``: the samplers in :mod:`hybridir.sampling` plug into it (see that module),
but the loop here is what ``hybridir train`` runs, because the trainer does not meet these requirements:
- separate query and passage max lengths with prompts (the trainer's collator has one ``max_length`` unless the
  model has a Router);
- hard negatives chosen per batch so that a negative is never another example's positive;
- checkpoints entirely in safetensors (the trainer pickles optimizer/scheduler/RNG state into ``.pt`` files)
  that a ``kill -9`` cannot leave half written, and exact resume of the batch sequence and dropout RNG;
- a per-step log of batch type and languages, and the dev split of the *training* data evaluated at the start
  and end.
It still uses sentence-transformers' losses (InfoNCE ``MultipleNegativesRankingLoss`` / its GradCache twin,
distillation ``MSELoss``), chosen in :mod:`hybridir.losses`.

Example::

    from hybridir.training import TrainConfig, train
    final = train(TrainConfig(languages=["en", "de", "th"], steps=100, batch_size=16, out="runs/demo"))
    SentenceTransformer(str(final)).encode(["wer?"], prompt_name="query")
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset
from transformers import get_linear_schedule_with_warmup

from .checkpoints import checkpoints, read_log, read_meta, restore, save_checkpoint
from .data.parallel import XQUAD_LANGUAGES, check_language, data_sources, load_train_dev
from .dev_metrics import dev_metrics
from .errors import ConfigError, DataError
from .files import atomic_dir, atomic_write_text
from .losses import LOSSES, Objective, uses_teacher
from .sampling import SAMPLERS, parse_key
from .teacher import start_cache, teacher_targets
from .train_summary import write_train_summary

# Fields that may change between a run and its resumption; any other change would alter the trajectory.
# ``merge`` only changes what is saved at the end: a finished run re-run with another value re-merges, no training.
RESUMABLE_FIELDS = {"out", "data_dir", "save_every", "show_progress", "keep_checkpoints", "cache_dir", "merge"}


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

    model: str = "e5-small"
    data: str = "ntrex"
    data_dir: str | None = None
    languages: list[str] = field(default_factory=lambda: list(XQUAD_LANGUAGES))
    train_topics: list[str] = field(default_factory=list)
    dev_data: str = ""
    sampler: str = "hybrid"
    alpha: float = 0.5
    loss: str = "infonce"
    distill_weight: float = 0.0
    teacher: str | None = None
    mixed_languages: bool = False
    steps: int = 200
    batch_size: int = 32
    mini_batch_size: int | None = None
    lr: float = 5e-5  # chosen on dev data only (studies/recipe_search.yaml; docs/studies.md)
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    merge: float = 1.0
    max_grad_norm: float = 1.0
    temperature: float = 0.05
    symmetric: bool = False
    hard_negatives: bool = False
    freeze_embeddings: bool = True
    max_query_length: int = 32
    max_passage_length: int = 128
    ict_window: int = 4
    ict_remove_prob: float = 0.9
    seed: int = 0
    out: str = "runs/hybrid"
    save_every: int = 50
    keep_checkpoints: int = 2
    dev_fraction: float = 0.1
    dev_max_items: int = 200
    cache_dir: str | None = None
    show_progress: bool = True

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

    @property
    def effective_alpha(self) -> float:
        return {"xx": 1.0, "xy": 0.0}.get(self.sampler, self.alpha)


_HELP = {
    "model": "registry name (hybridir models), hub id or local checkpoint",
    "data": "ntrex | flores | DIR of <lang>.txt | FILE.jsonl | FILE.tsv | SQuAD FILE.json | hf:NAME, or several "
            "joined with + (ntrex+flores) (docs/data_formats.md)",
    "train_topics": "comma-separated FLORES topics to keep (science/technology, travel, politics, sports, health, "
                    "entertainment, geography); default all",
    "dev_data": "extra sources whose held-out part joins the dev metrics only (e.g. flores), so that runs with "
                "different --data are selected on the same dev set",
    "loss": f"{' | '.join(LOSSES)}: contrastive (in-batch negatives) or distillation to the teacher's English "
            "vectors (hybridir.losses)",
    "distill_weight": "infonce only: add this weight times the KD term (mean squared distance to the teacher)",
    "teacher": "KD teacher model (default: the starting --model, frozen)",
    "merge": "WiSE-FT: the saved model is start + MERGE x (trained - start); 1 keeps the trained weights, 0.5 "
             "averages them with the starting model's",
    "cache_dir": "teacher / starting-model vector cache (default <out>/cache)",
    "data_dir": "data root (default $HYBRIDIR_DATA or ../shared/data)",
    "sampler": f"batch sampler: {' | '.join(SAMPLERS)}",
    "alpha": "hybrid only: probability that a batch is X-X (else X-Y)",
    "mixed_languages": "mix languages (pairs) within a batch instead of one per batch",
    "mini_batch_size": "GradCache chunk size: batches larger than memory (CachedMultipleNegativesRankingLoss)",
    "temperature": "InfoNCE temperature (scale = 1 / temperature)",
    "symmetric": "add the passage-to-query InfoNCE direction",
    "hard_negatives": "add one ICT hard negative per pair",
    "freeze_embeddings": "freeze the word embedding (less memory, faster steps on CPU)",
    "ict_window": "inverse cloze task: sentences per passage window",
    "ict_remove_prob": "inverse cloze task: probability that the query sentence is removed from its passage",
    "save_every": "checkpoint every N steps (resume continues from the last one)",
    "dev_fraction": "share of training documents held out as a dev split (for choosing hyperparameters)",
}


def add_cli_arguments(parser: Any) -> None:
    """Add one ``--option`` per TrainConfig field (``--batch-size``, ``--no-freeze-embeddings``...) to an argparse
    parser, so the CLI never drifts from the dataclass. Use with :func:`config_from_args`."""
    import argparse

    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(default, bool):
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=_HELP.get(f.name, " ")
            )
        elif isinstance(default, list):
            help_ = _HELP.get(f.name, "comma-separated codes (default: %(default)s)")
            parser.add_argument(flag, dest=f.name, default=",".join(default), help=help_)
        else:
            kind = {"mini_batch_size": int}.get(f.name, str if default is None else type(default))
            help_ = f"{_HELP.get(f.name, '')} (default: %(default)s)".strip()
            parser.add_argument(flag, dest=f.name, type=kind, default=default, help=help_)


def config_from_args(args: Any) -> TrainConfig:
    """TrainConfig from a namespace filled by :func:`add_cli_arguments` (ConfigError on bad values)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


# ------------------------------------------------------------------------------------------------------ helpers
def _init_distributed() -> None:
    """Under torchrun / accelerate launch (WORLD_SIZE > 1) join the process group: NCCL on GPUs, gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _rank_checksums(params: list[torch.Tensor]) -> list[float]:
    """Sum of all trainable weights on every rank: equal when gradients were averaged, else the ranks drifted."""
    mine = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1).to(params[0].device)
    every = [torch.zeros_like(mine) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(every, mine)
    return [float(x) for x in every]


def _freeze_word_embeddings(model: Any) -> int:
    """Freeze the input word embedding; returns its parameter count."""
    emb = model[0].auto_model.get_input_embeddings()
    emb.weight.requires_grad_(False)
    return emb.weight.numel()


class _Run:
    """State of one training run; split into methods so that train() reads as the loop it is."""

    def __init__(self, config: TrainConfig, model: Any = None) -> None:
        self.config = config
        self.out = Path(config.out)
        self.train_data, self.dev_data = load_train_dev(
            config.data, config.languages, config.data_dir, config.ict_window, config.ict_remove_prob, config.seed,
            config.dev_fraction, config.train_topics, config.dev_data)  # fmt: skip
        kinds = ("xx",) if config.effective_alpha == 1 else ("xy",) if config.effective_alpha == 0 else ("xx", "xy")
        keys, pools, ids = self.train_data.sampler_inputs(kinds)
        rank, world = 0, 1
        if _distributed():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        self.is_main = rank == 0
        self.sampler = SAMPLERS[config.sampler](
            ConcatDataset(pools),
            keys=keys,
            item_ids=ids,
            alpha=config.alpha,
            mixed_languages=config.mixed_languages,
            num_batches=config.steps,
            batch_size=config.batch_size,
            seed=config.seed,
            world_size=world,
            rank=rank,
        )
        self.pools = pools
        self.ckpts = checkpoints(self.out)
        torch.manual_seed(config.seed)  # dropout; a resumed run restores the saved RNG state instead
        self.model = model if model is not None else self._load_model(self.ckpts[-1] if self.ckpts else None)
        self.frozen = _freeze_word_embeddings(self.model) if config.freeze_embeddings else 0
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # The WiSE-FT start point: trainable weights before the first step (on resume the start model is reloaded).
        self.start = ({n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
                      if config.merge < 1 and not self.ckpts else None)  # fmt: skip
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.sched = get_linear_schedule_with_warmup(self.opt, int(config.warmup_ratio * config.steps), config.steps)
        # Across processes, every rank's queries also see the other ranks' passages as negatives.
        self.objective = Objective(self.model, config, gather_across_devices=_distributed())
        self.cache_root = Path(config.cache_dir) if config.cache_dir else self.out / "cache"
        self.labels: np.ndarray | None = None  # (items, 2, dim) teacher vectors of the English query and passage
        self.log: list[dict] = []
        self.state: dict[str, Any] = {"step": 0, "seconds": 0.0}

    def _load_model(self, ckpt: Path | None):
        from .models import load_encoder

        return load_encoder(str(ckpt / "model") if ckpt else self.config.model)  # GPU when there is one

    def resume(self) -> None:
        """Continue from the newest checkpoint (model already loaded from it): optimizer, scheduler, RNG, counters
        and log; refused when the run was started with settings that change the trajectory."""
        if not self.ckpts:
            return
        defaults = dataclasses.asdict(TrainConfig(languages=self.config.languages))  # fields newer than the run
        saved = {k: v for k, v in {**defaults, **read_meta(self.ckpts[-1])["config"]}.items()
                 if k not in RESUMABLE_FIELDS}  # fmt: skip
        now = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in RESUMABLE_FIELDS}
        if saved != now:
            diff = sorted(k for k in now if saved.get(k) != now[k])
            raise ConfigError(f"{self.out} holds a run with a different configuration ({', '.join(diff)}); "
                              "use another --out or the same options")  # fmt: skip
        self.state = restore(self.ckpts[-1], self.opt, self.sched)
        self.log = read_log(self.out, self.state["step"])

    def save(self) -> None:
        save_checkpoint(self.out, self.model, self.opt, self.sched, dataclasses.asdict(self.config), self.state,
                        self.config.keep_checkpoints)  # fmt: skip

    def merge_with_start(self) -> None:
        """``config.merge < 1``: the saved model is start + merge x (trained - start) (:func:`merge_weights`).
        Checkpoints keep the unmerged weights, so a resumed or re-run finished run merges once."""
        from .models import merge_weights

        if self.config.merge < 1:
            merge_weights(self.model, self.start or self._load_model(None), self.config.merge)

    # --- one step -----------------------------------------------------------------------------------------
    def batch_texts(self, rows: list[int]) -> tuple[list[list[str]], str, list[str], list[int]]:
        """Global row indices -> text columns [queries, passages(, negatives)], batch type, keys and items."""
        cols: list[list[str]] = [[], []] + ([[]] if self.config.hard_negatives else [])
        located = [(key, self.pools[self.sampler.keys.index(key)][r]) for key, r in map(self.sampler.locate, rows)]
        items = {item for _, item in located}
        for key, item in located:
            _, ql, pl = parse_key(key)
            ex = self.train_data.example(item, ql, pl)
            cols[0].append(ex.query)
            cols[1].append(ex.passage)
            if self.config.hard_negatives:
                cols[2].append(self.train_data.hard_negative(item, pl, items))
        keys = [key for key, _ in located]
        return cols, parse_key(keys[0])[0], keys, [item for _, item in located]

    def features(self, cols: list[list[str]]) -> list[dict[str, torch.Tensor]]:
        prompts = self.model.prompts
        out = [self.model.preprocess(cols[0], prompt=prompts.get("query") or None,
                                     max_length=self.config.max_query_length)]  # fmt: skip
        for col in cols[1:]:
            out.append(self.model.preprocess(col, prompt=prompts.get("passage") or None,
                                             max_length=self.config.max_passage_length))  # fmt: skip
        return [{k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in f.items()} for f in out]

    def step(self, rows: list[int]) -> dict[str, Any]:
        t0 = time.perf_counter()
        cols, kind, keys, items = self.batch_texts(rows)
        feats = self.features(cols)
        self.model.train()
        labels = torch.from_numpy(self.labels[items]) if self.labels is not None else None
        parts = self.objective.backward(feats, labels)
        if _distributed():
            for p in self.params:  # plain DDP: average gradients over ranks (every rank has the same batch type)
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= torch.distributed.get_world_size()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm))
        lr = self.opt.param_groups[0]["lr"]
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        self.state["step"] += 1
        self.state["seconds"] += seconds
        tokens = int(sum(int(f["attention_mask"].sum()) for f in feats))
        langs = sorted({lang for k in set(keys) for lang in parse_key(k)[1:]})
        return {"step": self.state["step"], **parts, "type": kind,
                "key": keys[0] if len(set(keys)) == 1 else "mixed", "languages": langs,
                "keys": dict(Counter(keys)), "lr": lr, "grad_norm": grad_norm,
                "seconds": seconds, "tokens": tokens}  # fmt: skip


def train(config: TrainConfig, model: Any = None) -> Path:
    """Train (or resume) the run in ``config.out`` and return the final model directory ``<out>/final``.

    Resumes from the newest checkpoint in ``<out>/checkpoints`` with the same batch sequence. ``model`` may be an
    already loaded SentenceTransformer (ignored when resuming, where the checkpoint's weights are loaded).
    """
    from itertools import islice

    from tqdm.auto import tqdm

    config.validate()
    _check_out(Path(config.out))
    _init_distributed()
    run = _Run(config, model if not checkpoints(Path(config.out)) else None)
    run.resume()
    out = run.out
    run.labels = teacher_targets(config, run.train_data, run.model, run.state, run.cache_root)
    if "dev_start" not in run.state and run.dev_data is not None:  # before the first step, kept in checkpoints
        run.state["dev_start"] = dev_metrics(run.model, run.dev_data, config.dev_max_items, config.max_query_length,
                                             config.max_passage_length,
                                             cache=start_cache(run.model, run.state, run.cache_root))  # fmt: skip
    start = run.state["step"]
    bar = tqdm(total=config.steps, initial=start, desc="train", disable=not (config.show_progress and run.is_main))
    for rows in islice(iter(run.sampler), start, config.steps):
        rec = run.step(rows)
        run.log.append(rec)
        if run.is_main:
            atomic_write_text(out / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in run.log))
            if rec["step"] % config.save_every == 0 or rec["step"] == config.steps:
                run.save()
        bar.set_postfix(loss=f"{rec['loss']:.3f}", type=rec["type"])
        bar.update(1)
    bar.close()
    if _distributed():
        run.state["rank_checksums"] = _rank_checksums(run.params)
    final = out / "final"
    if run.is_main:
        run.merge_with_start()
        if run.dev_data is not None:
            run.state["dev_end"] = dev_metrics(run.model, run.dev_data, config.dev_max_items,
                                               config.max_query_length, config.max_passage_length)  # fmt: skip
        with atomic_dir(final) as tmp:
            run.model.save(str(tmp))
        write_train_summary(out, config, run.log, run.train_data, run.dev_data, run.sampler.world_size, run.state,
                            run.frozen, sum(p.numel() for p in run.params))  # fmt: skip
    return final


def _check_out(out: Path) -> None:
    """``--out`` must be (or become) a directory: an existing file on the way is a one-line error."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"{path}: --out {out} must be a run directory, but {path} is an existing file")
            return
