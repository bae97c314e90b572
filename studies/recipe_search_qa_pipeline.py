"""The QA recipe search's pre-registered procedure (issue 18) as code, so no step depends on
someone reading results (the rule in reports/recipe_search_qa.md, written before the runs):

1. round 1: ``studies/recipe_search_qa.yaml`` (one lever at a time around ``qa``), dev data only;
2. round 2: one cell combining every round-1 lever whose score beat ``qa``'s (the distillation term included if
   ``hybrid+kd@qa`` beat it), appended to that study as recipe ``r2``;
3. the final choice: the best score over both rounds (``hybridir.paper.analyses.recipe_choice``);
4. ``studies/paper_qa.yaml``: every arm with the chosen recipe's training settings (the chosen arm is one of
   them), 8 seeds for X-X / X-Y / hybrid, 3 for kd and hybrid + kd, written from ``paper_qa.template.yaml``, run.

Every step is resumable (the studies are); rerun the same command after a kill:

    PYTHONPATH=src python studies/recipe_search_qa_pipeline.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from hybridir.paper.analyses.recipe_choice import recipe_scores
from hybridir.study import expand_grid, load_study_config, run_study
from hybridir.study.aggregate import collect_rows

HERE = Path(os.path.relpath(Path(__file__).parent))  # relative: the study files name their config as given
SEARCH = HERE / "recipe_search_qa.yaml"
LEVERS = {"qa-t01", "qa-lr2e-5", "qa-hn", "qa-freeze6", "qa-m50", "qa-passage"}


def scores(path: Path) -> list[dict]:
    cfg = load_study_config(path)
    rows, _ = collect_rows(expand_grid(cfg), Path(cfg.out or Path("runs") / "studies" / cfg.name))
    return recipe_scores(rows)


def main() -> None:
    run_study(SEARCH, show_progress=False)  # round 1 (a no-op when finished)
    spec = yaml.safe_load(SEARCH.read_text(encoding="utf-8"))
    recipes = spec["grid"]["recipes"]
    if "r2" not in recipes:
        found = {s["arm"]: s for s in scores(SEARCH)}
        base = found["hybrid-0.5@qa"]["score"]
        beat = sorted(a.split("@")[1] for a, s in found.items()
                      if a.startswith("hybrid-0.5@") and a.split("@")[1] in LEVERS and s["shared_dev_set"]
                      and s["score"] > base)  # fmt: skip
        with_kd = found["hybrid-0.5+kd1@qa"]["score"] > base
        recipes["r2"] = {k: v for name in beat for k, v in recipes[name].items()}
        left_out = "hybrid-0.5@r2" if with_kd else "hybrid-0.5+kd1@r2"
        spec.setdefault("seeds_override", {}).update({"kd@r2": [], left_out: []})
        SEARCH.write_text(f"# round 2 appended by recipe_search_qa_pipeline.py: levers {beat}, kd {with_kd}\n"
                          + yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")  # fmt: skip
    run_study(SEARCH, show_progress=False)  # round 2
    chosen = next(s for s in scores(SEARCH) if s.get("chosen"))
    recipe = chosen["arm"].partition("@")[2]  # the arm itself (hybrid, hybrid + kd, kd) is an arm of paper_qa
    template = yaml.safe_load((HERE / "paper_qa.template.yaml").read_text(encoding="utf-8"))
    template["train"] |= recipes[recipe]
    out = HERE / "paper_qa.yaml"
    out.write_text(f"# written by recipe_search_qa_pipeline.py: chosen {chosen['arm']} (score {chosen['score']:+.4f})\n"
                   + yaml.safe_dump(template, sort_keys=False), encoding="utf-8")  # fmt: skip
    sys.exit(subprocess.call([sys.executable, "-m", "hybridir.cli", "study", str(out), "--quiet"]))


if __name__ == "__main__":
    main()
