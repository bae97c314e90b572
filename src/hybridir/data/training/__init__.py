"""Training sources: each returns the one training data model, :class:`.items.TrainingData`; ``sources.py`` is the
``--data`` dispatch over them (``hybridir.data``'s docstring says what lives where)."""
