"""``hybridir choose-centering`` / ``choose-projection``: the dev-data rules of docs/studies.md behind the shipped
centering and projection defaults, added to the CLI by :func:`add_commands` when this layer is installed."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

#: rule name -> what it chooses (``hybridir choose-NAME`` runs :mod:`hybridir.paper.NAME_choice`)
RULES = {
    "centering": "the centering mode and lambda",
    "projection": "the language-neutral projection's rank, recentring and strength",
}


def add_commands(sub: argparse._SubParsersAction) -> None:
    """One ``choose-NAME`` subcommand per rule of :data:`RULES`."""
    for choice, what in RULES.items():
        c = sub.add_parser(f"choose-{choice}", help=f"choose {what} on dev data (docs/studies.md)")
        c.add_argument("--model", action="append", required=True, help="a model to score (repeat for several)")
        c.add_argument(
            "--data-dir", type=Path, default=None, help="data root (default $HYBRIDIR_DATA or ../shared/data)"
        )
        c.add_argument(
            "--out", type=Path, default=None, help=f"write OUT.json and OUT.md (e.g. reports/{choice}_choice)"
        )
        c.add_argument("--quiet", action="store_true", help="no progress bars")
        c.set_defaults(func=_choose, choice=choice)


def _choose(args: argparse.Namespace) -> None:
    """Run the rule ``args.choice`` on the models given; print (and with ``--out`` write) its table."""
    from ..infra.files import atomic_write_json, atomic_write_text

    rule = importlib.import_module(f".{args.choice}_choice", __package__)
    choose, render = getattr(rule, f"choose_{args.choice}"), rule.render
    result = choose([str(m) for m in args.model], args.data_dir, show_progress=not args.quiet)
    if args.out:
        atomic_write_json(args.out.with_suffix(".json"), result)
        atomic_write_text(args.out.with_suffix(".md"), render(result))
    print(render(result))
