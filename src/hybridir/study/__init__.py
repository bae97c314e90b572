"""Studies: a YAML grid of train + evaluate cells, run resumably, summarised with significance marks and analyses.

- :mod:`.config`: the YAML -> :class:`StudyConfig`, its cells and what each trains with;
- :mod:`.runner`: runs the cells (train, evaluate, resume);
- :mod:`.aggregate`: finished cells -> rows over seeds, paired tests over queries;
- :mod:`.analyses`: one module per question any grid may ask (hybrid against X-X / X-Y paired by seed, the
  centering table, targets, the FLORES breakdown, the trade-off figure); the paper's own questions are added from
  :mod:`hybridir.paper` when it is installed (:func:`.analyses.registered`);
- :mod:`.render`, :mod:`.plots`, :mod:`.summary`: study.md / study.csv / study.json and the figures.

Example::

    from hybridir.study import run_study
    out = run_study(Path("studies/smoke.yaml"))      # -> runs/studies/smoke
    print((out / "study.md").read_text())
"""

from __future__ import annotations

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
    "results_table",
    "run_cell",
    "run_study",
    "train_kwargs",
    "write_summary",
]
