"""MIRACL (Zhang et al., TACL 2023) dev, one language against its whole collection: ``miracl:<lang>``, from the
official files (local, else the hub). The smaller study pool is :mod:`hybridir.evaluation.benchmarks.miracl_judged`."""

from __future__ import annotations

from typing import ClassVar

from ...data.evaluation.miracl import JUDGED_SAMPLE, MIRACL_LANGS, load_miracl
from ...infra.errors import ConfigError
from .base import Request, RetrievalBenchmark


class Miracl(RetrievalBenchmark):
    name = "miracl"
    pattern = "miracl:LANG"
    description = "MIRACL dev, the language's complete collection (official files or the hub)"
    sampled: ClassVar[bool] = False  # True: judged passages + a sample (miracl-judged)

    def parse(self, dataset: str) -> tuple[str, int | None] | None:
        """``(lang, sample)``: sample None = the whole collection, else the number of sampled extra passages."""
        kind, sep, rest = dataset.partition(":")
        if kind != self.name or not sep:
            return None
        lang, _, n = rest.partition(":")
        if not lang or (n and (not self.sampled or not n.isdigit() or int(n) < 1)):
            raise ConfigError(f"{dataset}: expected miracl:<lang> or miracl-judged:<lang>[:<sample size>]")
        return lang, int(n or JUDGED_SAMPLE) if self.sampled else None

    def load(self, spec: tuple[str, int | None], req: Request) -> list:
        lang, sample = spec
        return [load_miracl(lang, data_dir=req.data_dir, max_questions=req.max_questions, sample=sample)]

    def arm_languages(self, spec: tuple[str, int | None]) -> tuple[str, ...]:
        return (spec[0],)

    def check_for_study(self, spec: tuple[str, int | None]) -> None:
        if spec[0] not in MIRACL_LANGS:
            raise ConfigError(f"{spec[0]!r} is not a MIRACL language ({', '.join(MIRACL_LANGS)})")


BENCHMARK = Miracl()
