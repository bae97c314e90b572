"""Data readers, grouped by the job that takes what they return; a reader both sides take stays at this level.

- ``training/``: training sources, each returning the one training data model ``items.TrainingData``
  (``parallel.py``: NTREX ICT, line-aligned folders, own JSONL/TSV, SQuAD, hub, FLORES bitext; ``qa.py``: the QA
  sets; ``mmarco.py``; ``sources.py``: the ``--data`` dispatch and mixes). ``hybridir.training`` reads them, and
  so do ``encoders`` (NTREX text for language means and calibration) and ``study`` (which languages a source has).
- ``evaluation/``: evaluation readers, each returning an ``evalset.EvalSet`` (``lareqa.py``, ``monoqa.py``,
  ``miracl.py``, ``beir.py``). ``hybridir.evaluation``'s benchmarks read them; ``retrieval`` borrows the BEIR
  document text and the MIRACL topics reader.
- here, what both sides read: ``languages.py`` (language codes), ``flores.py`` (FLORES-200: training bitext,
  the ``flores`` benchmark and language means), ``squad.py`` (the one SQuAD-format reader: SQuAD training files
  and the CMRC trial set, XQuAD-R / MLQA-R and the monolingual QA sets), and below the file helpers.

``resolve_data_dir`` finds the shared data: an explicit argument, else ``$HYBRIDIR_DATA``, else
``<repo>/../shared/data``. ``data_roots`` is that chain whole, for text any root may hold (the language means'
NTREX-128 / FLORES-200 text need not sit beside a user's evaluation data).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..infra.errors import DataError

_REPO = Path(__file__).resolve().parents[3]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data root, or raise DataError naming every place that was tried."""
    tried = []
    for cand in (data_dir, os.environ.get("HYBRIDIR_DATA"), _REPO.parent / "shared" / "data"):
        if cand is None or cand == "":
            continue
        path = Path(cand).expanduser()
        if path.is_dir():
            return path
        tried.append(str(path))
        if data_dir is not None:  # an explicit path that does not exist is an error, not a fallback
            break
    raise DataError(
        f"data directory not found (tried: {', '.join(tried) or 'nothing'}); pass --data-dir or set HYBRIDIR_DATA"
    )


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every existing data root in the order :func:`resolve_data_dir` tries them (``data_dir``, ``$HYBRIDIR_DATA``,
    the shared folder), without repeats; may be empty."""
    out: list[Path] = []
    for cand in (data_dir, os.environ.get("HYBRIDIR_DATA"), _REPO.parent / "shared" / "data"):
        if cand is None or cand == "":
            continue
        path = Path(cand).expanduser()
        if path.is_dir() and path.resolve() not in {x.resolve() for x in out}:
            out.append(path)
    return out


def read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """One JSON object per non-blank line, each with its ``"<file>, line <n>"`` for error messages."""
    out = []
    with Path(path).open(encoding="utf-8") as f:
        for k, line in enumerate(f, 1):
            if not line.strip():
                continue
            out.append((f"{path}, line {k}", json_object(line, f"{path}, line {k}")))
    return out


def json_object(line: str, where: str) -> dict:
    """One line of JSONL as a dict; malformed JSON or a non-object is a DataError starting with ``where``."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    return rec


def read_utf8(path: Path) -> str:
    """The text of ``path``; DataError naming the file, line and byte where it is not UTF-8 or cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from e
