"""The toolkit's analyses of a study summary (one module each), and :func:`registered`: these and those of the
paper's layer when it is installed (:mod:`hybridir.paper`), in the order of their sections in study.md."""

from __future__ import annotations

from ...infra.layers import PAPER, optional
from ..analysis import Analysis
from . import budget, centering, flores_breakdown, seed_pairs, targets

ANALYSES = (
    seed_pairs.ANALYSIS,
    centering.ANALYSIS,
    budget.ANALYSIS,
    targets.ANALYSIS,
    flores_breakdown.ANALYSIS,
)


def registered() -> tuple[Analysis, ...]:
    """Every analysis a summary runs, by :attr:`~hybridir.study.analysis.Analysis.order`: the toolkit's and the
    paper layer's (none without it)."""
    paper = optional(f"{PAPER}.analyses")
    return tuple(sorted(ANALYSES + (paper.ANALYSES if paper else ()), key=lambda a: a.order))
