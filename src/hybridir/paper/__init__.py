"""The hybrid-batch paper's layer (arXiv 2408.10536): what answers this project's research questions, on top of
the toolkit.

- :mod:`.analyses`: the question-specific sections of a study summary (the paper's claims, its published numbers,
  seen / unseen languages, the high-resource check, gains by model size, the recipe choice);
- :mod:`.centering_choice`, :mod:`.projection_choice`: the dev-data rules behind the shipped defaults
  (``hybridir choose-centering`` / ``choose-projection``, registered by :mod:`.commands`).

The toolkit finds this package by name only (:mod:`hybridir.infra.layers`); deleting it changes no command but
those two and the sections above. Nothing is imported here, so that ``hybridir --help`` stays fast.
"""
