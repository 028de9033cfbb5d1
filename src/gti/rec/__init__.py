"""Recommendation from a semantic-id language model: constrained beam search, catalog scoring, metrics."""

from gti.rec.beam import constrained_beam_search, level_token_ids, score_items
from gti.rec.evaluate import Evaluation, evaluate
from gti.rec.metrics import rank_of, ranking_metrics

__all__ = ["Evaluation", "evaluate", "constrained_beam_search", "level_token_ids", "rank_of", "ranking_metrics", "score_items"]
