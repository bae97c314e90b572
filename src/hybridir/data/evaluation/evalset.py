"""``EvalSet``: queries, candidates and judgements of one retrieval benchmark, in one flat, language-tagged table.

Every setting of the LAReQA protocol (monolingual X->X, cross-lingual X->Y, multilingual X->all) is a *filter*
over candidate languages of the same table, so each text is encoded once and every setting reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...infra.errors import DataError


@dataclass
class EvalSet:
    """Queries and candidates with their languages, plus relevant candidate indices per query.

    Example::

        es = load_lareqa("../shared/data/xquad-r", languages=["en", "de"])
        pool = es.pool(["de"])                  # candidate indices of the German pool
        rel = es.relevant(0, pool_langs=["de"])  # German answer sentence(s) of query 0
    """

    name: str
    query_ids: list[str]
    query_texts: list[str]
    query_langs: list[str]
    query_groups: list[str]  # the question id shared by all language versions of a question
    cand_ids: list[str]
    cand_texts: list[str]
    cand_langs: list[str]
    qrels: list[np.ndarray]  # per query: sorted int indices into the candidate lists
    cand_contexts: list[str] | None = None  # the paragraph of each candidate sentence (LAReQA)
    qrel_grades: list[np.ndarray] | None = None  # graded relevance parallel to ``qrels`` (BEIR); 1 when None
    source: dict[str, str] = field(default_factory=dict)  # language or set -> file it came from
    languages_from: str = "the data set"  # where the language labels came from (a BEIR set may detect them)

    def __post_init__(self) -> None:
        nq, nc = len(self.query_ids), len(self.cand_ids)
        if not nc:
            raise DataError(f"{self.name}: the candidate pool is empty")
        if not nq:
            raise DataError(f"{self.name}: there are no queries")
        lens = {len(self.query_texts), len(self.query_langs), len(self.query_groups), len(self.qrels)}
        if lens != {nq} or {len(self.cand_texts), len(self.cand_langs)} != {nc}:
            raise DataError(f"{self.name}: query or candidate fields have different lengths")
        if len(set(self.cand_ids)) != nc:
            raise DataError(f"{self.name}: candidate ids are not unique")
        self._q_lang = np.asarray(self.query_langs)
        self._c_lang = np.asarray(self.cand_langs)

    @property
    def languages(self) -> list[str]:
        """Languages that have queries or candidates, sorted."""
        return sorted(set(self.query_langs) | set(self.cand_langs))

    def queries_of(self, lang: str) -> np.ndarray:
        """Indices of the queries in ``lang``, in data order (the order saved in per_query.npz)."""
        return np.flatnonzero(self._q_lang == lang)

    def pool(self, langs: list[str] | None = None) -> np.ndarray:
        """Candidate indices whose language is in ``langs`` (all candidates when None)."""
        if langs is None:
            return np.arange(len(self.cand_ids))
        return np.flatnonzero(np.isin(self._c_lang, list(langs)))

    def relevant(self, qi: int, pool_langs: list[str] | None = None) -> np.ndarray:
        """Relevant candidate indices of query ``qi`` that lie in the pool of ``pool_langs``."""
        rel = self.qrels[qi]
        if pool_langs is None:
            return rel
        return rel[np.isin(self._c_lang[rel], list(pool_langs))]

    def qrels_dict(self, pool_langs: list[str] | None = None) -> dict[str, dict[str, int]]:
        """trec-style ``{query_id: {cand_id: 1}}`` for pytrec_eval / ranx (queries without a relevant are left out)."""
        out = {}
        for qi, qid in enumerate(self.query_ids):
            rel = self.relevant(qi, pool_langs)
            if len(rel):
                grades = self.qrel_grades[qi].tolist() if self.qrel_grades else [1] * len(self.qrels[qi])
                grade = dict(zip(self.qrels[qi].tolist(), grades, strict=True))
                out[qid] = {self.cand_ids[c]: int(grade[c]) for c in rel.tolist()}
        return out
