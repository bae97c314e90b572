"""study/analyses/budget.py: each arm against its training steps, and hybrid's paired gap to X-X per budget."""

from __future__ import annotations

import pytest

from hybridir.study.aggregate import Row
from hybridir.study.analyses.budget import budget_gaps, budget_markdown, budget_table, plot_budget
from hybridir.study.analyses.centering import centering_gains
from hybridir.study.config import Cell


def row(sampler: str, steps: int | None, multi: list[float], **kw) -> Row:
    recs = [{"seed": s, "metrics": {"xquad-r/multi_map": v, "xquad-r/mono_map": 0.7}} for s, v in enumerate(multi)]
    if sampler == "zero-shot":
        return Row(Cell("m", "zero-shot", **kw), [{"seed": None, "metrics": recs[0]["metrics"]}])
    alpha = 0.5 if sampler == "hybrid" else None
    return Row(Cell("m", sampler, alpha, "ls", ("en", "de"), steps, merge=0.5, **kw), recs)


ROWS = [
    row("zero-shot", None, [0.30]),
    row("xx", 60, [0.40, 0.42, 0.41]),
    row("xx", 240, [0.40, 0.40, 0.40]),
    row("hybrid", 60, [0.45, 0.46, 0.44]),  # +0.04 at 60 steps
    row("hybrid", 240, [0.39, 0.40, 0.38]),  # -0.01 at 240: the gap flips
    row("hybrid", 240, [0.50, 0.50, 0.50], centering="center:0.75"),  # no centred X-X: no gap
]


def test_the_gap_to_xx_is_paired_within_each_budget() -> None:
    gaps = {(g["steps"], g["metric"]): g for g in budget_gaps(ROWS)}
    assert gaps[(60, "xquad-r/multi_map")]["mean"] == pytest.approx(0.04)
    assert gaps[(240, "xquad-r/multi_map")]["mean"] == pytest.approx(-0.01)
    assert gaps[(60, "xquad-r/mono_map")]["mean"] == pytest.approx(0.0)
    assert {g["line"] for g in gaps.values()} == {"hybrid-0.5+m0.5"}


def test_lines_drop_the_steps_and_the_table_and_plot_render(tmp_path) -> None:
    table = budget_table(ROWS)
    lines = {(t["line"], t["steps"]) for t in table}
    assert ("xx+m0.5", 60) in lines and ("xx+m0.5", 240) in lines and ("zero-shot", None) in lines
    md = "\n".join(budget_markdown({"table": table, "gaps": budget_gaps(ROWS)}, [("xquad-r/multi_map", "multi")]))
    assert "| hybrid-0.5+m0.5 | xx+m0.5 | 240 | 3 | +0.000 ± 0.000 | -0.010 ± 0.025 |" in md  # apart: no *
    assert "| hybrid-0.5+m0.5 | xx+m0.5 | 60 | 3 | +0.000 ± 0.000 | +0.040 ± 0.025* |" in md
    path = plot_budget(table, [("xquad-r/multi_map", "multi")], tmp_path / "budget.png", "t")
    assert path is not None and path.stat().st_size > 0
    assert plot_budget(budget_table(ROWS[:1]), [("xquad-r/multi_map", "multi")], tmp_path / "z.png", "t") is None


def test_centering_pairs_keep_budgets_apart_and_compare_recipes_with_the_first() -> None:
    gains = centering_gains(ROWS)
    arms = {g["arm"] for g in gains}
    assert "hybrid-0.5+m0.5+center:0.75 (240 steps)" in arms
    recipes = [row("xx", 60, [0.40, 0.41], recipe="base"), row("xx", 60, [0.45, 0.47], recipe="dec")]
    found = {(g["question"], g["metric"]): g for g in centering_gains(recipes)}
    assert found[("recipe dec minus base, both none", "xquad-r/multi_map")]["mean"] == pytest.approx(0.055)
    assert not [q for q, _ in found if q.startswith("recipe base")]
