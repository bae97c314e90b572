"""XQuAD-R (Roy et al. 2020, LAReQA): 11 languages, 1190 questions each, answer sentences pooled from all of them."""

from __future__ import annotations

from ...data.languages import XQUAD_LANGUAGES
from .base import LareqaBenchmark, Request, load_lareqa_set


class XquadR(LareqaBenchmark):
    name = pattern = "xquad-r"
    title = "XQuAD-R"
    description = "XQuAD-R, 11 languages: mono / cross / multi mAP and language bias (LAReQA)"
    languages = tuple(XQUAD_LANGUAGES)
    columns = (("mono_map", "mono mAP"), ("cross_map", "cross mAP"), ("multi_map", "multi mAP"),
               ("rank_distance", "rank dist."), ("top10_query_lang_share", "top-10 query-lang share"))  # fmt: skip
    tested = {"mono": "mono_map", "cross": "cross_map", "multi": "multi_map", "rank_distance": "rank_distance"}

    def load(self, spec: tuple, req: Request) -> list:
        return load_lareqa_set(self.name, req)

    def arm_languages(self, spec: tuple) -> tuple[str, ...]:
        return self.languages


BENCHMARK = XquadR()
