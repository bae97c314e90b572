"""Data loaders: evaluation sets (LAReQA, monolingual QA, BEIR/MIRACL) and parallel training text.

``resolve_data_dir`` finds the shared data: an explicit argument, else ``$HYBRIDIR_DATA``, else
``<repo>/../shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

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
