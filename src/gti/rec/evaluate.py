"""Evaluate a semantic-id recommender: constrained beam search, then leave-one-out ranking metrics."""

from dataclasses import dataclass

from transformers import PreTrainedModel

from gti.rec.beam import constrained_beam_search
from gti.rec.metrics import rank_of, ranking_metrics
from gti.sid.trie import SidTrie


@dataclass
class Evaluation:
    """Metrics over users, and per user the target's rank and the ranked items (rows, log-probabilities)."""

    metrics: dict[str, float]
    ranks: list[int | None]
    ranked: list[list[tuple[int, float]]]


def evaluate(
    model: PreTrainedModel,
    prompts: list[list[int]],
    target_rows: list[int],
    trie: SidTrie,
    token_ids: list,
    *,
    beams: int = 20,
    batch_size: int = 8,
    pad_token_id: int = 0,
    progress: bool = False,
    precision: str = "float32",
) -> Evaluation:
    """Rank the catalog for each prompt by trie-constrained beam search and score the targets.

    Items the beam does not return count as misses, so `beams` should be at least the largest K.
    `precision` is the layers' (see `constrained_beam_search`); scores are float32 either way.
    """
    ranked = constrained_beam_search(
        model, prompts, trie, token_ids, beams=beams, batch_size=batch_size, pad_token_id=pad_token_id,
        progress=progress, precision=precision,
    )
    ranks = [rank_of(target, [row for row, _ in beams_]) for target, beams_ in zip(target_rows, ranked)]
    ks = tuple(k for k in (1, 5, 10, 20) if k <= beams)
    return Evaluation(ranking_metrics(ranks, ks), ranks, ranked)
