"""``hybridir serve``: one web page that searches one or two indexes side by side and shows their language mix.

A person types a query in any language; each index (e.g. zero-shot e5-small and a hybrid-trained model over the
same corpus) shows its top-k, every hit with its language, and above it a bar of the languages in that top-k, so a
model that prefers the query's own language (language bias) is visible at a glance. The page is one HTML string
with plain JavaScript (no front-end build); it calls the JSON API beneath it:

    GET /api/indexes          the indexes: name, model, fingerprint, passages, languages
    GET /api/search?q=...&k=[&centering=1]
                              {"query", "query_lang", "k", "results": [{"name", "model", "languages", "hits"}]};
                              with centering=1 the hits are scored language-neutrally (``serve --centering``)
                              and each result also has the plain scoring's mix under "before";
                              503 when --queue-size requests wait already, 504 after --timeout-s;
                              scores are float32 values to 9 digits, as in a run file

Example::

    from hybridir.retrieval.serve import create_app
    app = create_app(["runs/idx-e5", "runs/idx-hybrid"])   # then: uvicorn.run(app, port=8000)
"""

from __future__ import annotations

import asyncio
import html
import os
from collections import Counter
from pathlib import Path
from typing import Any

from ..encoders.centering import DEFAULT
from .batching import MAX_BATCH, MAX_WAIT_MS, QUEUE_SIZE, TIMEOUT_S, Batcher, Busy, check
from .search import Hit, Searcher, describe, snippet

MAX_K = 100
#: one request to the batcher: (query, k, centred scoring)
Request = tuple[str, int, bool]


def _mix(hits: list[Hit], query_lang: str) -> dict[str, Any]:
    """The language mix of a top-k (share of each language, most first) and the query language's share."""
    mix = Counter(h.lang for h in hits)
    return {
        "same_language": mix[query_lang] / len(hits) if hits else 0.0,
        "languages": [{"lang": lang, "count": n, "share": n / len(hits)} for lang, n in mix.most_common()],
    }


def _results(pair: tuple[Searcher, Searcher], batch: list[Request], langs: list[str]) -> list[dict[str, Any]]:
    """One index's answer to each request of a batch: its hits and their language mix; centred: the hits of the
    centred scoring, and the plain scoring's mix under ``before``. The batch's queries are encoded in one pass and
    searched together per (k, scoring)."""
    plain, centring = pair
    vectors = plain.encode([q for q, _, _ in batch])
    found: dict[tuple[int, bool], list[list[Hit]]] = {}
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, (_, depth, centred) in enumerate(batch):
        groups.setdefault((depth, centred), []).append(i)
        if centred:
            groups.setdefault((depth, False), []).append(i)
    for (depth, centred), rows in groups.items():
        searcher = centring if centred else plain
        hits = searcher.hits(vectors[rows], depth, [langs[i] for i in rows])
        for i, h in zip(rows, hits, strict=True):
            found[(i, centred)] = h
    out = []
    for i, (_, _, centred) in enumerate(batch):
        hits = found[(i, centred)]
        out.append(
            {
                "name": plain.name,
                "model": plain.index.manifest["model"],
                "centering": str(centring.index.centering.spec) if centred else "none",
                **_mix(hits, langs[i]),
                **({"before": _mix(found[(i, False)], langs[i])} if centred else {}),
                "hits": [
                    {
                        "rank": h.rank,
                        "score": float(f"{h.score:.9g}"),
                        "id": h.id,
                        "lang": h.lang,
                        "title": h.title,
                        "snippet": snippet(h.text, 240),
                    }
                    for h in hits
                ],  # fmt: skip
            }
        )
    return out


def create_app(indexes: list[str | os.PathLike | Searcher], k: int = 10, centering: str | None = None, *,
               max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS, queue_size: int = QUEUE_SIZE,
               timeout_s: float = TIMEOUT_S) -> Any:  # fmt: skip
    """The Starlette app over one or two indexes (folders or ready :class:`Searcher` objects); the page's switch
    scores them with ``centering`` (default: :data:`~hybridir.encoders.centering.DEFAULT`) and shows the language
    bar before and after. Queries are batched (:class:`~hybridir.retrieval.batching.Batcher`: ``max_batch``,
    ``max_wait_ms``, ``queue_size``); a request waits ``timeout_s`` at most (then 504), a full queue is a 503. The
    batcher is ``app.state.batcher``."""
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from .corpus import detect_languages

    check("timeout_s", timeout_s)
    centering = centering or DEFAULT
    loaded = [s if isinstance(s, Searcher) else Searcher(Path(s)) for s in indexes]
    searchers = [(s.scored_as("none"), s.scored_as(centering)) for s in loaded]

    def answer(batch: list[Request]) -> list[dict[str, Any]]:
        langs = detect_languages([q for q, _, _ in batch])
        per_index = [_results(pair, batch, langs) for pair in searchers]
        return [{"query": q, "query_lang": lang, "k": depth, "results": [r[i] for r in per_index]}
                for i, ((q, depth, _), lang) in enumerate(zip(batch, langs, strict=True))]  # fmt: skip

    batcher = Batcher(answer, max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue_size)

    def page(request: HttpRequest) -> HTMLResponse:
        return HTMLResponse(PAGE.replace("__K__", str(k)).replace("__CENTERING__", html.escape(centering)))

    def api_indexes(request: HttpRequest) -> JSONResponse:
        return JSONResponse({"k": k, "centering": centering, "indexes": [describe(s) for s, _ in searchers]})

    async def api_search(request: HttpRequest) -> JSONResponse:  # async: waiting requests hold no thread
        query = request.query_params.get("q", "").strip()
        if not query:
            return JSONResponse({"error": "empty query: pass ?q=..."}, status_code=400)
        try:
            depth = int(request.query_params.get("k", k))
        except ValueError:
            return JSONResponse({"error": "k must be an integer"}, status_code=400)
        if not 1 <= depth <= MAX_K:
            return JSONResponse({"error": f"k must be between 1 and {MAX_K}"}, status_code=400)
        try:
            future = batcher.submit((query, depth, request.query_params.get("centering", "0") == "1"))
        except Busy as e:
            return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": "1"})
        try:
            return JSONResponse(await asyncio.wait_for(asyncio.wrap_future(future), timeout_s))
        except TimeoutError:
            future.cancel()  # dropped from its batch if that has not started
            return JSONResponse({"error": f"no answer within {timeout_s:g} s (--timeout-s): the server is "
                                          "overloaded; retry later"}, status_code=504)  # fmt: skip

    app = Starlette(routes=[Route("/", page), Route("/api/indexes", api_indexes),
                            Route("/api/search", api_search)])  # fmt: skip
    app.state.batcher = batcher
    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hybridir search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1280px;padding:0 1em;color:#222}
form{display:flex;gap:.5em;margin-bottom:1em} #q{flex:1;font-size:1.1em;padding:.4em}
#k{width:4em} button{font-size:1em;padding:.4em 1.2em}
#columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:1.5em}
.index h2{font-size:1.1em;margin:.2em 0} .meta{color:#666;font-size:.85em;margin-bottom:.4em}
.langbar{display:flex;height:1.6em;border-radius:4px;overflow:hidden;margin:.4em 0 .2em}
.seg{color:#fff;font-size:.8em;display:flex;align-items:center;justify-content:center;white-space:nowrap;
overflow:hidden;text-shadow:0 0 2px #0008} .same{font-size:.85em;color:#444}
ol.hits{padding-left:1.6em} ol.hits li{margin:.5em 0} .lang{display:inline-block;min-width:2.2em;text-align:center;
border-radius:3px;color:#fff;font-size:.8em;margin-right:.4em} .score{color:#888;font-size:.8em;margin-left:.4em}
.snippet{color:#444;font-size:.9em;margin:.1em 0 0} #status{color:#a00}
</style></head><body>
<h1>hybridir search</h1>
<form id="search"><input id="q" name="q" placeholder="a query in any language" autofocus>
<input id="k" name="k" type="number" min="1" max="100" value="__K__"><button type="submit">Search</button>
<label title="remove each language's mean vector before scoring"><input id="centering" type="checkbox">
language-neutral (__CENTERING__)</label></form>
<div id="status"></div><div id="columns"></div>
<script>
const PALETTE = ["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#bab0ac"];
const COLORS = new Map();  // one colour per language, the same in every column, distinct for the first ten
function color(lang) {
  if (!COLORS.has(lang)) COLORS.set(lang, PALETTE[COLORS.size % PALETTE.length]);
  return COLORS.get(lang);
}
function el(tag, cls, text) {
  const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text;
  return e;
}
function langbar(mix, n, queryLang, label) {
  const bar = el("div", "langbar"); bar.dataset.when = label;
  for (const l of mix.languages) {
    const seg = el("span", "seg", `${l.lang} ${Math.round(100 * l.share)}%`);
    seg.dataset.lang = l.lang; seg.style.width = `${100 * l.share}%`; seg.style.background = color(l.lang);
    seg.title = `${l.lang}: ${l.count} of ${n}`; bar.append(seg);
  }
  const same = `${label ? label + ": " : ""}query language (${queryLang}): ${Math.round(100 * mix.same_language)}% ` +
               `of the top ${n}`;
  return [bar, el("div", "same", same)];
}
function column(r, queryLang) {
  const s = el("section", "index"); s.dataset.name = r.name;
  s.append(el("h2", "", r.name), el("div", "meta", r.model));
  if (r.before) s.append(...langbar(r.before, r.hits.length, queryLang, "before"));
  s.append(...langbar(r, r.hits.length, queryLang, r.before ? `after (${r.centering})` : ""));
  const ol = el("ol", "hits");
  for (const h of r.hits) {
    const li = el("li"); const lang = el("span", "lang", h.lang); lang.style.background = color(h.lang);
    li.append(lang, el("b", "", h.title || h.id), el("span", "score", h.score.toFixed(4)),
              el("p", "snippet", h.snippet));
    ol.append(li);
  }
  s.append(ol); return s;
}
async function run(q, k) {
  const status = document.getElementById("status"), cols = document.getElementById("columns");
  const c = document.getElementById("centering").checked ? 1 : 0;
  status.textContent = "searching...";
  const resp = await fetch(`api/search?q=${encodeURIComponent(q)}&k=${k}&centering=${c}`);
  const data = await resp.json();
  if (!resp.ok) { status.textContent = data.error; return; }
  status.textContent = ""; cols.replaceChildren(...data.results.map(r => column(r, data.query_lang)));
  history.replaceState(null, "", `?q=${encodeURIComponent(q)}&k=${k}&centering=${c}`);
}
document.getElementById("centering").addEventListener("change", () => {
  const q = document.getElementById("q").value; if (q) run(q, document.getElementById("k").value);
});
document.getElementById("search").addEventListener("submit", e => {
  e.preventDefault(); run(document.getElementById("q").value, document.getElementById("k").value);
});
const params = new URLSearchParams(location.search);
if (params.get("q")) {
  document.getElementById("q").value = params.get("q");
  if (params.get("k")) document.getElementById("k").value = params.get("k");
  document.getElementById("centering").checked = params.get("centering") === "1";
  run(params.get("q"), document.getElementById("k").value);
}
</script></body></html>
"""
