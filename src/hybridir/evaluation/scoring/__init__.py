"""Scoring encoded evaluation data: the protocols the benchmarks share (LAReQA settings, truncated-run retrieval,
FLORES bitext retrieval). Each takes an encoder and a loaded task and returns (results body, per-query arrays).
"""

from __future__ import annotations

import numpy as np


def mean_or_none(values: list[float] | np.ndarray) -> float | None:
    """NaN-ignoring mean as a JSON-friendly float (None when nothing is defined)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None
