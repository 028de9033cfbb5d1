"""Leave-one-out ranking metrics: one held-out target item per user."""

import math


def rank_of(target_row: int, ranked_rows: list[int]) -> int | None:
    """The 1-based rank of `target_row` in `ranked_rows`, or None when it is absent."""
    for position, row in enumerate(ranked_rows, start=1):
        if row == target_row:
            return position
    return None


def ranking_metrics(ranks: list[int | None], ks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
    """Recall@k, NDCG@k and MRR averaged over users.

    With a single relevant item per user, recall@k is the hit rate and the ideal DCG
    is 1, so NDCG@k is 1 / log2(rank + 1) when rank <= k, else 0. An absent target
    (rank None) is a miss everywhere, MRR included.

    Args:
        ranks: per user, the 1-based rank of the target, or None.
        ks: cut-offs.

    Returns:
        {"recall@k": ..., "ndcg@k": ... for each k, "mrr": ...}; all 0.0 for no users.
    """
    n_users = max(len(ranks), 1)
    metrics: dict[str, float] = {}
    for k in ks:
        hits = [rank for rank in ranks if rank is not None and rank <= k]
        metrics[f"recall@{k}"] = len(hits) / n_users
        metrics[f"ndcg@{k}"] = sum(1 / math.log2(rank + 1) for rank in hits) / n_users
    metrics["mrr"] = sum(1 / rank for rank in ranks if rank is not None) / n_users
    return metrics
