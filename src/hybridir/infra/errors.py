"""Errors that hybridir raises for bad input: each message names the file, the record and what is wrong."""

import sys


class HybridIRError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class DataError(HybridIRError, ValueError):
    """A data file or record is malformed, missing or inconsistent."""


class ModelError(HybridIRError, ValueError):
    """A model name, file or checkpoint cannot be resolved or loaded."""


class ConfigError(HybridIRError, ValueError):
    """A configuration (CLI options, study YAML) is invalid."""


class LockError(HybridIRError):
    """Another live process writes to the directory (its lock file names the pid and host)."""


class DiskSpaceError(HybridIRError):
    """Not enough free space for what a run is about to write, or a write hit ENOSPC."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines of a wrapped library message included) as one space."""
    return " ".join(str(text).split())


def warn(message: str) -> None:
    """A problem hybridir works around (a stale lock, a corrupt cache entry): one line on stderr, the CLI's form."""
    print(f"hybridir: warning: {message}", file=sys.stderr)
