"""Early stopping on a held-out loss, the hybrid-batch paper's model selection, with the best weights kept.

Every ``eval_every`` steps the objective's held-out loss (InfoNCE with the run's hard negatives unless the
objective says otherwise, :meth:`~.losses.base.Objective.held_out_loss`) is computed on fixed batches of the
*dev split of the training data*: for every X-X language and X-Y language pair, the dev items of that pool in
batches of ``batch_size``. The same batches for every arm of a study (X-X, X-Y, hybrid), so the stopping points are
comparable. A lower loss saves the weights to ``<out>/best/`` (safetensors, atomically); after
``early_stopping_patience`` evaluations without improvement (0: never stop) training ends, and the final model is
the best one. The bookkeeping lives in the run's state, so it is saved in checkpoints and resumes exactly.

Example::

    TrainConfig(data="mmarco", eval_every=500, early_stopping_patience=3, ...)   # hybridir.training.loop.train
    json.load(open("runs/x/train_summary.json"))["early_stopping"]   # best_step, best_loss, history, stopped
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.training.items import TrainingData
from ..infra.errors import ConfigError
from ..infra.files import atomic_dir, atomic_write_json
from .sampling import parse_key


def dev_batches(data: TrainingData, batch_size: int, max_items: int | None,
                hard_negatives: bool) -> list[list[list[str]]]:  # fmt: skip
    """Fixed held-out batches as text columns [queries, passages(, negatives)]: at most ``max_items`` dev items
    spread evenly over the split, grouped by sampler key (one language or language pair per batch, as in
    training); batches of one example (no in-batch negative) are left out."""
    chosen = range(len(data.items))
    if max_items and len(data.items) > max_items:
        chosen = np.linspace(0, len(data.items) - 1, max_items).round().astype(int).tolist()
    keep = set(chosen)
    out = []
    for key, pool in data.pools().items():
        _, q, p = parse_key(key)
        items = [i for i in pool if i in keep]
        for s in range(0, len(items), batch_size):
            batch = items[s : s + batch_size]
            if len(batch) < 2:
                continue
            pairs = [data.example(i, q, p) for i in batch]
            cols = [[x.query for x in pairs], [x.passage for x in pairs]]
            if hard_negatives:
                cols.append([data.hard_negative(i, p, set(batch)) for i in batch])
            out.append(cols)
    return out


class EarlyStopping:
    """The held-out loss of a run (``hybridir.training.loop._Run``), its best weights and when to stop."""

    def __init__(self, run: Any) -> None:
        cfg = run.config
        if run.dev_data is None:
            raise ConfigError("eval_every: the training data has no dev split to compute the held-out loss on")
        self.model, self.features, self.is_main = run.model, run.features, run.is_main
        self.patience, self.best_dir = cfg.early_stopping_patience, Path(cfg.out) / "best"
        self.batches = dev_batches(run.dev_data, cfg.batch_size, cfg.dev_max_items, cfg.hard_negatives)
        if not self.batches:
            raise ConfigError("eval_every: the dev split has no pool with two items (too small for one batch)")
        self.objective = run.objective
        self.state = run.state.setdefault("early_stopping", {"best_loss": None, "best_step": None, "bad_evals": 0,
                                                             "stopped": False, "history": []})  # fmt: skip

    @property
    def stopped(self) -> bool:
        return self.state["stopped"]

    def held_out_loss(self) -> float:
        """The objective's held-out loss, averaged over the fixed dev batches (dropout off, no gradients)."""
        was_training = self.model.training
        self.model.eval()
        total = count = 0.0
        with torch.no_grad():
            for cols in self.batches:
                total += float(self.objective.held_out_loss(self.features(cols))) * len(cols[0])
                count += len(cols[0])
        self.model.train(was_training)
        return total / count

    def check(self, step: int) -> float:
        """Evaluate at ``step``: save the weights when the loss is the lowest so far, else count a bad evaluation
        and stop after ``patience`` of them. Returns the loss."""
        loss = self.held_out_loss()
        st = self.state
        st["history"].append([step, loss])
        if st["best_loss"] is None or loss < st["best_loss"]:
            st.update(best_loss=loss, best_step=step, bad_evals=0)
            if self.is_main:
                from safetensors.torch import save_model

                with atomic_dir(self.best_dir) as tmp:
                    save_model(self.model, str(tmp / "model.safetensors"))
                    atomic_write_json(tmp / "best.json", {"step": step, "loss": loss})
        else:
            st["bad_evals"] += 1
            st["stopped"] = bool(self.patience) and st["bad_evals"] >= self.patience
        return loss

    def restore_best(self, step: int) -> None:
        """Load the best weights into the model, unless the weights at ``step`` (the last one) are the best."""
        from safetensors.torch import load_model

        if self.state["best_step"] not in (None, step):
            load_model(self.model, str(self.best_dir / "model.safetensors"))
