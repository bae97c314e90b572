"""The study summary: finished cells -> rows and paired tests (:mod:`.aggregate`), the analyses that apply
(:func:`.analyses.registered`), the plots, and study.json / study.csv / study.md.

:func:`hybridir.study.run_study` calls :func:`write_summary` after each seed of cells; ``hybridir study
--only-summary`` rebuilds it from whatever cells have finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..infra.files import atomic_write_json, atomic_write_text
from .aggregate import collect_rows, significance
from .analyses import registered
from .analysis import Context, run_analyses
from .config import Cell, StudyConfig
from .plots import make_plots
from .render import csv_text, markdown


def write_summary(cfg: StudyConfig, cells: list[Cell], out: Path) -> dict[str, Any]:
    """Write study.json / study.csv / study.md and the plots from the finished cells; returns study.json's dict."""
    rows, missing = collect_rows(cells, out)
    tests = significance(rows, out, cfg.datasets) if rows else []
    ctx = Context(cfg, rows, out, tests, {c.langset: c.languages for c in cells if c.langset})
    analyses = registered()
    applied = run_analyses(ctx, analyses)
    plots = [p.name for p in make_plots(ctx, analyses)]
    records = [rec for r in rows for rec in r.records]
    per_row = {a.name: ctx.found[a.name] for a in analyses if a.per_row}
    result = {
        "name": cfg.name,
        "description": cfg.description,
        "config": str(cfg.path),
        "cells_total": len(cells),
        "cells_finished": len(cells) - len(missing),
        "missing": [c.cell_id for c in missing],
        "rows": [r.as_dict() | {name: found.get(id(r), {}) for name, found in per_row.items()} for r in rows],
        "significance": tests,
        **{a.name: ctx.found[a.name] for a in analyses if a.saved},
        "timing": {"cells": {rec["cell_id"]: rec["timing"] for rec in records}, "total_s": _total_s(cells, records)},
        "encoders": _encoders(records, out),
        "plots": plots,
    }
    sections = [line for a in applied for line in a.section(ctx, ctx.found[a.name])]
    atomic_write_json(out / "study.json", result)
    atomic_write_text(out / "study.csv", csv_text(rows, per_row))
    atomic_write_text(out / "study.md", markdown(ctx, result, sections))
    return result


def _total_s(cells: list[Cell], records: list[dict[str, Any]]) -> float:
    """Wall time of the finished cells: every evaluation, and each training once, however many post-hoc variants
    (merge, centering) share it and repeat its time in their own record."""
    trained = {c.cell_id: c.trained.cell_id for c in cells}
    train_s = {trained.get(rec["cell_id"], rec["cell_id"]): rec["timing"].get("train_s", 0.0) for rec in records}
    return float(sum(train_s.values()) + sum(s for rec in records for s in rec["timing"]["eval_s"].values()))


def _encoders(records: list[dict[str, Any]], out: Path) -> list[str]:
    """The inference paths (hybridir.encoders.encoding) that produced the study's numbers, as recorded
    in results.json."""
    files = [f for rec in records for f in (out / "cells" / rec["cell_id"] / "eval").glob("*/results.json")]
    paths = {json.loads(f.read_text(encoding="utf-8")).get("config", {}).get("encoder", {}).get("path")
             for f in files}  # fmt: skip
    return sorted(p for p in paths if p)
