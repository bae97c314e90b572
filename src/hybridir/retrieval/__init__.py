"""Retrieval over your own collection: corpus readers, the faiss index (built by one or many processes), search into
TREC run files and the side-by-side comparison page."""
