"""Study summaries: finished cells -> rows (mean, std and 95% interval over seeds), paired significance tests of every
hybrid arm against every baseline, seen/unseen-language and high-resource splits, hybrid gains per model size,
``study.md`` / ``study.csv`` / ``study.json`` and the plots (bars, alpha curve, number-of-languages and model-size
curves, X-to-Y heat maps).

:func:`hybridir.study.run_study` calls :func:`write_summary` after the cells; ``hybridir study --only-summary``
rebuilds it from whatever cells have finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.parallel import NTREX_CODES, XQUAD_LANGUAGES
from .files import atomic_savefig, atomic_write_json, atomic_write_text
from .study_config import Cell, StudyConfig, eval_dirname, is_number, read_results, slug

SIGNIFICANCE_LEVEL = 0.05
# Settings with per-query scores in per_query.npz, and the summary column each one is tested for.
_SETTING_COLUMN = {
    "mono": "xquad-r/mono_map",
    "cross": "xquad-r/cross_map",
    "multi": "xquad-r/multi_map",
    "rank_distance": "xquad-r/rank_distance",
    "monoqa": "monoqa/ndcg@10",
    "bitext": "flores/mrr@10",  # FLORES X <-> English, reciprocal rank per query
}
_LOWER_IS_BETTER = {"rank_distance", "pool_rank_distance"}
_RETRIEVAL = ("/ndcg@10", "/recall@100", "/mrr@10")  # MIRACL columns of the main table (dataset names vary)
_MAIN_COLUMNS = (
    ("xquad-r/mono_map", "mono mAP"),
    ("xquad-r/cross_map", "cross mAP"),
    ("xquad-r/multi_map", "multi mAP"),
    ("xquad-r/rank_distance", "rank dist."),
    ("xquad-r/top10_query_lang_share", "top-10 query-lang share"),
    ("monoqa/ndcg@10", "monoqa nDCG@10"),
    ("flores/acc@1", "FLORES acc@1"),
    ("flores/mrr@10", "FLORES MRR@10"),
    ("flores/mrr@10_in_domain", "FLORES MRR@10 in-domain"),
    ("flores/mrr@10_out_domain", "out-of-domain"),
    ("flores/domain_gap", "domain gap"),
    ("dev/mono_map", "dev mono"),
    ("dev/cross_map", "dev cross"),
    ("dev/multi_map", "dev multi"),
    ("dev/rank_distance", "dev rank dist."),
)

# ----------------------------------------------------------------------------------------------------------------
# Aggregation


@dataclass
class Row:
    """One arm of one group, aggregated over its finished seeds."""

    model: str
    langset: str | None
    steps: int | None
    arm: str
    records: list[dict[str, Any]]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    ci95: dict[str, float] = field(default_factory=dict)  # half-width of the 95% t-interval of the mean over seeds
    marks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def seeds(self) -> list[int | None]:
        return [r["seed"] for r in self.records]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "languages": self.langset, "steps": self.steps, "arm": self.arm,
                "seeds": self.seeds, "mean": self.mean, "std": self.std, "ci95": self.ci95,
                "marks": dict(self.marks)}  # fmt: skip


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
        rows.setdefault(key, Row(cell.model, cell.langset, cell.steps, cell.arm, [])).records.append(record)
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
            row.ci95[name] = _ci95(row.std[name], len(vals))
    return list(rows.values()), missing


def _per_seed(row: Row, name: str) -> dict[Any, float]:
    """seed -> value: a mono-ft row holds one record per (language, seed), averaged over languages first, so its
    spread is over seeds, not over languages; other rows hold one record per seed."""
    by_seed: dict[Any, list[float]] = defaultdict(list)
    for r in row.records:
        if (x := _record_value(r, name)) is not None:
            by_seed[r["seed"]].append(x)
    return {seed: float(np.mean(v)) for seed, v in by_seed.items()}


def _seed_values(row: Row, name: str) -> list[float]:
    return list(_per_seed(row, name).values())


def model_size_gains(rows: list[Row], models: Sequence[str]) -> list[dict[str, Any]]:
    """Hybrid minus X-X and minus X-Y for each model of a ladder (a grid with two or more models): the mean and
    95% interval of the per-seed differences (paired by seed), so a gain that grows with size shows as a trend
    beyond the seed spread. Empty for a one-model grid."""
    if len({r.model for r in rows if r.arm != "zero-shot"}) < 2:
        return []
    by = {(r.model, r.langset, r.steps, r.arm): r for r in rows}
    gains = []
    for r in sorted(rows, key=lambda r: list(models).index(r.model) if r.model in models else len(models)):
        if not r.arm.startswith("hybrid"):
            continue
        for base in ("xx", "xy"):
            if (b := by.get((r.model, r.langset, r.steps, base))) is None:
                continue
            for name, label in _gain_metrics(rows):
                h, o = _per_seed(r, name), _per_seed(b, name)
                if diffs := [h[seed] - o[seed] for seed in h if seed in o]:
                    mean, ci = _mean_ci95(diffs)
                    gains.append({"model": r.model, "languages": r.langset, "steps": r.steps, "arm": r.arm,
                                  "baseline": base, "metric": name, "label": label, "n_seeds": len(diffs),
                                  "mean": mean, "ci95": ci})  # fmt: skip
    return gains


def _gain_metrics(rows: list[Row]) -> list[tuple[str, str]]:
    """XQuAD-R's three settings and rank distance, plus each retrieval set's nDCG@10 (MIRACL, BEIR)."""
    names = {k for r in rows for k in r.mean}
    extra = sorted(k for k in names if k.endswith("/ndcg@10") and k.count("/") == 1 and not k.startswith("dev/"))
    labelled = [(k, k.replace("/ndcg@10", " nDCG@10")) for k in extra]
    return [*_SETTINGS, ("xquad-r/rank_distance", "rank dist."), *labelled]


def _ci95(std: float, n: int) -> float:
    """Half-width of the 95% Student-t confidence interval of a mean over ``n`` seeds (nan below two seeds)."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")


def _mean_ci95(xs: list[float]) -> tuple[float, float]:
    """Mean over seeds and the half-width of its 95% t-interval (nan below two values)."""
    std = float(np.std(xs, ddof=1)) if len(xs) > 1 else float("nan")
    return float(np.mean(xs)), _ci95(std, len(xs))


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in sorted({k for d in dicts for k in d})}


def _record_value(record: dict[str, Any], name: str) -> float | None:
    return record.get("dev", {}).get(name[4:]) if name.startswith("dev/") else record["metrics"].get(name)


def _recipe(arm: str) -> str:
    """``hybrid-0.5@lr5e-5`` -> ``lr5e-5``; "" without a recipe."""
    return arm.partition("@")[2]


def _alpha(row: Row) -> float:
    return float(row.records[0]["alpha"])


def _row_dirs(row: Row, out: Path) -> list[Path]:
    return [out / "cells" / r["cell_id"] for r in row.records]


#: the arms a hybrid-family arm is tested against when the grid has them (same group and recipe)
BASELINES = ("xx", "xy", "mixed", "kd", "mono-ft")


def _comparisons(rows: list[Row]) -> list[tuple[Row, Row]]:
    """(hybrid-family row, baseline row) pairs: the :data:`BASELINES` of the same group and recipe, zero-shot of
    the same model. Hybrid-family: hybrid and hybrid + distillation arms."""
    pairs = []
    for h in (r for r in rows if r.arm.startswith("hybrid")):
        for b in rows:
            same = (b.model, b.langset, b.steps, _recipe(b.arm)) == (h.model, h.langset, h.steps, _recipe(h.arm))
            if (b.arm.partition("@")[0] in BASELINES and same) or (b.arm == "zero-shot" and b.model == h.model):
                pairs.append((h, b))
    return pairs


def significance(rows: list[Row], out: Path, datasets: Collection[str]) -> list[dict[str, Any]]:
    """Paired tests over queries of every hybrid arm against every baseline, per setting.

    Each arm's per-query scores (AP for XQuAD-R, the harness's per-query metric for monoqa) are averaged over its
    seeds first, so the test asks whether the arm, not one lucky seed, is better on the same queries.
    Marks the row's table cell: ``▲xx`` = significantly better than X-X at p < 0.05 (uncorrected), ``▼`` worse
    (for rank distance, the language-bias figure, lower is better).
    """
    from .metrics import paired_test

    tests = []
    for h, b in _comparisons(rows):
        hq, bq = _seed_mean_per_query(h, out, datasets), _seed_mean_per_query(b, out, datasets)
        for setting in sorted(set(hq) & set(bq)):
            if b.arm.partition("@")[0] == "mono-ft" and setting not in ("mono", *datasets):
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
                better = (diff < 0) if setting in _LOWER_IS_BETTER else (diff > 0)
                h.marks[column].append(("▲" if better else "▼") + _short(b.arm))
    return tests


def _short(arm: str) -> str:
    return "zs" if arm == "zero-shot" else arm.partition("@")[0]


def _seed_mean_per_query(row: Row, out: Path, datasets: Iterable[str]) -> dict[str, dict[str, tuple]]:
    """setting -> npz key -> (qids or None, per-query scores averaged over the row's seeds)."""
    stacks: dict[str, list[np.ndarray]] = defaultdict(list)
    qids: dict[str, np.ndarray] = {}
    retrieval_ds: dict[str, str] = {}  # retrieval set name -> the study dataset it came from
    for cell_dir in _row_dirs(row, out):
        for ds in datasets:
            path = cell_dir / "eval" / eval_dirname(ds) / "per_query.npz"
            if not path.is_file():
                continue
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    if key.startswith("monoqa/"):  # nDCG@10 per query of a retrieval set (monoqa, MIRACL)
                        retrieval_ds[key[7:]] = ds
                    if key.startswith("qids/"):
                        qids[key[5:]] = npz[key]
                    else:
                        stacks[key].append(np.asarray(npz[key], dtype=float))
    by_setting: dict[str, dict[str, tuple]] = defaultdict(dict)
    for key, arrays in stacks.items():
        if len({a.shape for a in arrays}) == 1:
            scores = np.mean(arrays, axis=0)
            # One unit per query: a (queries x targets) cross-lingual table is averaged over its targets.
            scores = scores.reshape(len(scores), -1).mean(axis=1) if scores.ndim > 1 else scores
            setting, _, unit = key.partition("/")  # e.g. mono/ar, cross/ar, monoqa/jsquad-ja; ids in qids/<unit>
            setting = retrieval_ds.get(unit, setting)  # a retrieval set's nDCG@10 belongs to its study dataset
            by_setting[setting][key] = (qids.get(unit), scores)
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
    return _per_language(_row_dirs(row, out), table)


def _per_language(cell_dirs: list[Path], table: str) -> dict[str, float]:
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


def seen_unseen(
    row: Row, out: Path, train_languages: Sequence[str], trained_anywhere: Collection[str] = ()
) -> dict[str, float]:
    """Generalisation to languages outside training: XQuAD-R mono / cross / multi mAP and FLORES-200 MRR@10 (mean
    of X->en and en->X, keys ``flores/...``) over the languages the row trained on (``seen``), the others
    (``unseen``) and the ``held_out`` ones: those outside ``trained_anywhere`` (every row's training languages,
    XQuAD-R and FLORES codes), the same set for every row, so rows with different language sets compare on equal
    footing. mono / multi split by query language; a cross pair belongs to a group when both its languages do.
    Computed per seed, then ``<key>`` = mean over seeds, ``<key>_ci95`` = 95% interval, ``<setting>/gap`` = seen -
    unseen."""
    seen = {_to_xquad(code) for code in train_languages}
    per_seed = []
    for cell_dir in _row_dirs(row, out):
        groups: dict[str, list[float]] = defaultdict(list)
        for table in ("mono", "multi", "cross"):
            for key, val in _per_language([cell_dir], table).items():
                langs = key.split("-", 1) if table == "cross" else [key]
                groups[f"{table}/{'seen' if all(lang in seen for lang in langs) else 'unseen'}"].append(val)
                if not any(lang in trained_anywhere for lang in langs):
                    groups[f"{table}/held_out"].append(val)
        for code, b in read_results(cell_dir, "flores").get("bitext", {}).items():
            val = _bitext_mrr(b)
            groups[f"flores/{'seen' if b.get('seen') else 'unseen'}"].append(val)
            if code not in trained_anywhere:
                groups["flores/held_out"].append(val)
        vals = {k: float(np.mean(v)) for k, v in groups.items()}
        for t in _SEEN_TABLES:
            if f"{t}/seen" in vals and f"{t}/unseen" in vals:
                vals[f"{t}/gap"] = vals[f"{t}/seen"] - vals[f"{t}/unseen"]
        per_seed.append(vals)
    res: dict[str, float] = {}
    for key in sorted({k for vals in per_seed for k in vals}):
        res[key], res[f"{key}_ci95"] = _mean_ci95([vals[key] for vals in per_seed if key in vals])
    return res


_SEEN_TABLES = ("mono", "cross", "multi", "flores")


def _trained_anywhere(rows: list[Row], out: Path, langsets: dict[str, Sequence[str]]) -> set[str]:
    """Every language some row trained on: XQuAD-R codes from the language sets, FLORES codes from the cells'
    own FLORES records (``seen``)."""
    codes = {_to_xquad(code) for langs in langsets.values() for code in langs}
    for r in rows:
        for cell_dir in _row_dirs(r, out):
            bitext = read_results(cell_dir, "flores").get("bitext", {})
            codes |= {code for code, b in bitext.items() if b.get("seen")}
    return codes


def _bitext_mrr(bitext: dict[str, Any]) -> float:
    """One FLORES language's MRR@10: the mean of its X->en and en->X directions."""
    return float(np.mean([bitext[d]["mrr@10"] for d in ("x_en", "en_x") if d in bitext]))


def flores_breakdown(row: Row, out: Path) -> dict[str, Any]:
    """FLORES-200 MRR@10 per language (mean of X->en and en->X) and per topic, each the mean over the row's seeds,
    with the languages the row trained on (``seen``) and the in-domain topics. Empty without FLORES results."""
    langs: dict[str, list[float]] = defaultdict(list)
    topics: dict[str, list[float]] = defaultdict(list)
    seen, in_domain = set(), set()
    for cell_dir in _row_dirs(row, out):
        res = read_results(cell_dir, "flores")
        for code, b in res.get("bitext", {}).items():
            langs[code].append(_bitext_mrr(b))
            if b.get("seen"):
                seen.add(code)
        for topic, t in res.get("topics", {}).items():
            topics[topic].append(float(t["mrr@10"]))
            if t.get("in_domain"):
                in_domain.add(topic)
    if not langs:
        return {}
    return {"language": {k: float(np.mean(v)) for k, v in sorted(langs.items())},
            "topic": {k: float(np.mean(v)) for k, v in sorted(topics.items())},
            "seen": sorted(seen), "in_domain_topics": sorted(in_domain)}  # fmt: skip


# NTREX-128 codes of the XQuAD-R languages, so a study may name its training languages either way.
_NTREX_TO_XQUAD = {NTREX_CODES[lang]: lang for lang in XQUAD_LANGUAGES}


def _to_xquad(code: str) -> str:
    return _NTREX_TO_XQUAD.get(code, code)


# ----------------------------------------------------------------------------------------------------------------
# Outputs


def write_summary(cfg: StudyConfig, cells: list[Cell], out: Path) -> dict[str, Any]:
    """Write study.json / study.csv / study.md and the plots from the finished cells; returns study.json's dict."""
    rows, missing = collect_rows(cells, out)
    tests = significance(rows, out, cfg.datasets) if rows else []
    langsets = {c.langset: c.languages for c in cells if c.langset}
    anywhere = _trained_anywhere(rows, out, langsets)
    seen = {id(r): seen_unseen(r, out, langsets.get(r.langset or "", ()), anywhere) for r in rows}
    high = high_resource_check(rows, out, cfg.high_resource)
    size_gains = model_size_gains(rows, cfg.models)
    plots = [p.name for p in make_plots(rows, out, langsets, cfg.high_resource, cfg.models, size_gains, seen)]
    records = [rec for r in rows for rec in r.records]
    timing = {
        "cells": {rec["cell_id"]: rec["timing"] for rec in records},
        "total_s": float(sum(rec["timing"]["total_s"] for rec in records)),
    }
    result = {
        "name": cfg.name,
        "description": cfg.description,
        "config": str(cfg.path),
        "cells_total": len(cells),
        "cells_finished": len(cells) - len(missing),
        "missing": [c.cell_id for c in missing],
        "rows": [r.as_dict() | {"seen_unseen": seen.get(id(r), {})} for r in rows],
        "significance": tests,
        "high_resource": high,
        "model_size_gains": size_gains,
        "claims": paper_claims([r.as_dict() for r in rows], tests),
        "timing": timing,
        "encoders": _encoders(records, out),
        "plots": plots,
    }
    atomic_write_json(out / "study.json", result)
    atomic_write_text(out / "study.csv", _csv(rows, seen))
    atomic_write_text(out / "study.md", _markdown(cfg, result, rows, seen, out))
    return result


def _encoders(records: list[dict[str, Any]], out: Path) -> list[str]:
    """The inference paths (hybridir.encoding) that produced the study's numbers, as recorded in results.json."""
    files = [f for rec in records for f in (out / "cells" / rec["cell_id"] / "eval").glob("*/results.json")]
    paths = {json.loads(f.read_text(encoding="utf-8")).get("config", {}).get("encoder", {}).get("path")
             for f in files}  # fmt: skip
    return sorted(p for p in paths if p)


def high_resource_check(rows: list[Row], out: Path, high_resource: Sequence[str]) -> list[dict[str, Any]]:
    """Per-language monolingual mAP of each hybrid arm against X-X and against per-language monolingual
    fine-tuning (mono-ft) of the same group: the paper's worry that mixing in cross-lingual pairs costs
    high-resource languages their monolingual quality."""
    checks = []
    for h, b in _comparisons(rows):
        if (baseline := b.arm.partition("@")[0]) not in ("xx", "mono-ft"):
            continue
        hm, bm = per_language(h, out, "mono"), per_language(b, out, "mono")
        for lang in sorted(set(hm) & set(bm)):
            checks.append({"model": h.model, "languages": h.langset, "steps": h.steps, "arm": h.arm,
                           "baseline": baseline, "lang": lang, "high_resource": lang in high_resource,
                           "baseline_map": bm[lang], "hybrid": hm[lang], "diff": hm[lang] - bm[lang]})  # fmt: skip
    return checks


# The hybrid-batch paper's claims: (hybrid arm's metric, baseline arm, "ge" = hybrid at least as good, "le" = lower).
_CLAIMS = (
    ("xquad-r/cross_map", "xx", "ge", "cross", "hybrid >= X-X in cross-lingual mAP"),
    ("xquad-r/multi_map", "xx", "ge", "multi", "hybrid >= X-X in multilingual mAP"),
    ("xquad-r/mono_map", "xy", "ge", "mono", "hybrid >= X-Y in monolingual mAP"),
    ("xquad-r/rank_distance", "xx", "le", "rank_distance", "hybrid has lower language bias (rank distance) than X-X"),
)


def paper_claims(rows: list[dict[str, Any]], tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each claim of the paper checked for every hybrid arm of every group, with both means and the paired p-value;
    plus whether each trained arm beat the zero-shot encoder per setting. ``holds`` compares the means only; the
    p-value says whether the difference is more than noise over these queries."""
    checks = []
    by_arm = defaultdict(dict)
    for r in rows:
        by_arm[(r["model"], r["languages"], r["steps"])][r["arm"]] = r
    zero = {r["model"]: r for r in rows if r["arm"] == "zero-shot"}
    p_of = {
        (t["model"], t["languages"], t["steps"], t["arm"], t["baseline"], t["setting"]): t["p_value"] for t in tests
    }
    for (model, langs, steps), arms in by_arm.items():
        for arm, row in arms.items():
            if arm.startswith("hybrid"):
                for metric, base, sense, setting, text in _CLAIMS:
                    b = arms.get(base)
                    if b is None or metric not in row["mean"] or metric not in b["mean"]:
                        continue
                    h_val, b_val = row["mean"][metric], b["mean"][metric]
                    holds = h_val >= b_val if sense == "ge" else h_val < b_val
                    checks.append(
                        {
                            "group": f"{model} / {langs} / {steps}",
                            "arm": arm,
                            "claim": text,
                            "metric": metric,
                            "hybrid": h_val,
                            "baseline": base,
                            "baseline_value": b_val,
                            "holds": bool(holds),
                            "p_value": p_of.get((model, langs, steps, arm, base, setting)),
                        }
                    )
            if arm != "zero-shot" and model in zero:
                for metric in ("xquad-r/mono_map", "xquad-r/cross_map", "xquad-r/multi_map", "monoqa/ndcg@10"):
                    if metric in row["mean"] and metric in zero[model]["mean"]:
                        val, zs = row["mean"][metric], zero[model]["mean"][metric]
                        checks.append({"group": f"{model} / {langs} / {steps}", "arm": arm,
                                       "claim": f"fine-tuning beats zero-shot in {metric}", "metric": metric,
                                       "hybrid": val, "baseline": "zero-shot", "baseline_value": zs,
                                       "holds": bool(val > zs), "p_value": None})  # fmt: skip
    return checks


def _claims_markdown(claims: list[dict[str, Any]]) -> list[str]:
    if not claims:
        return []
    lines = ["", "## The paper's claims, checked", "",
             "`holds` compares means over seeds; p is the paired test over queries (hybrid rows only; blank where "
             "no test applies). The arm column holds the trained arm compared with the baseline.", "",
             "| group | arm | claim | arm value | baseline | baseline value | holds | p |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        p = "" if c["p_value"] is None else f"{c['p_value']:.4f}"
        lines.append(f"| {c['group']} | {c['arm']} | {c['claim']} | {c['hybrid']:.4f} | {c['baseline']} | "
                     f"{c['baseline_value']:.4f} | {'yes' if c['holds'] else '**no**'} | {p} |")  # fmt: skip
    return lines


def _fmt(row: dict[str, Any], name: str) -> str:
    """``mean ± ci marks`` of one metric of a row of study.json (the 95% interval over seeds, from two seeds)."""
    if name not in row["mean"]:
        return "n/a"
    text = f"{row['mean'][name]:.4f}"
    if not math.isnan(half := row.get("ci95", {}).get(name, float("nan"))):
        text += f" ± {half:.4f}"
    return " ".join([text, *row["marks"].get(name, [])])


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(metric key, label) of the main table: the columns the study has, MIRACL ones before the dev metrics."""
    cols = [(k, label) for k, label in _MAIN_COLUMNS if any(k in r["mean"] for r in rows)]
    retrieval = sorted({k for r in rows for k in r["mean"]
                        if k.startswith("miracl") and k.count("/") == 1 and k.endswith(_RETRIEVAL)})  # fmt: skip
    n_dev = sum(k.startswith("dev/") for k, _ in cols)
    cols[len(cols) - n_dev : len(cols) - n_dev] = [(k, k.replace("/", " ")) for k in retrieval]
    return cols


def results_table(rows: list[dict[str, Any]]) -> str:
    """The main Markdown table from study.json's ``rows``: the columns the study has, one line per arm."""
    cols = _columns(rows)
    lines = ["| model | languages | steps | arm | n | " + " | ".join(label for _, label in cols) + " |",
             "|" + "---|" * (5 + len(cols))]  # fmt: skip
    for r in rows:
        cells = [r["model"], r["languages"] or "-", str(r["steps"] or "-"), r["arm"], str(len(set(r["seeds"])))]
        lines.append("| " + " | ".join(cells + [_fmt(r, k) for k, _ in cols]) + " |")
    return "\n".join(lines)


def format_results(study_dir: Path) -> str:
    """What ``hybridir study`` prints at the end: the results table of a study directory's study.json."""
    result = json.loads((Path(study_dir) / "study.json").read_text(encoding="utf-8"))
    head = f"{result['name']}: {result['cells_finished']} of {result['cells_total']} cells finished"
    return f"{head}\n\n{results_table(result['rows'])}\n\nFull report: {Path(study_dir) / 'study.md'}"


def _markdown(cfg: StudyConfig, result: dict[str, Any], rows: list[Row], seen: dict[int, dict], out: Path) -> str:
    lines = [f"# Study `{cfg.name}`", "", *([cfg.description.strip(), ""] if cfg.description.strip() else []),
             f"Config `{cfg.path}`, output `{out}`. Rerun or continue: `hybridir study {cfg.path} --out {out}`.",
             "", f"Cells finished: {result['cells_finished']} of {result['cells_total']}."]  # fmt: skip
    if result["encoders"]:
        lines.append(f"Embeddings by the inference path {' and '.join(result['encoders'])} (docs/metrics.md, "
                     "\"Inference paths\").")
    if result["missing"]:
        lines.append("Not finished yet (the table below leaves them out): " + ", ".join(result["missing"]))
    lines += ["", "## Results", "",
              "Mean ± half-width of the 95% confidence interval over seeds (Student t, n = seeds; sample std in "
              "study.csv / study.json). Trained arms are compared within one model, language set "
              "and step count; zero-shot is the untouched encoder. Marks on hybrid rows: ▲xx / ▼xx = significantly "
              f"better / worse than X-X (paired test over queries, p < {SIGNIFICANCE_LEVEL}, uncorrected; "
              "zs = zero-shot). Rank distance: lower means less language bias.", ""]  # fmt: skip
    lines.append(results_table(result["rows"]))
    lines += _per_seed_markdown(rows)
    if result["significance"]:
        lines += [
            "",
            "## Significance (hybrid vs each baseline)",
            "",
            "| group | arm | baseline | setting | queries | mean diff | p |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in result["significance"]:
            star = " *" if t["p_value"] < SIGNIFICANCE_LEVEL else ""
            lines.append(
                f"| {t['model']} / {t['languages']} / {t['steps']} | {t['arm']} | {t['baseline']} | "
                f"{t['setting']} | {t['n_queries']} | {t['mean_diff']:+.3g} | {t['p_value']:.4f}{star} |"
            )
    lines += _claims_markdown(result["claims"])
    lines += _seen_markdown(rows, seen)
    lines += _high_resource_markdown(result["high_resource"], cfg.high_resource)
    lines += _gains_markdown(result["model_size_gains"])
    lines += _flores_markdown(rows, out)
    dev_cols = sorted({k for r in rows for k in r.mean if k.startswith("dev/")})
    if dev_cols:
        lines += ["", "## Held-out training-data (dev) metrics", "",
                  "LAReQA-style retrieval on the held-out part of the training data (NTREX documents chosen by the "
                  "seed, FLORES dev; never trained on): mono X->X, cross X->Y, multi X->all languages pooled (mAP) "
                  "and rank distance in that pool. The only numbers to choose hyperparameters on. The zero-shot row "
                  "is the starting model on the same dev data (`dev_start` of the trained cells).", "",
                  "| model | languages | steps | arm | " + " | ".join(dev_cols) + " |",
                  "|" + "---|" * (4 + len(dev_cols))]  # fmt: skip
        for r in rows:
            vals = [_fmt(r.as_dict(), k) for k in dev_cols]
            lines.append(f"| {r.model} | {r.langset} | {r.steps} | {r.arm} | " + " | ".join(vals) + " |")
    if result["plots"]:
        lines += ["", "## Plots", ""] + [f"![{p}](plots/{p})" for p in result["plots"]]
    lines += ["", "## Timing", "", f"Total wall time of the finished cells: {result['timing']['total_s'] / 60:.1f} "
              "min (per cell: training + each evaluation, in seconds).", "",
              "| cell | train s | eval s | total s |", "|---|---|---|---|"]  # fmt: skip
    for cell_id, t in result["timing"]["cells"].items():
        ev = ", ".join(f"{ds} {s:.1f}" for ds, s in t["eval_s"].items())
        lines.append(f"| {cell_id} | {t.get('train_s', 0.0):.1f} | {ev} | {t['total_s']:.1f} |")
    return "\n".join(lines) + "\n"


def _gains_markdown(gains: list[dict[str, Any]]) -> list[str]:
    if not gains:
        return []
    labels = list(dict.fromkeys(g["label"] for g in gains))
    lines = ["", "## Hybrid gain by model size", "",
             "Hybrid minus each baseline, per model: mean of the per-seed differences ± half-width of their 95% "
             "interval (paired by seed; rank distance: negative = less bias than the baseline).", "",
             "| model | languages | steps | arm | baseline | seeds | " + " | ".join(labels) + " |",
             "|" + "---|" * (6 + len(labels))]  # fmt: skip
    cells: dict[tuple[Any, ...], dict[str, str]] = defaultdict(dict)
    for g in gains:
        key = (g["model"], g["languages"], g["steps"], g["arm"], g["baseline"], g["n_seeds"])
        ci = "" if math.isnan(g["ci95"]) else f" ± {g['ci95']:.3g}"
        cells[key][g["label"]] = f"{g['mean']:+.3g}{ci}"
    for key, vals in cells.items():
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(vals.get(c, "") for c in labels) + " |")
    return lines


def _per_seed_markdown(rows: list[Row]) -> list[str]:
    """Each trained arm's value per seed (``a / b / c``): the spread the per-query tests do not see."""
    cols = [(k, label) for k, label in _columns([r.as_dict() for r in rows]) if not k.startswith("dev/")]
    multi = [r for r in rows if len(set(r.seeds)) > 1]
    if not multi or not cols:
        return []
    lines = ["", "## Per seed", "", "| model | languages | steps | arm | seeds | " + " | ".join(lab for _, lab in cols)
             + " |", "|" + "---|" * (5 + len(cols))]  # fmt: skip
    for r in multi:
        seeds = sorted({s for s in r.seeds if s is not None})
        vals = []
        for key, _ in cols:
            per = [_per_seed(r, key).get(s, math.nan) for s in seeds]
            vals.append(" / ".join(f"{v:.4f}" if abs(v) < 10 else f"{v:.0f}" for v in per))
        lines.append(f"| {r.model} | {r.langset} | {r.steps} | {r.arm} | {' / '.join(map(str, seeds))} | "
                     + " | ".join(vals) + " |")  # fmt: skip
    return lines


def _seen_markdown(rows: list[Row], seen: dict[int, dict]) -> list[str]:
    if not any(k.endswith("/unseen") for r in rows if r.arm != "zero-shot" for k in seen.get(id(r), {})):
        return []
    keys = [f"{t}/{p}" for t in _SEEN_TABLES for p in ("seen", "unseen", "gap", "held_out")
            if any(f"{t}/{p}" in s for s in seen.values())]  # fmt: skip
    lines = ["", "## Seen vs unseen languages: the generalisation gap", "",
             "XQuAD-R mAP (mono / cross / multi) and FLORES-200 MRR@10 (X->en and en->X) over the languages the row "
             "trained on (seen), the others (unseen), and the languages no row of this study trained on (held_out: "
             "one set for every row, so rows with different language sets compare fairly). gap = seen - unseen. "
             "Mean ± 95% interval over seeds (computed per seed). mono / multi by query language; a cross pair "
             "belongs to a group when both its languages do.", "",
             "| model | languages | steps | arm | " + " | ".join(keys) + " |",
             "|" + "---|" * (4 + len(keys))]  # fmt: skip
    for r in rows:
        if not (vals := seen.get(id(r))):
            continue
        cells = []
        for k in keys:
            ci = vals.get(f"{k}_ci95", float("nan"))
            cells.append("" if k not in vals else f"{vals[k]:.3f}" + ("" if math.isnan(ci) else f" ± {ci:.3f}"))
        lines.append(f"| {r.model} | {r.langset or '-'} | {r.steps or '-'} | {r.arm} | " + " | ".join(cells) + " |")
    return lines


def _flores_markdown(rows: list[Row], out: Path) -> list[str]:
    """Per-language and per-topic FLORES MRR@10 tables (one line per arm): where the arms' differences live."""
    parts = [(r, b) for r in rows if (b := flores_breakdown(r, out))]
    if not parts:
        return []
    lines = ["", "## FLORES-200 per language and per topic", "",
             "MRR@10, mean of X->en and en->X, mean over seeds. `*` = a language the arm trained on; topics marked "
             "(in) are the in-domain topics of the training data.", ""]  # fmt: skip
    codes = sorted({c for _, b in parts for c in b["language"]})
    topics = sorted({t for _, b in parts for t in b["topic"]})
    in_dom = {t for _, b in parts for t in b["in_domain_topics"]}
    varying = [f for f in ("model", "langset", "steps") if len({getattr(r, f) for r, _ in parts}) > 1]
    for header, keys, key in (("language", codes, "language"), ("topic", topics, "topic")):
        labels = [f"{k} (in)" if k in in_dom else k for k in keys]
        lines += [f"| arm ({header}) | " + " | ".join(labels) + " |", "|" + "---|" * (1 + len(keys))]
        for r, b in parts:
            name = " / ".join([*(str(getattr(r, f) or "-") for f in varying), r.arm])
            vals = [f"{b[key][k]:.3f}{'*' if k in b['seen'] else ''}" if k in b[key] else "" for k in keys]
            lines.append(f"| {name} | " + " | ".join(vals) + " |")
        lines.append("")
    return lines[:-1]


def _high_resource_markdown(checks: list[dict[str, Any]], high_resource: Sequence[str]) -> list[str]:
    if not checks:
        return []
    lines = ["", "## High-resource check: monolingual mAP per language, hybrid vs X-X and vs mono-ft", "",
             f"High-resource languages (configurable `high_resource`): {', '.join(high_resource)}. mono-ft: one "
             "model per language, trained and evaluated in that language only. Mean over seeds.", "",
             "| group | arm | baseline | lang | high-resource | baseline mAP | hybrid | diff |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in checks:
        lines.append(f"| {c['model']} / {c['languages']} / {c['steps']} | {c['arm']} | {c['baseline']} | "
                     f"{c['lang']} | {'yes' if c['high_resource'] else 'no'} | {c['baseline_map']:.4f} | "
                     f"{c['hybrid']:.4f} | {c['diff']:+.4f} |")  # fmt: skip
    summary = []
    for arm, baseline in sorted({(c["arm"], c["baseline"]) for c in checks}):
        for hr in (True, False):
            diffs = [c["diff"] for c in checks if (c["arm"], c["baseline"], c["high_resource"]) == (arm, baseline, hr)]
            if diffs:
                summary.append(f"- {arm} minus {baseline}, mean over {'high' if hr else 'other'}-resource languages: "
                               f"{np.mean(diffs):+.4f} ({len(diffs)} language x group entries)")  # fmt: skip
    return [*lines, "", *summary]


def _csv(rows: list[Row], seen: dict[int, dict]) -> str:
    names = sorted({k for r in rows for k in r.mean})
    seen_keys = sorted({k for s in seen.values() for k in s})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "languages", "steps", "arm", "n_seeds", "seeds"]
               + [f"{n}{suffix}" for n in names for suffix in ("", "_std", "_ci95", "_sig")]
               + [f"seen_unseen/{k}" for k in seen_keys])  # fmt: skip
    for r in rows:
        vals = [x for n in names
                for x in (r.mean.get(n, ""), r.std.get(n, ""), r.ci95.get(n, ""), " ".join(r.marks.get(n, [])))]
        extra = [seen.get(id(r), {}).get(k, "") for k in seen_keys]
        w.writerow([r.model, r.langset or "", r.steps or "", r.arm, len(r.records),
                    " ".join(str(s) for s in r.seeds if s is not None), *vals, *extra])  # fmt: skip
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Plots (only for the axes the grid has)

_SETTINGS = (("xquad-r/mono_map", "mono mAP"), ("xquad-r/cross_map", "cross mAP"), ("xquad-r/multi_map", "multi mAP"))


def make_plots(
    rows: list[Row],
    out: Path,
    langsets: dict[str, Sequence[str]],
    high_resource: Sequence[str],
    models: list[str],
    size_gains: list[dict[str, Any]],
    seen: dict[int, dict],
) -> list[Path]:
    """Per-group bars, alpha curves, number-of-languages curves, model-size curves, heat maps, high-resource bars."""
    import matplotlib

    matplotlib.use("Agg")
    plots_dir = out / "plots"
    made: list[Path] = []
    zero = {r.model: r for r in rows if r.arm == "zero-shot"}
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for r in rows:
        if r.arm != "zero-shot":
            groups[(r.model, r.langset, r.steps)].append(r)
    for key, members in groups.items():
        arms = ([zero[key[0]]] if key[0] in zero else []) + members
        tag = slug("_".join(str(k) for k in key))
        made.append(_plot_bars(arms, plots_dir / f"bars_{tag}.png", _title(key)))
        made.append(_plot_tradeoff(arms, plots_dir / f"tradeoff_{tag}.png", _title(key)))
        hybrids = [r for r in members if r.arm.startswith("hybrid")]
        if len(plain := [r for r in hybrids if r.records[0]["sampler"] == "hybrid" and "@" not in r.arm]) > 1:
            made.append(_plot_alpha(plain, arms, plots_dir / f"alpha_{tag}.png", _title(key)))
        made.append(_plot_heatmap(arms, out, plots_dir / f"heatmap_{tag}.png", _title(key)))
        xx = [r for r in members if r.arm == "xx"]
        if xx and hybrids:
            mono_ft = [r for r in members if r.arm == "mono-ft"]
            made.append(_plot_high_resource([*xx, *mono_ft], hybrids, out, high_resource,
                                            plots_dir / f"high_resource_{tag}.png", _title(key)))  # fmt: skip
    made += _plot_languages(groups, zero, seen, langsets, plots_dir)
    made += _plot_model_size(groups, zero, models, plots_dir)
    made += _plot_size_gains(size_gains, plots_dir)
    return [p for p in made if p is not None]


def _title(key: tuple[Any, ...]) -> str:
    model, langset, steps = key
    return f"{model}, languages {langset}, {steps} steps"


def _color(arm: str) -> str:
    """One colour per arm in every plot: zero-shot grey, X-X blue, X-Y orange, hybrid by alpha."""
    if m := re.match(r"hybrid-([0-9.]+)", arm):
        return f"C{2 + min(4, round(float(m.group(1)) * 4))}"
    return {"zero-shot": "C7", "xx": "C0", "xy": "C1", "kd": "C8", "mixed": "C4"}.get(arm.partition("@")[0], "C9")


def _figure(n_panels: int, title: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels, figsize=(3.6 * n_panels, 3.4), squeeze=False)
    fig.suptitle(title, fontsize=10)
    return fig, axes[0]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_savefig(fig, path, dpi=90)
    plt.close(fig)
    return path


def _plot_bars(arms: list[Row], path: Path, title: str) -> Path:
    """mono / cross / multi mAP and rank distance per arm (error bars: 95% interval over seeds)."""
    panels = [*_SETTINGS, ("xquad-r/rank_distance", "rank distance (lower = less bias)")]
    fig, axes = _figure(len(panels), title)
    for ax, (name, label) in zip(axes, panels, strict=True):
        means = [r.mean.get(name, np.nan) for r in arms]
        stds = [0.0 if math.isnan(s := r.ci95.get(name, np.nan)) else s for r in arms]
        ax.bar(range(len(arms)), means, yerr=stds, color=[_color(r.arm) for r in arms], capsize=3)
        ax.set_xticks(range(len(arms)), [r.arm for r in arms], rotation=30, fontsize=8)
        ax.set_title(label, fontsize=9)
    return _save(fig, path)


def _plot_tradeoff(arms: list[Row], path: Path, title: str) -> Path | None:
    """Monolingual mAP against cross-lingual and multilingual mAP, one point per arm (95% intervals both ways): the
    trade-off every arm makes against the starting model, up and to the right is better."""
    mono = "xquad-r/mono_map"
    arms = [r for r in arms if not math.isnan(r.mean.get(mono, np.nan))]
    if not arms:
        return None
    fig, axes = _figure(2, title)
    for ax, (name, label) in zip(axes, _SETTINGS[1:], strict=True):
        for r in arms:
            ax.errorbar(r.mean.get(name, np.nan), r.mean[mono], xerr=np.nan_to_num(r.ci95.get(name, np.nan)),
                        yerr=np.nan_to_num(r.ci95.get(mono, np.nan)), marker="*" if r.arm == "zero-shot" else "o",
                        color=_color(r.arm), capsize=2)  # fmt: skip
            ax.annotate(r.arm, (r.mean.get(name, np.nan), r.mean[mono]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel(label, fontsize=9)
        ax.set_ylabel("mono mAP", fontsize=9)
    return _save(fig, path)


def _plot_alpha(hybrids: list[Row], arms: list[Row], path: Path, title: str) -> Path:
    """Hybrid's mAP against alpha, baselines as horizontal lines."""
    fig, axes = _figure(len(_SETTINGS), title)
    hybrids = sorted(hybrids, key=_alpha)
    alphas = [_alpha(r) for r in hybrids]
    for ax, (name, label) in zip(axes, _SETTINGS, strict=True):
        ax.errorbar(alphas, [r.mean.get(name, np.nan) for r in hybrids],
                    yerr=[np.nan_to_num(r.ci95.get(name, np.nan)) for r in hybrids],
                    marker="o", color="C3", label="hybrid")  # fmt: skip
        for b in (r for r in arms if not r.arm.startswith("hybrid")):
            ax.axhline(b.mean.get(name, np.nan), ls="--", color=_color(b.arm), label=b.arm)
        ax.set_xlabel("alpha")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def _plot_heatmap(arms: list[Row], out: Path, path: Path, title: str) -> Path | None:
    """X-to-Y mAP (query language -> passage language; monolingual on the diagonal), mean over seeds, of the arm
    with the best cross-lingual mAP."""
    best = max(arms, key=lambda r: r.mean.get("xquad-r/cross_map", -np.inf))
    pairs = per_language(best, out, "cross") | {f"{x}-{x}": v for x, v in per_language(best, out, "mono").items()}
    if not pairs:
        return None
    langs = sorted({lang for key in pairs for lang in key.split("-", 1)})
    grid = np.full((len(langs), len(langs)), np.nan)
    for key, val in pairs.items():
        src, tgt = key.split("-", 1)
        grid[langs.index(src), langs.index(tgt)] = val
    fig, axes = _figure(1, f"{title}\nbest arm by cross mAP: {best.arm}")
    im = axes[0].imshow(grid, cmap="viridis", vmin=0, vmax=1)
    for i, j in np.argwhere(~np.isnan(grid)):
        axes[0].text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=6,
                     color="white" if grid[i, j] < 0.5 else "black")  # fmt: skip
    axes[0].set_xticks(range(len(langs)), langs, fontsize=7)
    axes[0].set_yticks(range(len(langs)), langs, fontsize=7)
    axes[0].set_xlabel("passage language")
    axes[0].set_ylabel("query language")
    fig.colorbar(im, ax=axes[0], label="mAP")
    fig.set_size_inches(max(4.0, 0.5 * len(langs) + 2.5), max(3.6, 0.45 * len(langs) + 1.8))
    return _save(fig, path)


def _plot_high_resource(
    baselines: list[Row], hybrids: list[Row], out: Path, high_resource: Sequence[str], path: Path, title: str
) -> Path | None:
    """Per-language monolingual mAP, X-X (and mono-ft where it has the language) next to each hybrid arm;
    high-resource languages starred."""
    arms = [*baselines, *hybrids]
    per = [per_language(r, out, "mono") for r in arms]
    langs = sorted(set.intersection(*(set(p) for r, p in zip(arms, per, strict=True) if r.arm != "mono-ft")))
    if not langs:
        return None
    fig, axes = _figure(1, title)
    width = 0.8 / len(per)
    for i, (row, vals) in enumerate(zip(arms, per, strict=True)):
        axes[0].bar(np.arange(len(langs)) + i * width, [vals.get(lang, np.nan) for lang in langs], width,
                    label=row.arm, color=_color(row.arm))  # fmt: skip
    axes[0].set_xticks(np.arange(len(langs)) + 0.4 - width / 2,
                       [f"{lang}*" if lang in high_resource else lang for lang in langs], fontsize=8)  # fmt: skip
    axes[0].set_ylabel("monolingual mAP (* = high-resource)")
    axes[0].legend(fontsize=7)
    fig.set_size_inches(max(5.0, 0.55 * len(langs) * len(per)), 3.6)
    return _save(fig, path)


def _plot_languages(
    groups: dict, zero: dict[str, Row], seen: dict[int, dict], langsets: dict, plots_dir: Path
) -> list[Path]:
    """XQuAD-R mAP and FLORES MRR@10 against the number of training languages: seen (solid), unseen (dashed) and
    held-out (dotted: languages no row trained on) apart; zero-shot's held-out value as a grey line."""
    made = []
    by_model_steps: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for (model, _, steps), members in groups.items():
        by_model_steps[(model, steps)] += members
    for (model, steps), members in by_model_steps.items():
        if len({r.langset for r in members}) < 2:
            continue
        tables = [t for t in _SEEN_TABLES if any(f"{t}/seen" in seen.get(id(r), {}) for r in members)]
        fig, axes = _figure(len(tables), f"{model}, {steps} steps: number of training languages")
        ks = sorted({len(langsets[r.langset]) for r in members})
        for arm in dict.fromkeys(r.arm for r in members):
            arm_rows = sorted((r for r in members if r.arm == arm), key=lambda r: len(langsets[r.langset]))
            xs = [len(langsets[r.langset]) for r in arm_rows]
            for ax, table in zip(axes, tables, strict=True):
                for part, ls in (("seen", "-"), ("unseen", "--"), ("held_out", ":")):
                    ys = [seen.get(id(r), {}).get(f"{table}/{part}", np.nan) for r in arm_rows]
                    ax.plot(xs, ys, ls=ls, marker="o", color=_color(arm), label=f"{arm} {part}")
        for ax, table in zip(axes, tables, strict=True):
            if model in zero and f"{table}/held_out" in seen.get(id(zero[model]), {}):
                ax.axhline(seen[id(zero[model])][f"{table}/held_out"], color=_color("zero-shot"), ls=":",
                           label="zero-shot held_out")  # fmt: skip
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.minorticks_off()
            ax.set_xlabel("training languages")
            ax.set_title("FLORES MRR@10" if table == "flores" else f"XQuAD-R {table} mAP", fontsize=9)
        axes[0].legend(fontsize=5)
        made.append(_save(fig, plots_dir / f"languages_{slug(model)}_{steps}steps.png"))
    return made


def _plot_model_size(groups: dict, zero: dict[str, Row], models: list[str], plots_dir: Path) -> list[Path]:
    """mAP per model of the grid (in the YAML's order, smallest first by convention), one line per arm."""
    made = []
    by_langs_steps: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for (_, langset, steps), members in groups.items():
        by_langs_steps[(langset, steps)] += members
    for (langset, steps), members in by_langs_steps.items():
        present = [m for m in models if any(r.model == m for r in members)]
        if len(present) < 2:
            continue
        fig, axes = _figure(3, f"languages {langset}, {steps} steps: model size")
        lines = {"zero-shot": [zero.get(m) for m in present]}
        for arm in dict.fromkeys(r.arm for r in members):
            lines[arm] = [next((r for r in members if r.arm == arm and r.model == m), None) for m in present]
        for ax, (name, label) in zip(axes, _SETTINGS, strict=True):
            for arm, arm_rows in lines.items():
                ax.plot(range(len(present)), [r.mean.get(name, np.nan) if r else np.nan for r in arm_rows],
                        marker="o", color=_color(arm), label=arm)  # fmt: skip
            ax.set_xticks(range(len(present)), present, rotation=30, fontsize=7)
            ax.set_title(label, fontsize=9)
        axes[0].legend(fontsize=6)
        made.append(_save(fig, plots_dir / f"model_size_{slug(str(langset))}_{steps}steps.png"))
    return made


def _plot_size_gains(gains: list[dict[str, Any]], plots_dir: Path) -> list[Path]:
    """Hybrid minus X-X / X-Y against model size, one panel per metric, 95% seed intervals as error bars."""
    made = []
    for langset, steps in dict.fromkeys((g["languages"], g["steps"]) for g in gains):
        these = [g for g in gains if (g["languages"], g["steps"]) == (langset, steps)]
        labels = list(dict.fromkeys(g["label"] for g in these))
        models = list(dict.fromkeys(g["model"] for g in these))
        fig, axes = _figure(len(labels), f"languages {langset}, {steps} steps: hybrid gain by model size")
        for ax, label in zip(axes, labels, strict=True):
            arms = list(dict.fromkeys(g["arm"] for g in these))
            for i, (arm, base) in enumerate(dict.fromkeys((g["arm"], g["baseline"]) for g in these)):
                pts = {g["model"]: g for g in these if (g["label"], g["arm"], g["baseline"]) == (label, arm, base)}
                xs = [j + 0.05 * i for j, m in enumerate(models) if m in pts]
                ys = [pts[m]["mean"] for m in models if m in pts]
                err = [0.0 if math.isnan(pts[m]["ci95"]) else pts[m]["ci95"] for m in models if m in pts]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=_color(base),
                            ls=("-", "--", ":", "-.")[arms.index(arm) % 4], label=f"{arm} - {base}")  # fmt: skip
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xticks(range(len(models)), models, rotation=30, fontsize=7)
            ax.set_title(label, fontsize=9)
        axes[0].legend(fontsize=6)
        made.append(_save(fig, plots_dir / f"model_size_gain_{slug(str(langset))}_{steps}steps.png"))
    return made
