"""Study configuration: the YAML grid parsed and validated into :class:`StudyConfig`, its cells (:class:`Cell`) and
what each cell trains with; the small helpers both the runner (:mod:`.runner`) and the summary (:mod:`.summary`)
need. Neither of those imports the other. Datasets are the study-ready benchmarks of
:mod:`hybridir.evaluation.benchmarks`.

Example::

    cfg = load_study_config(Path("studies/recipe_search.yaml"))
    [cell.cell_id for cell in expand_grid(cfg)]
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.flores import check_topics
from ..data.languages import NTREX_CODES, XQUAD_LANGUAGES
from ..data.training.parallel import ntrex_files
from ..evaluation.benchmarks import lookup
from ..evaluation.config import STUDY_KEYS as EVAL_OPTIONS
from ..infra.errors import ConfigError, DataError
from .validate import Validator, yaml_error

# The arms a grid may list under ``samplers``: each is a sampler and loss choice (see ``train_kwargs``).
ARMS = ("zero-shot", "xx", "xy", "hybrid", "mixed", "kd", "hybrid-kd", "mono-ft", "hybrid-c")


def dataset_languages(dataset: str) -> tuple[str, ...] | None:
    """The languages a mono-ft cell can be evaluated in on ``dataset`` (None: not a per-language benchmark)."""
    bench, spec = lookup(dataset)
    return bench.arm_languages(spec)


def eval_dirname(dataset: str) -> str:
    """A cell's folder for ``dataset``'s results (``miracl-judged:yo`` -> ``miracl-judged_yo``): no colons in paths."""
    return dataset.replace(":", "_")


# Keys of each YAML section; anything else is a typo the user should hear about.
_TOP_KEYS = {"name", "description", "out", "data_dir", "cache_dir", "grid", "seeds_override", "train", "eval",
             "high_resource", "paper", "targets"}  # fmt: skip
#: the hybrid-batch paper's models, as a study's ``paper`` key names them (grid model -> paper model)
PAPER_MODELS = ("labse", "xlm-r")
_GRID_KEYS = {"models", "samplers", "alpha", "distill_weight", "recipes", "languages", "seeds", "steps", "merge",
              "centering"}  # fmt: skip
#: eval: ``evaluate``'s options that a study may set (EvalConfig's ``study`` fields), the datasets and their seeds
_EVAL_KEYS = {"datasets", "seeds", *EVAL_OPTIONS}
# TrainConfig fields that the grid (or the runner) sets per cell, so the ``train`` section may not.
_GRID_OWNED = {"model", "languages", "sampler", "alpha", "seed", "steps", "out", "data_dir", "show_progress", "loss",
               "distill_weight", "cache_dir"}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Cell:
    """One point of the grid. Zero-shot cells have no language set, steps or seed (they do not train).

    ``sampler`` is the arm's kind (one of :data:`ARMS`); ``distill_weight`` is set for ``hybrid-kd``; ``lang``
    for ``mono-ft`` (the one language the cell trains on and is evaluated in); ``recipe`` names the grid's
    TrainConfig overrides (``grid.recipes``), None without them. ``merge`` and ``centering`` are post-hoc
    variants of a trained model (``grid.merge``, ``grid.centering``): a WiSE-FT merge with the start model, and
    the scoring mode of :mod:`hybridir.encoders.centering`; they share the training of the cell without them."""

    model: str
    sampler: str
    alpha: float | None = None
    langset: str | None = None
    languages: tuple[str, ...] = ()
    steps: int | None = None
    seed: int | None = None
    distill_weight: float | None = None
    lang: str | None = None
    recipe: str | None = None
    merge: float | None = None
    centering: str | None = None

    @property
    def arm(self) -> str:
        """The row label: ``zero-shot``, ``xx``, ``xy``, ``hybrid-<alpha>``, ``mixed``, ``kd``,
        ``hybrid-<alpha>+kd<weight>`` or ``mono-ft`` (one row for all its languages), then ``@<recipe>`` when the
        grid has recipes, ``+m<weight>`` when merged and ``+<centering>`` when centred (``hybrid-0.5+m0.5+shift``)."""
        base = self.sampler
        if self.sampler in ("hybrid", "hybrid-kd"):
            base = f"hybrid-{self.alpha:g}" + (f"+kd{self.distill_weight:g}" if self.sampler == "hybrid-kd" else "")
        base = f"{base}@{self.recipe}" if self.recipe is not None and self.sampler != "zero-shot" else base
        base += f"+m{self.merge:g}" if self.merge is not None else ""
        return base + (f"+{self.centering}" if self.centering not in (None, "none") else "")

    @property
    def trained(self) -> Cell:
        """The cell whose training this one shares: the same without its post-hoc variants (merge, centering)."""
        return dataclasses.replace(self, merge=None, centering=None)

    def baseline(self, sampler: str) -> Cell:
        """This grid point trained with ``sampler`` instead (no alpha or distillation weight of its own), merged
        and scored alike: the cell a hybrid cell is paired with."""
        return dataclasses.replace(self, sampler=sampler, alpha=None, distill_weight=None)

    @property
    def group(self) -> tuple[str, str | None, int | None]:
        """Arms are compared within (model, language set, steps); zero-shot joins every group of its model."""
        return (self.model, self.langset, self.steps)

    @property
    def cell_id(self) -> str:
        parts = [slug(self.model), slug(self.arm)]
        if self.sampler != "zero-shot":
            parts += [slug(self.langset or ""), *([slug(self.lang)] if self.lang else []), f"{self.steps}steps",
                      f"seed{self.seed}"]  # fmt: skip
        return "__".join(parts)


@dataclass
class StudyConfig:
    """A parsed and validated study YAML (see ``docs/studies.md``)."""

    path: Path
    name: str
    description: str = ""
    out: Path | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None  # evaluation embeddings; None = the user cache shared by every study
    models: list[str] = field(default_factory=lambda: ["e5-small"])
    samplers: list[str] = field(default_factory=lambda: list(ARMS))
    alphas: list[float] = field(default_factory=lambda: [0.5])
    distill_weights: list[float] = field(default_factory=lambda: [1.0])
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    language_sets: dict[str, list[str]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: list[int] = field(default_factory=lambda: [1000])
    seeds_override: dict[str, list[int]] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=lambda: {"xquad-r": {}})
    # A convention, not a measurement: the XQuAD-R languages with the largest Wikipedias and web corpora.
    high_resource: list[str] = field(default_factory=lambda: ["en", "de", "es", "ru", "zh"])
    #: grid model -> the paper's model whose published numbers go beside it (analyses/paper_numbers.py)
    paper_models: dict[str, str] = field(default_factory=dict)
    #: "<dataset>/<metric>" -> the bar an arm should reach: a number, or "zero-shot" (analyses/targets.py)
    targets: dict[str, float | str] = field(default_factory=dict)
    #: post-hoc variants of every trained cell: WiSE-FT weights (1 = not merged) and centering modes ("none" first)
    merges: list[float] = field(default_factory=lambda: [1.0])
    centerings: list[str] = field(default_factory=lambda: ["none"])


def load_study_config(path: Path) -> StudyConfig:
    """Read and validate a study YAML; every error is a :class:`ConfigError` naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the study file: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error(path, e)) from e
    v = Validator(path)
    raw = v.mapping(raw, "(top level)", _TOP_KEYS)
    grid = v.mapping(raw.get("grid", {}), "grid", _GRID_KEYS)
    cfg = StudyConfig(path=path, name=v.string(raw.get("name", path.stem), "name"))
    cfg.description = v.string(raw.get("description", ""), "description")
    cfg.out = Path(v.string(raw["out"], "out")) if "out" in raw else None
    cfg.data_dir = Path(v.string(raw["data_dir"], "data_dir")) if raw.get("data_dir") else None
    cfg.cache_dir = Path(v.string(raw["cache_dir"], "cache_dir")) if raw.get("cache_dir") else None
    cfg.models = v.str_list(grid.get("models", cfg.models), "grid.models")
    cfg.samplers = v.str_list(grid.get("samplers", cfg.samplers), "grid.samplers")
    for s in cfg.samplers:
        if s not in ARMS:
            raise ConfigError(f"{path}: grid.samplers: unknown sampler {s!r}; use {', '.join(ARMS)}")
    cfg.alphas = [v.alpha(a, "grid.alpha") for a in v.as_list(grid.get("alpha", cfg.alphas), "grid.alpha")]
    cfg.distill_weights = [
        v.positive(w, "grid.distill_weight")
        for w in v.as_list(grid.get("distill_weight", cfg.distill_weights), "grid.distill_weight")
    ]
    recipes = v.mapping(grid.get("recipes", {}), "grid.recipes", None)
    cfg.recipes = {name: _train_section(over, v, f"grid.recipes.{name}") for name, over in recipes.items()}
    cfg.seeds = v.int_list(grid.get("seeds", cfg.seeds), "grid.seeds", minimum=0)
    cfg.merges = [v.alpha(w, "grid.merge") for w in v.as_list(grid.get("merge", cfg.merges), "grid.merge")]
    centerings = v.str_list(grid.get("centering", cfg.centerings), "grid.centering")
    cfg.centerings = [v.centering(c, "grid.centering") for c in centerings]
    cfg.steps = v.int_list(grid.get("steps", cfg.steps), "grid.steps", minimum=1)
    known = known_languages(cfg.data_dir)
    cfg.language_sets = _language_sets(grid.get("languages", list(XQUAD_LANGUAGES)), v, known)
    cfg.high_resource = v.str_list(raw.get("high_resource", cfg.high_resource), "high_resource")
    cfg.train = _train_section(raw.get("train", {}), v)
    cfg.paper_models = {k: v.string(m, f"paper.{k}") for k, m in v.mapping(raw.get("paper"), "paper", None).items()}
    if bad := [f"{k}: {m}" for k, m in cfg.paper_models.items() if k not in cfg.models or m not in PAPER_MODELS]:
        raise v.fail("paper", f"{bad[0]}: expected a grid model mapped to one of {', '.join(PAPER_MODELS)}")
    cfg.datasets = _eval_section(raw.get("eval", {}), v)
    for name, bar in v.mapping(raw.get("targets"), "targets", None).items():
        if name.partition("/")[0] not in cfg.datasets or not name.partition("/")[2]:
            raise v.fail(f"targets.{name}", f"expected <dataset>/<metric> of an evaluated dataset "
                                            f"({', '.join(cfg.datasets)})")  # fmt: skip
        if bar != "zero-shot" and not is_number(bar):
            raise v.fail(f"targets.{name}", f"expected a number or zero-shot, got {bar!r}")
        cfg.targets[name] = bar if bar == "zero-shot" else float(bar)
    arms = {c.arm for c in expand_grid(cfg)}
    overrides = v.mapping(raw.get("seeds_override", {}), "seeds_override", None)
    for arm, seeds in overrides.items():
        if arm not in arms or arm == "zero-shot":
            raise ConfigError(
                f"{path}: seeds_override.{arm}: no trained arm of that name in the grid "
                f"(arms: {', '.join(sorted(arms - {'zero-shot'}))})"
            )
        # [] leaves the arm out (e.g. one recipe for a few arms only)
        cfg.seeds_override[arm] = v.int_list(seeds, f"seeds_override.{arm}", minimum=0, allow_empty=True)
    _check_train_configs(cfg)
    return cfg


def _check_train_configs(cfg: StudyConfig) -> None:
    """Build every cell's TrainConfig now, so a value training would refuse fails before hours of other cells."""
    from ..training.config import TrainConfig

    for cell in expand_grid(cfg):
        if (kwargs := train_kwargs(cfg, cell, Path("."))) is not None:
            try:
                TrainConfig(**kwargs)
            except (ConfigError, DataError) as e:
                raise ConfigError(f"{cfg.path}: train / grid, cell {cell.cell_id}: {e}") from e


def _language_sets(value: Any, v: Validator, known: set[str]) -> dict[str, list[str]]:
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


def _train_section(value: Any, v: Validator, where: str = "train") -> dict[str, Any]:
    """Validate the ``train`` section (or a recipe) against :class:`hybridir.training.config.TrainConfig`'s fields and
    their types. ``data`` may be a list of sources, list fields a list."""
    from ..training.config import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    section = v.mapping(value, where, set(fields) | _GRID_OWNED)
    for key, val in section.items():
        if key in _GRID_OWNED:
            raise v.fail(f"{where}.{key}", "is set by the grid (or the runner), not here")
        f = fields[key]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default is dataclasses.MISSING or default is None or val is None:
            continue
        want = float if type(default) is float else type(default)
        ok = isinstance(val, int | float) and not isinstance(val, bool) if want is float else type(val) is want
        if key in ("data", "dev_data") and isinstance(val, list):
            ok = all(isinstance(x, str) for x in val)
        if not ok:
            raise v.fail(f"{where}.{key}", f"expected {want.__name__}, got {val!r}")
    return section


def _eval_section(value: Any, v: Validator) -> dict[str, dict[str, Any]]:
    """Returns dataset -> keyword arguments for ``evaluate``; shared options apply to every dataset."""
    section = v.mapping(value, "eval", _EVAL_KEYS)
    shared = {k: val for k, val in section.items() if k != "datasets"}
    raw = section.get("datasets", ["xquad-r"])
    if raw in ([], {}, None):  # dev metrics only (a recipe search must not look at evaluation data)
        return {}
    per_ds = {d: {} for d in v.str_list(raw, "eval.datasets")} if not isinstance(raw, dict) else raw
    out: dict[str, dict[str, Any]] = {}
    for ds, opts in per_ds.items():
        try:
            bench, spec = lookup(ds, study=True)
        except ConfigError as e:
            raise v.fail("eval.datasets", str(e)) from None
        opts = v.mapping(opts, f"eval.datasets.{ds}", _EVAL_KEYS - {"datasets"})
        merged = {**shared, **opts}
        for key in ("max_questions", "batch_size"):
            if merged.get(key) is not None:
                v.int_list(merged[key], f"eval.{key}", minimum=1)
        if "seeds" in merged:
            merged["seeds"] = v.int_list(merged["seeds"], f"eval.{ds}.seeds", minimum=0)
        for key in ("with_context", "plots"):
            if key in merged and not isinstance(merged[key], bool):
                raise v.fail(f"eval.{key}", f"expected true or false, got {merged[key]!r}")
        if merged.get("languages") is not None:
            merged["languages"] = v.str_list(merged["languages"], f"eval.{ds}.languages")
            try:
                bench.check_languages(spec, merged["languages"])
            except ConfigError as e:
                raise v.fail(f"eval.{ds}.languages", str(e)) from None
        if merged.get("in_domain_topics") is not None:  # FLORES topics (also for models that record none)
            try:
                merged["in_domain_topics"] = check_topics(v.str_list(merged["in_domain_topics"],
                                                                     f"eval.{ds}.in_domain_topics"))  # fmt: skip
            except ConfigError as e:
                raise v.fail(f"eval.{ds}.in_domain_topics", str(e)) from None
        out[ds] = merged
    return out


def known_languages(data_dir: Path | None = None) -> set[str]:
    """Codes a study may train on: hybridir's short codes, NTREX-128 codes, every NTREX file and FLORES folder of
    the data, and the QA sets' languages (AfriQA's Twi and Fon are in neither NTREX nor the short-code table)."""
    from ..data.flores import flores_codes
    from ..data.training.qa import qa_languages

    codes = set(NTREX_CODES) | set(NTREX_CODES.values()) | set().union(*qa_languages().values())
    with contextlib.suppress(DataError):  # no data here: the known codes still validate; training says more
        codes |= set(ntrex_files(data_dir))
    with contextlib.suppress(DataError):
        codes |= set(flores_codes(data_dir))
    return codes


# ----------------------------------------------------------------------------------------------------------------
# Grid


def expand_grid(cfg: StudyConfig) -> list[Cell]:
    """All cells: zero-shot once per model; alpha varies for hybrid and hybrid-kd, the distillation weight for
    hybrid-kd; every trained arm once per recipe; mono-ft once per language of the set; per-arm seeds from
    ``seeds_override``."""
    cells: list[Cell] = []
    for model in cfg.models:
        for sampler in cfg.samplers:
            if sampler == "zero-shot":
                cells += [Cell(model, "zero-shot", centering=_variant(c)) for c in cfg.centerings]
                continue
            alphas = cfg.alphas if sampler in ("hybrid", "hybrid-kd") else [None]
            weights = cfg.distill_weights if sampler == "hybrid-kd" else [None]
            for alpha, weight, recipe in itertools.product(alphas, weights, list(cfg.recipes) or [None]):
                arm = Cell(model, sampler, alpha, distill_weight=weight, recipe=recipe).arm
                for (name, langs), steps in itertools.product(cfg.language_sets.items(), cfg.steps):
                    for lang in langs if sampler == "mono-ft" else [None]:
                        for seed in cfg.seeds_override.get(arm, cfg.seeds):
                            cells += [Cell(model, sampler, alpha, name, tuple(langs), steps, seed, weight, lang,
                                           recipe, None if m == 1.0 else m, _variant(c))
                                      for m in cfg.merges for c in cfg.centerings]  # fmt: skip
    return cells


def _variant(centering: str) -> str | None:
    """A cell's centering field: None for ``none``, so the cells of a study without centering keep their ids."""
    return None if centering == "none" else centering


def cell_datasets(cfg: StudyConfig, cell: Cell) -> dict[str, dict[str, Any]]:
    """Data set -> ``evaluate`` options of a cell (see ``_datasets``), with its centering mode, ``none`` spelled
    out: a study's plain cells score plain whatever ``evaluate``'s default (a paper's numbers are plain)."""
    mode = cell.centering or "none"
    return {ds: {**opts, "centering": mode} for ds, opts in _datasets(cfg, cell).items()}


def _datasets(cfg: StudyConfig, cell: Cell) -> dict[str, dict[str, Any]]:
    """Data set -> ``evaluate`` options of a cell. A data set with ``seeds`` evaluates trained cells of those seeds
    only (a cheaper slice for a study's extra seeds; zero-shot has no seed and is always evaluated). A mono-ft cell
    is evaluated only in its own language, on the per-language data sets that have it (XQuAD-R in the mono
    setting, the monoqa set of that language)."""
    datasets = {ds: {k: v for k, v in opts.items() if k != "seeds"} for ds, opts in cfg.datasets.items()
                if cell.seed is None or cell.seed in opts.get("seeds", [cell.seed])}  # fmt: skip
    if cell.sampler != "mono-ft":
        return datasets
    out = {}
    for ds, opts in datasets.items():
        langs = dataset_languages(ds)
        if langs is not None and cell.lang in langs and cell.lang in (opts.get("languages") or langs):
            out[ds] = {**opts, "languages": [cell.lang]}
    return out


def train_kwargs(cfg: StudyConfig, cell: Cell, cell_dir: Path) -> dict[str, Any] | None:
    """The :class:`~hybridir.training.config.TrainConfig` arguments of a cell (None for zero-shot)."""
    if cell.sampler == "zero-shot":
        return None
    arm: dict[str, Any] = {
        "mixed": {"sampler": "xx", "mixed_languages": True},  # multilingual batches: X-X pairs of many languages
        "kd": {"sampler": "xy", "loss": "kd"},
        "hybrid-kd": {"sampler": "hybrid", "distill_weight": cell.distill_weight},
        "mono-ft": {"sampler": "xx", "languages": [cell.lang]},
        "hybrid-c": {"sampler": "hybrid", "centered": True},  # InfoNCE on centred vectors (centered_infonce.py)
    }.get(cell.sampler, {"sampler": cell.sampler})
    kwargs = {**cfg.train, **cfg.recipes.get(cell.recipe or "", {}), "model": cell.model,
              "languages": list(cell.languages), "steps": cell.steps, "seed": cell.seed,
              "out": str(cell_dir.parent / cell.trained.cell_id / "train"),
              "cache_dir": str(cell_dir.parent.parent / "cache" / "vectors"),
              **arm}  # fmt: skip
    if cell.alpha is not None:
        kwargs["alpha"] = cell.alpha
    if cfg.data_dir is not None:
        kwargs["data_dir"] = str(cfg.data_dir)
    return kwargs


def read_results(cell_dir: Path, dataset: str) -> dict[str, Any]:
    path = cell_dir / "eval" / eval_dirname(dataset) / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"
