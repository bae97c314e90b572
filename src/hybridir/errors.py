"""Errors that hybridir raises for bad input: each message names the file, the record and what is wrong."""


class HybridIRError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class DataError(HybridIRError, ValueError):
    """A data file or record is malformed, missing or inconsistent."""


class ModelError(HybridIRError, ValueError):
    """A model name, file or checkpoint cannot be resolved or loaded."""


class ConfigError(HybridIRError, ValueError):
    """A configuration (CLI options, study YAML) is invalid."""
