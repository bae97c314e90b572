"""``miracl-judged:<lang>[:N]``: MIRACL dev queries against a smaller pool, every judged passage of the kept
queries plus a fixed seeded sample of N others (default 10,000). Not MIRACL numbers, so named apart."""

from __future__ import annotations

from ...data.evaluation.miracl import JUDGED_SAMPLE
from .miracl import Miracl


class MiraclJudged(Miracl):
    name = "miracl-judged"
    pattern = "miracl-judged:LANG[:N]"
    description = f"MIRACL dev queries, judged passages + N sampled ones (default {JUDGED_SAMPLE:,}): a study pool"
    sampled = True


BENCHMARK = MiraclJudged()
