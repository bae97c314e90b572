"""The trade-off every arm makes against the starting model: monolingual mAP against cross-lingual and
multilingual mAP, one point per arm with 95% intervals both ways. A figure per group (no table): drawn by
:func:`hybridir.study.plots.make_plots` next to the bars, for studies evaluated on XQuAD-R.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..aggregate import SETTINGS, Row
from ..plotting import color, figure, save_figure


def plot_tradeoff(arms: list[Row], path: Path, title: str) -> Path | None:
    """Monolingual mAP against cross-lingual and multilingual mAP, one point per arm (95% intervals both ways): the
    trade-off every arm makes against the starting model, up and to the right is better."""
    mono = "xquad-r/mono_map"
    arms = [r for r in arms if not math.isnan(r.mean.get(mono, np.nan))]
    if not arms:
        return None
    fig, axes = figure(2, title)
    for ax, (name, label) in zip(axes, SETTINGS[1:], strict=True):
        for r in arms:
            ax.errorbar(r.mean.get(name, np.nan), r.mean[mono], xerr=np.nan_to_num(r.ci95.get(name, np.nan)),
                        yerr=np.nan_to_num(r.ci95.get(mono, np.nan)), marker="*" if r.arm == "zero-shot" else "o",
                        color=color(r.arm), capsize=2)  # fmt: skip
            ax.annotate(r.arm, (r.mean.get(name, np.nan), r.mean[mono]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel(label, fontsize=9)
        ax.set_ylabel("mono mAP", fontsize=9)
    return save_figure(fig, path)
