"""FLORES-200 as packaged by SIB-200: 205 language/script codes, row-aligned train / dev / test splits, 7 topics.

Folder layout (``<data>/flores-sib200/<code>/{train,dev,test}.tsv``, columns ``index_id``, ``category``, ``text``):
row *i* of a split is the same sentence in every language. This module only reads; training pairs live in
:mod:`hybridir.data.training.parallel`, retrieval evaluation sets in the evaluation loaders.

Languages may be given as FLORES codes (``deu_Latn``, ``zho_Hant``) or as hybridir's short codes (``de``, ``zh``,
``yo``), which map through the ISO 639-3 code of :data:`~hybridir.data.languages.NTREX_CODES` plus the script
of :data:`~hybridir.data.languages.FLORES_SCRIPTS` when a code has several.

Example::

    split = load_flores(["en", "yo"], "test")
    split.texts["yor_Latn"][0], split.topics[0]
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..infra.errors import ConfigError, DataError
from . import resolve_data_dir
from .languages import FLORES_SCRIPTS, NTREX_CODES

SPLITS = ("train", "dev", "test")
TOPICS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")
#: NLLB-200's high / low resource level per FLORES code, with its source in the file's header
RESOURCE_LEVELS_FILE = Path(__file__).with_name("resource_levels.tsv")


@dataclass
class FloresSplit:
    """One split in several languages: ``texts[code][i]`` is row ``i``; ids and topics are shared by all."""

    split: str
    index_ids: list[str]
    topics: list[str]
    texts: dict[str, list[str]]


def flores_dir(data_dir: str | os.PathLike | None = None) -> Path:
    root = resolve_data_dir(data_dir) / "flores-sib200"
    if not root.is_dir():
        raise DataError(f"{root}: FLORES-200 (SIB-200) folder not found")
    return root


@cache
def _codes(root: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "test.tsv").is_file()))


def flores_codes(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Every FLORES code of the folder (205 in the shared data), sorted."""
    return list(_codes(flores_dir(data_dir)))


def flores_code(lang: str, data_dir: str | os.PathLike | None = None) -> str:
    """A short code (``de``) or FLORES code (``deu_Latn``) -> the FLORES code; DataError naming the choices."""
    codes = _codes(flores_dir(data_dir))
    if lang in codes:
        return lang
    if lang in FLORES_SCRIPTS and FLORES_SCRIPTS[lang] in codes:
        return FLORES_SCRIPTS[lang]
    iso3 = NTREX_CODES.get(lang, lang).split("-")[0]
    found = [c for c in codes if c.split("_")[0] == iso3]
    if len(found) == 1:
        return found[0]
    hint = f"; it has several scripts: {', '.join(found)}" if found else ""
    raise DataError(f"FLORES-200 ({flores_dir(data_dir)}): unknown language code {lang!r}{hint}. Use a FLORES "
                    "code such as deu_Latn or yor_Latn (one folder each) or a short code such as de or yo")  # fmt: skip


def check_topics(topics: list[str] | tuple[str, ...] | None) -> list[str]:
    """``topics`` as a list; ConfigError naming the unknown ones and the seven choices."""
    if bad := [t for t in topics or () if t not in TOPICS]:
        raise ConfigError(f"unknown FLORES topic(s) {', '.join(map(repr, bad))}; use {', '.join(TOPICS)}")
    return list(topics or [])


@cache
def resource_levels() -> dict[str, str]:
    """FLORES code -> ``high`` / ``low`` (NLLB-200, Table 1) or ``n/a`` (not in NLLB-200), from the committed
    table whose header says how it was derived."""
    lines = [x for x in RESOURCE_LEVELS_FILE.read_text(encoding="utf-8").splitlines() if x and x[0] != "#"]
    return dict(line.split("\t") for line in lines[1:])


def _read_split(path: Path) -> tuple[list[str], list[str], list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    if not rows or rows[0][:3] != ["index_id", "category", "text"]:
        raise DataError(f"{path}, line 1: expected the header index_id, category, text")
    ids, topics, texts = [], [], []
    for k, row in enumerate(rows[1:], 2):
        if len(row) != 3 or not row[2].strip():
            raise DataError(f"{path}, line {k}: expected 3 tab-separated columns with a non-empty text")
        ids.append(row[0])
        topics.append(row[1])
        texts.append(row[2])
    return ids, topics, texts


def load_flores(languages: list[str], split: str = "test", data_dir: str | os.PathLike | None = None) -> FloresSplit:
    """Read ``split`` in ``languages`` (short or FLORES codes), checking that the rows align across languages."""
    if split not in SPLITS:
        raise DataError(f"FLORES-200: unknown split {split!r}; use {', '.join(SPLITS)}")
    root = flores_dir(data_dir)
    out: FloresSplit | None = None
    for lang in languages:
        code = flores_code(lang, data_dir)
        path = root / code / f"{split}.tsv"
        ids, topics, texts = _read_split(path)
        if out is None:
            out = FloresSplit(split, ids, topics, {})
        elif ids != out.index_ids:
            raise DataError(f"{path}: rows are not aligned with {root / next(iter(out.texts))}/{split}.tsv")
        out.texts[code] = texts
    if out is None:
        raise DataError("FLORES-200: no languages requested")
    return out
