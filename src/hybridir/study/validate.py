"""Type checks of a study YAML that name the file and the key in every message (used by :mod:`.config`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..infra.errors import ConfigError, one_line


def yaml_error(path: Path, e: Exception) -> str:
    """A YAML parser error on one line: ``FILE:LINE:COLUMN: not valid YAML: problem (context at line L, column C)``
    instead of PyYAML's five lines with carets."""
    mark = getattr(e, "problem_mark", None)
    if mark is None:
        return f"{path}: not valid YAML: {one_line(e)}"
    where, problem = f"{path}:{mark.line + 1}:{mark.column + 1}", one_line(getattr(e, "problem", "") or e)
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None:
        problem += f" ({one_line(context)} at line {cmark.line + 1}, column {cmark.column + 1})"
    elif context:
        problem += f" ({one_line(context)})"
    return f"{where}: not valid YAML: {problem}"


class Validator:
    """Type checks that name the YAML file and key in every message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {msg}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None and (unknown := sorted(set(map(str, value)) - allowed)):
            raise self.fail(key, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return {str(k): v for k, v in value.items()}

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def as_list(self, value: Any, key: str) -> list[Any]:
        """A scalar is a one-element list; repeats would make duplicate cells."""
        items = list(value) if isinstance(value, list | tuple) else [value]
        if len({json.dumps(x) for x in items}) != len(items):
            raise self.fail(key, f"lists a value twice: {items}")
        return items

    def str_list(self, value: Any, key: str) -> list[str]:
        items = self.as_list(value, key)
        if not items:
            raise self.fail(key, "must not be empty")
        return [self.string(x, key) for x in items]

    def int_list(self, value: Any, key: str, minimum: int, allow_empty: bool = False) -> list[int]:
        items = self.as_list(value, key)
        if not items and not allow_empty:
            raise self.fail(key, "must not be empty")
        for x in items:
            if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
                raise self.fail(key, f"expected integers >= {minimum}, got {x!r}")
        return items

    def positive(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(key, f"expected a number > 0, got {value!r}")
        return float(value)

    def alpha(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise self.fail(key, f"alpha must be a number in [0, 1], got {value!r}")
        return float(value)

    def centering(self, value: str, key: str) -> str:
        """A centering spec (:mod:`hybridir.encoders.centering`) in its canonical spelling."""
        from ..encoders.centering import CenteringSpec

        try:
            return str(CenteringSpec.parse(value))
        except ConfigError as e:
            raise self.fail(key, str(e)) from None
