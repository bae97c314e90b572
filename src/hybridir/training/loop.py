"""Contrastive training with X-X / X-Y / hybrid batches: a readable loop around sentence-transformers' model and losses.

Why not ``SentenceTransformerTrainer``: the samplers in :mod:`.sampling` plug into it (see that module),
but the loop here is what ``hybridir train`` runs, because the trainer does not meet these requirements:
- separate query and passage max lengths with prompts (the trainer's collator has one ``max_length`` unless the
  model has a Router);
- hard negatives chosen per batch so that a negative is never another example's positive;
- checkpoints entirely in safetensors (the trainer pickles optimizer/scheduler/RNG state into ``.pt`` files)
  that a ``kill -9`` cannot leave half written, and exact resume of the batch sequence and dropout RNG;
- a per-step log of batch type and languages, and the dev split of the *training* data evaluated at the start
  and end.
It still uses sentence-transformers' losses (InfoNCE ``MultipleNegativesRankingLoss`` / its GradCache twin,
distillation ``MSELoss``), chosen in :mod:`hybridir.training.losses`.

Example::

    from hybridir.training.loop import TrainConfig, train
    final = train(TrainConfig(languages=["en", "de", "th"], steps=100, batch_size=16, out="runs/demo"))
    SentenceTransformer(str(final)).encode(["wer?"], prompt_name="query")
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset
from transformers import get_linear_schedule_with_warmup

from ..data.training.sources import load_train_dev
from ..infra.errors import ConfigError, warn
from ..infra.files import atomic_dir, atomic_write_text
from ..infra.locks import DirLock
from ..infra.space import require_free, training_bytes, used_bytes
from . import sampling
from .checkpoints import checkpoints, prune, read_log, read_meta, restore, save_checkpoint
from .config import SAMPLERS, TrainConfig
from .dev_metrics import dev_metrics
from .early_stopping import EarlyStopping
from .losses import build_objective
from .sampling import parse_key
from .summary import write_train_summary
from .teacher import start_cache, teacher_targets


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


def _freeze_lower_layers(model: Any, n: int) -> int:
    """Freeze the embedding block and the first ``n`` transformer layers (none for n = 0); returns the count of
    newly frozen parameters. A strong start keeps its lower layers; only the top adapts to the task."""
    if n == 0:
        return 0
    hf = model[0].auto_model
    layers = hf.encoder.layer if hasattr(hf, "encoder") else None
    if layers is None or n > len(layers):
        raise ConfigError(f"freeze_layers={n}: the model has {len(layers) if layers is not None else 'no'} "
                          "encoder layers")  # fmt: skip
    frozen = 0
    for module in (hf.embeddings, *layers[:n]):
        for p in module.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen


class _Run:
    """State of one training run; split into methods so that train() reads as the loop it is."""

    def __init__(self, config: TrainConfig, model: Any = None) -> None:
        self.config = config
        self.out = Path(config.out)
        self.train_data, self.dev_data = load_train_dev(
            config.data, config.languages, config.data_dir, config.ict_window, config.ict_remove_prob, config.seed,
            config.dev_fraction, config.train_topics, config.dev_data, config.qa_target)  # fmt: skip
        kinds = ("xx",) if config.effective_alpha == 1 else ("xy",) if config.effective_alpha == 0 else ("xx", "xy")
        source_weights = config.weights_for({it.source for it in self.train_data.items})
        keys, pools, ids, weights = self.train_data.sampler_inputs(kinds, source_weights)
        rank, world = 0, 1
        if _distributed():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        self.is_main = rank == 0
        self.sampler = getattr(sampling, SAMPLERS[config.sampler])(
            ConcatDataset(pools),
            keys=keys,
            item_ids=ids,
            weights=weights,
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
        self.frozen += _freeze_lower_layers(self.model, config.freeze_layers)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # The WiSE-FT start point: trainable weights before the first step (on resume the start model is reloaded).
        self.start = ({n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
                      if config.merge < 1 and not self.ckpts else None)  # fmt: skip
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.sched = get_linear_schedule_with_warmup(self.opt, int(config.warmup_ratio * config.steps), config.steps)
        # Across processes, every rank's queries also see the other ranks' passages as negatives.
        self.state: dict[str, Any] = {"step": 0, "seconds": 0.0}
        self.objective = build_objective(self.model, config, gather_across_devices=_distributed(), state=self.state)
        self.decorrelation = _decorrelation(self.model, self.train_data, config) if config.decorrelate else None
        self.cache_root = Path(config.cache_dir) if config.cache_dir else self.out / "cache"
        self.labels: np.ndarray | None = None  # (items, 2, dim) teacher vectors of the English query and passage
        self.log: list[dict] = []

    def _load_model(self, ckpt: Path | None):
        from ..encoders.models import load_encoder

        return load_encoder(str(ckpt / "model") if ckpt else self.config.model)  # GPU when there is one

    def resume(self) -> None:
        """Continue from the newest checkpoint (model already loaded from it): optimizer, scheduler, RNG, counters
        and log; refused when the run was started with settings that change the trajectory."""
        if not self.ckpts:
            return
        diff = self.config.trajectory_diff(read_meta(self.ckpts[-1])["config"])
        if diff:
            raise ConfigError(f"{self.out} holds a run with a different configuration ({', '.join(diff)}); "
                              "use another --out or the same options")  # fmt: skip
        self.state = restore(self.ckpts[-1], self.opt, self.sched)
        self.objective.use_state(self.state)
        self.log = read_log(self.out, self.state["step"])
        prune(self.out, self.config.keep_checkpoints)

    def save(self) -> None:
        save_checkpoint(self.out, self.model, self.opt, self.sched, dataclasses.asdict(self.config), self.state,
                        self.config.keep_checkpoints)  # fmt: skip

    def merge_with_start(self) -> None:
        """``config.merge < 1``: the saved model is start + merge x (trained - start) (:func:`merge_weights`).
        Checkpoints keep the unmerged weights, so a resumed or re-run finished run merges once."""
        from ..encoders.models import merge_weights

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
        parts = self.objective.backward(feats, labels, _row_languages(keys))
        if self.decorrelation is not None:  # its own backward: the gradients add up
            parts["decorrelation"] = self.decorrelation.backward(self.state["step"], self.config.decorrelate)
            parts["loss"] += self.config.decorrelate * parts["decorrelation"]
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


def _decorrelation(model: Any, data: Any, config: TrainConfig) -> Any:
    """The decorrelation term over the run's own training passages (at most 200 a language)."""
    from .losses.decorrelation import LanguageDecorrelation

    texts: dict[str, list[str]] = {}
    for item in data.items:
        for lang, pair in item.pairs.items():
            if len(texts.setdefault(lang, [])) < 200:
                texts[lang].append(pair.passage)
    if len([lang for lang, t in texts.items() if t]) < 2:
        warn(f"decorrelate {config.decorrelate:g} is off for this run: its training text has one language")
        return None
    return LanguageDecorrelation(model, texts, config.seed, config.max_passage_length)


def _row_languages(keys: list[str]) -> tuple[list[str], list[str]]:
    """Each row's query and passage language, from its sampler key (``xy:de-en`` -> de, en)."""
    parsed = [parse_key(k) for k in keys]
    return [q for _, q, _ in parsed], [p for _, _, p in parsed]


def train(config: TrainConfig, model: Any = None) -> Path:
    """Train (or resume) the run in ``config.out`` and return the final model directory ``<out>/final``.

    Resumes from the newest checkpoint in ``<out>/checkpoints`` with the same batch sequence. ``model`` may be an
    already loaded SentenceTransformer (ignored when resuming, where the checkpoint's weights are loaded). The run
    holds its directory's lock (:mod:`hybridir.infra.locks`) and checks free space before the first step
    (:mod:`hybridir.infra.space`).
    """
    config.validate()
    _check_out(Path(config.out))
    main_rank = int(os.environ.get("RANK", "0")) == 0  # the other ranks of a distributed run share the directory
    with DirLock(config.out, "train") if main_rank else contextlib.nullcontext():
        return _train(config, model)


def _train(config: TrainConfig, model: Any) -> Path:
    """:func:`train` inside the run directory's lock."""
    from itertools import islice

    from tqdm.auto import tqdm

    _init_distributed()
    run = _Run(config, model if not checkpoints(Path(config.out)) else None)
    _check_space(run)
    run.resume()
    out = run.out
    run.labels = teacher_targets(config, run.train_data, run.model, run.state, run.cache_root)
    if "dev_start" not in run.state and run.dev_data is not None:  # before the first step, kept in checkpoints
        run.state["dev_start"] = dev_metrics(run.model, run.dev_data, config.dev_max_items, config.max_query_length,
                                             config.max_passage_length,
                                             cache=start_cache(run.model, run.state, run.cache_root))  # fmt: skip
    start = run.state["step"]
    stopper = EarlyStopping(run) if config.eval_every else None  # held-out loss, best weights (the paper's choice)
    bar = tqdm(total=config.steps, initial=start, desc="train", disable=not (config.show_progress and run.is_main))
    for rows in islice(iter(run.sampler), start, config.steps):
        if stopper and stopper.stopped:  # a resumed run that had already stopped early
            break
        rec = run.step(rows)
        if stopper and rec["step"] % config.eval_every == 0:
            rec["dev_loss"] = stopper.check(rec["step"])
        run.log.append(rec)
        if run.is_main:
            atomic_write_text(out / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in run.log))
            if rec["step"] % config.save_every == 0 or rec["step"] == config.steps or (stopper and stopper.stopped):
                run.save()
        bar.set_postfix(loss=f"{rec['loss']:.3f}", type=rec["type"])
        bar.update(1)
    bar.close()
    if stopper:
        stopper.restore_best(run.state["step"])
    if _distributed():
        run.state["rank_checksums"] = _rank_checksums(run.params)
    final = out / "final"
    if run.is_main:
        run.merge_with_start()
        if run.dev_data is not None:
            run.state["dev_end"] = dev_metrics(run.model, run.dev_data, config.dev_max_items,
                                               config.max_query_length, config.max_passage_length)  # fmt: skip
        with atomic_dir(final) as tmp:
            if config.neutral:  # the projection inside the saved model; its means are then the neutral model's
                from ..encoders.debias import neutralize, save_neutral

                proj = neutralize(run.model, data_dir=config.data_dir, show_progress=config.show_progress)
                save_neutral(run.model, proj, tmp)
                run.state["projection"] = {k: v for k, v in proj.info().items() if k != "languages"}
            else:
                run.model.save(str(tmp))
            write_means(run.model, config.languages, tmp, data_dir=config.data_dir, show_progress=config.show_progress)
        write_train_summary(out, config, run.log, run.train_data, run.dev_data, run.sampler.world_size, run.state,
                            run.frozen, sum(p.numel() for p in run.params))  # fmt: skip
    return final


def write_means(model: Any, languages: list[str], folder: Path, **kwargs: Any) -> None:
    """The model's language means (:mod:`hybridir.encoders.centering`) for its training languages, saved beside
    its weights so that centred scoring of this model needs no other file; languages no text source has are left
    out (centring leaves them as they are)."""
    from ..encoders.means import compute_means

    means = compute_means(model, languages, **kwargs)
    if means.languages:
        means.save(folder)


def _check_out(out: Path) -> None:
    """``--out`` must be (or become) a directory: an existing file on the way is a one-line error."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"{path}: --out {out} must be a run directory, but {path} is an existing file")
            return


def _check_space(run: _Run) -> None:
    """Before the first step: room for the checkpoints and the final model (:mod:`hybridir.infra.space`), less what a
    resumed run's checkpoints already take (they are rotated out)."""
    cfg = run.config
    parameters, trainable = sum(p.numel() for p in run.model.parameters()), sum(p.numel() for p in run.params)
    needed = training_bytes(parameters, trainable, cfg.steps, cfg.save_every, cfg.keep_checkpoints)
    require_free(
        run.out,
        needed - used_bytes(run.out / "checkpoints"),
        f"training {parameters:,} parameters ({trainable:,} trainable; checkpoints + final model)",
    )
