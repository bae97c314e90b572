"""Retrieval structures over encoded passages: approximate indexes built from vectors on disk (:mod:`.ann`)."""
