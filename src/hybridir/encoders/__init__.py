"""Encoders: what turns text into vectors and what acts on those vectors afterwards (language centering)."""

#: the inference paths of :mod:`.encoding`: backend -> its precisions. Here rather than in encoding.py, which imports
#: torch, so that the command line offers them as choices and still answers ``--help`` in well under a second.
PRECISIONS: dict[str, tuple[str, ...]] = {"torch": ("fp32", "bf16", "int8"),
                                          "openvino": ("fp32", "bf16", "int8w", "int8")}  # fmt: skip
#: ``--backend`` and ``--precision`` choices: ``auto`` and each one once (openvino's order first: it has them all)
BACKEND_CHOICES = ("auto", *PRECISIONS)
PRECISION_CHOICES = ("auto", *dict.fromkeys(p for ps in reversed(PRECISIONS.values()) for p in ps))
