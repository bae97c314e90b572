"""Where a language's means text comes from: unlabeled sentences that no benchmark evaluates on.

NTREX-128, else FLORES-200 train + dev (never its test split, which the ``flores`` benchmark scores), else a folder
of ``<lang>.txt`` files; NTREX / FLORES are looked up in every data root of the chain (:func:`means_roots`), so a
user's evaluation folder need not hold them. Reads files only: no model, no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.languages import NTREX_CODES
from ..infra.errors import ConfigError, DataError

#: sentences per language a mean is taken over (fixed before any run, for cost: 2 x 200 encodings a language)
PER_LANGUAGE = 200


def means_roots(data_dir: str | os.PathLike | None = None,
                means_data: str | os.PathLike | None = None) -> list[Path]:  # fmt: skip
    """The data roots searched for NTREX-128 / FLORES-200 means text, in order: ``means_data`` alone when given
    (ConfigError when it holds neither folder), else the chain :func:`~hybridir.data.data_roots` (the evaluation's
    ``data_dir``, ``$HYBRIDIR_DATA``, the shared folder), so an evaluation folder without NTREX still finds it."""
    from ..data import data_roots

    if means_data is None:
        return data_roots(data_dir)
    root = Path(means_data).expanduser()
    if not any((root / sub).is_dir() for sub in ("ntrex-128", "flores-sib200")):
        raise ConfigError(f"--means-data {root}: holds neither ntrex-128/ nor flores-sib200/ (a data root as in "
                          "../shared/data; for a folder of <lang>.txt files use --means-source)")  # fmt: skip
    return [root]


def means_texts(lang: str, source: str = "default", roots: list[Path] | None = None,
                n: int = PER_LANGUAGE) -> tuple[list[str], str] | None:  # fmt: skip
    """Up to ``n`` unlabeled sentences in ``lang`` and the file they came from, or None when the source has none.

    ``source``: ``default`` (NTREX-128, else FLORES-200 train + dev: all disjoint from every evaluation set),
    ``ntrex``, ``flores``, or a folder holding ``<lang>.txt`` (one text per line). ``roots``: the data roots
    tried in order (default :func:`means_roots`); the first root with text for ``lang`` gives it."""
    if source not in ("default", "ntrex", "flores"):
        path = Path(source) / f"{lang}.txt"
        if not path.is_file():
            return None
        lines = [x.strip() for x in path.read_text(encoding="utf-8", errors="strict").splitlines() if x.strip()]
        return (lines[:n], str(path)) if lines else None
    for root in means_roots() if roots is None else roots:
        if source in ("default", "ntrex") and (found := _ntrex_texts(lang, root, n)):
            return found
        if source in ("default", "flores") and (found := _flores_texts(lang, root, n)):
            return found
    return None


def _ntrex_texts(lang: str, root: Path, n: int) -> tuple[list[str], str] | None:
    from ..data.training.parallel import ntrex_files, read_lines

    try:
        files = ntrex_files(root)
    except DataError:
        return None
    code = NTREX_CODES.get(lang, lang)
    if code not in files and "_" in lang:  # a FLORES code: NTREX's file of the same ISO 639-3 code, if just one
        iso3 = lang.split("_")[0]
        same = [c for c in files if c.split("-")[0] == iso3]
        code = same[0] if len(same) == 1 else code
    if code not in files:
        return None
    return read_lines(files[code])[:n], str(files[code])


def _flores_texts(lang: str, root: Path, n: int) -> tuple[list[str], str] | None:
    from ..data.flores import flores_code, flores_dir, load_flores

    try:
        code = flores_code(lang, root)
    except DataError:
        return None
    texts: list[str] = []
    for split in ("train", "dev"):  # never test: the FLORES benchmark evaluates on it
        texts += load_flores([code], split, root).texts[code]
    return texts[:n], str(flores_dir(root) / code / "{train,dev}.tsv")


def ntrex_languages(roots: list[Path]) -> list[str]:
    """The NTREX-128 codes of the first root that holds NTREX (``eng`` the source included); ConfigError if none."""
    from ..data.training.parallel import ntrex_files

    for root in roots:
        try:
            return sorted(ntrex_files(root))
        except DataError:
            continue
    raise ConfigError(f"the language projection needs NTREX-128 text: no ntrex-128/ under "
                      f"{', '.join(map(str, roots)) or 'any data root'} (give --means-data DIR)")  # fmt: skip
