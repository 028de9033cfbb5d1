import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.sid import disambiguate, rq_kmeans, sid_report
from gti.sid.quantize import balanced_assign, code_capacity


def clustered(n_per_cluster: int = 40, n_clusters: int = 4, dim: int = 8, seed: int = 0):
    """Well-separated Gaussian blobs and each point's true cluster."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim)) * 20
    labels = np.repeat(np.arange(n_clusters), n_per_cluster)
    x = centers[labels] + rng.standard_normal((len(labels), dim)) * 0.1
    return x.astype(np.float32), labels


def test_recovers_separated_clusters():
    x, labels = clustered()
    codes, codebooks = rq_kmeans(x, levels=2, codes=4, seed=0)
    assert codes.shape == (len(x), 2) and codes.dtype == np.int64
    assert [book.shape for book in codebooks] == [(4, 8), (4, 8)]
    assert codebooks[0].dtype == np.float32
    # level 0 is a relabelling of the true clusters: one code per cluster, all different
    mapping = {label: set(codes[labels == label, 0]) for label in range(4)}
    assert all(len(found) == 1 for found in mapping.values())
    assert len(set.union(*mapping.values())) == 4
    # level 1 quantizes the small residuals: their centroids are near zero
    assert np.abs(codebooks[1]).max() < 1.0


def test_deterministic_for_a_seed():
    x = np.random.default_rng(1).standard_normal((200, 6)).astype(np.float32)
    first, books_first = rq_kmeans(x, levels=3, codes=8, seed=7)
    again, books_again = rq_kmeans(x, levels=3, codes=8, seed=7)
    assert np.array_equal(first, again)
    assert all(np.array_equal(a, b) for a, b in zip(books_first, books_again))


def test_duplicate_points_do_not_break_kmeans():
    x = np.repeat(np.eye(3, dtype=np.float32), 5, axis=0)  # 3 distinct points, 5 copies each
    codes, _ = rq_kmeans(x, levels=2, codes=4, seed=0)
    assert codes.shape == (15, 2)
    assert len(np.unique(codes[:, 0])) == 3


def test_fewer_items_than_codes():
    with pytest.raises(GtiError, match="catalog has 5 items but the codebook asks for 8 codes"):
        rq_kmeans(np.zeros((5, 3), dtype=np.float32), levels=2, codes=8)


def test_disambiguate_counts_within_groups_in_row_order():
    codes = np.array([[1, 2], [1, 2], [0, 0], [1, 2], [0, 0], [3, 3]])
    result = disambiguate(codes)
    assert result.dtype == np.int64
    assert np.array_equal(result[:, :2], codes)
    assert result[:, 2].tolist() == [0, 1, 0, 2, 1, 0]
    assert len(np.unique(result, axis=0)) == len(result)


def unbalanced(n_items: int = 500, dim: int = 8, seed: int = 0) -> np.ndarray:
    """30% of the items in one tight blob, the rest spread wide: plain k-means spends its codes on the
    wide part (most of the squared error) and piles the tight blob onto one code tuple."""
    rng = np.random.default_rng(seed)
    n_tight = int(0.3 * n_items)
    tight = rng.standard_normal((n_tight, dim)) * 0.05
    wide = rng.standard_normal((n_items - n_tight, dim)) * 2
    return np.concatenate([tight, wide])[rng.permutation(n_items)].astype(np.float32)


def test_balanced_caps_every_code_and_collides_less():
    x = unbalanced()
    plain, plain_books = rq_kmeans(x, levels=2, codes=64, seed=0)
    balanced, books = rq_kmeans(x, levels=2, codes=64, seed=0, slack=1.1)
    cap = code_capacity(len(x), 64, 1.1)
    assert cap == 9  # ceil(500 / 64 * 1.1)
    before = sid_report(plain, [64, 64], x, plain_books, {})
    after = sid_report(balanced, [64, 64], x, books, {})
    assert before["largest_code_per_level"][0] > 100  # the tight blob overfills a plain code
    assert max(after["largest_code_per_level"]) <= cap
    assert after["collision_rate"] <= before["collision_rate"]
    assert after["max_group_size"] <= cap < before["max_group_size"]
    # each balanced centroid is the mean of its items, so the residuals stay exact
    members = balanced[:, 0] == balanced[0, 0]
    assert np.allclose(books[0][balanced[0, 0]], x[members].mean(0), atol=1e-5)


def test_balanced_deterministic_for_a_seed():
    x = unbalanced(seed=3)
    first, books_first = rq_kmeans(x, levels=3, codes=8, seed=5, slack=1.0)
    again, books_again = rq_kmeans(x, levels=3, codes=8, seed=5, slack=1.0)
    assert np.array_equal(first, again)
    assert all(np.array_equal(a, b) for a, b in zip(books_first, books_again))
    assert np.bincount(first[:, 0]).max() <= code_capacity(len(x), 8, 1.0) == 63


def test_balanced_assign_keeps_the_points_with_most_to_lose():
    # code 0 is nearest for all three points but holds two; point 2 loses least by moving (margin 0.5)
    distances = torch.tensor([[0.0, 5.0], [1.0, 4.0], [0.0, 0.5]])
    assert balanced_assign(distances, capacity=2).tolist() == [0, 0, 1]
    assert balanced_assign(distances, capacity=3).tolist() == [0, 0, 0]
    with pytest.raises(GtiError, match="2 codes of capacity 1 cannot hold 3 points"):
        balanced_assign(distances, capacity=1)


def test_balanced_rejects_a_slack_below_one():
    with pytest.raises(GtiError, match="slack must be at least 1.0"):
        rq_kmeans(np.zeros((8, 2), dtype=np.float32), levels=1, codes=2, slack=0.9)
