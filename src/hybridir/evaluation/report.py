"""Run directory of an evaluation: results.json, results.md (paper tables), per_query.npz and PNG plots.

Every file goes through ``hybridir.infra.files`` (atomic). ``render_markdown`` works from results.json alone, so a
report can be re-rendered later: ``render_markdown(json.load(open("run/results.json")))``. This module is generic:
the head (model, versions, timing) is common, the tables and plots are the scoring protocol's own
(:mod:`.scoring`), so a new protocol needs nothing here.
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from types import ModuleType

import numpy as np

from ..infra.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from . import scoring


def _protocol(res: dict) -> ModuleType:
    """The scoring module that wrote ``res`` (:data:`~.scoring.PROTOCOLS`): it renders its own tables and plots."""
    name = next((name for name, section in scoring.PROTOCOLS.items() if section in res), None)
    if name is None:
        raise ValueError(f"not a protocol's results: none of {', '.join(scoring.PROTOCOLS.values())} in {list(res)}")
    return importlib.import_module(f"{scoring.__name__}.{name}")


def render_markdown(res: dict) -> str:
    """The tables a paper would print, plus what produced them."""
    t = res["timing"]
    head = [f"# {res['model']['name']} on {res['dataset']}", "",
            f"model fingerprint `{res['model']['fingerprint']}`, git commit `{res.get('git_commit')}`, "
            + ", ".join(f"{k} {v}" for k, v in res["versions"].items()), "",
            f"encoding {t['encode_seconds']:.1f} s for {t['texts_encoded']} texts "
            f"({t['texts_from_cache']} from cache), scoring {t['scoring_seconds']:.1f} s, "
            f"total {t['total_seconds']:.1f} s", ""]  # fmt: skip
    return "\n".join(head + _protocol(res).markdown(res)) + "\n"


def _plots(out_dir: Path, res: dict) -> list[Path]:
    """The protocol's PNGs, drawn without a display (matplotlib is imported only when plots are asked for)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return _protocol(res).plots(out_dir, res, plt)


def write_run(out_dir: Path, results: dict, per_query: dict[str, np.ndarray], *, plots: bool = True) -> list[Path]:
    """Write results.json, results.md, per_query.npz and (optionally) the PNGs; return the written paths."""
    out_dir = Path(out_dir)
    buf = io.BytesIO()
    np.savez(buf, **per_query)
    written = [atomic_write_json(out_dir / "results.json", results),
               atomic_write_text(out_dir / "results.md", render_markdown(results)),
               atomic_write_bytes(out_dir / "per_query.npz", buf.getvalue())]  # fmt: skip
    if plots:
        written += _plots(out_dir, results)
    return written
