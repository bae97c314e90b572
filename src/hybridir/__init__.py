"""hybridir: train and evaluate multilingual dense retrievers with hybrid (X-X / X-Y) batches.

The public API, imported lazily so that ``import hybridir`` stays instant::

    from hybridir import load_encoder, evaluate, TrainConfig, train, run_study
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
_API = {
    "load_encoder": "encoders.models",
    "fingerprint": "encoders.models",
    "evaluate": "evaluation.evaluate",
    "TrainConfig": "training.config",
    "train": "training.loop",
    "run_study": "study",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'hybridir' has no attribute {name!r}")
