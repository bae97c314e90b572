"""The centering mode and lambda chosen on dev data by the rule of docs/studies.md ("Choosing the centering on dev
data"), never on an evaluation set: every candidate scored on the held-out part of the default recipe's training
sources plus FLORES dev, for each model, then the rule picks one.

Example::

    table = choose_centering(["e5-small", "runs/hybrid/final"])
    table["choice"]        # e.g. "center:0.5"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: the candidates, in the rule's order of preference among ties (smaller lambda first, then shift over center)
CANDIDATES = ("none", "shift:0.5", "shift:1", "center:0.25", "center:0.5", "center:0.75", "center:1")
MONO_DROP, TIE = 0.01, 0.002


def dev_data(data_dir: str | os.PathLike | None) -> Any:
    """The held-out part of the ``qa`` recipe's sources plus FLORES dev: the questions the shipped defaults are
    chosen for (a :class:`~hybridir.data.training.items.TrainingData`)."""
    from ..data.training.sources import load_train_dev
    from ..training.recipes import recipe

    qa = recipe("qa")
    _, dev = load_train_dev(qa.data, list(qa.languages), data_dir, dev_only="flores")
    assert dev is not None
    return dev


def choose_centering(models: list[str], data_dir: str | os.PathLike | None = None,
                     show_progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Dev figures of every (model, candidate), each candidate's score, and the choice (module docstring)."""
    import functools
    import tempfile

    from ..encoders.centering import Centering, centering_for
    from ..encoders.encoding import Encoder
    from ..encoders.models import load_encoder
    from ..training.dev_metrics import dev_metrics
    from ..training.teacher import frozen_vectors

    dev = dev_data(data_dir)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ref in models:
            model = load_encoder(ref)
            enc = Encoder(model, show_progress=show_progress)
            cache = functools.partial(frozen_vectors, Path(tmp), enc.fingerprint)
            rows[ref] = {}
            for cand in CANDIDATES:
                centering: Centering = centering_for(ref, Centering(cand).spec, enc, data_dir=data_dir)
                if centering.active:
                    centering.ensure(dev.languages, enc.plain, enc.fingerprint, enc.dim() or 0, enc.path)
                m = dev_metrics(model, dev, cache=cache, centering=centering)
                rows[ref][cand] = {k: m[k] for k in ("mono_map", "cross_map", "multi_map", "rank_distance")}
    return decide(rows)


def dev_rule(rows: dict[str, dict[str, dict[str, float]]], preference: list[str],
             ) -> tuple[dict[str, float], dict[str, bool], str]:  # fmt: skip
    """The dev rule both choices share (docs/studies.md): each candidate's score (the mean over models of
    (mono + cross + multi mAP) / 3), whether it keeps every model's mono mAP within ``MONO_DROP`` of ``none``, and
    the first of ``preference`` that is allowed and within ``TIE`` of the best allowed score."""
    score, allowed = {}, {}
    for cand in preference:
        per_model = [sum(r[cand][k] for k in ("mono_map", "cross_map", "multi_map")) / 3 for r in rows.values()]
        score[cand] = sum(per_model) / len(per_model)
        allowed[cand] = all(r[cand]["mono_map"] >= r["none"]["mono_map"] - MONO_DROP for r in rows.values())
    best = max(score[c] for c in preference if allowed[c])
    return score, allowed, next(c for c in preference if allowed[c] and score[c] >= best - TIE)


def decide(rows: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """The rule on figures already computed: ``rows[model][candidate]`` -> mono / cross / multi mAP."""
    score, allowed, choice = dev_rule(rows, _preference())
    score, allowed = {c: score[c] for c in CANDIDATES}, {c: allowed[c] for c in CANDIDATES}
    return {"rule": "docs/studies.md, 'Choosing the centering on dev data'", "models": list(rows), "figures": rows,
            "score": score, "meets_mono_constraint": allowed, "choice": choice}  # fmt: skip


def _preference() -> list[str]:
    """Ties go to the smaller lambda, then to shift (none counts as lambda 0)."""

    def key(c: str) -> tuple[float, int]:
        mode, _, w = c.partition(":")
        return (0.0 if mode == "none" else float(w or 1), 0 if mode == "shift" else 1)

    return sorted(CANDIDATES, key=key)


def render(result: dict[str, Any]) -> str:
    """The Markdown table of reports/centering_choice.md."""
    lines = [f"# Centering chosen on dev data\n\nRule: {result['rule']}. Choice: **{result['choice']}**.\n",
             "| candidate | " + " | ".join(f"{Path(m).name or m} mono / cross / multi / rank dist." for m in
                                          result["models"]) + " | score | mono within 0.01 |",
             "|---|" + "---|" * (len(result["models"]) + 2)]  # fmt: skip
    for cand in CANDIDATES:
        cells = [" / ".join(f"{result['figures'][m][cand][k]:.3f}" for k in ("mono_map", "cross_map", "multi_map"))
                 + f" / {result['figures'][m][cand]['rank_distance']:.1f}" for m in result["models"]]  # fmt: skip
        lines.append(f"| {cand} | " + " | ".join(cells) + f" | {result['score'][cand]:.4f} | "
                     f"{'yes' if result['meets_mono_constraint'][cand] else 'no'} |")  # fmt: skip
    return "\n".join(lines) + "\n"
