"""Candidate-pool evaluation: rank each user's target among sampled negatives by SID log-likelihood.

A cheaper, noisier protocol than ranking the whole catalog: each user's target is scored
with `pool_size` items drawn at random without it, and its rank in that pool is reported.
Scores come from `score_items`, so each prompt runs once and its KV cache is shared by
all of its candidates. `pool_metrics` turns the ranks of several pool sizes into metrics.
"""

import numpy as np
import torch
from transformers import PreTrainedModel

from gti.errors import GtiError
from gti.rec.beam import score_items
from gti.rec.metrics import ranking_metrics
from gti.rec.ties import tie_key


def score_candidates(
    model: PreTrainedModel,
    prompt: list[int],
    candidate_rows: list[int],
    codes: np.ndarray,
    token_ids: list[torch.Tensor],
    batch_size: int = 256,
    precision: str = "float32",
) -> torch.Tensor:
    """Log-likelihood of some items' semantic ids given one prompt.

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompt: token ids of the prompt, without padding.
        candidate_rows: catalog rows of the items to score.
        codes: (N, L) codes of the whole catalog.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        batch_size: items per forward pass.
        precision: the layers' precision (see `score_items`).

    Returns:
        (C,) float32 total log-probability of each candidate's SID tokens, in `candidate_rows` order, on the CPU.
    """
    codes = np.asarray(codes)
    rows = np.asarray(candidate_rows, dtype=np.int64)
    if rows.ndim != 1 or len(rows) == 0 or rows.min() < 0 or rows.max() >= len(codes):
        raise GtiError(f"candidate rows must be a non-empty list of catalog rows in [0, {len(codes)})")
    return score_items(model, prompt, codes[rows], token_ids, batch_size=batch_size, precision=precision)


def pool_ranks(
    model: PreTrainedModel,
    prompts: list[list[int]],
    targets: list[int],
    codes: np.ndarray,
    token_ids: list[torch.Tensor],
    pool_size: int,
    n_items: int,
    seed: int,
    batch_size: int = 256,
    precision: str = "float32",
) -> list[int]:
    """The target's rank among sampled negatives, for each user.

    One generator seeded with `seed` draws every user's negatives in turn, so the pools are
    reproducible. A negative scoring the same as the target ranks above it iff its tie key is
    lower (`gti.rec.ties.tie_key`, the project's one tie rule).

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompts: token ids of each user's prompt, without padding.
        targets: each user's held-out item row.
        codes: (N, L) codes of the catalog.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        pool_size: negatives per user, drawn without replacement from rows [0, n_items) minus the target.
        n_items: number of catalog rows to draw negatives from (at most N).
        seed: seed of the negative sampler.
        batch_size: items per forward pass.
        precision: the layers' precision (see `score_items`).

    Returns:
        Per user, the target's 1-based rank among itself and its `pool_size` negatives.
    """
    if len(prompts) != len(targets):
        raise GtiError(f"got {len(prompts)} prompts but {len(targets)} targets")
    if not 0 < n_items <= len(codes):
        raise GtiError(f"n_items must lie in [1, {len(codes)}], the catalog size, got {n_items}")
    if not 0 < pool_size < n_items:
        raise GtiError(f"pool_size must lie in [1, {n_items - 1}] for a catalog of {n_items} items, got {pool_size}")
    if any(not 0 <= target < n_items for target in targets):
        raise GtiError(f"targets must be item rows in [0, {n_items})")
    rng = np.random.default_rng(seed)
    ranks = []
    for prompt, target in zip(prompts, targets):
        negatives = rng.choice(n_items - 1, size=pool_size, replace=False)  # (P,) rows of the catalog minus target
        negatives = negatives + (negatives >= target)  # skip the target's row
        rows = [target, *negatives.tolist()]
        scores = score_candidates(model, prompt, rows, codes, token_ids, batch_size, precision)  # (P+1,)
        ranks.append(rank_in_pool(scores, torch.tensor(rows)))
    return ranks


def rank_in_pool(scores: torch.Tensor, rows: torch.Tensor) -> int:
    """The 1-based rank of the first candidate (the target) among all of them.

    Args:
        scores: (P+1,) scores, the target's first.
        rows: (P+1,) catalog rows of the same candidates.

    Returns:
        1 + the negatives that score higher, + those that score the same with a lower tie key.
    """
    keys = tie_key(rows)  # (P+1,)
    above = scores[1:] > scores[0]
    tied_above = (scores[1:] == scores[0]) & (keys[1:] < keys[0])
    return 1 + int((above | tied_above).sum())


def pool_metrics(
    ranks_by_size: dict[int, list[int]], ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, dict[str, float]]:
    """Precision@k, Recall@k and NDCG@k of the pool ranks, for each pool size.

    With one relevant item per user, Precision@k is the hit rate divided by k; Recall@k and
    NDCG@k are those of `ranking_metrics`.

    Args:
        ranks_by_size: pool size -> per user, the target's 1-based rank in its pool (see `pool_ranks`).
        ks: cut-offs.

    Returns:
        str(pool size) -> {"precision@k": ..., "recall@k": ..., "ndcg@k": ... for each k}, pool sizes ascending;
        all 0.0 for a size with no users.
    """
    if any(k < 1 for k in ks):
        raise GtiError(f"cut-offs must be at least 1, got {list(ks)}")
    by_size = {}
    for size in sorted(ranks_by_size):
        ranked = ranking_metrics(list(ranks_by_size[size]), ks)
        metrics: dict[str, float] = {}
        for k in ks:
            metrics[f"precision@{k}"] = ranked[f"recall@{k}"] / k
            metrics[f"recall@{k}"] = ranked[f"recall@{k}"]
            metrics[f"ndcg@{k}"] = ranked[f"ndcg@{k}"]
        by_size[str(size)] = metrics
    return by_size
