import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.sid.rqvae import rq_vae, sinkhorn_assign


def clusters(n_clusters: int, per_cluster: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs: (N, dim) points and (N,) cluster labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, dim)) * 10
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    return (centers[labels] + rng.normal(size=(len(labels), dim)) * 0.1).astype(np.float32), labels


def test_level_0_recovers_clusters():
    x, labels = clusters(4, 50)
    result = rq_vae(x, levels=2, codes=4, epochs=20, batch_size=64, hidden=(32,), latent=8)
    assert result.codes.shape == (200, 2) and result.codes.dtype == np.int64
    assert [book.shape for book in result.codebooks] == [(4, 8), (4, 8)]
    assert result.latent.shape == (200, 8) and result.reconstruction.shape == x.shape
    for cluster in range(4):
        share = np.bincount(result.codes[labels == cluster, 0]).max() / 50
        assert share >= 0.9


def test_deterministic():
    x, _ = clusters(3, 20)
    runs = [rq_vae(x, levels=2, codes=3, seed=5, epochs=3, batch_size=16, hidden=(16,), latent=4) for _ in range(2)]
    assert np.array_equal(runs[0].codes, runs[1].codes)
    assert np.array_equal(runs[0].reconstruction, runs[1].reconstruction)


def test_sinkhorn_assign_balances_skewed_distances():
    generator = torch.Generator().manual_seed(0)
    distances = torch.rand(400, 4, generator=generator)
    distances[:, 0] -= 0.5  # code 0 is nearest for almost every point
    assert torch.bincount(distances.argmin(1), minlength=4).max() > 250
    assert torch.bincount(sinkhorn_assign(distances), minlength=4).max() < 150


def test_sinkhorn_spreads_last_level():
    x, _ = clusters(1, 200)
    x[:20] += 5.0  # one small far group and one large tight one: the nearest code is skewed
    usage = {}
    for sinkhorn in (False, True):
        codes = rq_vae(x, levels=1, codes=4, epochs=5, batch_size=64, hidden=(16,), latent=4, sinkhorn=sinkhorn).codes
        usage[sinkhorn] = np.bincount(codes[:, 0], minlength=4)
    assert usage[True].max() < usage[False].max()


def test_rejects_bad_sizes():
    x, _ = clusters(2, 3)
    with pytest.raises(GtiError, match="6 items but the codebook asks for 8 codes"):
        rq_vae(x, levels=1, codes=8)
    with pytest.raises(GtiError, match="at least 1"):
        rq_vae(x, levels=0, codes=2)


def test_rq_vae_is_bit_identical_from_run_to_run():
    """The codebook gather's backward used to be a scatter-add whose order varied between runs."""
    import numpy as np

    from gti.sid.rqvae import rq_vae

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 96)).astype(np.float32)
    first, second = (rq_vae(x, 3, 32, seed=0, epochs=8) for _ in range(2))
    assert np.array_equal(first.codes, second.codes)
    assert all(np.array_equal(a, b) for a, b in zip(first.codebooks, second.codebooks))
