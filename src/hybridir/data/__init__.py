"""Data loaders: evaluation sets (LAReQA, monolingual QA, BEIR/MIRACL) and parallel training text.

``resolve_data_dir`` finds the shared data: an explicit argument, else ``$HYBRIDIR_DATA``, else
``<repo>/../shared/data``.
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
