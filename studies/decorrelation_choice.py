"""The language-decorrelation weight chosen on dev data by the rule of docs/studies.md ("Choosing the
language-decorrelation weight on dev data"): train the shipped configuration with --decorrelate W for each
candidate W, score each on the recipe's dev pools plain and at center:0.75, apply the shared dev rule.

    python studies/decorrelation_choice.py --out reports/decorrelation_choice [--runs ~/runs]

Trainings are resumable (a finished one is reused); W = 0 is the same run without the term (``--runs``/xx-m05-s0
when it exists, else trained as decorrelate-0).
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

WEIGHTS = (0.0, 1.0, 3.0, 10.0)
SCORINGS = ("none", "center:0.75")
SHIPPED = ["--sampler", "xx", "--merge", "0.5", "--steps", "60", "--batch-size", "16",
           "--max-passage-length", "64", "--seed", "0"]  # fmt: skip


def name(w: float) -> str:
    """The rule's candidate label: W = 0 is the baseline the mono constraint is measured against ("none")."""
    return "none" if w == 0 else f"W={w:g}"


def trained(w: float, runs: Path) -> Path:
    """The final model of the candidate W, trained here unless it exists."""
    shipped = runs / "xx-m05-s0"
    if w == 0 and (shipped / "final" / "modules.json").exists():
        return shipped / "final"
    out = runs / f"decorrelate-{w:g}"
    if not (out / "final" / "modules.json").exists():
        cmd = [sys.executable, "-m", "hybridir.cli", "train", *SHIPPED, "--decorrelate", str(w), "--out", str(out),
               "--no-show-progress"]  # fmt: skip
        subprocess.run(cmd, check=True)
    return out / "final"


def dev_figures(model_dir: Path, scoring: str, dev, cache_root: Path) -> dict[str, float]:
    """Dev mono / cross / multi mAP and rank distance of one model under one scoring (as choose-centering does)."""
    from hybridir.encoders.centering import Centering, centering_for
    from hybridir.encoders.encoding import Encoder
    from hybridir.encoders.models import load_encoder
    from hybridir.training.dev_metrics import dev_metrics
    from hybridir.training.teacher import frozen_vectors

    model = load_encoder(str(model_dir))
    enc = Encoder(model, show_progress=False)
    centering = centering_for(str(model_dir), Centering(scoring).spec, enc)
    if centering.active:
        centering.ensure(dev.languages, enc.plain, enc.fingerprint, enc._dim() or 0, enc.path)
    cache = functools.partial(frozen_vectors, cache_root, enc.fingerprint)
    m = dev_metrics(model, dev, cache=cache, centering=centering)
    return {k: m[k] for k in ("mono_map", "cross_map", "multi_map", "rank_distance")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    p.add_argument("--runs", type=Path, default=Path.home() / "runs", help="where the candidates are trained")
    args = p.parse_args()
    from hybridir.paper.centering_choice import dev_data, dev_rule

    models = {name(w): trained(w, args.runs) for w in WEIGHTS}
    dev = dev_data(None)
    rows: dict[str, dict[str, dict[str, float]]] = {s: {} for s in SCORINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for cand, model_dir in models.items():
            for scoring in SCORINGS:
                rows[scoring][cand] = dev_figures(model_dir, scoring, dev, Path(tmp))
    score, allowed, choice = dev_rule(rows, [name(w) for w in WEIGHTS])
    result = {"rule": "docs/studies.md, 'Choosing the language-decorrelation weight on dev data'",
              "models": {c: str(m) for c, m in models.items()}, "figures": rows, "score": score,
              "meets_mono_constraint": allowed, "choice": choice,
              "weight": next(w for w in WEIGHTS if name(w) == choice)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Language-decorrelation weight chosen on dev data\n\nRule: {result['rule']}. Choice: "
             f"**{choice}** (W = {result['weight']:g}; `none` = W 0, no term).\n",
             "Figures: dev mono / cross / multi mAP / rank distance (held-out recipe sources + FLORES-200 dev).\n",
             "| candidate | plain | center:0.75 | score | mono within 0.01 |", "|---|---|---|---|---|"]  # fmt: skip
    for w in WEIGHTS:
        c = name(w)
        cells = [" / ".join(f"{rows[s][c][k]:.3f}" for k in ("mono_map", "cross_map", "multi_map"))
                 + f" / {rows[s][c]['rank_distance']:.1f}" for s in SCORINGS]  # fmt: skip
        lines.append(f"| {c} | {' | '.join(cells)} | {score[c]:.4f} | {'yes' if allowed[c] else 'no'} |")
    lines.append("\nRegenerate: `python studies/decorrelation_choice.py --out reports/decorrelation_choice` "
                 "(trains `--decorrelate W` with the shipped configuration, seed 0).")  # fmt: skip
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print(f"choice: {choice}; {args.out}.md")


if __name__ == "__main__":
    main()
