"""Recommendation from a semantic-id language model: constrained beam search, catalog and pool scoring,
ranking metrics with their uncertainty, and measures of the recommendations themselves."""

from gti.rec.beam import constrained_beam_search, level_token_ids, score_items
from gti.rec.evaluate import Evaluation, evaluate
from gti.rec.metrics import rank_of, ranking_metrics
from gti.rec.output import catalog_coverage, invalid_sid_rate, popularity_bias
from gti.rec.pool import pool_metrics, pool_ranks, score_candidates
from gti.rec.stats import CI_METHOD, bootstrap_ci, holm, metric_ci, paired_test, per_user_values, wilson_ci
from gti.rec.ties import tie_key

__all__ = [
    "Evaluation",
    "CI_METHOD",
    "bootstrap_ci",
    "metric_ci",
    "wilson_ci",
    "catalog_coverage",
    "constrained_beam_search",
    "evaluate",
    "holm",
    "invalid_sid_rate",
    "level_token_ids",
    "paired_test",
    "per_user_values",
    "pool_metrics",
    "pool_ranks",
    "popularity_bias",
    "rank_of",
    "ranking_metrics",
    "score_candidates",
    "score_items",
    "tie_key",
]
