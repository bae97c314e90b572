"""The language-neutral projection's rank, recentring and strength chosen on dev data by the rule of docs/studies.md
("Choosing the language-neutral projection on dev data"), never on an evaluation set: every candidate scored on the
dev pools the centering choice uses, for each model, then the rule picks one. Each candidate is also scored after
``center:0.75`` (recorded, not used for the choice).

Example::

    table = choose_projection(["e5-small", "runs/xx-merged/final"])
    table["choice"]        # e.g. "r16"
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

#: the candidates (rank, recentred, strength), in the rule's order of preference among ties
RANKS, RECENTRE, STRENGTHS = (4, 8, 16, 32, 64), (False, True), (0.5, 1.0)
CANDIDATES = ("none", *(f"r{r}{'c' if c else ''}{'' if s == 1.0 else f's{s:g}'}"
                        for r, s, c in itertools.product(RANKS, STRENGTHS, RECENTRE)))  # fmt: skip
KEYS = ("mono_map", "cross_map", "multi_map", "rank_distance")
#: the centering the projection is also scored under (the dev choice of docs/studies.md)
ON_TOP = "center:0.75"


def parse(candidate: str) -> tuple[int, bool, float] | None:
    """``r16cs0.5`` -> (16, True, 0.5); ``none`` -> None."""
    if candidate == "none":
        return None
    rest = candidate[1:]
    rank, _, strength = rest.partition("s")
    return int(rank.rstrip("c")), rank.endswith("c"), float(strength or 1.0)


class _Scoring:
    """What ``dev_metrics`` takes as a centering: the projection, then (optionally) a centering whose means were
    taken over projected vectors."""

    active = True

    def __init__(self, projection: Any, centering: Any = None) -> None:
        self.projection, self.centering = projection, centering

    def apply(self, vecs: np.ndarray, langs: list[str], side: str) -> np.ndarray:
        out = self.projection.apply(vecs) if self.projection is not None else vecs
        return self.centering.apply(out, langs, side) if self.centering is not None else out


def _projected(enc: Any, proj: Any) -> Any:
    """``enc``'s plain vectors (through its embedding cache), projected when ``proj`` is given."""
    return lambda texts, side: proj.apply(enc.plain(texts, side)) if proj is not None else enc.plain(texts, side)


def choose_projection(models: list[str], data_dir: str | os.PathLike | None = None,
                      show_progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Dev figures of every (model, candidate), plain and after ``ON_TOP``, each candidate's score, and the choice."""
    import functools
    import tempfile

    from ..encoders.centering import Centering, ntrex_means
    from ..encoders.encoding import Encoder
    from ..encoders.models import load_encoder
    from ..encoders.projection import Projection, subspace
    from ..training.dev_metrics import dev_metrics
    from ..training.teacher import frozen_vectors
    from .centering_choice import dev_data

    dev = dev_data(data_dir)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    centred: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ref in models:
            model = load_encoder(ref)
            enc = Encoder(model, show_progress=show_progress, cache_dir=Path(tmp) / "embeddings")
            cache = functools.partial(frozen_vectors, Path(tmp) / "dev", enc.fingerprint)
            means = ntrex_means(enc.plain, enc.fingerprint, enc.dim() or 0, enc.path, data_dir=data_dir)
            rows[ref], centred[ref] = {}, {}
            for cand in CANDIDATES:
                spec = parse(cand)
                proj = None if spec is None else Projection(subspace(means, spec[0], spec[1]), enc.fingerprint, spec[1],
                                                            tuple(means.languages), strength=spec[2])  # fmt: skip
                centering = Centering(ON_TOP, data_dir=data_dir)  # means of projected vectors: never cached
                centering.ensure(dev.languages, _projected(enc, proj), enc.fingerprint, enc.dim() or 0, enc.path)
                for table, scoring in ((rows, _Scoring(proj) if proj else None), (centred, _Scoring(proj, centering))):
                    m = dev_metrics(model, dev, cache=cache, centering=scoring)
                    table[ref][cand] = {k: m[k] for k in KEYS}
    return decide(rows) | {"on_top": ON_TOP, "figures_on_top": centred}


def decide(rows: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """The rule on figures already computed: ``rows[model][candidate]`` -> mono / cross / multi mAP."""
    from .centering_choice import dev_rule

    score, allowed, choice = dev_rule(rows, _preference())
    score, allowed = {c: score[c] for c in CANDIDATES}, {c: allowed[c] for c in CANDIDATES}
    chosen = dict(zip(("rank", "recentre", "strength"), parse(choice) or (0, False, 0.0), strict=True))
    return {"rule": "docs/studies.md, 'Choosing the language-neutral projection on dev data'", "models": list(rows),
            "figures": rows, "score": score, "meets_mono_constraint": allowed, "choice": choice,
            "chosen": chosen}  # fmt: skip


def _preference() -> list[str]:
    """Ties go to the smallest change: none, then the smaller rank, the smaller strength, not recentred."""

    def key(cand: str) -> tuple[int, float, bool]:
        spec = parse(cand)
        return (0, 0.0, False) if spec is None else (spec[0], spec[2], spec[1])

    return sorted(CANDIDATES, key=key)


def render(result: dict[str, Any]) -> str:
    """The Markdown table of reports/projection_choice.md."""
    names = [Path(m).name or m for m in result["models"]]
    lines = [f"# Language-neutral projection chosen on dev data\n\nRule: {result['rule']}. Choice: "
             f"**{result['choice']}** (rank {result['chosen']['rank']}, recentred: {result['chosen']['recentre']}, "
             f"strength {result['chosen']['strength']:g}).\n\nCandidates: rRANK, `c` = recentred, `s0.5` = strength "
             f"0.5. Figures: dev mono / cross / multi mAP / rank distance; the last columns score the same candidate "
             f"after {result['on_top']} (recorded, not used for the choice).\n",
             "| candidate | " + " | ".join(f"{n}" for n in names) + " | score | mono within 0.01 | "
             + " | ".join(f"{n} + {result['on_top']}" for n in names) + " |",
             "|---|" + "---|" * (2 * len(names) + 2)]  # fmt: skip

    def cell(fig: dict[str, float]) -> str:
        return " / ".join(f"{fig[k]:.3f}" for k in KEYS[:3]) + f" / {fig['rank_distance']:.1f}"

    for cand in CANDIDATES:
        plain = [cell(result["figures"][m][cand]) for m in result["models"]]
        top = [cell(result["figures_on_top"][m][cand]) for m in result["models"]]
        ok = "yes" if result["meets_mono_constraint"][cand] else "no"
        lines.append(f"| {cand} | " + " | ".join(plain) + f" | {result['score'][cand]:.4f} | {ok} | "
                     + " | ".join(top) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"
