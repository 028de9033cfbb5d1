"""Embedding diagnostics and plots: what an initialization did to the new-token rows."""

from gti.analysis.diagnostics import (
    codebook_similarity,
    cosine_matrix,
    diagnose,
    effective_rank,
    hierarchy_rsa,
    hierarchy_similarity,
    mean_pairwise_cosine,
    nearest_old_tokens,
    rsa,
    singular_values,
)
from gti.analysis.plots import plot_cosine_heatmap, plot_effective_rank, plot_pool_metrics, plot_spectrum

__all__ = [
    "codebook_similarity",
    "cosine_matrix",
    "diagnose",
    "effective_rank",
    "hierarchy_rsa",
    "hierarchy_similarity",
    "mean_pairwise_cosine",
    "nearest_old_tokens",
    "plot_cosine_heatmap",
    "plot_effective_rank",
    "plot_pool_metrics",
    "plot_spectrum",
    "rsa",
    "singular_values",
]
