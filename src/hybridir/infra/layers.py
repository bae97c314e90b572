"""Optional layers: packages the toolkit uses when they are installed and does without when they are not.

The toolkit never imports such a layer by statement (tests/test_architecture.py sees no import of it): it asks
:func:`optional` by name, at the one place that offers the layer's extras (the study's analyses, the CLI's
commands). :data:`PAPER` is the hybrid-batch paper's layer (:mod:`hybridir.paper`); deleting it leaves train,
evaluate, index, search, serve, debias and study of any YAML working (tests/test_toolkit_alone.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: the paper's questions, dev-choice procedures and their commands
PAPER = "hybridir.paper"


def optional(module: str) -> ModuleType | None:
    """``module`` imported, or None when it (or a package above it) is not installed. An import error from inside
    the module, e.g. a missing dependency of its own, is raised as usual."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
