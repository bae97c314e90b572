"""Reading a corpus for an index: JSONL, BEIR ``corpus.jsonl``, MIRACL ``docs-*.jsonl.gz`` or TSV, every line
checked (one-line errors naming file and line), and the languages of rows that do not give one (lingua, optionally
choosing among the corpus's known languages). :mod:`hybridir.retrieval.index` builds on it."""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..data import json_object
from ..data.languages import check_language
from ..infra.errors import ConfigError, DataError

_ID_FIELDS = ("id", "_id", "docid")
_MIRACL_DIR = re.compile(r"miracl-corpus-v[\d.]+-(\w+)$")


@dataclass(frozen=True)
class Passage:
    """One corpus row as stored in ``docs.jsonl``."""

    id: str
    title: str
    text: str
    lang: str | None


# ----------------------------------------------------------------------------------------------- reading
def corpus_files(corpus: str | os.PathLike) -> list[Path]:
    """The file(s) of a corpus: a file, a BEIR folder (``corpus.jsonl[.gz]``) or a MIRACL folder (``docs-*``)."""
    path = Path(corpus).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        for found in ([p for p in (path / "corpus.jsonl", path / "corpus.jsonl.gz") if p.is_file()][:1],
                      sorted(path.glob("docs-*.jsonl.gz"))):  # fmt: skip
            if found:
                return found
        raise DataError(f"{path}: no corpus.jsonl (BEIR) or docs-*.jsonl.gz (MIRACL) in this folder")
    raise DataError(f"{path}: corpus not found")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines decoded one by one, so a non-UTF-8 line is reported with its number."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad = f"byte {raw[e.start]:#04x} at column {e.start + 1}"
                raise DataError(f"{path}:{lineno}: not UTF-8 ({bad})") from None
            if line.strip():
                yield lineno, line.rstrip("\r\n")


def _parse(path: Path, lineno: int, line: str) -> dict[str, Any]:
    """One line as a dict with the keys id / text / title / lang; malformed input is a DataError at the line."""
    where = f"{path}:{lineno}"
    if ".tsv" in path.suffixes:
        cols = line.split("\t")
        if lineno == 1 and cols[0] in _ID_FIELDS:
            return {}  # header
        if len(cols) not in (2, 3):
            raise DataError(f"{where}: expected 'id<TAB>text[<TAB>title]', got {len(cols)} column(s)")
        row: dict[str, Any] = {"id": cols[0], "text": cols[1], "title": cols[2] if len(cols) == 3 else ""}
    else:
        row = json_object(line, where)
        key = next((k for k in _ID_FIELDS if k in row), None)
        if key is None:
            raise DataError(f"{where}: missing id (one of the fields {', '.join(_ID_FIELDS)})")
        row["id"] = row[key]
    if not str(row["id"]).strip():
        raise DataError(f"{where}: empty id")
    if "text" not in row:
        raise DataError(f"{where}: missing field 'text'")
    if not isinstance(row["text"], str) or not row["text"].strip():
        raise DataError(f"{where}: empty text (passage {row['id']!r})")
    return row


def read_corpus(corpus: str | os.PathLike, lang: str | None = None) -> Iterator[Passage]:
    """Every passage of ``corpus`` in file order, checked: a missing or duplicate id, empty text, a non-UTF-8 or
    non-JSON line raises a DataError naming file and line. ``lang`` labels rows that carry no ``lang`` field."""
    files = corpus_files(corpus)
    if lang is None and (m := _MIRACL_DIR.search(files[0].parent.name)):
        lang = m.group(1)
    seen: dict[str, str] = {}
    for path in files:
        for lineno, line in _lines(path):
            row = _parse(path, lineno, line)
            if not row:
                continue
            pid = str(row["id"]).strip()
            if pid in seen:
                raise DataError(f"{path}:{lineno}: duplicate id {pid!r} (first at {seen[pid]})")
            seen[pid] = f"{path.name}:{lineno}"
            if row.get("lang") is not None:  # a label that is not a language code would label the page's bars
                check_language(row["lang"], f"{path}:{lineno}: field 'lang'")
            yield Passage(pid, (row.get("title") or "").strip(), row["text"], row.get("lang") or lang)


@cache
def _detector(among: tuple[str, ...] | None = None) -> Any:
    # low-accuracy mode: lingua's n-gram models up to trigrams, ~40x faster and as accurate on passage-length text
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    if among is None:
        return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
    codes = [getattr(IsoCode639_1, code.upper()) for code in check_detectable(among)]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode().build()


def check_detectable(languages: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``languages`` as the detector's codes; a ConfigError names one lingua does not know (ISO 639-1, 75)."""
    import lingua

    known = {x.iso_code_639_1.name.lower() for x in lingua.Language.all()}
    if not languages:
        raise ConfigError("--languages: give at least one language code, e.g. en,de")
    if bad := [x for x in languages if x not in known]:
        raise ConfigError(f"--languages: {', '.join(map(repr, bad))} not among the detector's languages (two-letter "
                          f"ISO 639-1 codes: {', '.join(sorted(known))})")  # fmt: skip
    return tuple(languages)


def detect_languages(texts: list[str], among: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """ISO 639-1 codes of ``texts`` (lingua, 75 languages, model inside the wheel); ``und`` when undecided.
    ``among``: the corpus's languages, when known; the detector then chooses among these only (far fewer wrong
    labels: English read as Latin, a short German line as Albanian)."""
    found = _detector(tuple(among) if among else None).detect_languages_in_parallel_of(texts)
    return [x.iso_code_639_1.name.lower() if x is not None else "und" for x in found]
