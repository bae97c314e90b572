"""Training objectives, one module each, chosen by ``TrainConfig.loss`` (``--loss``):

- ``infonce`` (default, :mod:`.infonce`): in-batch negatives, optionally symmetric, GradCache-chunked, on centred
  vectors (``centered``, :mod:`.centered_infonce`), or plus ``distill_weight`` times the distillation term.
- ``kd`` (:mod:`.kd`, Reimers & Gurevych 2020): the student's query and passage of every language onto a frozen
  teacher's English vectors.

Each module's ``OBJECTIVE`` is an :class:`~.base.Objective` that declares what it needs: whether the run must
compute teacher vectors (``uses_teacher``), its training step (``backward``) and the held-out loss early stopping
watches (``held_out_loss``). A new objective is one module here and one line in :data:`LOSSES`.

This file imports no torch: checking a configuration, as ``hybridir train`` does before anything loads, reads
:data:`LOSSES` and asks the objective whether it needs a teacher.

Example::

    objective = build_objective(model, config)     # config: hybridir.training.config.TrainConfig
    parts = objective.backward(features, labels)   # {"loss": ..., "infonce": ..., "kd": ...}; gradients filled
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Objective

#: ``--loss`` name -> the module of this package that holds its ``OBJECTIVE``
LOSSES = {"infonce": "infonce", "kd": "kd"}


def objective_class(name: str) -> type[Objective]:
    """The objective registered as ``name`` (a key of :data:`LOSSES`)."""
    return import_module(f".{LOSSES[name]}", __name__).OBJECTIVE


def uses_teacher(config: Any) -> bool:
    """Whether the run needs teacher vectors (the ``kd`` loss, or InfoNCE with a distillation term)."""
    return objective_class(config.loss).uses_teacher(config)


def build_objective(model: Any, config: Any, gather_across_devices: bool = False,
                    state: dict[str, Any] | None = None) -> Objective:  # fmt: skip
    """The run's objective for ``model``; ``state`` is the run's state (saved in checkpoints) for objectives that
    keep running values."""
    return objective_class(config.loss)(model, config, gather_across_devices=gather_across_devices, state=state)
