"""FLORES-200 bitext retrieval in every language: X <-> English, a multilingual pool, language groups, topic domains.

On one split (test: 204 sentences, row *i* the same sentence in every language), for every language X other than
English: X -> English and English -> X sentence retrieval, the pool being the target language's sentences.
accuracy@1 (the translation ranked first) and MRR@10 per direction come from the exact rank of the one relevant
sentence (:func:`~hybridir.evaluation.metrics.rank_relevant`, trec_eval's tie rule).

Prompts: the query side gets the model's ``query`` prompt and the pool side its ``passage`` prompt, as in
training on FLORES pairs (:func:`~hybridir.data.training.parallel.load_flores_pairs`: sentence in X as the query,
the same sentence in Y as the passage) and in the FLORES dev metrics of training. e5's advice for symmetric tasks
(``query:`` on both sides) would score a pairing that fine-tuning never optimises. Each (sentence, prompt) is
encoded once and reused by both directions and the pool.

Groups: *seen* languages are those the model was trained on by hybridir (its run's ``train_summary.json`` or
checkpoint ``state.json``, or ``seen_languages``); for any other model every language counts as unseen by
hybridir training (its pre-training languages are not known here). Resource level: NLLB-200's high / low
(:func:`~hybridir.data.flores.resource_levels`).

Domains: FLORES topics. With in-domain topics (the model's ``train_topics`` or ``in_domain_topics``), MRR@10 of
the queries on those topics vs the others and the gap (in - out), over every evaluated language and direction.

Multilingual pool (LAReQA-style): every sentence of a language set queries all sentences of the set except
itself; relevant = its translations; mAP and rank distance as for XQuAD-R (docs/metrics.md).

The task (split, groups, topics) is loaded by the ``flores`` benchmark (:mod:`hybridir.evaluation.benchmarks.flores`).

Example::

    task = load_flores_task("runs/hybrid/final", languages=["yo", "sw", "de"])
    body, per_query = evaluate_flores(Encoder(load_encoder("runs/hybrid/final")), task)
    body["summary"]["acc@1"], body["bitext"]["yor_Latn"]["x_en"]["mrr@10"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.evaluation.evalset import EvalSet
from ...data.flores import FloresSplit, resource_levels
from ...infra.files import atomic_savefig
from ...retrieval.exact import tie_key
from ..metrics import rank_metrics, rank_relevant
from . import fmt, md_table
from .lareqa import evaluate_lareqa

PIVOT = "eng_Latn"
#: the pool's summary figures (LAReQA names; the mono setting is empty in a bitext pool)
_POOL_KEYS = ("multi_map", "multi_ndcg@10", "multi_recall@10", "cross_map", "rank_distance",
              "top10_query_lang_share", "top10_unbiased_share")  # fmt: skip
DIRECTIONS = ("x_en", "en_x")


@dataclass
class FloresTask:
    """What one FLORES evaluation runs on: the split, the groups and where they came from."""

    split: FloresSplit
    languages: list[str]  # FLORES codes queried against English (English itself excluded)
    pool: list[str]  # FLORES codes of the multilingual pool
    seen: set[str]
    seen_from: str
    in_domain: list[str] | None  # FLORES topics; None: no domain split
    topics_from: str | None
    max_queries: int | None = None  # fewer query rows, spread evenly: the files group their rows by topic

    def query_rows(self) -> np.ndarray:
        """Indices of the query rows (all, or ``max_queries`` of them spread evenly over every topic)."""
        n = len(self.split.index_ids)
        return np.unique(np.linspace(0, n - 1, min(self.max_queries or n, n)).round().astype(int))


class _Memo:
    """Embeddings kept per (prompt, text), so both directions and the pool reuse one encoding of each."""

    def __init__(self, enc: Any) -> None:
        self.enc = enc
        self.vecs: dict[tuple[str, str, str], np.ndarray] = {}

    def __call__(self, texts: list[str], prompt: str, langs: list[str] | str) -> np.ndarray:
        """Vectors of ``texts`` (in ``langs``: one code for all, or one per text), each encoded once."""
        langs = [langs] * len(texts) if isinstance(langs, str) else langs
        keys = list(zip(langs, texts, strict=True))
        if missing := [k for k in dict.fromkeys(keys) if (prompt, *k) not in self.vecs]:
            vecs = self.enc([t for _, t in missing], prompt, [x for x, _ in missing])
            self.vecs |= {(prompt, *k): v for k, v in zip(missing, vecs, strict=True)}
        return np.stack([self.vecs[(prompt, *k)] for k in keys])


def _direction(q: np.ndarray, c: np.ndarray, rows: np.ndarray, keys: np.ndarray) -> dict[str, np.ndarray]:
    """Per query (the sentence of row ``rows[k]``; relevant: pool row ``rows[k]``): acc@1 and MRR@10."""
    res = rank_relevant(torch.from_numpy(q), torch.from_numpy(c), [np.array([r]) for r in rows], tie_keys=keys)
    m = rank_metrics(res.ranks(), np.ones(len(q), dtype=int))
    return {"acc@1": m["recall@1"], "mrr@10": m["mrr@10"]}


def _pool(split: FloresSplit, codes: list[str], rows: np.ndarray) -> tuple[EvalSet, np.ndarray]:
    """The multilingual pool as an EvalSet (queries: ``rows`` in every language; relevant: the same row in the
    other languages) and, per query, its own sentence's candidate index (left out of its pool)."""
    n = len(split.index_ids)
    own = np.array([k * n + r for k in range(len(codes)) for r in rows])
    cand_ids = [f"{c}:{i}" for c in codes for i in split.index_ids]
    texts = [t for c in codes for t in split.texts[c]]
    es = EvalSet(
        name="flores-pool", query_ids=[cand_ids[i] for i in own], query_texts=[texts[i] for i in own],
        query_langs=[codes[i // n] for i in own], query_groups=[split.index_ids[i % n] for i in own],
        cand_ids=cand_ids, cand_texts=texts, cand_langs=[c for c in codes for _ in range(n)],
        qrels=[np.array([k * n + i % n for k in range(len(codes)) if k != i // n]) for i in own],
    )  # fmt: skip
    return es, own


def _mean(values: list[np.ndarray]) -> float | None:
    arr = np.concatenate(values) if values else np.array([])
    return float(arr.mean()) if arr.size else None


def _means(per_lang: dict[str, dict[str, np.ndarray]], langs: list[str], mask: np.ndarray | None = None) -> dict:
    """Both directions' acc@1 / MRR@10 over ``langs`` (and the query rows in ``mask``), per direction and pooled."""
    out: dict[str, Any] = {"languages": len(langs)}
    for metric in ("acc@1", "mrr@10"):
        parts = {d: [per_lang[f"{d}/{x}"][metric][mask if mask is not None else slice(None)] for x in langs]
                 for d in DIRECTIONS}  # fmt: skip
        out |= {f"{d}_{metric}": _mean(v) for d, v in parts.items()}
        out[metric] = _mean(parts["x_en"] + parts["en_x"])
    return out


def evaluate_flores(enc: Any, task: FloresTask, *, show_progress: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """Bitext retrieval, groups, topic domains and the multilingual pool of ``task`` (module docstring)."""
    split = task.split
    rows = task.query_rows()
    memo = _Memo(enc)
    everyone = sorted(set(task.languages) | set(task.pool) | {PIVOT})
    memo([split.texts[c][r] for c in everyone for r in rows], "query", [c for c in everyone for _ in rows])
    memo([t for c in everyone for t in split.texts[c]], "passage", [c for c in everyone for _ in split.texts[c]])
    t0 = time.perf_counter()  # everything is encoded: the rest is scoring
    keys = tie_key(split.index_ids)
    en_q, en_p = memo([split.texts[PIVOT][r] for r in rows], "query", PIVOT), memo(split.texts[PIVOT], "passage", PIVOT)
    per_lang = {}
    for x in task.languages:
        per_lang[f"x_en/{x}"] = _direction(memo([split.texts[x][r] for r in rows], "query", x), en_p, rows, keys)
        per_lang[f"en_x/{x}"] = _direction(en_q, memo(split.texts[x], "passage", x), rows, keys)
    levels = resource_levels()
    bitext = {x: {"iso": x.split("_")[0], "script": x.split("_")[1], "seen": x in task.seen,
                  "resource": levels.get(x, "n/a"),
                  **{d: {m: float(v.mean()) for m, v in per_lang[f"{d}/{x}"].items()} for d in DIRECTIONS}}
              for x in task.languages}  # fmt: skip
    for row in bitext.values():
        row["score"] = (row["x_en"]["acc@1"] + row["en_x"]["acc@1"]) / 2

    groups = {
        "seen": [x for x in task.languages if x in task.seen],
        "unseen": [x for x in task.languages if x not in task.seen],
        **{lv: [x for x in task.languages if bitext[x]["resource"] == lv] for lv in ("high", "low", "n/a")},
    }
    group_means = {g: _means(per_lang, langs) for g, langs in groups.items() if langs}
    overall = _means(per_lang, task.languages)
    summary: dict[str, float | None] = {k: v for k, v in overall.items() if k != "languages"}
    summary |= {f"{g}_{m}": t[m] for g, t in group_means.items() if g != "n/a" for m in ("acc@1", "mrr@10")}

    topic_of = np.asarray(split.topics)[rows]
    topics = {}
    for t in dict.fromkeys(topic_of.tolist()):
        m = _means(per_lang, task.languages, topic_of == t)
        topics[t] = {"sentences": int((topic_of == t).sum()), "in_domain": t in task.in_domain if task.in_domain
                     else None, "acc@1": m["acc@1"], "mrr@10": m["mrr@10"]}  # fmt: skip
    if task.in_domain:
        inside = np.isin(topic_of, task.in_domain)
        mrr_in, mrr_out = (_means(per_lang, task.languages, mask)["mrr@10"] for mask in (inside, ~inside))
        summary |= {
            "mrr@10_in_domain": mrr_in,
            "mrr@10_out_domain": mrr_out,
            "domain_gap": None if mrr_in is None or mrr_out is None else mrr_in - mrr_out,
        }

    es, own = _pool(split, task.pool, rows)
    pool_res, pool_q = evaluate_lareqa(memo, es, show_progress=show_progress, exclude=own)
    summary |= {k: pool_res["summary"][k] for k in _POOL_KEYS}
    # the harness's layout (<setting>/<unit>, ids under qids/<unit>): reciprocal ranks per direction and language
    # under bitext/<x_en|en_x>:<code>, the pool's per-query figures under pool_<cross|multi|rank_distance>/<code>
    ids = np.asarray(split.index_ids)[rows]
    per_query = {}
    for key, v in per_lang.items():
        per_query |= {f"bitext/{key.replace('/', ':')}": v["mrr@10"], f"qids/{key.replace('/', ':')}": ids}
    per_query |= {k if k.startswith("qids/") else f"pool_{k}": v
                  for k, v in pool_q.items() if not k.startswith("mono/")}  # fmt: skip
    body = {
        "summary": summary,
        "data": {"split": split.split, "sentences": len(split.index_ids), "queries_per_language": len(rows),
                 "pivot": PIVOT, "languages": len(task.languages),
                 "prompts": {"query side": "query", "pool side": "passage"},
                 "seen_languages": sorted(task.seen), "seen_from": task.seen_from,
                 "in_domain_topics": task.in_domain, "topics_from": task.topics_from,
                 "resource_levels": "NLLB-200 (NLLB Team 2022, Table 1): src/hybridir/data/resource_levels.tsv"},
        "bitext": bitext,
        "groups": {g: {"members": groups[g], **t} for g, t in group_means.items()},
        "topics": topics,
        "pool": {"languages": task.pool, "summary": {k: pool_res["summary"][k] for k in _POOL_KEYS},
                 "multi": pool_res["multi"], "cross": pool_res["cross"], "bias": pool_res["bias"]},
        "scoring_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return body, per_query


_GROUPS = (
    ("seen", "seen in hybridir training"),
    ("unseen", "unseen in hybridir training"),
    ("high", "high-resource (NLLB-200)"),
    ("low", "low-resource (NLLB-200)"),
    ("n/a", "not in NLLB-200"),
)
_BITEXT_COLS = (("x_en", "acc@1"), ("en_x", "acc@1"), ("x_en", "mrr@10"), ("en_x", "mrr@10"))
_BITEXT_HEAD = ["X->en acc@1", "en->X acc@1", "X->en MRR@10", "en->X MRR@10"]


def markdown(res: dict) -> list[str]:
    """results.md's body: groups, topics, the multilingual pool, then every language by score."""
    s, d, groups = res["summary"], res["data"], res["groups"]
    lines = [f"## FLORES-200 bitext retrieval: {d['languages']} languages <-> English, {d['split']} split", "",
             f"{d['queries_per_language']} queries per language and direction against the {d['sentences']} "
             f"sentences of the target language; query side prompt `{d['prompts']['query side']}`, pool side "
             f"`{d['prompts']['pool side']}`. Seen languages: {d['seen_from']}. Resource levels: "
             f"{d['resource_levels']}.", ""]  # fmt: skip
    rows = [["all", str(d["languages"]), *(fmt(s.get(f"{x}_{m}")) for x, m in _BITEXT_COLS)]]
    rows += [[label, str(groups[g]["languages"]), *(fmt(groups[g][f"{x}_{m}"]) for x, m in _BITEXT_COLS)]
             for g, label in _GROUPS if g in groups]  # fmt: skip
    lines += md_table(["languages", "n", *_BITEXT_HEAD], rows)
    lines += ["", "## Topics (FLORES categories as domains; MRR@10 over languages and both directions)", ""]
    if d["in_domain_topics"]:
        lines += [f"In-domain topics ({d['topics_from']}): {', '.join(d['in_domain_topics'])}. MRR@10 in-domain "
                  f"**{fmt(s.get('mrr@10_in_domain'))}**, out-of-domain **{fmt(s.get('mrr@10_out_domain'))}**, "
                  f"gap **{fmt(s.get('domain_gap'))}**.", ""]  # fmt: skip
    lines += md_table(["topic", "sentences", "in-domain", "acc@1", "MRR@10"],
                      [[t, str(v["sentences"]), {True: "yes", False: "no"}.get(v["in_domain"], "-"),
                        fmt(v["acc@1"]), fmt(v["mrr@10"])] for t, v in res["topics"].items()])  # fmt: skip
    pool, ps = res["pool"], res["pool"]["summary"]
    lines += ["", f"## Multilingual pool ({len(pool['languages'])} languages: {', '.join(pool['languages'])})", "",
              f"Every sentence against all sentences of these languages but itself, relevant = its translations: "
              f"mAP **{fmt(ps['multi_map'])}**, cross-lingual X->Y mAP **{fmt(ps['cross_map'])}**, mean rank "
              f"distance **{fmt(ps['rank_distance'], 2)}**, query-language share of the top 10 "
              f"**{fmt(ps['top10_query_lang_share'])}** against **{fmt(ps['top10_unbiased_share'])}** for a "
              "language-blind ranking.", ""]  # fmt: skip
    lines += md_table(["lang", "multi mAP", "rank distance", "top-10 own-language share"],
                      [[x, fmt(pool["multi"][x]["map"]), fmt(pool["bias"][x]["rank_distance"], 2),
                        fmt(pool["bias"][x]["top10_query_lang_share"])] for x in pool["multi"]])  # fmt: skip
    bitext = res["bitext"]
    lines += ["", "## Per language (sorted by accuracy@1, mean of both directions)", ""]
    lines += md_table(["code", "seen", "resource", *_BITEXT_HEAD],
                      [[x, "yes" if r["seen"] else "no", r["resource"],
                        *(fmt(r[x][m]) for x, m in _BITEXT_COLS)]
                        for x, r in sorted(bitext.items(), key=lambda kv: -kv[1]["score"])])  # fmt: skip
    return lines


def plots(out_dir: Path, res: dict, plt: Any) -> list[Path]:
    """Every language's accuracy@1 (mean of both directions), sorted; colour = seen / unseen, hatch = low-resource."""
    bitext = res["bitext"]
    langs = sorted(bitext, key=lambda x: -bitext[x]["score"])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.09 * len(langs) + 2), 4.5))
    for seen, colour in ((False, "tab:blue"), (True, "tab:orange")):
        for low in (False, True):
            idx = [i for i, x in enumerate(langs) if bitext[x]["seen"] == seen and (bitext[x]["resource"] == "low")
                   == low]  # fmt: skip
            if not idx:  # an empty group would still get a legend entry, in the default colour
                continue
            label = f"{'seen' if seen else 'unseen'} in training{', low-resource' if low else ''}"
            ax.bar(idx, [bitext[langs[i]]["score"] for i in idx], width=0.85, color=colour, label=label,
                   hatch="////" if low else None, edgecolor="white", linewidth=0)  # fmt: skip
    ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=4 if len(langs) > 60 else 7)
    ax.set_xlim(-1, len(langs))
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy@1 (mean of X->en, en->X)")
    ax.set_title(f"FLORES-200 bitext retrieval, {res['model']['name']}: {len(langs)} languages sorted by score")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path = atomic_savefig(fig, out_dir / "flores_languages.png", dpi=150)
    plt.close(fig)
    return [path]
