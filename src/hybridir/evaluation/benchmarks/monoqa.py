"""Monolingual QA retrieval, question -> paragraph, in five languages: JSQuAD (ja), CMRC 2018 (zh), DRCD (zh-TW),
iapp_wiki_qa_squad (th), PersianQA (fa). ``monoqa`` runs all five; ``monoqa:<set>`` (or the set's bare name) one.
"""

from __future__ import annotations

from ...data import resolve_data_dir
from ...data.evaluation.monoqa import MONOQA_SETS, load_monoqa
from ...infra.errors import ConfigError
from .base import Request, RetrievalBenchmark


class MonoQA(RetrievalBenchmark):
    name = "monoqa"
    pattern = "monoqa[:SET]"
    description = f"monolingual QA retrieval: {', '.join(MONOQA_SETS)}"
    columns = (("ndcg@10", "monoqa nDCG@10"),)
    tested = {"monoqa": "ndcg@10"}

    def parse(self, dataset: str) -> list[str] | None:
        """The set names: all for ``monoqa``, one for ``monoqa:<set>`` or a set's own name."""
        if dataset == self.name:
            return list(MONOQA_SETS)
        kind, sep, name = dataset.partition(":")
        if dataset in MONOQA_SETS or (kind == self.name and sep and name in MONOQA_SETS):
            return [name or dataset]
        if kind == self.name and sep:
            raise ConfigError(f"{dataset}: unknown monolingual set; use one of {', '.join(MONOQA_SETS)}")
        return None

    def load(self, spec: list[str], req: Request) -> list:
        names = [n for n in spec if not req.languages or MONOQA_SETS[n][2] in req.languages or n in req.languages]
        if not names:
            raise ConfigError(f"no monolingual set in languages {req.languages}; sets: "
                              + ", ".join(f"{n} ({v[2]})" for n, v in MONOQA_SETS.items()))  # fmt: skip
        root = resolve_data_dir(req.data_dir)
        return [load_monoqa(n, root, max_questions=req.max_questions) for n in names]

    def arm_languages(self, spec: list[str]) -> tuple[str, ...]:
        return tuple(MONOQA_SETS[n][2] for n in spec)

    def check_languages(self, spec: list[str], languages: list[str]) -> None:
        if not any(MONOQA_SETS[n][2] in languages or n in languages for n in spec):
            raise ConfigError(f"selects none of the sets {', '.join(spec)}")


BENCHMARK = MonoQA()
