"""Studies: a YAML grid of train + evaluate cells, run resumably, summarised in one table with significance marks.

A study answers the questions the hybrid-batch paper asks all at once ("does hybrid beat X-X and X-Y in every
setting, at every model size, for every number of training languages, and what does alpha do?"). Each cell of the
grid (model x sampler x alpha x language set x steps x seed) is trained with :func:`hybridir.training.train` (or not,
for ``zero-shot``) and evaluated with :func:`hybridir.evaluation.evaluate` on every configured dataset. Every cell
keeps its run directory under ``OUT/cells/<cell id>/``; a ``done.json`` written last marks it finished, so a killed
study continues where it stopped (training resumes from its own checkpoints, finished evaluations are kept).

The study directory then gets ``study.md`` / ``study.csv`` / ``study.json`` (mean +- std over seeds, paired
significance tests of every hybrid arm against every baseline over queries) and plots for each axis the grid has;
that part lives in :mod:`hybridir.study_report`.

Example::

    from hybridir.study import run_study
    out = run_study(Path("studies/smoke.yaml"))      # -> runs/studies/smoke
    print((out / "study.md").read_text())

The YAML format is documented in ``docs/studies.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.parallel import NTREX_CODES, XQUAD_LANGUAGES, ntrex_files
from .errors import ConfigError, DataError
from .files import atomic_dir, atomic_write_json, atomic_write_text

SAMPLERS = ("zero-shot", "xx", "xy", "hybrid")
DATASETS = ("xquad-r", "monoqa")

# Keys of each YAML section; anything else is a typo the user should hear about.
_TOP_KEYS = {"name", "description", "out", "data_dir", "grid", "seeds_override", "train", "eval", "high_resource"}
_GRID_KEYS = {"models", "samplers", "alpha", "languages", "seeds", "steps"}
_EVAL_KEYS = {"datasets", "languages", "max_questions", "batch_size", "with_context", "plots"}
# TrainConfig fields that the grid (or the runner) sets per cell, so the ``train`` section may not.
_GRID_OWNED = {"model", "languages", "sampler", "alpha", "seed", "steps", "out", "data_dir", "show_progress"}


# ----------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Cell:
    """One point of the grid. Zero-shot cells have no language set, steps or seed (they do not train)."""

    model: str
    sampler: str
    alpha: float | None = None
    langset: str | None = None
    languages: tuple[str, ...] = ()
    steps: int | None = None
    seed: int | None = None

    @property
    def arm(self) -> str:
        """The row label: ``zero-shot``, ``xx``, ``xy`` or ``hybrid-<alpha>``."""
        return f"hybrid-{self.alpha:g}" if self.sampler == "hybrid" else self.sampler

    @property
    def group(self) -> tuple[str, str | None, int | None]:
        """Arms are compared within (model, language set, steps); zero-shot joins every group of its model."""
        return (self.model, self.langset, self.steps)

    @property
    def cell_id(self) -> str:
        parts = [slug(self.model), self.arm]
        if self.sampler != "zero-shot":
            parts += [slug(self.langset or ""), f"{self.steps}steps", f"seed{self.seed}"]
        return "__".join(parts)


@dataclass
class StudyConfig:
    """A parsed and validated study YAML (see ``docs/studies.md``)."""

    path: Path
    name: str
    description: str = ""
    out: Path | None = None
    data_dir: Path | None = None
    models: list[str] = field(default_factory=lambda: ["e5-small"])
    samplers: list[str] = field(default_factory=lambda: list(SAMPLERS))
    alphas: list[float] = field(default_factory=lambda: [0.5])
    language_sets: dict[str, list[str]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: list[int] = field(default_factory=lambda: [1000])
    seeds_override: dict[str, list[int]] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=lambda: {"xquad-r": {}})
    # A convention, not a measurement: the XQuAD-R languages with the largest Wikipedias and web corpora.
    high_resource: list[str] = field(default_factory=lambda: ["en", "de", "es", "ru", "zh"])


def load_study_config(path: Path) -> StudyConfig:
    """Read and validate a study YAML; every error is a :class:`ConfigError` naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the study file: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    v = _Validator(path)
    raw = v.mapping(raw, "(top level)", _TOP_KEYS)
    grid = v.mapping(raw.get("grid", {}), "grid", _GRID_KEYS)
    cfg = StudyConfig(path=path, name=v.string(raw.get("name", path.stem), "name"))
    cfg.description = v.string(raw.get("description", ""), "description")
    cfg.out = Path(v.string(raw["out"], "out")) if "out" in raw else None
    cfg.data_dir = Path(v.string(raw["data_dir"], "data_dir")) if raw.get("data_dir") else None
    cfg.models = v.str_list(grid.get("models", cfg.models), "grid.models")
    cfg.samplers = v.str_list(grid.get("samplers", cfg.samplers), "grid.samplers")
    for s in cfg.samplers:
        if s not in SAMPLERS:
            raise ConfigError(f"{path}: grid.samplers: unknown sampler {s!r}; use {', '.join(SAMPLERS)}")
    cfg.alphas = [v.alpha(a, "grid.alpha") for a in v.as_list(grid.get("alpha", cfg.alphas), "grid.alpha")]
    cfg.seeds = v.int_list(grid.get("seeds", cfg.seeds), "grid.seeds", minimum=0)
    cfg.steps = v.int_list(grid.get("steps", cfg.steps), "grid.steps", minimum=1)
    known = known_languages(cfg.data_dir)
    cfg.language_sets = _language_sets(grid.get("languages", list(XQUAD_LANGUAGES)), v, known)
    cfg.high_resource = v.str_list(raw.get("high_resource", cfg.high_resource), "high_resource")
    cfg.train = _train_section(raw.get("train", {}), v)
    cfg.datasets = _eval_section(raw.get("eval", {}), v)
    arms = {c.arm for c in expand_grid(cfg)}
    overrides = v.mapping(raw.get("seeds_override", {}), "seeds_override", None)
    for arm, seeds in overrides.items():
        if arm not in arms or arm == "zero-shot":
            raise ConfigError(
                f"{path}: seeds_override.{arm}: no trained arm of that name in the grid "
                f"(arms: {', '.join(sorted(arms - {'zero-shot'}))})"
            )
        cfg.seeds_override[arm] = v.int_list(seeds, f"seeds_override.{arm}", minimum=0)
    _check_train_configs(cfg)
    return cfg


def _check_train_configs(cfg: StudyConfig) -> None:
    """Build every cell's TrainConfig now, so a value training would refuse fails before hours of other cells."""
    from .training import TrainConfig

    for cell in expand_grid(cfg):
        if (kwargs := train_kwargs(cfg, cell, Path("."))) is not None:
            try:
                TrainConfig(**kwargs)
            except (ConfigError, DataError) as e:
                raise ConfigError(f"{cfg.path}: train / grid, cell {cell.cell_id}: {e}") from e


class _Validator:
    """Type checks that name the YAML file and key in every message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {msg}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None and (unknown := sorted(set(map(str, value)) - allowed)):
            raise self.fail(key, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return {str(k): v for k, v in value.items()}

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def as_list(self, value: Any, key: str) -> list[Any]:
        """A scalar is a one-element list; repeats would make duplicate cells."""
        items = list(value) if isinstance(value, list | tuple) else [value]
        if len({json.dumps(x) for x in items}) != len(items):
            raise self.fail(key, f"lists a value twice: {items}")
        return items

    def str_list(self, value: Any, key: str) -> list[str]:
        items = self.as_list(value, key)
        if not items:
            raise self.fail(key, "must not be empty")
        return [self.string(x, key) for x in items]

    def int_list(self, value: Any, key: str, minimum: int) -> list[int]:
        items = self.as_list(value, key)
        if not items:
            raise self.fail(key, "must not be empty")
        for x in items:
            if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
                raise self.fail(key, f"expected integers >= {minimum}, got {x!r}")
        return items

    def alpha(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise self.fail(key, f"alpha must be a number in [0, 1], got {value!r}")
        return float(value)


def _language_sets(value: Any, v: _Validator, known: set[str]) -> dict[str, list[str]]:
    """Accepts a list of codes (one set), a mapping name -> codes, or ``{nested: [2, 4], order: [...]}``.

    The nested form gives the number-of-languages axis: the first k languages of ``order`` for each k.
    """
    key = "grid.languages"
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        sets = {f"{len(value)}langs": v.str_list(value, key)}
    elif isinstance(value, dict) and "nested" in value:
        spec = v.mapping(value, key, {"nested", "order"})
        order = v.str_list(spec.get("order", list(XQUAD_LANGUAGES)), f"{key}.order")
        sizes = v.int_list(spec["nested"], f"{key}.nested", minimum=1)
        if max(sizes) > len(order):
            raise v.fail(f"{key}.nested", f"asks for {max(sizes)} languages but order lists {len(order)}")
        sets = {f"k{k}": order[:k] for k in sizes}
    elif isinstance(value, dict) and value:
        sets = {str(name): v.str_list(codes, f"{key}.{name}") for name, codes in value.items()}
    else:
        raise v.fail(key, "expected a list of language codes, a mapping name -> list, or {nested: [...], order: [...]}")
    for name, codes in sets.items():
        if bad := [c for c in codes if c not in known]:
            raise v.fail(
                f"{key}.{name}",
                f"unknown language code(s) {', '.join(bad)}; use short codes (ISO 639-1, e.g. "
                f"{' '.join(XQUAD_LANGUAGES)}) or NTREX-128 codes (e.g. arb, zho-TW; see ntrex-128/LANGUAGES.tsv)",
            )
    return sets


def _train_section(value: Any, v: _Validator) -> dict[str, Any]:
    """Validate the ``train`` section against :class:`hybridir.training.TrainConfig`'s fields and their types."""
    from .training import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    section = v.mapping(value, "train", set(fields) | _GRID_OWNED)
    for key, val in section.items():
        if key in _GRID_OWNED:
            raise v.fail(f"train.{key}", "is set by the grid (or the runner), not in the train section")
        default = fields[key].default
        if default is dataclasses.MISSING or default is None or val is None:
            continue
        want = float if type(default) is float else type(default)
        ok = isinstance(val, int | float) and not isinstance(val, bool) if want is float else type(val) is want
        if not ok:
            raise v.fail(f"train.{key}", f"expected {want.__name__}, got {val!r}")
    return section


def _eval_section(value: Any, v: _Validator) -> dict[str, dict[str, Any]]:
    """Returns dataset -> keyword arguments for ``evaluate``; shared options apply to every dataset."""
    section = v.mapping(value, "eval", _EVAL_KEYS)
    shared = {k: val for k, val in section.items() if k != "datasets"}
    raw = section.get("datasets", ["xquad-r"])
    per_ds = {d: {} for d in v.str_list(raw, "eval.datasets")} if not isinstance(raw, dict) else raw
    out: dict[str, dict[str, Any]] = {}
    for ds, opts in per_ds.items():
        if ds not in DATASETS:
            raise v.fail("eval.datasets", f"unknown dataset {ds!r}; use {', '.join(DATASETS)}")
        opts = v.mapping(opts, f"eval.datasets.{ds}", _EVAL_KEYS - {"datasets"})
        merged = {**shared, **opts}
        for key in ("max_questions", "batch_size"):
            if merged.get(key) is not None:
                v.int_list(merged[key], f"eval.{key}", minimum=1)
        for key in ("with_context", "plots"):
            if key in merged and not isinstance(merged[key], bool):
                raise v.fail(f"eval.{key}", f"expected true or false, got {merged[key]!r}")
        if merged.get("languages") is not None:
            merged["languages"] = _eval_languages(ds, v.str_list(merged["languages"], f"eval.{ds}.languages"), v)
        out[ds] = merged
    return out


def _eval_languages(dataset: str, languages: list[str], v: _Validator) -> list[str]:
    """XQuAD-R has 11 languages; a monoqa language filter must keep at least one of its sets (by language or name)."""
    from .data.monoqa import MONOQA_SETS

    if dataset == "xquad-r" and (bad := [x for x in languages if x not in XQUAD_LANGUAGES]):
        raise v.fail("eval.xquad-r.languages", f"not XQuAD-R languages: {', '.join(bad)} (it has "
                     f"{' '.join(XQUAD_LANGUAGES)})")  # fmt: skip
    if dataset == "monoqa" and not any(lang in languages or name in languages
                                       for name, (_, _, lang) in MONOQA_SETS.items()):  # fmt: skip
        raise v.fail("eval.monoqa.languages", f"selects none of the sets {', '.join(MONOQA_SETS)}")
    return languages


def known_languages(data_dir: Path | None = None) -> set[str]:
    """Codes a study may train on: hybridir's short codes, NTREX-128 codes, and every NTREX file of the data."""
    codes = set(NTREX_CODES) | set(NTREX_CODES.values())
    with contextlib.suppress(DataError):  # no data here: the known codes still validate; training says more
        codes |= set(ntrex_files(data_dir))
    return codes


# ----------------------------------------------------------------------------------------------------------------
# Grid


def expand_grid(cfg: StudyConfig) -> list[Cell]:
    """All cells: zero-shot once per model; alpha varies only for hybrid; per-arm seeds from ``seeds_override``."""
    cells: list[Cell] = []
    for model in cfg.models:
        for sampler in cfg.samplers:
            if sampler == "zero-shot":
                cells.append(Cell(model, "zero-shot"))
                continue
            for alpha in cfg.alphas if sampler == "hybrid" else [None]:
                arm = Cell(model, sampler, alpha).arm
                for (name, langs), steps in itertools.product(cfg.language_sets.items(), cfg.steps):
                    for seed in cfg.seeds_override.get(arm, cfg.seeds):
                        cells.append(Cell(model, sampler, alpha, name, tuple(langs), steps, seed))
    return cells


# ----------------------------------------------------------------------------------------------------------------
# Running cells


def run_study(
    config_path: Path, out_dir: Path | None = None, *, only_summary: bool = False, show_progress: bool = True
) -> Path:
    """Run (or continue) every unfinished cell of the study, then write the combined table and plots.

    ``out_dir`` defaults to the YAML's ``out`` key, else ``runs/studies/<name>``. With ``only_summary`` no cell is
    run: the table is rebuilt from the cells already finished. Returns the study directory.
    """
    from tqdm.auto import tqdm

    cfg = load_study_config(Path(config_path))
    out = Path(out_dir or cfg.out or Path("runs") / "studies" / cfg.name)
    from .study_report import write_summary

    cells = expand_grid(cfg)
    atomic_write_text(out / "study.yaml", Path(config_path).read_text(encoding="utf-8"))
    if not only_summary:
        bar = tqdm(cells, desc=f"study {cfg.name}", unit="cell", disable=not show_progress)
        for cell in bar:
            bar.set_postfix_str(cell.cell_id)
            run_cell(cfg, cell, out / "cells" / cell.cell_id, cache_dir=out / "cache", show_progress=show_progress)
    write_summary(cfg, cells, out)
    return out


def train_kwargs(cfg: StudyConfig, cell: Cell, cell_dir: Path) -> dict[str, Any] | None:
    """The :class:`~hybridir.training.TrainConfig` arguments of a cell (None for zero-shot)."""
    if cell.sampler == "zero-shot":
        return None
    kwargs = {**cfg.train, "model": cell.model, "languages": list(cell.languages), "sampler": cell.sampler,
              "steps": cell.steps, "seed": cell.seed, "out": str(cell_dir / "train")}  # fmt: skip
    if cell.alpha is not None:
        kwargs["alpha"] = cell.alpha
    if cfg.data_dir is not None:
        kwargs["data_dir"] = str(cfg.data_dir)
    return kwargs


def cell_settings(cfg: StudyConfig, cell: Cell, cell_dir: Path) -> dict[str, Any]:
    """Everything that determines a cell's result; stored in ``cell.json`` and compared when a study resumes."""
    return {"cell": dataclasses.asdict(cell) | {"arm": cell.arm}, "train": train_kwargs(cfg, cell, cell_dir),
            "eval": cfg.datasets}  # fmt: skip


def run_cell(
    cfg: StudyConfig, cell: Cell, cell_dir: Path, *, cache_dir: Path | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Train (unless zero-shot) and evaluate one cell; skipped if ``done.json`` exists. Returns its record."""
    done = cell_dir / "done.json"
    settings = cell_settings(cfg, cell, cell_dir)
    _check_same_settings(cell_dir / "cell.json", settings)
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    atomic_write_json(cell_dir / "cell.json", settings)
    timing: dict[str, Any] = {}
    model_ref = cell.model
    if settings["train"] is not None:
        model_ref, timing["train_s"] = _train_cell(settings["train"], cell_dir, show_progress)
    timing["eval_s"] = {}
    for ds, opts in cfg.datasets.items():
        timing["eval_s"][ds] = _evaluate_cell(
            model_ref, ds, opts, cell_dir / "eval" / ds, cfg.data_dir, cache_dir, show_progress
        )
    record = {
        "cell_id": cell.cell_id,
        **settings["cell"],
        "model_path": model_ref,
        "metrics": _cell_metrics(cell_dir, cfg.datasets),
        "dev": _dev_metrics(cell_dir / "train"),
        "timing": timing | {"total_s": timing.get("train_s", 0.0) + sum(timing["eval_s"].values())},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(done, record)  # last: its presence means the whole cell is finished
    return record


def _check_same_settings(path: Path, settings: dict[str, Any]) -> None:
    """A resumed cell must have been started with the same settings, else its results would be mislabelled."""
    if not path.is_file():
        return
    from .training import RESUMABLE_FIELDS  # paths and checkpointing may change between a run and its resumption

    old, new = (_without(s, RESUMABLE_FIELDS) for s in (json.loads(path.read_text(encoding="utf-8")), settings))
    if old != new:
        diff = sorted(
            f"{sec}.{k}" for sec in new for k in set(old.get(sec) or {}) | set(new[sec] or {})
            if (old.get(sec) or {}).get(k) != (new[sec] or {}).get(k)
        )  # fmt: skip
        raise ConfigError(
            f"{path.parent}: this cell was started with different settings ({', '.join(diff)}); "
            "use a new --out directory or delete the cell directory to rerun it"
        )


def _without(settings: dict[str, Any], train_keys: set[str]) -> dict[str, Any]:
    train = {k: v for k, v in (settings.get("train") or {}).items() if k not in train_keys}
    return json.loads(json.dumps(settings | {"train": train if settings.get("train") else None}))


def describe_study(config_path: Path, out_dir: Path | None = None) -> str:
    """One line per cell with its status (done / started / to do): what ``run_study`` would do, without running."""
    cfg = load_study_config(Path(config_path))
    out = Path(out_dir or cfg.out or Path("runs") / "studies" / cfg.name)
    lines = []
    for cell in expand_grid(cfg):
        d = out / "cells" / cell.cell_id
        status = "done" if (d / "done.json").is_file() else "started" if d.is_dir() else "to do"
        lines.append(f"{status:8} {cell.cell_id}")
    return "\n".join([f"{cfg.name}: {len(lines)} cells in {out}", *lines])


def _train_cell(train_kwargs: dict[str, Any], cell_dir: Path, show_progress: bool) -> tuple[str, float]:
    """Train once; ``train_done.json`` records the final model so a resumed cell goes straight to evaluation."""
    from .training import TrainConfig, train

    marker = cell_dir / "train_done.json"
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        return info["model_path"], info["train_s"]
    start = time.perf_counter()
    model_dir = train(TrainConfig(**train_kwargs, show_progress=show_progress))
    wall = time.perf_counter() - start
    atomic_write_json(marker, {"model_path": str(model_dir), "train_s": wall})
    return str(model_dir), wall


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
    from .evaluation import evaluate

    timing_file = eval_dir / "eval_time.json"
    if timing_file.is_file():
        return json.loads(timing_file.read_text(encoding="utf-8"))["eval_s"]
    start = time.perf_counter()
    with atomic_dir(eval_dir) as tmp:
        evaluate(model_ref, dataset, data_dir=data_dir, out_dir=tmp, cache_dir=cache_dir,
                 show_progress=show_progress, **opts)  # fmt: skip
        wall = time.perf_counter() - start
        atomic_write_json(tmp / "eval_time.json", {"eval_s": wall})
    return wall


def _cell_metrics(cell_dir: Path, datasets: Iterable[str]) -> dict[str, float]:
    """Flat ``<dataset>/<metric>`` numbers from each dataset's results.json summary."""
    metrics: dict[str, float] = {}
    for ds in datasets:
        summary = read_results(cell_dir, ds).get("summary", {})
        metrics |= {f"{ds}/{k}": float(val) for k, val in summary.items() if is_number(val)}
    return metrics


def _dev_metrics(train_dir: Path) -> dict[str, float]:
    """Held-out training-data metrics after training (``dev_end`` of train_summary.json: X-X / X-Y accuracy@1
    and MRR): the only numbers a study may choose hyperparameters on."""
    path = train_dir / "train_summary.json"
    if not path.is_file():
        return {}
    dev = json.loads(path.read_text(encoding="utf-8")).get("dev_end") or {}
    return {k: float(val) for k, val in dev.items() if is_number(val) and k != "n_items"}


def read_results(cell_dir: Path, dataset: str) -> dict[str, Any]:
    path = cell_dir / "eval" / dataset / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"
