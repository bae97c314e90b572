"""Finished cells -> rows: per-seed values, mean, std and 95% interval over seeds, and the paired significance tests
of every hybrid-family arm against every baseline over queries (with the table marks they set).

Every analysis and renderer of a study summary reads these rows; none of them reads a cell directly except
through the helpers here (``row_dirs``, ``per_language``, ``read_results``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.languages import NTREX_CODES, XQUAD_LANGUAGES
from ..evaluation.benchmarks import BENCHMARKS, lookup
from .config import Cell, eval_dirname, is_number, read_results

SIGNIFICANCE_LEVEL = 0.05
# Settings with per-query scores in per_query.npz, and the summary column each one is tested for.
_SETTING_COLUMN = {
    setting: f"{b.name}/{metric}" for b in BENCHMARKS if b.in_studies for setting, metric in b.tested.items()
}
#: metrics (last part of the name) where a smaller value is better: the language-bias figures
LOWER_IS_BETTER = {"rank_distance", "pool_rank_distance"}


#: XQuAD-R's three settings: the columns most analyses and plots are about
SETTINGS = (
    ("xquad-r/mono_map", "mono mAP"),
    ("xquad-r/cross_map", "cross mAP"),
    ("xquad-r/multi_map", "multi mAP"),
)


@dataclass
class Row:
    """One arm of one group, aggregated over its finished seeds. ``cell`` is the arm's grid point without a seed:
    analyses ask it for the sampler, recipe, merge and centering rather than parsing the ``arm`` label."""

    cell: Cell
    records: list[dict[str, Any]]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    ci95: dict[str, float] = field(default_factory=dict)  # half-width of the 95% t-interval of the mean over seeds
    marks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def model(self) -> str:
        return self.cell.model

    @property
    def langset(self) -> str | None:
        return self.cell.langset

    @property
    def steps(self) -> int | None:
        return self.cell.steps

    @property
    def arm(self) -> str:
        return self.cell.arm

    @property
    def seeds(self) -> list[int | None]:
        return [r["seed"] for r in self.records]

    def as_dict(self) -> dict[str, Any]:
        """The row for study.json; ``per_seed`` (metric -> seed -> value) keeps every seed's number, so pairings
        and re-analyses can be done from the committed report when the run directory is gone."""
        per = {n: {str(s): v for s, v in per_seed(self, n).items()} for n in self.mean}
        return {"model": self.model, "languages": self.langset, "steps": self.steps, "arm": self.arm,
                "seeds": self.seeds, "mean": self.mean, "std": self.std, "ci95": self.ci95,
                "marks": dict(self.marks), "per_seed": per}  # fmt: skip


def collect_rows(cells: list[Cell], out: Path) -> tuple[list[Row], list[Cell]]:
    """Finished cells grouped into rows (grid order), plus the cells not finished yet."""
    rows: dict[tuple[Any, ...], Row] = {}
    missing: list[Cell] = []
    for cell in cells:
        done = out / "cells" / cell.cell_id / "done.json"
        if not done.is_file():
            missing.append(cell)
            continue
        record = json.loads(done.read_text(encoding="utf-8"))
        key = (*cell.group, cell.arm)
        rows.setdefault(key, Row(dataclasses.replace(cell, seed=None, lang=None), [])).records.append(record)
    # The zero-shot row's dev figures: the starting model on the trained cells' dev data (``dev_start``).
    starts = defaultdict(list)
    for row in rows.values():
        for r in row.records:
            if r.get("dev_start"):
                starts[row.model].append(r["dev_start"])
    for row in rows.values():
        if row.arm == "zero-shot" and starts[row.model]:
            row.records = [r | {"dev": _mean_dicts(starts[row.model])} for r in row.records]
        names = sorted({k for r in row.records for k in [*r["metrics"], *(f"dev/{d}" for d in r.get("dev", {}))]})
        for name in names:
            vals = _seed_values(row, name)
            row.mean[name] = float(np.mean(vals))
            row.std[name] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
            row.ci95[name] = ci95_half_width(row.std[name], len(vals))
    return list(rows.values()), missing


def per_seed(row: Row, name: str) -> dict[Any, float]:
    """seed -> value: a mono-ft row holds one record per (language, seed), averaged over languages first, so its
    spread is over seeds, not over languages; other rows hold one record per seed."""
    by_seed: dict[Any, list[float]] = defaultdict(list)
    for r in row.records:
        if (x := _record_value(r, name)) is not None:
            by_seed[r["seed"]].append(x)
    return {seed: float(np.mean(v)) for seed, v in by_seed.items()}


def seed_summary(row: Row, names: list[str]) -> dict[str, dict[str, float]]:
    """metric -> mean over the seeds that have it, half-width of its 95% interval and that number of seeds (a
    cheaper slice, such as MIRACL on seed 0 only, has fewer); metrics the row lacks are left out."""
    out = {}
    for name in names:
        if xs := list(per_seed(row, name).values()):
            mean, ci = mean_ci95(xs)
            out[name] = {"mean": mean, "ci95": ci, "n_seeds": len(xs)}
    return out


def paired_differences(row: Row, baseline: Row, metrics: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Per (metric, label) of ``metrics``: the mean and 95% interval of ``row`` minus ``baseline`` over the seeds
    both have (a metric neither pair of seeds has is left out); the records every paired comparison reports."""
    out = []
    for name, label in metrics:
        a, b = per_seed(row, name), per_seed(baseline, name)
        if diffs := [a[s] - b[s] for s in a if s in b]:
            mean, ci = mean_ci95(diffs)
            out.append({"metric": name, "label": label, "n_seeds": len(diffs), "mean": mean, "ci95": ci})
    return out


def _seed_values(row: Row, name: str) -> list[float]:
    return list(per_seed(row, name).values())


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95% Student-t confidence interval of a mean over ``n`` seeds (nan below two seeds)."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")


def mean_ci95(xs: list[float]) -> tuple[float, float]:
    """Mean over seeds and the half-width of its 95% t-interval (nan below two values)."""
    std = float(np.std(xs, ddof=1)) if len(xs) > 1 else float("nan")
    return float(np.mean(xs)), ci95_half_width(std, len(xs))


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in sorted({k for d in dicts for k in d})}


def _record_value(record: dict[str, Any], name: str) -> float | None:
    return record.get("dev", {}).get(name[4:]) if name.startswith("dev/") else record["metrics"].get(name)


def row_dirs(row: Row, out: Path) -> list[Path]:
    return [out / "cells" / r["cell_id"] for r in row.records]


#: the arms a hybrid-family arm is tested against when the grid has them (same group and recipe)
BASELINES = ("xx", "xy", "mixed", "kd", "mono-ft")


def comparisons(rows: list[Row]) -> list[tuple[Row, Row]]:
    """(hybrid-family row, baseline row) pairs: the :data:`BASELINES` of the same group, recipe and post-hoc
    variants (merge, centering), zero-shot of the same model and centering. Hybrid-family: hybrid and hybrid +
    distillation arms. A hybrid model centred is never tested against a baseline scored another way."""
    pairs = []
    for h in (r for r in rows if r.cell.sampler.startswith("hybrid")):
        for b in rows:
            same = (*b.cell.group, b.cell.recipe) == (*h.cell.group, h.cell.recipe)
            scored_alike = b.cell.centering == h.cell.centering
            baseline = b.cell.sampler in BASELINES and same and scored_alike and b.cell.merge == h.cell.merge
            if baseline or (b.cell.sampler == "zero-shot" and b.model == h.model and scored_alike):
                pairs.append((h, b))
    return pairs


def significance(rows: list[Row], out: Path, datasets: Collection[str]) -> list[dict[str, Any]]:
    """Paired tests over queries of every hybrid arm against every baseline, per setting.

    Each arm's per-query scores (AP for XQuAD-R, the harness's per-query metric for monoqa) are averaged over its
    seeds first, so the test asks whether the arm, not one lucky seed, is better on the same queries.
    Marks the row's table cell: ``▲xx`` = significantly better than X-X at p < 0.05 (uncorrected), ``▼`` worse
    (for rank distance, the language-bias figure, lower is better).
    """
    from tqdm.auto import tqdm

    from ..evaluation.metrics import paired_test

    tests = []
    for h, b in tqdm(comparisons(rows), desc="paired tests", unit="pair", leave=False):
        hq, bq = _seed_mean_per_query(h, out, datasets), _seed_mean_per_query(b, out, datasets)
        for setting in sorted(set(hq) & set(bq)):
            if b.cell.sampler == "mono-ft" and setting not in ("mono", *datasets):
                continue  # a one-language model: only its monolingual figures mean anything (not cross / multi)
            a, c = _pair_up(hq[setting], bq[setting])
            if a.size == 0:
                continue
            res = paired_test(a, c)
            p, diff = float(res["p_value"]), float(res["mean_diff"])
            tests.append({"model": h.model, "languages": h.langset, "steps": h.steps, "arm": h.arm,
                          "baseline": b.arm, "setting": setting, "n_queries": int(res.get("n", a.size)),
                          "mean_diff": diff, "p_value": p})  # fmt: skip
            # A mark goes on a column the main table shows: a known setting or a retrieval study dataset (MIRACL);
            # the FLORES pool settings have no column and stay in study.json's test list only.
            column = _SETTING_COLUMN.get(setting) or (f"{setting}/ndcg@10" if setting in datasets else None)
            if column and p < SIGNIFICANCE_LEVEL and diff != 0:
                better = (diff < 0) if setting.rpartition(":")[2] in LOWER_IS_BETTER else (diff > 0)
                h.marks[column].append(("▲" if better else "▼") + _short(b.arm))
    return tests


def _short(arm: str) -> str:
    return "zs" if arm == "zero-shot" else arm.partition("@")[0]


def _seed_mean_per_query(row: Row, out: Path, datasets: Iterable[str]) -> dict[str, dict[str, tuple]]:
    """setting -> npz key -> (qids or None, per-query scores averaged over the row's seeds)."""
    stacks: dict[str, list[np.ndarray]] = defaultdict(list)
    qids: dict[str, np.ndarray] = {}
    retrieval_ds: dict[str, str] = {}  # retrieval set name -> the study dataset it came from
    for cell_dir in row_dirs(row, out):
        for ds in datasets:
            path = cell_dir / "eval" / eval_dirname(ds) / "per_query.npz"
            if not path.is_file():
                continue
            prefix = lookup(ds)[0].setting_prefix  # mlqa-r:mono/<x> apart from XQuAD-R's mono/<x>
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    if key.startswith("monoqa/"):  # nDCG@10 per query of a retrieval set (monoqa, MIRACL)
                        retrieval_ds[key[7:]] = ds
                    if key.startswith("qids/"):
                        qids[prefix + key[5:]] = npz[key]
                    else:
                        stacks[prefix + key].append(np.asarray(npz[key], dtype=float))
    by_setting: dict[str, dict[str, tuple]] = defaultdict(dict)
    for key, arrays in stacks.items():
        if len({a.shape for a in arrays}) == 1:
            scores = np.mean(arrays, axis=0)
            # One unit per query: a (queries x targets) cross-lingual table is averaged over its targets.
            scores = scores.reshape(len(scores), -1).mean(axis=1) if scores.ndim > 1 else scores
            setting, _, unit = key.partition("/")  # e.g. mono/ar, cross/ar, monoqa/jsquad-ja; ids in qids/<unit>
            prefix = setting.rpartition(":")[0] + ":" if ":" in setting else ""  # mlqa-r:mono/ar: ids of mlqa-r:ar
            setting = retrieval_ds.get(unit, setting)  # a retrieval set's nDCG@10 belongs to its study dataset
            by_setting[setting][key] = (qids.get(prefix + unit), scores)
    return by_setting


def _pair_up(a: dict[str, tuple], b: dict[str, tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the scores of the keys both sides have, matching queries by id where ids are stored."""
    xs, ys = [], []
    for key in sorted(set(a) & set(b)):
        (qa, va), (qb, vb) = a[key], b[key]
        if qa is not None and qb is not None and len(qa) == len(va) and len(qb) == len(vb):
            common = [q for q in qa if q in set(qb.tolist())]
            pos_a, pos_b = {q: i for i, q in enumerate(qa.tolist())}, {q: i for i, q in enumerate(qb.tolist())}
            va = va[[pos_a[q] for q in common]]
            vb = vb[[pos_b[q] for q in common]]
        if va.shape == vb.shape:
            keep = np.isfinite(va) & np.isfinite(vb)  # queries without a relevant candidate score NaN or inf
            xs.append(va[keep])
            ys.append(vb[keep])
    return (np.concatenate(xs), np.concatenate(ys)) if xs else (np.array([]), np.array([]))


def per_language(row: Row, out: Path, table: str) -> dict[str, float]:
    """A per-language XQuAD-R table (``mono``, ``multi`` or ``cross``, keyed ``x-y``) of mAP, mean over seeds."""
    return per_language_in(row_dirs(row, out), table)


def per_language_in(cell_dirs: list[Path], table: str) -> dict[str, float]:
    acc: dict[str, list[float]] = defaultdict(list)
    for cell_dir in cell_dirs:
        entries = read_results(cell_dir, "xquad-r").get(table, {})
        if table == "cross":  # query language -> passage language -> metrics
            entries = {f"{x}-{y}": m for x, by_y in entries.items() for y, m in by_y.items()}
        for key, metrics in entries.items():
            if (m := _map_of(metrics)) is not None:
                acc[key].append(m)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _map_of(metrics: Any) -> float | None:
    if is_number(metrics):
        return float(metrics)
    if isinstance(metrics, dict):
        for key in ("map", "mAP", "MAP"):
            if is_number(metrics.get(key)):
                return float(metrics[key])
    return None


def bitext_mrr(bitext: dict[str, Any]) -> float:
    """One FLORES language's MRR@10: the mean of its X->en and en->X directions."""
    return float(np.mean([bitext[d]["mrr@10"] for d in ("x_en", "en_x") if d in bitext]))


# NTREX-128 codes of the XQuAD-R languages, so a study may name its training languages either way.
_NTREX_TO_XQUAD = {NTREX_CODES[lang]: lang for lang in XQUAD_LANGUAGES}


def to_xquad(code: str) -> str:
    return _NTREX_TO_XQUAD.get(code, code)
