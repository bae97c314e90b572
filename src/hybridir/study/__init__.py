"""Studies: a YAML grid of train + evaluate cells, run resumably, summarised with significance marks and analyses.

- :mod:`.config`: the YAML -> :class:`StudyConfig`, its cells and what each trains with;
- :mod:`.runner`: runs the cells (train, evaluate, resume);
- :mod:`.aggregate`: finished cells -> rows over seeds, paired tests over queries;
- :mod:`.analyses`: one module per question (the paper's claims, seen / unseen languages, high-resource check,
  model-size gains, FLORES breakdown, the trade-off);
- :mod:`.render`, :mod:`.plots`, :mod:`.summary`: study.md / study.csv / study.json and the figures.

Example::

    from hybridir.study import run_study
    out = run_study(Path("studies/smoke.yaml"))      # -> runs/studies/smoke
    print((out / "study.md").read_text())
"""

from __future__ import annotations

from .analyses.paper_claims import paper_claims
from .config import Cell, StudyConfig, cell_datasets, expand_grid, load_study_config, train_kwargs
from .render import format_results, results_table
from .runner import describe_study, run_cell, run_study
from .summary import write_summary

__all__ = [
    "Cell",
    "StudyConfig",
    "cell_datasets",
    "describe_study",
    "expand_grid",
    "format_results",
    "load_study_config",
    "paper_claims",
    "results_table",
    "run_cell",
    "run_study",
    "train_kwargs",
    "write_summary",
]
