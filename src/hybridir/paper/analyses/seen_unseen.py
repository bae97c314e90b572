"""Generalisation beyond the training languages: XQuAD-R and FLORES-200 scores over the languages a row trained
on (seen), the others (unseen) and those no row of the study trained on (held-out), per seed.

Applies to studies evaluated on XQuAD-R or FLORES; with a number-of-languages axis its plots show the three
groups against the number of training languages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...study.aggregate import Row, bitext_mrr, mean_ci95, per_language_in, row_dirs, to_xquad
from ...study.analysis import Analysis, Context, row_table_head
from ...study.config import read_results, slug
from ...study.plots import arm_groups
from ...study.plotting import color, figure, save_figure


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
    seen = {to_xquad(code) for code in train_languages}
    per_seed = []
    for cell_dir in row_dirs(row, out):
        groups: dict[str, list[float]] = defaultdict(list)
        for table in ("mono", "multi", "cross"):
            for key, val in per_language_in([cell_dir], table).items():
                langs = key.split("-", 1) if table == "cross" else [key]
                groups[f"{table}/{'seen' if all(lang in seen for lang in langs) else 'unseen'}"].append(val)
                if not any(lang in trained_anywhere for lang in langs):
                    groups[f"{table}/held_out"].append(val)
        for code, b in read_results(cell_dir, "flores").get("bitext", {}).items():
            val = bitext_mrr(b)
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
        res[key], res[f"{key}_ci95"] = mean_ci95([vals[key] for vals in per_seed if key in vals])
    return res


_SEEN_TABLES = ("mono", "cross", "multi", "flores")


def _trained_anywhere(rows: list[Row], out: Path, langsets: dict[str, Sequence[str]]) -> set[str]:
    """Every language some row trained on: XQuAD-R codes from the language sets, FLORES codes from the cells'
    own FLORES records (``seen``)."""
    codes = {to_xquad(code) for langs in langsets.values() for code in langs}
    for r in rows:
        for cell_dir in row_dirs(r, out):
            bitext = read_results(cell_dir, "flores").get("bitext", {})
            codes |= {code for code, b in bitext.items() if b.get("seen")}
    return codes


def _seen_markdown(rows: list[Row], seen: dict[int, dict]) -> list[str]:
    if not any(k.endswith("/unseen") for r in rows if r.arm != "zero-shot" for k in seen.get(id(r), {})):
        return []
    keys = [f"{t}/{p}" for t in _SEEN_TABLES for p in ("seen", "unseen", "gap", "held_out")
            if any(f"{t}/{p}" in s for s in seen.values())]  # fmt: skip
    lines = row_table_head("Seen vs unseen languages: the generalisation gap",
             "XQuAD-R mAP (mono / cross / multi) and FLORES-200 MRR@10 (X->en and en->X) over the languages the row "
             "trained on (seen), the others (unseen), and the languages no row of this study trained on (held_out: "
             "one set for every row, so rows with different language sets compare fairly). gap = seen - unseen. "
             "Mean ± 95% interval over seeds (computed per seed). mono / multi by query language; a cross pair "
             "belongs to a group when both its languages do.", keys)  # fmt: skip
    for r in rows:
        if not (vals := seen.get(id(r))):
            continue
        cells = []
        for k in keys:
            ci = vals.get(f"{k}_ci95", float("nan"))
            cells.append("" if k not in vals else f"{vals[k]:.3f}" + ("" if math.isnan(ci) else f" ± {ci:.3f}"))
        lines.append(f"| {r.model} | {r.langset or '-'} | {r.steps or '-'} | {r.arm} | " + " | ".join(cells) + " |")
    return lines


def plot_languages(
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
        fig, axes = figure(len(tables), f"{model}, {steps} steps: number of training languages")
        ks = sorted({len(langsets[r.langset]) for r in members})
        for arm in dict.fromkeys(r.arm for r in members):
            arm_rows = sorted((r for r in members if r.arm == arm), key=lambda r: len(langsets[r.langset]))
            xs = [len(langsets[r.langset]) for r in arm_rows]
            for ax, table in zip(axes, tables, strict=True):
                for part, ls in (("seen", "-"), ("unseen", "--"), ("held_out", ":")):
                    ys = [seen.get(id(r), {}).get(f"{table}/{part}", np.nan) for r in arm_rows]
                    ax.plot(xs, ys, ls=ls, marker="o", color=color(arm), label=f"{arm} {part}")
        for ax, table in zip(axes, tables, strict=True):
            if model in zero and f"{table}/held_out" in seen.get(id(zero[model]), {}):
                ax.axhline(seen[id(zero[model])][f"{table}/held_out"], color=color("zero-shot"), ls=":",
                           label="zero-shot held_out")  # fmt: skip
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.minorticks_off()
            ax.set_xlabel("training languages")
            ax.set_title("FLORES MRR@10" if table == "flores" else f"XQuAD-R {table} mAP", fontsize=9)
        axes[0].legend(fontsize=5)
        made.append(save_figure(fig, plots_dir / f"languages_{slug(model)}_{steps}steps.png"))
    return made


def _compute(ctx: Context) -> dict[int, dict[str, float]]:
    """id(row) -> its seen / unseen / held-out figures."""
    anywhere = _trained_anywhere(ctx.rows, ctx.out, ctx.langsets)
    return {id(r): seen_unseen(r, ctx.out, ctx.langsets.get(r.langset or "", ()), anywhere) for r in ctx.rows}


def _plots(ctx: Context, seen: dict[int, dict[str, float]]) -> list[Path]:
    zero, groups = arm_groups(ctx.rows)
    return plot_languages(groups, zero, seen, ctx.langsets, ctx.out / "plots")


ANALYSIS = Analysis(
    "seen_unseen",
    60,
    applies=lambda ctx: ctx.has_dataset("xquad-r", "flores"),
    compute=_compute,
    section=lambda ctx, seen: _seen_markdown(ctx.rows, seen),
    empty=dict,
    per_row=True,
    plots=lambda ctx, seen: _plots(ctx, seen),
)
