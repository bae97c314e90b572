"""Evaluation readers: each returns an :class:`.evalset.EvalSet` for ``hybridir.evaluation``'s benchmarks
(``hybridir.data``'s docstring says what lives where)."""
