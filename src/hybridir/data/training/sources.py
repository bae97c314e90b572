"""``--data`` -> (train, dev) training data: one dispatch over every named source and file format.

Sources: ``ntrex``, ``flores``, ``mmarco[:N]`` or a folder in mMARCO's layout (:mod:`.mmarco`), the
QA sets ``iapp-th`` / ``cmrc-trial`` / ``afriqa`` (:mod:`.qa`), a
folder of ``<lang>.txt`` line-aligned files, a ``.jsonl`` / ``.tsv`` file, a SQuAD ``.json`` file or
``hf:<dataset>``; several join with ``+``. In a mix every source gives the requested languages it has (AfriQA has
no German, NTREX no Twi), and a requested language no source has is an error; a single source must have them all.

Example::

    train, dev = load_train_dev("ntrex+afriqa", ["en", "de", "ha"], dev_fraction=0.1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ...infra.errors import ConfigError, DataError, warn
from ..languages import NTREX_CODES, XQUAD_LANGUAGES
from .items import TrainingData
from .mmarco import is_mmarco_dir, load_mmarco, parse_mmarco_spec
from .parallel import (
    data_sources,
    load_aligned,
    load_flores_pairs,
    load_hub,
    load_ntrex,
    load_pairs,
    load_squad,
    ntrex_files,
)
from .qa import QA_SOURCES, load_qa, qa_languages


def load_training_data(
    spec: str,
    languages: Sequence[str] = XQUAD_LANGUAGES,
    data_dir: str | os.PathLike | None = None,
    window: int = 4,
    remove_prob: float = 0.9,
    seed: int = 0,
    qa_target: str = "sentence",
) -> TrainingData:
    """Resolve one ``--data`` source (its training part) restricted to ``languages``. Several sources and the
    held-out parts: :func:`load_train_dev`."""
    if spec == "ntrex":
        return load_ntrex(languages, data_dir, window, remove_prob, seed)
    if spec == "flores":
        return load_flores_pairs(languages, "train", None, data_dir)
    if spec in QA_SOURCES:
        return load_qa(spec, languages, qa_target, data_dir, seed, dev_fraction=0)[0]
    if (n_queries := parse_mmarco_spec(spec)) is not None:
        return load_mmarco(languages, data_dir, n_queries)
    if spec.startswith("hf:"):
        return load_hub(spec[3:], languages)
    path = Path(spec).expanduser()
    if path.is_dir() and is_mmarco_dir(path):
        return load_mmarco(languages, root=path)
    if path.is_dir():
        found = {f.stem: f for f in sorted(path.glob("*.txt"))}
        missing = [lang for lang in languages if lang not in found]
        if missing:
            raise DataError(f"{path}: no <lang>.txt file for requested language(s) {', '.join(missing)}")
        docs = path / "DOCUMENT_IDS.tsv"
        chosen = {lang: found[lang] for lang in languages}
        return load_aligned(chosen, docs if docs.exists() else None, window, remove_prob, seed, path.name)
    if path.suffix == ".json":
        if len(languages) != 1:
            raise ConfigError(f"{path}: a SQuAD file is monolingual; pass exactly one language, got {languages}")
        return load_squad(path, languages[0])
    if path.suffix in (".jsonl", ".tsv"):
        return load_pairs(path).select(languages)
    raise ConfigError(f"unknown training data {spec!r}: use 'ntrex', 'flores', 'mmarco[:N]', "
                      f"{', '.join(QA_SOURCES)}, 'hf:<name>', a folder, .jsonl, .tsv or .json, or several joined "
                      "with '+' (ntrex+flores)")  # fmt: skip


def _has(source: str, languages: Sequence[str], data_dir: str | os.PathLike | None) -> list[str]:
    """The requested languages a source of a mix can give (all of them for sources that cannot say)."""
    if source == "ntrex":
        files = ntrex_files(data_dir)
        return [lang for lang in languages if NTREX_CODES.get(lang, lang) in files]
    if source in QA_SOURCES:
        return [lang for lang in languages if lang in qa_languages()[source]]
    return list(languages)  # FLORES leaves out what it lacks itself; files and hub sets must have them all


def load_train_dev(
    spec: str | Sequence[str],
    languages: Sequence[str] = XQUAD_LANGUAGES,
    data_dir: str | os.PathLike | None = None,
    window: int = 4,
    remove_prob: float = 0.9,
    seed: int = 0,
    dev_fraction: float = 0.1,
    topics: Sequence[str] | None = None,
    dev_only: str | Sequence[str] = (),
    qa_target: str = "sentence",
) -> tuple[TrainingData, TrainingData | None]:
    """(train, dev) of ``spec``'s sources. Each source holds out its own dev part: FLORES its ``dev`` split, iapp
    its ``valid`` split, AfriQA its ``dev`` split, any other ``dev_fraction`` of its groups (documents, articles)
    chosen by ``seed``; ``dev_fraction=0`` means no dev data. ``dev_only`` sources add their dev part only (a fixed
    dev set across data mixes). ``topics`` filters FLORES; ``qa_target`` chooses the QA sets' positive."""
    train_sources = data_sources(spec)
    extra = [s for s in (data_sources(dev_only) if dev_only else []) if s not in train_sources]
    if topics and "flores" not in train_sources + extra:
        raise ConfigError(f"FLORES topics {list(topics)} given but the data {spec!r} has no FLORES source")
    mix = len(train_sources + extra) > 1
    train, dev = [], []
    for source in train_sources + extra:
        langs = _has(source, languages, data_dir) if mix else list(languages)
        if not langs:  # in a mix each source gives the languages it has, which may be none
            if source in train_sources:
                warn(f"training source {source!r} has none of the languages {', '.join(languages)}: left out")
            continue
        if source == "flores":
            part = load_flores_pairs(langs, "train", topics, data_dir) if source in train_sources else None
            held = load_flores_pairs(langs, "dev", topics, data_dir) if dev_fraction > 0 else None
        elif source in QA_SOURCES:
            part, held = load_qa(source, langs, qa_target, data_dir, seed, dev_fraction)
        else:
            part, held = load_training_data(source, langs, data_dir, window, remove_prob, seed).split(
                dev_fraction, seed)  # fmt: skip
        if source in train_sources:
            train.append(part)
        if held is not None:
            dev.append(held)
    if not train:
        raise DataError(f"training data {'+'.join(train_sources)}: no source has any of the languages "
                        f"{', '.join(languages)}")  # fmt: skip
    if mix and (missing := sorted(set(languages) - {lang for part in train + dev for lang in part.languages})):
        raise DataError(f"training data {'+'.join(train_sources + extra)}: no source has the requested language(s) "
                        f"{', '.join(missing)}")  # fmt: skip
    return TrainingData.concat(train), TrainingData.concat(dev) if dev else None
