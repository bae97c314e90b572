"""Issue 18, after the choice (never for it): how the QA-dev ranking of the recipes compares with XQuAD-R's.

Reads the recipe search's dev scores (``recipe_choice`` in its study.json) and each recipe cell's final model
evaluated on XQuAD-R (first 200 questions per language, complete pools), computed *after* the choice was made
and written down (``runs/recipe_xquad/<cell>/results.json``, ``hybridir evaluate --dataset xquad-r
--max-questions 200``), and writes a table with the Spearman correlation of the dev score with each XQuAD-R
setting's gain over zero-shot and with the same worst-gain score on XQuAD-R::

    PYTHONPATH=src python studies/recipe_after_choice.py --search reports/recipe_search_qa/study.json \
        --evals runs/recipe_xquad --zero-shot runs/studies/paper_qa/cells/e5-small__zero-shot/eval/xquad-r \
        --out reports/recipe_search_qa/after_choice.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from hybridir.infra.files import atomic_write_text
from hybridir.study import expand_grid, load_study_config

SETTINGS = (("mono_map", "mono"), ("cross_map", "cross"), ("multi_map", "multi"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--search", type=Path, required=True, help="the recipe search's study.json")
    p.add_argument("--config", type=Path, default=Path("studies/recipe_search_qa.yaml"))
    p.add_argument("--evals", type=Path, required=True)
    p.add_argument("--zero-shot", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    zs = json.loads((args.zero_shot / "results.json").read_text())["summary"]
    cells = {c.arm: c.cell_id for c in expand_grid(load_study_config(args.config)) if c.seed == 0}
    rows = []
    for rec in json.loads(args.search.read_text())["recipe_choice"]:
        file = args.evals / cells[rec["arm"]] / "results.json"
        if not rec["shared_dev_set"] or not file.is_file():
            continue
        s = json.loads(file.read_text())["summary"]
        gains = {label: s[key] - zs[key] for key, label in SETTINGS}
        rows.append({"arm": rec["arm"], "dev": rec["score"], "chosen": rec.get("chosen", False), **gains,
                     "xquad_score": min(gains.values()), "rank_distance": s["rank_distance"],
                     **{f"{label}_map": s[key] for key, label in SETTINGS}})  # fmt: skip
    rows.sort(key=lambda r: -r["dev"])
    lines = ["# Recipe search on QA dev data: the dev ranking against XQuAD-R's, after the choice", "",
             f"Every recipe cell of the search (seed 0) evaluated on XQuAD-R (first 200 questions per language, "
             f"complete pools) after the choice; zero-shot e5-small: mono {zs['mono_map']:.3f}, cross "
             f"{zs['cross_map']:.3f}, multi {zs['multi_map']:.3f}, rank distance {zs['rank_distance']:.0f}. "
             "`dev score` is the pre-registered score (worst gain over the start among QA mono / cross / pooled and "
             "NTREX multi); `XQuAD-R score` is the same rule on XQuAD-R (worst gain over zero-shot among mono / "
             "cross / multi mAP).", "",
             "| recipe | dev score | XQuAD-R mono | cross | multi | rank dist. | XQuAD-R score |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['arm']}{' (chosen)' if r['chosen'] else ''} | {r['dev']:+.4f} | {r['mono_map']:.3f} "
                     f"({r['mono']:+.3f}) | {r['cross_map']:.3f} ({r['cross']:+.3f}) | {r['multi_map']:.3f} "
                     f"({r['multi']:+.3f}) | {r['rank_distance']:.0f} | {r['xquad_score']:+.4f} |")  # fmt: skip
    lines += ["", f"Spearman correlation of the dev score with, over {len(rows)} recipes:", ""]
    for key, label in (("mono", "mono gain"), ("cross", "cross gain"), ("multi", "multi gain"),
                       ("xquad_score", "score (worst gain)")):  # fmt: skip
        rho, pval = spearmanr([r["dev"] for r in rows], [r[key] for r in rows])
        lines.append(f"- XQuAD-R {label}: rho = {rho:+.2f} (p = {pval:.2g})")
    best = max(rows, key=lambda r: r["xquad_score"])
    lines += ["", f"Best on XQuAD-R by the same rule: {best['arm']} ({best['xquad_score']:+.4f}); chosen on dev: "
              f"{next((r['arm'] for r in rows if r['chosen']), 'none of these')}."]  # fmt: skip
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
