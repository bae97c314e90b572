"""What a study analysis is: a question the summary answers when the grid can answer it.

An :class:`Analysis` declares when it applies (which grid axes or datasets it needs), computes its result from
the aggregated rows (:class:`Context`), renders its Markdown section and may draw figures and keep its result in
study.json. The summary runs :func:`hybridir.study.analyses.registered` in order (the toolkit's, then the paper
layer's); one that does not apply gets its ``empty`` result, so study.json keeps the same keys for every study
with the same analyses installed. Adding a question is one new file in ``analyses/`` (or ``hybridir/paper/analyses/``
for one of the paper's) plus one line in that package's ``ANALYSES``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aggregate import Row
from .config import StudyConfig


@dataclass
class Context:
    """What every analysis reads: the config, the rows, the study folder, the paired tests over queries and the
    grid's language sets (name -> codes). ``found`` holds each analysis's result by name, once computed."""

    cfg: StudyConfig
    rows: list[Row]
    out: Path
    tests: list[dict[str, Any]]
    langsets: dict[str, Sequence[str]]
    found: dict[str, Any] = field(default_factory=dict)

    def has_dataset(self, *names: str) -> bool:
        return any(name in self.cfg.datasets for name in names)


@dataclass(frozen=True)
class Analysis:
    """One question: ``name`` is its key in :attr:`Context.found`. ``saved``: the result is a study.json key of that
    name; ``per_row``: the result is ``{id(row): {column: value}}``, kept in each row of study.json under ``name`` and
    as ``name/column`` columns of study.csv; ``plots``: its figures (given the result, empty or not; None for a
    figure with nothing to draw). ``order``: where its section goes in study.md, lowest first (the toolkit's and
    the paper layer's analyses interleave by it)."""

    name: str
    order: int
    applies: Callable[[Context], bool]
    compute: Callable[[Context], Any]
    section: Callable[[Context, Any], list[str]]
    empty: Callable[[], Any] = list
    saved: bool = False
    per_row: bool = False
    plots: Callable[[Context, Any], list[Path | None]] | None = None


def run_analyses(ctx: Context, analyses: Sequence[Analysis]) -> list[Analysis]:
    """Fill ``ctx.found`` with every analysis's result (``empty`` where it does not apply); returns those that apply,
    in order: the summary's sections."""
    applied = []
    for a in analyses:
        if a.applies(ctx):
            ctx.found[a.name] = a.compute(ctx)
            applied.append(a)
        else:
            ctx.found[a.name] = a.empty()
    return applied


def row_table_head(title: str, text: str, columns: Sequence[str]) -> list[str]:
    """The opening lines of a summary section whose table has one line per row (model, languages, steps, arm)."""
    return ["", f"## {title}", "", text, "", "| model | languages | steps | arm | " + " | ".join(columns) + " |",
            "|" + "---|" * (4 + len(columns))]  # fmt: skip
