"""Hybrid + distillation (studies/neutral_kd.yaml) against hybrid and X-X (studies/neutral.yaml), paired by seed.

The two studies share data, seeds, steps, merge and evaluation sets, so a trained row of one and a trained row of the
other with the same recipe and scoring pair seed by seed, as the arms inside one study do.

    python studies/neutral_kd_pairs.py --neutral ~/studies/neutral --kd ~/studies/neutral_kd --out reports/neutral_kd

Writes ``pairs.json`` and ``pairs.md`` under ``--out`` (reports/neutral.md, "With distillation", quotes them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hybridir.infra.files import atomic_write_json, atomic_write_text
from hybridir.study.aggregate import mean_ci95

METRICS = (("xquad-r/mono_map", "mono mAP", 3), ("xquad-r/cross_map", "cross mAP", 3),
           ("xquad-r/multi_map", "multi mAP", 3), ("xquad-r/rank_distance", "rank dist.", 0),
           ("miracl-judged:yo:2000/ndcg@10", "MIRACL-yo nDCG@10", 3),
           ("flores/low_mrr@10", "FLORES low MRR@10", 3))  # fmt: skip
SCORINGS = ("", "+center:0.75", "+proj", "+proj+center:0.75")
RECIPES = {"base": "", "dec": " + term"}
BASELINES = {"hybrid-0.5": "hybrid", "xx": "X-X"}


def rows(study: Path) -> dict[str, dict]:
    """arm label -> its row of study.json (per-seed values included)."""
    path = study / "study.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no study.json (run the study first)")
    return {r["arm"]: r for r in json.loads(path.read_text(encoding="utf-8"))["rows"]}


def paired(row: dict, baseline: dict) -> list[dict]:
    """Per metric: mean and 95% interval of row minus baseline over the seeds both have."""
    out = []
    for name, label, _ in METRICS:
        a, b = row["per_seed"].get(name, {}), baseline["per_seed"].get(name, {})
        if diffs := [a[s] - b[s] for s in a if s in b]:
            mean, ci = mean_ci95(diffs)
            out.append({"metric": name, "label": label, "n_seeds": len(diffs), "mean": mean, "ci95": ci})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neutral", type=Path, required=True, help="output folder of studies/neutral.yaml")
    ap.add_argument("--kd", type=Path, required=True, help="output folder of studies/neutral_kd.yaml")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    plain, kd = rows(args.neutral), rows(args.kd)
    records, lines = [], []
    for recipe, term in RECIPES.items():
        for scoring in SCORINGS:
            row = kd[f"hybrid-0.5+kd1@{recipe}+m0.5{scoring}"]
            for arm, label in BASELINES.items():
                if (base := plain.get(f"{arm}@{recipe}+m0.5{scoring}")) is None:
                    continue
                diffs = paired(row, base)
                records.append({"row": row["arm"], "baseline": base["arm"], "differences": diffs})
                cells = [f"{d['mean']:+.{digits}f} ± {d['ci95']:.{digits}f}{'*' if abs(d['mean']) > d['ci95'] else ''}"
                         for d, (_, _, digits) in zip(diffs, METRICS, strict=True)]  # fmt: skip
                lines.append(f"| hybrid + kd{term} minus {label}{term} | {scoring.lstrip('+') or 'none'} | "
                             + " | ".join(cells) + " |")  # fmt: skip
    header = "| comparison | scoring | " + " | ".join(label for _, label, _ in METRICS) + " |"
    intro = (
        "Hybrid + kd minus each arm of studies/neutral.yaml, same recipe, scoring and seed (3 pairs); "
        "`*` = the 95% interval excludes 0."
    )
    md = "\n".join([intro, "", header, "|---" * (len(METRICS) + 2) + "|", *lines, ""])
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "pairs.json", records)
    atomic_write_text(args.out / "pairs.md", md)
    print(md)


if __name__ == "__main__":
    main()
