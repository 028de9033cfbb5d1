"""Names the report's modules share (a leaf: it imports nothing)."""

STAGES = ("init", "grounded", "finetuned")
"""Stage labels of the new rows' diagnostics, in pipeline order."""
SHOWN_METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr")
"""Metrics shown in tables (`mrr` is the reciprocal rank within the beams: 0 for a target outside them)."""
