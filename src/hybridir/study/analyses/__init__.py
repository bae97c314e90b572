"""The analyses of a study summary, in the order their sections appear in study.md (one module each)."""

from __future__ import annotations

from . import (
    centering,
    flores_breakdown,
    high_resource,
    model_size,
    paper_claims,
    paper_numbers,
    recipe_choice,
    seed_pairs,
    seen_unseen,
    targets,
)

ANALYSES = (
    paper_claims.ANALYSIS,
    seed_pairs.ANALYSIS,
    centering.ANALYSIS,
    targets.ANALYSIS,
    paper_numbers.ANALYSIS,
    seen_unseen.ANALYSIS,
    high_resource.ANALYSIS,
    model_size.ANALYSIS,
    flores_breakdown.ANALYSIS,
    recipe_choice.ANALYSIS,
)
