import numpy as np
import pytest

from gti.errors import GtiError
from gti.sid import disambiguate, rq_kmeans


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
