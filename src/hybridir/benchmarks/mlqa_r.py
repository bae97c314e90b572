"""MLQA-R (Roy et al. 2020, LAReQA): 7 languages, the MLQA dev questions against the pooled answer sentences."""

from __future__ import annotations

from ..data.lareqa import MLQA_R_LANGS
from .base import LareqaBenchmark, Request, load_lareqa_set


class MlqaR(LareqaBenchmark):
    name = pattern = "mlqa-r"
    title = "MLQA-R"
    description = "MLQA-R, 7 languages: mono / cross / multi mAP and language bias (LAReQA)"
    languages = MLQA_R_LANGS
    in_studies = False  # its per-query keys (mono/<x>...) would mix with XQuAD-R's in a study's paired tests

    def load(self, spec: tuple, req: Request) -> list:
        return load_lareqa_set(self.name, req)


BENCHMARK = MlqaR()
