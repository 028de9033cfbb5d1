"""Candidate-pool scoring and ranks against plain full-sequence forward passes on the tiny model, and pool metrics."""

import math

import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.rec import pool_ranks, score_candidates
from gti.rec.pool import pool_metrics, rank_in_pool
from gti.rec.ties import tie_key


def full_sequence_scores(model, prompt: list[int], codes: np.ndarray, token_ids: list[torch.Tensor]) -> torch.Tensor:
    """Each item's SID log-likelihood from one uncached forward pass over prompt + SID."""
    codes = torch.as_tensor(codes)
    sids = torch.stack([ids[codes[:, level]] for level, ids in enumerate(token_ids)], 1)  # (N, L)
    sequences = torch.cat([torch.tensor(prompt).expand(len(codes), -1), sids], dim=1)  # (N, T+L)
    with torch.no_grad():
        log_probs = model(input_ids=sequences).logits.log_softmax(-1)  # (N, T+L, V)
    predicted = log_probs[:, len(prompt) - 1 : -1]  # (N, L, V) distributions of the SID positions
    return predicted.gather(-1, sids[..., None])[..., 0].sum(-1)  # (N,)


def test_score_candidates_equals_plain_forward(sid_setup, catalog):
    model, prompts, _, token_ids = sid_setup
    rows = [7, 0, 3, 3, 11]
    for prompt in prompts[:2]:
        scores = score_candidates(model, prompt, rows, catalog, token_ids, batch_size=2)
        expected = full_sequence_scores(model, prompt, catalog[rows], token_ids)
        torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)


def test_pool_of_the_whole_catalog_gives_the_full_rank(sid_setup, catalog):
    """pool_size = N - 1: every other item is a negative, so the rank is the full-catalog rank."""
    model, prompts, _, token_ids = sid_setup
    targets = [0, 5, 11, 5]
    ranks = pool_ranks(model, prompts, targets, catalog, token_ids, len(catalog) - 1, len(catalog), seed=0)
    for prompt, target, rank in zip(prompts, targets, ranks):
        scores = full_sequence_scores(model, prompt, catalog, token_ids)
        assert rank == int((scores >= scores[target]).sum())
    assert len(set(ranks)) > 1


def test_small_pools_are_seeded_subsets(sid_setup, catalog):
    """A pool is a subset of the catalog, so the pool rank never exceeds the full rank."""
    model, prompts, _, token_ids = sid_setup
    prompts, targets, n = prompts[:2], [8, 10], len(catalog)
    full = pool_ranks(model, prompts, targets, catalog, token_ids, n - 1, n, seed=0)
    runs = [pool_ranks(model, prompts, targets, catalog, token_ids, 4, n, seed=seed) for seed in (0, 0, 1, 2)]
    assert runs[0] == runs[1]
    assert len({tuple(ranks) for ranks in runs}) > 1
    for ranks in runs:
        assert all(1 <= rank <= min(5, full_rank) for rank, full_rank in zip(ranks, full))


def test_ties_follow_the_tie_key_not_the_row(sid_setup, catalog):
    """Zero output embeddings give every SID the same score: each target's rank is its place in tie-key order."""
    model, prompts, _, token_ids = sid_setup
    with torch.no_grad():
        model.lm_head.weight.zero_()
    n = len(catalog)
    targets = list(range(n))
    ranks = pool_ranks(model, prompts * 3, targets, catalog, token_ids, n - 1, n, seed=0)
    keys = tie_key(torch.arange(n))
    assert ranks == [1 + int((keys < keys[target]).sum()) for target in targets]
    assert sorted(ranks) == list(range(1, n + 1))
    assert ranks != [target + 1 for target in targets]  # index order would rank row 0 first
    assert ranks[0] != 1 and ranks[-1] != n


def test_rank_in_pool_by_hand():
    """Higher scores rank above the target; equal ones only when their key is lower."""
    rows = torch.tensor([5, 9, 2, 7, 3])
    keys = tie_key(rows)
    scores = torch.tensor([0.5, 0.9, 0.5, 0.5, 0.1])
    expected = 1 + 1 + int(keys[2] < keys[0]) + int(keys[3] < keys[0])
    assert rank_in_pool(scores, rows) == expected


def test_tie_key_over_catalog_rows_is_distinct_and_unrelated_to_the_row():
    rows = torch.arange(100_000)
    keys = tie_key(rows)
    assert keys.dtype == torch.int64 and int(keys.min()) >= 0 and int(keys.max()) < 2**32
    assert len(torch.unique(keys)) == len(rows)  # a bijection of 32-bit integers
    assert tie_key(torch.tensor([0, 1, 2])).tolist() == keys[:3].tolist()  # the same key in any batch
    order = torch.argsort(keys).float()  # rows in tie-break order
    correlation = torch.corrcoef(torch.stack([order, rows.float()]))[0, 1]
    assert abs(float(correlation)) < 0.02
    first_half_wins = (keys[: len(rows) // 2, None] < keys[None, len(rows) // 2 :: 97]).float().mean()
    assert abs(float(first_half_wins) - 0.5) < 0.02  # low rows win about half of their ties with high rows


def test_negatives_come_from_the_first_n_items(sid_setup, catalog):
    """n_items = 3: the pool of target 0 is exactly rows 1 and 2."""
    model, prompts, _, token_ids = sid_setup
    scores = full_sequence_scores(model, prompts[0], catalog[:3], token_ids)
    ranks = pool_ranks(model, prompts[:1], [0], catalog, token_ids, 2, 3, seed=9)
    assert ranks == [1 + int((scores[1:] >= scores[0]).sum())]


def test_rejects_bad_arguments(sid_setup, catalog):
    model, prompts, _, token_ids = sid_setup
    n = len(catalog)
    with pytest.raises(GtiError, match="pool_size"):
        pool_ranks(model, prompts[:1], [0], catalog, token_ids, n, n, seed=0)
    with pytest.raises(GtiError, match="n_items"):
        pool_ranks(model, prompts[:1], [0], catalog, token_ids, 2, n + 1, seed=0)
    with pytest.raises(GtiError, match="targets"):
        pool_ranks(model, prompts[:1], [n], catalog, token_ids, 2, n, seed=0)
    with pytest.raises(GtiError, match="prompts"):
        pool_ranks(model, prompts, [0], catalog, token_ids, 2, n, seed=0)
    with pytest.raises(GtiError, match="candidate rows"):
        score_candidates(model, prompts[0], [n], catalog, token_ids)


def test_pool_metrics_by_hand():
    """Ranks 1, 3, 7, 12 in pools of 100 and 1, 1, 2, 30 in pools of 10."""
    metrics = pool_metrics({100: [1, 3, 7, 12], 10: [1, 1, 2, 30]}, ks=(1, 5, 10))
    assert list(metrics) == ["10", "100"]
    big = metrics["100"]
    assert big["precision@1"] == pytest.approx(0.25) and big["recall@1"] == pytest.approx(0.25)
    assert big["precision@5"] == pytest.approx(0.5 / 5) and big["recall@5"] == pytest.approx(0.5)
    assert big["precision@10"] == pytest.approx(0.75 / 10) and big["recall@10"] == pytest.approx(0.75)
    assert big["ndcg@1"] == pytest.approx(0.25)
    assert big["ndcg@5"] == pytest.approx((1 + 1 / 2) / 4)
    assert big["ndcg@10"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    small = metrics["10"]
    assert small["precision@1"] == pytest.approx(0.5) and small["recall@1"] == pytest.approx(0.5)
    assert small["precision@5"] == pytest.approx(0.15) and small["recall@5"] == pytest.approx(0.75)
    assert small["ndcg@5"] == pytest.approx((2 + 1 / math.log2(3)) / 4)
    assert set(small) == {f"{name}@{k}" for name in ("precision", "recall", "ndcg") for k in (1, 5, 10)}


def test_pool_metrics_rejects_a_zero_cutoff():
    with pytest.raises(GtiError):
        pool_metrics({10: [1]}, ks=(0,))
