"""The benchmark registry: every evaluation benchmark by name, one module each.

:func:`lookup` turns a dataset name into its benchmark and parsed parts, once; ``evaluate``, the study config,
the CLI help and the docs table (:func:`docs_table`, in docs/architecture.md) all read :data:`BENCHMARKS`. A new
benchmark is one module with a :class:`~hybridir.evaluation.benchmarks.base.Benchmark` subclass plus one line below.
"""

from __future__ import annotations

from typing import Any

from ...infra.errors import ConfigError
from . import beir, flores, miracl, miracl_judged, mlqa_r, monoqa, xquad_r
from .base import Benchmark, Request

BENCHMARKS: tuple[Benchmark, ...] = (
    xquad_r.BENCHMARK,
    mlqa_r.BENCHMARK,
    monoqa.BENCHMARK,
    flores.BENCHMARK,
    miracl.BENCHMARK,
    miracl_judged.BENCHMARK,
    beir.BENCHMARK,
)

__all__ = ["BENCHMARKS", "Benchmark", "Request", "docs_table", "help_text", "load", "lookup"]


def lookup(dataset: str, *, study: bool = False) -> tuple[Benchmark, Any]:
    """(benchmark, parsed name) of ``dataset``; ConfigError naming the choices for an unknown or malformed name.
    ``study``: only benchmarks a study may use, with their stricter name checks."""
    choices = [b for b in BENCHMARKS if b.in_studies or not study]
    for bench in choices:
        if (spec := bench.parse(dataset)) is not None:
            if study:
                bench.check_for_study(spec)
            return bench, spec
    raise ConfigError(f"unknown dataset {dataset!r}; use {help_text(choices)}")


def load(dataset: str, req: Request | None = None) -> tuple[Benchmark, Any]:
    """(benchmark, the task its protocol scores) of ``dataset``: the one place a dataset name is read and loaded."""
    bench, spec = lookup(dataset)
    return bench, bench.load(spec, req or Request())


def help_text(benchmarks: tuple[Benchmark, ...] | list[Benchmark] = BENCHMARKS) -> str:
    """The name patterns, as ``--dataset`` help and error messages list them."""
    return " | ".join(b.pattern for b in benchmarks)


def docs_table() -> str:
    """The Markdown table of docs/architecture.md (a test keeps the two equal)."""
    lines = ["| name | protocol | reports | per-language arm | in studies | per_query.npz |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for b in BENCHMARKS:
        arms = "its languages" if type(b).arm_languages is not Benchmark.arm_languages else "-"
        lines.append(f"| `{b.pattern}` | {b.protocol} | {b.description}; {', '.join(b.metrics)} | {arms} | "
                     f"{'yes' if b.in_studies else 'no'} | {b.per_query} |")  # fmt: skip
    return "\n".join(lines)
