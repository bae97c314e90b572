"""Run directory of an evaluation: results.json, results.md (paper tables), per_query.npz and PNG plots.

Every file goes through ``hybridir.infra.files`` (atomic). ``render_markdown`` works from results.json alone, so a
report can be re-rendered later: ``render_markdown(json.load(open("run/results.json")))``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..infra.files import atomic_savefig, atomic_write_bytes, atomic_write_json, atomic_write_text

_COLS = (("map", "mAP"), ("map@20", "mAP@20"), ("ndcg@10", "nDCG@10"), ("mrr@10", "MRR@10"), ("recall@1", "R@1"),
         ("recall@10", "R@10"), ("recall@100", "R@100"))  # fmt: skip


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _lareqa_md(res: dict) -> list[str]:
    s = res["summary"]
    lines = ["## Summary (mean over query languages; cross-lingual: over ordered pairs)", ""]
    lines += _md_table(["setting", *(c for _, c in _COLS)],
                       [[name, *(_f(s.get(f"{key}_{m}")) for m, _ in _COLS)]
                        for key, name in (("mono", "monolingual X->X"), ("cross", "cross-lingual X->Y"),
                                          ("multi", "multilingual X->all"))])  # fmt: skip
    lines += ["", f"Language bias (multilingual pool): mean rank distance **{_f(s.get('rank_distance'), 2)}** "
              f"(lower is better); query-language share of the top 10 **{_f(s.get('top10_query_lang_share'))}** "
              f"against **{_f(s.get('top10_unbiased_share'))}** for a language-blind ranking.", ""]  # fmt: skip
    langs = list(res["multi"])
    cands = res["data"]["candidates"]
    rows = []
    for x in langs:
        cross = [t["map"] for t in res["cross"].get(x, {}).values() if t["map"] is not None]
        b = res["bias"][x]
        mono = res["mono"].get(x, {}).get("map")
        rows.append([x, str(res["data"]["queries"][x]), str(cands.get(x, "-")), _f(mono),
                     _f(float(np.mean(cross)) if cross else None), _f(res["multi"][x]["map"]),
                     _f(b["rank_distance"], 2), _f(b["top10_query_lang_share"]),
                     _f(b["top10_unbiased_share"])])  # fmt: skip
    lines += ["## Per query language (mAP)", ""]
    lines += _md_table(["lang", "queries", "candidates", "mono", "cross (mean over targets)", "multi",
                        "rank distance", "top-10 own-language share", "unbiased share"], rows)  # fmt: skip
    pool = res["data"]["languages"]
    lines += ["", "## X->Y mAP (rows: question language, columns: candidate pool; diagonal: monolingual)", ""]
    matrix = _map_matrix(res)
    rows = [[x, *(_f(v) for v in row)] for x, row in zip(langs, matrix.tolist(), strict=True)]
    lines += _md_table(["X \\ Y", *pool], rows)
    return lines


def _map_matrix(res: dict) -> np.ndarray:
    langs, pool = list(res["multi"]), res["data"]["languages"]
    out = np.full((len(langs), len(pool)), np.nan)
    for i, x in enumerate(langs):
        for j, y in enumerate(pool):
            cell = res["mono"].get(x) if x == y else res["cross"].get(x, {}).get(y)
            if cell and cell["map"] is not None:
                out[i, j] = cell["map"]
    return out


def _retrieval_md(res: dict) -> list[str]:
    rows = [[f"{name} ({run})" if run else name, t["language"] or "-", str(t["queries"]), str(t["corpus"]),
             _f(m["ndcg@10"]), _f(m["recall@100"]), _f(m["mrr@10"])]
            for name, t in res["sets"].items() for run, m in (t.get("runs") or {"": t}).items()]  # fmt: skip
    s = res["summary"]
    rows.append(["**mean**", "", "", "", _f(s["ndcg@10"]), _f(s["recall@100"]), _f(s["mrr@10"])])
    return ["## Question-to-passage retrieval (top-100 runs, pytrec_eval)", "",
            *_md_table(["set", "lang", "queries", "corpus", "nDCG@10", "Recall@100", "MRR@10"], rows)]  # fmt: skip


_GROUPS = (("seen", "seen in hybridir training"), ("unseen", "unseen in hybridir training"),
           ("high", "high-resource (NLLB-200)"), ("low", "low-resource (NLLB-200)"), ("n/a", "not in NLLB-200"))
_BITEXT_COLS = (("x_en", "acc@1"), ("en_x", "acc@1"), ("x_en", "mrr@10"), ("en_x", "mrr@10"))
_BITEXT_HEAD = ["X->en acc@1", "en->X acc@1", "X->en MRR@10", "en->X MRR@10"]


def _flores_md(res: dict) -> list[str]:
    """FLORES-200 (:mod:`hybridir.bitext`): groups, topics, the multilingual pool, then every language by score."""
    s, d, groups = res["summary"], res["data"], res["groups"]
    lines = [f"## FLORES-200 bitext retrieval: {d['languages']} languages <-> English, {d['split']} split", "",
             f"{d['queries_per_language']} queries per language and direction against the {d['sentences']} "
             f"sentences of the target language; query side prompt `{d['prompts']['query side']}`, pool side "
             f"`{d['prompts']['pool side']}`. Seen languages: {d['seen_from']}. Resource levels: "
             f"{d['resource_levels']}.", ""]  # fmt: skip
    rows = [["all", str(d["languages"]), *(_f(s.get(f"{x}_{m}")) for x, m in _BITEXT_COLS)]]
    rows += [[label, str(groups[g]["languages"]), *(_f(groups[g][f"{x}_{m}"]) for x, m in _BITEXT_COLS)]
             for g, label in _GROUPS if g in groups]  # fmt: skip
    lines += _md_table(["languages", "n", *_BITEXT_HEAD], rows)
    lines += ["", "## Topics (FLORES categories as domains; MRR@10 over languages and both directions)", ""]
    if d["in_domain_topics"]:
        lines += [f"In-domain topics ({d['topics_from']}): {', '.join(d['in_domain_topics'])}. MRR@10 in-domain "
                  f"**{_f(s.get('mrr@10_in_domain'))}**, out-of-domain **{_f(s.get('mrr@10_out_domain'))}**, "
                  f"gap **{_f(s.get('domain_gap'))}**.", ""]  # fmt: skip
    lines += _md_table(["topic", "sentences", "in-domain", "acc@1", "MRR@10"],
                       [[t, str(v["sentences"]), {True: "yes", False: "no"}.get(v["in_domain"], "-"),
                         _f(v["acc@1"]), _f(v["mrr@10"])] for t, v in res["topics"].items()])  # fmt: skip
    pool, ps = res["pool"], res["pool"]["summary"]
    lines += ["", f"## Multilingual pool ({len(pool['languages'])} languages: {', '.join(pool['languages'])})", "",
              f"Every sentence against all sentences of these languages but itself, relevant = its translations: "
              f"mAP **{_f(ps['multi_map'])}**, cross-lingual X->Y mAP **{_f(ps['cross_map'])}**, mean rank "
              f"distance **{_f(ps['rank_distance'], 2)}**, query-language share of the top 10 "
              f"**{_f(ps['top10_query_lang_share'])}** against **{_f(ps['top10_unbiased_share'])}** for a "
              "language-blind ranking.", ""]  # fmt: skip
    lines += _md_table(["lang", "multi mAP", "rank distance", "top-10 own-language share"],
                       [[x, _f(pool["multi"][x]["map"]), _f(pool["bias"][x]["rank_distance"], 2),
                         _f(pool["bias"][x]["top10_query_lang_share"])] for x in pool["multi"]])  # fmt: skip
    bitext = res["bitext"]
    lines += ["", "## Per language (sorted by accuracy@1, mean of both directions)", ""]
    lines += _md_table(["code", "seen", "resource", *_BITEXT_HEAD],
                       [[x, "yes" if r["seen"] else "no", r["resource"],
                         *(_f(r[x][m]) for x, m in _BITEXT_COLS)]
                        for x, r in sorted(bitext.items(), key=lambda kv: -kv[1]["score"])])  # fmt: skip
    return lines


def _flores_plot(out_dir: Path, res: dict, plt: Any) -> Path:
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
    return path


def render_markdown(res: dict) -> str:
    """The tables a paper would print, plus what produced them."""
    t = res["timing"]
    head = [f"# {res['model']['name']} on {res['dataset']}", "",
            f"model fingerprint `{res['model']['fingerprint']}`, git commit `{res.get('git_commit')}`, "
            + ", ".join(f"{k} {v}" for k, v in res["versions"].items()), "",
            f"encoding {t['encode_seconds']:.1f} s for {t['texts_encoded']} texts "
            f"({t['texts_from_cache']} from cache), scoring {t['scoring_seconds']:.1f} s, "
            f"total {t['total_seconds']:.1f} s", ""]  # fmt: skip
    body = _flores_md(res) if "bitext" in res else _lareqa_md(res) if "multi" in res else _retrieval_md(res)
    return "\n".join(head + body) + "\n"


def _plots(out_dir: Path, res: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "bitext" in res:
        return [_flores_plot(out_dir, res, plt)]
    written = []
    if "multi" not in res:
        fig, ax = plt.subplots(figsize=(1.2 * len(res["sets"]) + 2, 3.5))
        names = list(res["sets"])
        ax.bar(names, [res["sets"][n]["ndcg@10"] or 0 for n in names], color="tab:blue")
        ax.set_ylabel("nDCG@10")
        ax.set_ylim(0, 1)
        ax.set_title(res["model"]["name"])
        fig.tight_layout()
        written.append(atomic_savefig(fig, out_dir / "ndcg.png", dpi=120))
        plt.close(fig)
        return written

    langs, pool = list(res["multi"]), res["data"]["languages"]
    matrix = _map_matrix(res)
    fig, ax = plt.subplots(figsize=(0.55 * len(pool) + 2.5, 0.5 * len(langs) + 2))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(pool)), pool)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("candidate language (Y)")
    ax.set_ylabel("question language (X)")
    for i in range(len(langs)):
        for j in range(len(pool)):
            if not np.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.5 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, label="mAP")
    ax.set_title(f"X->Y mAP, {res['model']['name']}")
    fig.tight_layout()
    written.append(atomic_savefig(fig, out_dir / "map_heatmap.png", dpi=120))
    plt.close(fig)

    bias = res["bias"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(8, 0.8 * len(langs) + 4), 3.5))
    x = np.arange(len(langs))
    a1.bar(x - 0.2, [bias[lang]["top10_query_lang_share"] or 0 for lang in langs], 0.4, label="observed")
    a1.bar(x + 0.2, [bias[lang]["top10_unbiased_share"] or 0 for lang in langs], 0.4, label="language-blind")
    a1.set_xticks(x, langs)
    a1.set_ylabel("query-language share of top 10")
    a1.set_ylim(0, 1.2)
    a1.legend(loc="upper center", ncol=2, fontsize=8)
    a2.bar(x, [bias[lang]["rank_distance"] or 0 for lang in langs], color="tab:red")
    a2.set_xticks(x, langs)
    a2.set_ylabel("mean rank distance (lower is better)")
    fig.suptitle(f"Language bias in the multilingual pool, {res['model']['name']}")
    fig.tight_layout()
    written.append(atomic_savefig(fig, out_dir / "bias.png", dpi=120))
    plt.close(fig)
    return written


def write_run(out_dir: Path, results: dict, per_query: dict[str, np.ndarray], *, plots: bool = True) -> list[Path]:
    """Write results.json, results.md, per_query.npz and (optionally) the PNGs; return the written paths."""
    out_dir = Path(out_dir)
    buf = io.BytesIO()
    np.savez(buf, **per_query)
    written = [atomic_write_json(out_dir / "results.json", results),
               atomic_write_text(out_dir / "results.md", render_markdown(results)),
               atomic_write_bytes(out_dir / "per_query.npz", buf.getvalue())]  # fmt: skip
    if plots:
        written += _plots(out_dir, results)
    return written
