"""Studies: a YAML grid of train + evaluate cells, run resumably, summarised in one table with significance marks.

A study answers the questions the hybrid-batch paper asks all at once ("does hybrid beat X-X and X-Y in every
setting, at every model size, for every number of training languages, and what does alpha do?"). Each cell of the
grid (model x sampler x alpha x language set x steps x seed) is trained with :func:`~hybridir.training.loop.train`
(or not, for ``zero-shot``) and evaluated with :func:`~hybridir.evaluation.evaluate.evaluate` on every configured
dataset.
Every cell keeps its run directory under ``OUT/cells/<cell id>/``; a ``done.json`` written last marks it finished,
so a killed study continues where it stopped (training resumes from its own checkpoints, finished evaluations are
kept). A changed ``eval`` section reopens finished cells: only the new or changed evaluations run
(``_reopen_evaluations``).

The study directory then gets ``study.md`` / ``study.csv`` / ``study.json`` (mean +- std over seeds, paired
significance tests of every hybrid arm against every baseline over queries) and plots for each axis the grid has;
that part lives in :mod:`hybridir.study.summary`.

Example::

    from hybridir.study import run_study
    out = run_study(Path("studies/smoke.yaml"))      # -> runs/studies/smoke
    print((out / "study.md").read_text())

The YAML format is documented in ``docs/studies.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..infra.errors import ConfigError, LockError
from ..infra.files import as_json, atomic_dir, atomic_write_json, atomic_write_text, clear_stale_tmp
from ..infra.locks import LOCK_NAME, DirLock, lock_holder
from .config import (
    Cell,
    StudyConfig,
    cell_datasets,
    eval_dirname,
    expand_grid,
    is_number,
    load_study_config,
    read_results,
    train_kwargs,
)
from .summary import write_summary

# ----------------------------------------------------------------------------------------------------------------
# Running cells


#: seconds between looks at cells that other study processes hold, once this process has nothing else to run
WAIT_S = 10.0
#: the lock file, in the cell directory that holds a training, of a study process training or merging there
TRAIN_LOCK = ".train.lock"


class CellBusy(LockError):
    """Another live process holds this cell (or the training it shares): :func:`run_study` comes back to it."""


def run_study(
    config_path: Path, out_dir: Path | None = None, *, only_summary: bool = False, show_progress: bool = True
) -> Path:
    """Run (or continue) every unfinished cell of the study, then write the combined table and plots.

    ``out_dir`` defaults to the YAML's ``out`` key, else ``runs/studies/<name>``. With ``only_summary`` no cell is
    run: the table is rebuilt from the cells already finished. Returns the study directory.

    Several processes may run one study directory (one per GPU: ``CUDA_VISIBLE_DEVICES=i hybridir study ...``):
    each cell runs under its own directory's lock, so a process passes over a cell another one is running and comes
    back to it once it has tried every other cell, returning only when every cell is finished (a cell whose
    process died is taken over). The summary files are rewritten under a short lock on the study directory; the
    last process to finish writes the final one.
    """
    from tqdm.auto import tqdm

    cfg = load_study_config(Path(config_path))
    out = Path(out_dir or cfg.out or Path("runs") / "studies" / cfg.name)

    cells = expand_grid(cfg)
    cache = embedding_cache(cfg)
    with _shared_files_lock(out):
        atomic_write_text(out / "study.yaml", Path(config_path).read_text(encoding="utf-8"))
    if not only_summary:
        # Seed by seed (zero-shot first), so a study stopped part-way has whole seeds of every arm, and the table
        # is rewritten after each seed this process ran cells of: a long study reports what it has while it runs.
        pending = sorted(cells, key=lambda c: (c.sampler != "zero-shot", c.seed))
        bar = tqdm(total=len(pending), desc=f"study {cfg.name}", unit="cell", disable=not show_progress)
        while pending:
            busy, ran = [], False
            for i, cell in enumerate(pending):
                bar.set_postfix_str(cell.cell_id)
                cell_dir = out / "cells" / cell.cell_id
                finished = (cell_dir / "done.json").is_file()
                try:
                    run_cell(cfg, cell, cell_dir, cache_dir=cache, show_progress=show_progress)
                    bar.update(1)
                    ran |= not finished
                except CellBusy:  # another process runs it (or the training it shares): back to it later
                    busy.append(cell)
                if ran and i + 1 < len(pending) and pending[i + 1].seed != cell.seed:
                    _write_summary(cfg, cells, out)
                    ran = False
            if busy and len(busy) == len(pending):  # nothing came free since the last look: wait for the others
                bar.set_postfix_str(f"{len(busy)} cells run by other processes")
                time.sleep(WAIT_S)
            pending = busy
        bar.close()
    _write_summary(cfg, cells, out)
    return out


def _shared_files_lock(out: Path) -> DirLock:
    """The study directory's own files (study.yaml, the summary, plots) are written by one process at a time; the
    others wait the few seconds it takes. Any other command holding the directory is an error."""
    return DirLock(out, "study", wait=True)


def _write_summary(cfg: StudyConfig, cells: list[Cell], out: Path) -> None:
    with _shared_files_lock(out):
        write_summary(cfg, cells, out)


@contextlib.contextmanager
def _held(directory: Path, what: str, name: str = LOCK_NAME) -> Iterator[None]:
    """Hold ``directory``'s lock, or raise :class:`CellBusy` at once when a live process holds it."""
    try:
        lock = DirLock(directory, what, name=name).__enter__()
    except LockError as exc:
        raise CellBusy(str(exc)) from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def embedding_cache(cfg: StudyConfig) -> Path:
    """Where evaluation embeddings are cached: the YAML's ``cache_dir``, else the user cache shared by every study,
    so the zero-shot model's vectors (the same in every study) are encoded once per machine. Keys include the
    model fingerprint and inference path, so trained models never collide."""
    from ..encoders.offline_e5 import cache_root

    return Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_root() / "embeddings"


def cell_settings(cfg: StudyConfig, cell: Cell, cell_dir: Path) -> dict[str, Any]:
    """Everything that determines a cell's result; stored in ``cell.json`` and compared when a study resumes."""
    return {"cell": _cell_fields(cell) | {"arm": cell.arm}, "train": train_kwargs(cfg, cell, cell_dir),
            "eval": cell_datasets(cfg, cell)}  # fmt: skip


def _cell_fields(cell: Cell) -> dict[str, Any]:
    """The cell as a dict; the optional axes (distill_weight, lang, recipe, merge, centering) are left out while
    unset, so a cell's settings name only the axes it uses and a cell.json written without them still matches."""
    optional = {"distill_weight", "lang", "recipe", "merge", "centering"}
    return {k: v for k, v in dataclasses.asdict(cell).items() if k not in optional or v is not None}


def run_cell(
    cfg: StudyConfig, cell: Cell, cell_dir: Path, *, cache_dir: Path | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Train (unless zero-shot) and evaluate one cell; skipped if ``done.json`` exists. Returns its record.

    Runs under the cell directory's lock; raises :class:`CellBusy` when another live process holds it, or holds the
    training this cell shares (a merged or centred variant's, in the directory of the cell without them)."""
    with _held(cell_dir, "study"):
        return _run_cell(cfg, cell, cell_dir, cache_dir, show_progress)


def _run_cell(
    cfg: StudyConfig, cell: Cell, cell_dir: Path, cache_dir: Path | None, show_progress: bool
) -> dict[str, Any]:
    done = cell_dir / "done.json"
    settings = cell_settings(cfg, cell, cell_dir)
    config = _train_config(settings["train"])
    _check_trained_as_asked(config)
    old_eval, new_eval = _check_same_settings(cell_dir / "cell.json", settings, config), as_json(settings["eval"])
    if old_eval is not None and old_eval != new_eval:
        _reopen_evaluations(cell_dir, old_eval, new_eval)
    elif done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    resolved = {k: v for k, v in dataclasses.asdict(config).items() if k != "show_progress"} if config else None
    atomic_write_json(cell_dir / "cell.json", settings | {"train": resolved})  # every default filled in
    timing: dict[str, Any] = {}
    model_ref = cell.model
    train_dir = cell_dir / "train"
    if settings["train"] is not None:
        train_dir = Path(settings["train"]["out"])
        # Training (and a merge beside it) is shared with this cell's variants, which other processes may run.
        with _held(train_dir.parent, "study training", name=TRAIN_LOCK):
            model_ref, timing["train_s"] = _train_cell(settings["train"], show_progress)
            if cell.merge is not None:
                model_ref = _merged(model_ref, cell.model, cell.merge, train_dir / f"merged-{cell.merge:g}")
    timing["eval_s"] = {}
    for ds, opts in settings["eval"].items():
        timing["eval_s"][ds] = _evaluate_cell(
            model_ref, ds, opts, cell_dir / "eval" / eval_dirname(ds), cfg.data_dir, cache_dir, show_progress
        )
    record = {
        "cell_id": cell.cell_id,
        **settings["cell"],
        "model_path": model_ref,
        "metrics": cell_metrics(cell_dir, settings["eval"], mono_only=cell.sampler == "mono-ft"),
        "dev": _dev_metrics(train_dir, "dev_end") if cell.merge is None else {},
        "dev_start": _dev_metrics(train_dir, "dev_start"),
        "timing": timing | {"total_s": timing.get("train_s", 0.0) + sum(timing["eval_s"].values())},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(done, record)  # last: its presence means the whole cell is finished
    return record


def _train_config(train: dict[str, Any] | None) -> Any:
    """The cell's :class:`~hybridir.training.config.TrainConfig` (None for zero-shot): cell.json stores it with
    every default filled in, so a default changed later cannot pass for the one the cell was started with."""
    from ..training.config import TrainConfig

    return TrainConfig(**train) if train is not None else None


def _check_trained_as_asked(config: Any) -> None:
    """A finished training this cell uses must have run with every setting the study now asks, defaults included
    (a default changed since, or a training copied in from another study, would otherwise be reused under the
    wrong label)."""
    summary = Path(config.out) / "train_summary.json" if config else None
    saved = json.loads(summary.read_text(encoding="utf-8")).get("config") if summary and summary.is_file() else None
    if saved is None:
        return
    if diff := config.trajectory_diff(saved):
        ran = ", ".join(f"{k}={then!r} (asked: {now!r})" for k, (then, now) in diff.items())
        raise ConfigError(f"{summary.parent}: this training ran with {ran}; set those in the YAML's train: section "
                          "to reuse it, or use a new --out directory")  # fmt: skip


def _check_same_settings(path: Path, settings: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """A resumed cell must have been started with the same cell and training settings, else its results would be
    mislabelled (a training setting its cell.json does not name counts as the value it had then:
    :meth:`~hybridir.training.config.TrainConfig.trajectory_diff`). Returns the evaluation settings it was started
    with (None for a new cell): those may change."""
    if not path.is_file():
        return None
    old, new = json.loads(path.read_text(encoding="utf-8")), as_json(settings)
    keys = set(old["cell"]) | set(new["cell"])
    diff = [f"cell.{k}" for k in sorted(keys) if old["cell"].get(k) != new["cell"].get(k)]
    if (old.get("train") is None) != (new["train"] is None):
        diff.append("train")
    elif config is not None:
        diff += [f"train.{k}" for k in config.trajectory_diff(old["train"])]
    if diff:
        raise ConfigError(
            f"{path.parent}: this cell was started with different settings ({', '.join(diff)}); "
            "use a new --out directory or delete the cell directory to rerun it"
        )
    return old.get("eval") or {}


def _reopen_evaluations(cell_dir: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    """The study now evaluates this cell differently (a dataset added, or its options changed): the trained model
    and the evaluations whose options are unchanged are kept, one whose options changed is redone, and the cell
    counts as unfinished until the new set is complete. A dataset no longer asked for keeps its folder, unread."""
    for ds, opts in old.items():
        if ds in new and new[ds] != opts:
            shutil.rmtree(cell_dir / "eval" / eval_dirname(ds), ignore_errors=True)
    (cell_dir / "done.json").unlink(missing_ok=True)


def describe_study(config_path: Path, out_dir: Path | None = None) -> str:
    """One line per cell with its status (done / running / started / to do): what ``run_study`` would do, without
    running. ``running``: a live study process holds the cell (its pid and host follow the cell id)."""
    cfg = load_study_config(Path(config_path))
    out = Path(out_dir or cfg.out or Path("runs") / "studies" / cfg.name)
    lines = []
    for cell in expand_grid(cfg):
        d = out / "cells" / cell.cell_id
        holder = lock_holder(d)
        status = ("done" if (d / "done.json").is_file() else "running" if holder else "started" if d.is_dir()
                  else "to do")  # fmt: skip
        where = ""
        if holder and status == "running":
            where = f"  (pid {holder.get('pid', '?')} on {holder.get('host', '?')})"
        lines.append(f"{status:8} {cell.cell_id}{where}")
    return "\n".join([f"{cfg.name}: {len(lines)} cells in {out}", *lines])


def _train_cell(train_kwargs: dict[str, Any], show_progress: bool) -> tuple[str, float]:
    """Train once; ``train_done.json`` records the final model so a resumed cell, or another cell that shares the
    training (a merged or centred variant), goes straight to evaluation.

    The training checkpoints only serve a resumed training run, so they go once the marker is written: a cell keeps
    its final model (~0.5 GB for e5-small) rather than three copies plus optimizer states (~1.7 GB)."""
    from ..training.loop import TrainConfig, train

    marker = Path(train_kwargs["out"]).parent / "train_done.json"
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        return info["model_path"], info["train_s"]
    start = time.perf_counter()
    model_dir = train(TrainConfig(**train_kwargs, show_progress=show_progress))
    wall = time.perf_counter() - start
    atomic_write_json(marker, {"model_path": str(model_dir), "train_s": wall})
    shutil.rmtree(Path(train_kwargs["out"]) / "checkpoints", ignore_errors=True)
    return str(model_dir), wall


def _merged(model_ref: str, start: str, weight: float, out: Path) -> str:
    """The WiSE-FT merge of a cell's trained model with its start (:func:`~hybridir.encoders.models.merge_weights`),
    built
    once beside the training (its ``train_summary.json`` one level up still describes the run) and shared by every
    centred variant."""
    from ..encoders.models import load_encoder, merge_weights

    if not (out / "model.safetensors").is_file():
        model = load_encoder(model_ref, device="cpu")
        merge_weights(model, load_encoder(start, device="cpu"), weight)
        clear_stale_tmp(out)
        with atomic_dir(out) as tmp:
            model.save(str(tmp))
    return str(out)


def _evaluate_cell(
    model_ref: str,
    dataset: str,
    opts: dict[str, Any],
    eval_dir: Path,
    data_dir: Path | None,
    cache_dir: Path | None,
    show_progress: bool,
) -> float:
    """Evaluate into a temporary directory renamed on success, so a killed evaluation is simply redone."""
    from ..evaluation.evaluate import evaluate

    timing_file = eval_dir / "eval_time.json"
    if timing_file.is_file():
        return json.loads(timing_file.read_text(encoding="utf-8"))["eval_s"]
    clear_stale_tmp(eval_dir)  # a killed run's; the cell's lock rules out a live writer
    start = time.perf_counter()
    with atomic_dir(eval_dir) as tmp:
        evaluate(model_ref, dataset, data_dir=data_dir, out_dir=tmp, cache_dir=cache_dir,
                 show_progress=show_progress, **opts)  # fmt: skip
        wall = time.perf_counter() - start
        atomic_write_json(tmp / "eval_time.json", {"eval_s": wall})
    return wall


def cell_metrics(cell_dir: Path, datasets: Iterable[str], mono_only: bool = False) -> dict[str, float]:
    """Flat ``<dataset>/<metric>`` numbers from each dataset's results.json summary. ``mono_only`` (mono-ft: a
    one-language evaluation) keeps only the monolingual figures of a LAReQA-style summary; its cross / multi /
    bias figures would describe a one-language pool and are left out (the table shows n/a)."""
    metrics: dict[str, float] = {}
    for ds in datasets:
        summary = read_results(cell_dir, ds).get("summary", {})
        lareqa = mono_only and "mono_map" in summary
        metrics |= {f"{ds}/{k}": float(val) for k, val in summary.items()
                    if is_number(val) and (not lareqa or k.startswith("mono_"))}  # fmt: skip
    return metrics


def _dev_metrics(train_dir: Path, which: str) -> dict[str, float]:
    """Held-out training-data metrics of train_summary.json (``dev_end`` after training, ``dev_start`` of the
    starting model): LAReQA-style mono / cross / multi mAP and rank distance on NTREX held-out documents and FLORES
    dev, the only numbers a study may choose hyperparameters on."""
    path = train_dir / "train_summary.json"
    if not path.is_file():
        return {}
    dev = json.loads(path.read_text(encoding="utf-8")).get(which) or {}
    return {k: float(val) for k, val in dev.items() if is_number(val) and k != "n_items"}
