"""Evaluation: :func:`~hybridir.evaluation.evaluate.evaluate` runs one benchmark (:mod:`.benchmarks`, one module
each) through its scoring protocol (:mod:`.scoring`) with the options of :class:`.config.EvalConfig` and writes
results.json / results.md (:mod:`.report`); :mod:`.metrics` holds the metric definitions, :mod:`.bm25` the lexical
baseline."""
