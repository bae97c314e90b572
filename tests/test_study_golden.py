"""Equal output: study summaries of fake-cell studies match golden files written by the code before the redesign.

Each scenario runs the cells of a small grid with the fakes of ``conftest`` (relative paths, so the fakes'
per-query scores do not depend on the temporary folder), pins every cell's wall times, rebuilds the summary with
``only_summary`` and compares study.md / study.csv / study.json byte for byte with
``tests/fixtures/study_golden/<scenario>/``.
Set ``HYBRIDIR_WRITE_GOLDEN=1`` to rewrite the golden files (only when an output change is intended).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_study import ARMS, BASE, write_yaml

from hybridir import study

GOLDEN = Path(__file__).parent / "fixtures" / "study_golden"
FILES = ("study.md", "study.csv", "study.json")

SCENARIOS = {
    # significance, claims, seen / unseen, high-resource vs X-X, per-seed table, MIRACL columns, FLORES breakdown
    "base": BASE.replace("datasets: [xquad-r]", "datasets: [xquad-r, 'miracl-judged:yo:1000', flores]"),
    # model-size gains, number-of-languages curves, held-out languages
    "axes": BASE.replace("models: [e5-small]", "models: [e5-small-l4, e5-small]")
    .replace("languages: [ar, de]", "languages: {nested: [2, 3], order: [ar, de, en]}")
    .replace("alpha: [0.25, 0.75]", "alpha: [0.5]")
    .replace("  hybrid-0.25: [0, 1]\n", ""),
    # mono-ft, kd and mixed baselines, hybrid + distillation, monoqa tests, high-resource vs mono-ft
    "arms": ARMS.replace(
        "[zero-shot, xx, mixed, kd, hybrid, hybrid-kd, mono-ft]",
        "[zero-shot, xx, mixed, kd, hybrid, hybrid-kd, mono-ft]\n  seeds: [0, 1]",
    ).replace("  seeds: [0]\n", ""),
    # recipes, dev metrics only
    "recipes": """
        name: recipes
        grid:
          samplers: [zero-shot, xx, hybrid]
          recipes: {base: {}, t01: {temperature: 0.01}}
          languages: [de, en]
          seeds: [0, 1]
          steps: [3]
        train: {batch_size: 4}
        eval: {datasets: []}
        """,
}


def _pin_timings(out: Path) -> None:
    """Replace measured wall times by fixed ones, so the timing table is reproducible."""
    for done in sorted((out / "cells").glob("*/done.json")):
        record = json.loads(done.read_text(encoding="utf-8"))
        eval_s = {ds: 2.0 for ds in record["timing"]["eval_s"]}
        timing = {"eval_s": eval_s} | ({"train_s": 1.0} if "train_s" in record["timing"] else {})
        record["timing"] = timing | {"total_s": timing.get("train_s", 0.0) + sum(eval_s.values())}
        done.write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_summary_matches_the_golden_files(scenario, tmp_path, fakes, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path, SCENARIOS[scenario])
    out = Path("out")
    cfg = study.load_study_config(Path("study.yaml"))
    for cell in study.expand_grid(cfg):  # the cells without the runner's intermediate summaries
        study.run_cell(cfg, cell, out / "cells" / cell.cell_id, show_progress=False)
    _pin_timings(out)
    study.run_study(Path("study.yaml"), out, only_summary=True, show_progress=False)
    golden = GOLDEN / scenario
    if os.environ.get("HYBRIDIR_WRITE_GOLDEN"):
        golden.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            (golden / name).write_bytes((out / name).read_bytes())
    for name in FILES:
        assert (out / name).read_bytes() == (golden / name).read_bytes(), f"{scenario}/{name} differs"
