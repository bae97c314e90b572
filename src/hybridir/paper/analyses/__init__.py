"""The paper's analyses of a study summary (one module each); :func:`hybridir.study.analyses.registered` adds
them, placed among the toolkit's by their ``order``, when this package is installed."""

from __future__ import annotations

from . import high_resource, model_size, paper_claims, paper_numbers, recipe_choice, seen_unseen

ANALYSES = (
    paper_claims.ANALYSIS,
    paper_numbers.ANALYSIS,
    seen_unseen.ANALYSIS,
    high_resource.ANALYSIS,
    model_size.ANALYSIS,
    recipe_choice.ANALYSIS,
)
