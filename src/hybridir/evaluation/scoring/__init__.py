"""Scoring encoded evaluation data: the protocols the benchmarks share (LAReQA settings, truncated-run retrieval,
FLORES bitext retrieval). Each takes an encoder and a loaded task and returns (results body, per-query arrays), and
renders that body too (``markdown(res) -> list[str]``, ``plots(out_dir, res, plt) -> list[Path]``), so the one
module that knows a body's layout is the one that writes it; :mod:`..report` only picks the module (``PROTOCOLS``).
"""

from __future__ import annotations

import numpy as np

#: protocol (its module here, a benchmark's ``protocol``) -> the section of a results body only that protocol writes.
#: results.json carries no protocol name, so that every results.json renders; the report tells the protocol by this.
PROTOCOLS = {"lareqa": "multi", "retrieval": "sets", "bitext": "bitext"}


def mean_or_none(values: list[float] | np.ndarray) -> float | None:
    """NaN-ignoring mean as a JSON-friendly float (None when nothing is defined)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


def fmt(x: float | None, digits: int = 3) -> str:
    """A results.md cell: ``-`` for a figure that is not defined (None in results.json)."""
    return "-" if x is None else f"{x:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]
