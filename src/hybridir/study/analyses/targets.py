"""Targets: does a trained arm reach the bar the study sets (an issue's "done when"), and by how much does it miss?

The YAML's ``targets`` maps ``<dataset>/<metric>`` to a number or to ``zero-shot`` (the model's zero-shot mean)::

    targets:
      xquad-r/mono_map: zero-shot     # keep the starting model's monolingual quality
      xquad-r/cross_map: 0.70
      xquad-r/rank_distance: 290      # a bias figure: at most the bar

Every trained arm gets, per target, its mean over seeds, the gap (positive = past the bar, in the metric's units)
and whether it is met; the section names the arms that meet every target or, when none does, the three closest. The
judgement is on the mean over seeds, not on one lucky seed; the seed intervals are in the main table.
"""

from __future__ import annotations

from typing import Any

from ..aggregate import LOWER_IS_BETTER, Row
from ..analysis import Analysis


def check_targets(rows: list[Row], targets: dict[str, float | str]) -> list[dict[str, Any]]:
    """One line per (trained arm, target): value, bar, gap (>= 0 = met; None where the arm has no value)."""
    zero = {r.model: r for r in rows if r.arm == "zero-shot"}
    out = []
    for r in rows:
        if r.arm == "zero-shot":
            continue
        for metric, bar in targets.items():
            level = zero[r.model].mean.get(metric) if bar == "zero-shot" and r.model in zero else bar
            value = r.mean.get(metric)
            gap = None
            if isinstance(level, float) and value is not None:
                gap = level - value if metric.rpartition("/")[2] in LOWER_IS_BETTER else value - level
            out.append({"model": r.model, "languages": r.langset, "steps": r.steps, "arm": r.arm, "metric": metric,
                        "bar": level, "bar_from": "zero-shot" if bar == "zero-shot" else "number", "value": value,
                        "gap": gap, "met": gap is not None and gap >= 0})  # fmt: skip
    return out


def targets_markdown(lines: list[dict[str, Any]]) -> list[str]:
    """A table: each trained arm's value (gap to the bar) per target, ✓ where met; then who meets them all."""
    if not lines:
        return []
    metrics = list(dict.fromkeys(x["metric"] for x in lines))
    head = [f"{m} ({'≤' if m.rpartition('/')[2] in LOWER_IS_BETTER else '≥'} {_bar(m, lines)})" for m in metrics]
    out = ["", "## Targets", "",
           "Mean over seeds against the study's bars (`targets` in the YAML); in brackets the gap (positive = past "
           "the bar); ✓ = met.", "",
           "| model | languages | steps | arm | " + " | ".join(head) + " |",
           "|" + "---|" * (4 + len(metrics))]  # fmt: skip
    arms: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for x in lines:
        arms.setdefault((x["model"], x["languages"], x["steps"], x["arm"]), {})[x["metric"]] = x
    for key, per in arms.items():
        cells = [_cell(per.get(m)) for m in metrics]
        out.append("| " + " | ".join(str(k or "-") for k in key) + " | " + " | ".join(cells) + " |")
    winners = [key[3] for key, per in arms.items() if all(x["met"] for x in per.values())]
    out += ["", f"Arms that meet every target: {', '.join(winners) if winners else 'none'}."]
    if not winners:
        out += ["", "Closest (fewest targets missed, then the smallest summed shortfall as a fraction of each bar; "
                "a description of this table, not a held-out choice):", ""]  # fmt: skip
        for rank, (key, per) in enumerate(closest(arms, 3), 1):
            missed = [f"{m.rpartition('/')[2]} {_gap(x)}" for m, x in per.items() if not x["met"]]
            name = key[3] if len({k[0] for k in arms}) == 1 else f"{key[0]} {key[3]}"
            out.append(f"{rank}. {name}: misses {', '.join(missed)}")
    return out


def closest(arms: dict[tuple[Any, ...], dict[str, dict[str, Any]]], n: int) -> list[tuple[tuple[Any, ...], dict]]:
    """The n arms nearest to meeting every target: fewest misses (a target without a value counts as missed), then
    the smallest sum of |gap| / bar over the missed targets, so a miss of 10 in rank distance and one of 0.01 mAP
    weigh by how far each is from its own bar."""

    def distance(per: dict[str, dict[str, Any]]) -> tuple[int, float]:
        missed = [x for x in per.values() if not x["met"]]
        return len(missed), sum(abs(x["gap"] / x["bar"]) for x in missed if x["gap"] is not None and x["bar"])

    return sorted(arms.items(), key=lambda kv: distance(kv[1]))[:n]


def _gap(x: dict[str, Any]) -> str:
    return "n/a" if x["gap"] is None else f"{x['gap']:+.0f}" if abs(x["bar"]) >= 10 else f"{x['gap']:+.3f}"


def _bar(metric: str, lines: list[dict[str, Any]]) -> str:
    """The bar for the header: its number, or "each model's zero-shot" where models have different zero-shot values."""
    bars = {x["bar"] for x in lines if x["metric"] == metric}
    from_zero = any(x["bar_from"] == "zero-shot" for x in lines if x["metric"] == metric)
    if len(bars) > 1:
        return "each model's zero-shot"
    return _num(bars.pop()) + (", zero-shot" if from_zero else "")


def _cell(x: dict[str, Any] | None) -> str:
    if x is None or x["value"] is None or x["gap"] is None:
        return "n/a"
    return f"{_num(x['value'])} ({x['gap']:+.3g}){' ✓' if x['met'] else ''}"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}" if abs(x) >= 10 else f"{x:.3f}"


ANALYSIS = Analysis(
    "targets",
    40,
    applies=lambda ctx: bool(ctx.cfg.targets),
    compute=lambda ctx: check_targets(ctx.rows, ctx.cfg.targets),
    section=lambda ctx, lines: targets_markdown(lines),
    saved=True,
)
