"""The merge-weight curve of reports/merge.md: weight 0 is zero-shot, 1 the unmerged arms of paper_offline (the same
training runs: same config, data, steps and seeds), 0.25 / 0.5 the merged arms of the merge study.

    .venv/bin/python reports/merge/merge_curve.py runs/studies/merge/study.json reports/paper_offline/study.json
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = [
    ("xquad-r/mono_map", "XQuAD-R mono mAP"),
    ("xquad-r/cross_map", "cross mAP"),
    ("xquad-r/multi_map", "multi mAP"),
    ("xquad-r/rank_distance", "rank distance"),
    ("miracl-judged:yo:2000/ndcg@10", "MIRACL-yo j+2k nDCG@10"),
    ("flores/low_mrr@10", "FLORES low-res. MRR@10"),
]
ARMS = {"xx": "X-X", "xy": "X-Y", "hybrid-0.5": "hybrid 0.5", "kd": "kd", "hybrid-0.5+kd1": "hybrid + kd"}
WEIGHTS = {"m25": 0.25, "m50": 0.5}


def points(merged: dict, plain: dict) -> dict[str, list[tuple[float, dict, dict, list]]]:
    zero = next(r for r in plain["rows"] if r["arm"] == "zero-shot")
    out: dict[str, list] = {arm: [(0.0, zero["mean"], {}, [None])] for arm in ARMS}
    for r in plain["rows"]:
        if r["arm"] in ARMS:
            out[r["arm"]].append((1.0, r["mean"], r["ci95"], r["seeds"]))
    for r in merged["rows"]:
        arm, _, recipe = r["arm"].partition("@")
        if arm in ARMS and recipe in WEIGHTS:
            out[arm].append((WEIGHTS[recipe], r["mean"], r["ci95"], r["seeds"]))
    return {arm: sorted(p, key=lambda x: x[0]) for arm, p in out.items()}


def main(merged_path: str, plain_path: str) -> None:
    pts = points(json.loads(Path(merged_path).read_text()), json.loads(Path(plain_path).read_text()))
    print("| arm | merge | n | " + " | ".join(label for _, label in METRICS) + " |")
    print("|---|---|---|" + "---|" * len(METRICS))
    zero = next(iter(pts.values()))[0][1]
    print(
        "| zero-shot | 0 | 1 | "
        + " | ".join(f"{zero.get(k, float('nan')):.{0 if 'rank' in k else 3}f}" for k, _ in METRICS)
        + " |"
    )
    for arm, rows in pts.items():
        for w, mean, ci, seeds in rows[1:]:
            cells = [
                f"{mean.get(k, float('nan')):.3f} ± {ci.get(k, float('nan')):.3f}"
                if "rank" not in k
                else f"{mean.get(k, float('nan')):.0f} ± {ci.get(k, float('nan')):.0f}"
                for k, _ in METRICS
            ]
            print(f"| {ARMS[arm]} | {w:g} | {len(seeds)} | " + " | ".join(cells) + " |")
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.3 * len(METRICS), 3.2))
    for ax, (key, label) in zip(axes, METRICS, strict=True):
        for i, (arm, rows) in enumerate(pts.items()):
            ax.errorbar(
                [w for w, *_ in rows],
                [m.get(key, float("nan")) for _, m, _, _ in rows],
                yerr=[c.get(key, 0.0) for _, _, c, _ in rows],
                marker="o",
                capsize=2,
                color=f"C{i}",
                label=ARMS[arm],
            )
        ax.set_xlabel("merge weight (0 = zero-shot, 1 = trained)", fontsize=8)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    out = Path(__file__).parent / "plots" / "merge_curve.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
