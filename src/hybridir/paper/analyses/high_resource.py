"""The high-resource check: per-language monolingual mAP of each hybrid arm against X-X and against per-language
fine-tuning (mono-ft), the paper's worry that cross-lingual pairs cost high-resource languages quality.

Applies to studies evaluated on XQuAD-R; the high-resource languages are the YAML's ``high_resource``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...study.aggregate import Row, comparisons, per_language
from ...study.analysis import Analysis, Context
from ...study.config import slug
from ...study.plots import arm_groups, group_title
from ...study.plotting import color, figure, save_figure


def high_resource_check(rows: list[Row], out: Path, high_resource: Sequence[str]) -> list[dict[str, Any]]:
    """Per-language monolingual mAP of each hybrid arm against X-X and against per-language monolingual
    fine-tuning (mono-ft) of the same group: the paper's worry that mixing in cross-lingual pairs costs
    high-resource languages their monolingual quality."""
    checks = []
    for h, b in comparisons(rows):  # the baseline trained, merged and scored as the hybrid arm was
        if b.cell.sampler not in ("xx", "mono-ft"):
            continue
        baseline = b.arm
        hm, bm = per_language(h, out, "mono"), per_language(b, out, "mono")
        for lang in sorted(set(hm) & set(bm)):
            checks.append({"model": h.model, "languages": h.langset, "steps": h.steps, "arm": h.arm,
                           "baseline": baseline, "lang": lang, "high_resource": lang in high_resource,
                           "baseline_map": bm[lang], "hybrid": hm[lang], "diff": hm[lang] - bm[lang]})  # fmt: skip
    return checks


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


def plot_high_resource(
    baselines: list[Row], hybrids: list[Row], out: Path, high_resource: Sequence[str], path: Path, title: str
) -> Path | None:
    """Per-language monolingual mAP, X-X (and mono-ft where it has the language) next to each hybrid arm;
    high-resource languages starred."""
    arms = [*baselines, *hybrids]
    per = [per_language(r, out, "mono") for r in arms]
    langs = sorted(set.intersection(*(set(p) for r, p in zip(arms, per, strict=True) if r.arm != "mono-ft")))
    if not langs:
        return None
    fig, axes = figure(1, title)
    width = 0.8 / len(per)
    for i, (row, vals) in enumerate(zip(arms, per, strict=True)):
        axes[0].bar(np.arange(len(langs)) + i * width, [vals.get(lang, np.nan) for lang in langs], width,
                    label=row.arm, color=color(row.arm))  # fmt: skip
    axes[0].set_xticks(np.arange(len(langs)) + 0.4 - width / 2,
                       [f"{lang}*" if lang in high_resource else lang for lang in langs], fontsize=8)  # fmt: skip
    axes[0].set_ylabel("monolingual mAP (* = high-resource)")
    axes[0].legend(fontsize=7)
    fig.set_size_inches(max(5.0, 0.55 * len(langs) * len(per)), 3.6)
    return save_figure(fig, path)


def _plots(ctx: Context) -> list[Path | None]:
    """The high-resource bars of each group that has X-X and hybrid arms, one figure per recipe and merge, scored
    plain (the bars side by side trained and merged alike; the centred scorings are in the table)."""
    made = []
    for key, members in arm_groups(ctx.rows)[1].items():
        plain = [r for r in members if r.cell.centering in (None, "none")]
        for variant in dict.fromkeys((r.cell.recipe, r.cell.merge) for r in plain):
            alike = [r for r in plain if (r.cell.recipe, r.cell.merge) == variant]
            xx = [r for r in alike if r.cell.sampler == "xx"]
            hybrids = [r for r in alike if r.cell.sampler.startswith("hybrid")]
            if not (xx and hybrids):
                continue
            mono_ft = [r for r in alike if r.cell.sampler == "mono-ft"]
            suffix = xx[0].arm.removeprefix("xx")  # "" for the plain variant: the file name it always had
            name = slug("_".join(str(k) for k in key) + suffix)
            title = group_title(key) + (f" ({suffix.lstrip('@+')})" if suffix else "")
            made.append(plot_high_resource([*xx, *mono_ft], hybrids, ctx.out, ctx.cfg.high_resource,
                                           ctx.out / "plots" / f"high_resource_{name}.png", title))  # fmt: skip
    return made


ANALYSIS = Analysis(
    "high_resource",
    70,
    applies=lambda ctx: ctx.has_dataset("xquad-r"),
    compute=lambda ctx: high_resource_check(ctx.rows, ctx.out, ctx.cfg.high_resource),
    section=lambda ctx, checks: _high_resource_markdown(checks, ctx.cfg.high_resource),
    saved=True,
    plots=lambda ctx, checks: _plots(ctx),
)
