"""Config dataclasses as command lines: a field made by :func:`option` is an ``--option`` of the command, described
where the field is, so the CLI never drifts from the dataclass (``hybridir train``, ``hybridir evaluate``).

The rules, one set for every config: the flag is ``--field-name`` (``flag=`` in the field's argparse keywords
overrides it); a bool without an explicit ``action`` is ``--x / --no-x``; a list is given comma-separated; any
other type is the default's (``str`` for a None default) unless ``type=`` says otherwise; the help ends with the
default unless it already says what the default is.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import Any


def option(default: Any, help: str | None, **cli: Any) -> Any:
    """A dataclass field that is a command-line option; ``cli``: its argparse keywords (``type``, ``choices``,
    ``action``, ``metavar``, ``flag``) and, under ``meta``, other metadata (e.g. ``{"study": True}``). A list default
    is copied for each instance."""
    meta = cli.pop("meta", {})
    metadata = {"help": help, "cli": cli, **meta}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def add_arguments(parser: argparse.ArgumentParser, cls: type, unset: Mapping[str, str] | None = None) -> None:
    """One option per field of dataclass ``cls`` made by :func:`option`. ``unset``: field -> what its help says the
    default is; such an option is absent from the namespace unless given (the command fills it, e.g. from a
    recipe)."""
    unset = unset or {}
    for f in dataclasses.fields(cls):
        if "cli" not in f.metadata:
            continue
        cli = dict(f.metadata["cli"])
        flag = cli.pop("flag", "--" + f.name.replace("_", "-"))
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        help_ = f.metadata["help"] or ""
        if isinstance(default, bool) and "action" not in cli:
            cli["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, list):
            default = ",".join(default)  # shown in --help as typed; argparse applies ``type`` to a str default
            cli.setdefault("type", codes)
        elif "action" not in cli:
            cli.setdefault("type", str if default is None else type(default))
        if f.name in unset:
            default, help_ = argparse.SUPPRESS, f"{help_} (default: {unset[f.name]})".strip()
        elif "action" not in cli and "default" not in help_:
            help_ = f"{help_} (default: %(default)s)".strip()
        parser.add_argument(flag, dest=f.name, default=default, help=help_ or " ", **cli)


def values_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The option fields of ``cls`` that ``args`` (filled by :func:`add_arguments`) holds, by field name."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if "cli" in f.metadata and
            hasattr(args, f.name)}  # fmt: skip


def codes(value: str) -> list[str]:
    """argparse type: a comma-separated list (``en,de``), blanks dropped."""
    return [v.strip() for v in value.split(",") if v.strip()]
