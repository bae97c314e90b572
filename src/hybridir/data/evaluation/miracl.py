"""MIRACL (Zhang et al., TACL 2023): the official files from a local folder, or the Hugging Face hub.

Local layout (the release's own names, as in ``../shared/data/miracl``; any language drops in beside it)::

    <data>/miracl/miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-<split>.tsv   qid TAB query
    <data>/miracl/miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-<split>.tsv     qid Q0 docid grade
    <data>/miracl/miracl-corpus-v1.0-<lang>/docs-*.jsonl.gz                          {"docid", "title", "text"}

``<data>`` is ``--data-dir`` (or that folder may be the ``miracl`` folder itself), else ``$HYBRIDIR_DATA``, else
``../shared/data``; without a local copy the same files come from the hub (online only).

MIRACL's conventions, as its official evaluation applies them: grade-0 judgements are judged non-relevant (not
relevant), queries without a relevant passage are skipped, and the pool is the language's whole collection.
``sample=N`` builds a smaller pool for studies: every judged passage of the kept queries plus a fixed seeded
random sample of N others. Its numbers are not MIRACL numbers, so its name says so (``miracl-yo-judged+10k``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...infra.errors import ConfigError, DataError, one_line
from .. import resolve_data_dir
from .beir import build_evalset, doc_text, read_qrels, records
from .evalset import EvalSet

MIRACL_LANGS = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th",
                "yo", "zh")  # fmt: skip
HUB_TOPICS, HUB_CORPUS = "miracl/miracl", "miracl/miracl-corpus"
#: size of the random sample beside the judged passages in the ``miracl-judged:<lang>`` variant
JUDGED_SAMPLE = 10_000


def parse_miracl_name(dataset: str) -> tuple[str, int | None] | None:
    """The MIRACL dataset-name grammar, in one place (``evaluate`` and study configs both read it).

    ``miracl:<lang>`` -> ``(lang, None)``, the full collection; ``miracl-judged:<lang>[:N]`` -> ``(lang, N)``, judged
    passages + N sampled ones (default JUDGED_SAMPLE); any other name -> None. A malformed MIRACL name raises.

    >>> parse_miracl_name("miracl-judged:yo:2000"), parse_miracl_name("xquad-r")
    (('yo', 2000), None)
    """
    kind, sep, rest = dataset.partition(":")
    if not sep or kind not in ("miracl", "miracl-judged"):
        return None
    lang, _, n = rest.partition(":")
    if not lang or (n and (kind == "miracl" or not n.isdigit() or int(n) < 1)):
        raise ConfigError(f"{dataset}: expected miracl:<lang> or miracl-judged:<lang>[:<sample size>]")
    return lang, int(n or JUDGED_SAMPLE) if kind == "miracl-judged" else None


def load_miracl(lang: str, split: str = "dev", *, data_dir: str | os.PathLike | None = None,
                max_questions: int | None = None, sample: int | None = None, seed: int = 0) -> EvalSet:  # fmt: skip
    """MIRACL ``lang`` / ``split`` from the local official files when present, else from the hub.

    ``sample``: None = the full collection (MIRACL); N = judged passages of the kept queries + N random others.
    """
    base = _local_base(data_dir, lang)
    if base is None:
        (topics, qrels_file, corpus), where = _from_hub(lang, split), f"{HUB_TOPICS} {lang} {split}"
    else:
        (topics, qrels_file, corpus), where = _local_files(base, lang, split), str(base)
    rows = itertools.chain.from_iterable(records(p, ("docid", "text")) for p in corpus)
    docs = [(str(r["docid"]), doc_text(r)) for r in rows]
    judged = read_qrels(qrels_file, min_grade=0, docids={d for d, _ in docs})
    relevant = {q: rel for q, j in judged.items() if (rel := {d: g for d, g in j.items() if g > 0})}
    queries = [(q, t) for q, t in read_topics(topics) if q in relevant][:max_questions]
    name = f"miracl-{lang}"
    if sample is not None:
        keep = set().union(*(judged[q] for q, _ in queries))
        others = [d for d, _ in docs if d not in keep]
        rng = np.random.default_rng(seed)
        keep.update(others[i] for i in rng.choice(len(others), min(sample, len(others)), replace=False))
        docs = [(d, t) for d, t in docs if d in keep]
        name += f"-judged+{f'{sample // 1000}k' if sample % 1000 == 0 else sample}"
    return build_evalset(name, lang, docs, queries, relevant, where=where)


def read_topics(path: Path) -> Iterator[tuple[str, str]]:
    """MIRACL topics: ``qid TAB query`` per line."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            qid, tab, text = line.rstrip("\n").partition("\t")
            if not tab or not qid.strip() or not text.strip():
                raise DataError(f"{path}:{lineno}: expected 'query id<TAB>query text'")
            yield qid.strip(), text.strip()


def _local_base(data_dir: str | os.PathLike | None, lang: str) -> Path | None:
    """The folder holding ``miracl-v1.0-<lang>/``: ``<data>/miracl`` or ``<data>`` itself; None = use the hub.
    An explicit ``data_dir`` that does not exist is an error (resolve_data_dir), never a silent download."""
    try:
        root = resolve_data_dir(data_dir)
    except DataError:
        if data_dir is not None:
            raise
        return None
    return next((b for b in (root / "miracl", root) if (b / f"miracl-v1.0-{lang}").is_dir()), None)


def _local_files(base: Path, lang: str, split: str, corpus_base: Path | None = None) -> tuple[Path, Path, list[Path]]:
    """Topics, qrels and corpus shards of the official layout (the passages under ``corpus_base``, default
    ``base``); a missing one is named (a partial download)."""
    topics = base / f"miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv"
    qrels = base / f"miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv"
    corpus_dir = (corpus_base or base) / f"miracl-corpus-v1.0-{lang}"
    corpus = sorted(corpus_dir.glob("docs-*.jsonl.gz"))
    for path in (topics, qrels):
        if not path.is_file():
            raise DataError(f"{path}: missing (official MIRACL layout; see hybridir.data.evaluation.miracl)")
    if not corpus:
        raise DataError(f"{corpus_dir}: no docs-*.jsonl.gz (the MIRACL passage collection)")
    return topics, qrels, corpus


def _from_hub(lang: str, split: str) -> tuple[Path, Path, list[Path]]:
    """The official files of ``miracl/miracl`` (topics, qrels) and ``miracl/miracl-corpus`` (passages), downloaded
    once into the hub cache by ``huggingface_hub.snapshot_download`` and read exactly like a local copy (online
    only). Offline it raises a one-line DataError naming the files and where to put them."""
    if lang not in MIRACL_LANGS:
        raise DataError(f"unknown MIRACL language {lang!r}; known: {', '.join(MIRACL_LANGS)}")
    base = f"miracl-v1.0-{lang}"
    wanted = [f"{base}/topics/topics.{base}-{split}.tsv", f"{base}/qrels/qrels.{base}-{split}.tsv"]
    try:
        from huggingface_hub import snapshot_download

        topics_root = snapshot_download(HUB_TOPICS, repo_type="dataset", allow_patterns=wanted)
        corpus_root = snapshot_download(HUB_CORPUS, repo_type="dataset",
                                        allow_patterns=f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz")  # fmt: skip
    except Exception as e:  # any hub or network failure means the same thing to the user
        raise DataError(
            f"miracl:{lang}: could not download MIRACL from the Hugging Face hub ({type(e).__name__}: {one_line(e)}). "
            f"It needs internet; offline, put the official files under <data>/miracl/ ({', '.join(wanted)}, "
            f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz; see hybridir.data.evaluation.miracl)."
        ) from e
    return _local_files(Path(topics_root), lang, split, Path(corpus_root))
