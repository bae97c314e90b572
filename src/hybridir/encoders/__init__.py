"""Encoders: what turns text into vectors and what acts on those vectors afterwards (language centering)."""
