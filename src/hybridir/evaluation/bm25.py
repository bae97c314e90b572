"""BM25, the lexical baseline every MIRACL table starts with, through ``bm25s`` (sparse-matrix BM25 in numpy).

Scoring: Lucene's BM25 variant with k1 = 0.9 and b = 0.4, Anserini's defaults, which MIRACL's own BM25 baseline
(Anserini / Lucene) used. Tokenisation is ours, and differs from Anserini's per-language Lucene analyzers, so
figures differ from the published ones (docs/metrics.md compares them):

- lower-case, Unicode NFKD, Latin-script diacritics (combining marks U+0300-U+036F: tone marks, under-dots,
  accents) dropped, NFC again. Yoruba queries often omit the tone marks and under-dots that the Wikipedia
  passages carry ("Odun" for "Ọdún"); folding lets them match, as Lucene's ASCII folding filter would;
- a token is a run of letters and digits with their combining marks (so Devanagari or Bengali vowel signs stay
  inside their word), except that Han, kana, Thai, Lao, Khmer and Myanmar characters, scripts written without
  spaces, are one token each;
- no stemming, no stopword list (none is language-neutral).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import numpy as np
import regex

#: what results.json records under config.encoder for a BM25 run
DESCRIPTION = {
    "path": "bm25s",
    "k1": 0.9,
    "b": 0.4,
    "method": "lucene",
    "tokens": "lower-case, Latin diacritics folded, letter/digit runs, CJK/Thai characters one each",
}
_LATIN_MARKS = regex.compile(r"[\u0300-\u036f]")
_NO_SPACES = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"  # one token per character
_WORD_START, _WORD_REST = rf"[[\p{{L}}\p{{N}}]--[{_NO_SPACES}]]", rf"[[\p{{L}}\p{{M}}\p{{N}}]--[{_NO_SPACES}]]"
_TOKEN = regex.compile(rf"(?V1)[{_NO_SPACES}]|{_WORD_START}{_WORD_REST}*")


def tokenize(text: str) -> list[str]:
    """The tokens BM25 indexes and searches (see the module docstring)."""
    folded = unicodedata.normalize("NFC", _LATIN_MARKS.sub("", unicodedata.normalize("NFKD", text.lower())))
    return _TOKEN.findall(folded)


def bm25_search(queries: list[str], texts: list[str], k: int,
                tokenizer: Callable[[str], list[str]] = tokenize) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Top-``k`` (scores, indices) of ``texts`` for every query, best first, like the dense ``search``.
    ``tokenizer``: another tokenisation, e.g. ``str.split`` to mimic Anserini's ``--pretokenized`` Yoruba index."""
    import bm25s

    index = bm25s.BM25(k1=DESCRIPTION["k1"], b=DESCRIPTION["b"], method=DESCRIPTION["method"])
    index.index([tokenizer(t) for t in texts], show_progress=False)
    # bm25s cannot score an empty token list: a query without tokens asks for one no passage has (all scores 0)
    tokens = [tokenizer(q) or ["\0"] for q in queries]
    idx, scores = index.retrieve(tokens, k=min(k, len(texts)), show_progress=False)
    return scores, idx
