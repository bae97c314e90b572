"""MLQA-R (Roy et al. 2020, LAReQA): 7 languages, the MLQA dev questions against the pooled answer sentences."""

from __future__ import annotations

from ...data.evaluation.lareqa import MLQA_R_LANGS
from .base import LareqaBenchmark, Request, load_lareqa_set


class MlqaR(LareqaBenchmark):
    name = pattern = "mlqa-r"
    title = "MLQA-R"
    description = "MLQA-R, 7 languages: mono / cross / multi mAP and language bias (LAReQA)"
    languages = MLQA_R_LANGS
    columns = (("mono_map", "MLQA-R mono"), ("cross_map", "MLQA-R cross"), ("multi_map", "MLQA-R multi"),
               ("rank_distance", "MLQA-R rank dist."))  # fmt: skip
    setting_prefix = "mlqa-r:"  # its per-query keys (mono/<x>...) are XQuAD-R's: tested apart in a study
    tested = {
        "mlqa-r:mono": "mono_map",
        "mlqa-r:cross": "cross_map",
        "mlqa-r:multi": "multi_map",
        "mlqa-r:rank_distance": "rank_distance",
    }

    def load(self, spec: tuple, req: Request) -> list:
        return load_lareqa_set(self.name, req)


BENCHMARK = MlqaR()
