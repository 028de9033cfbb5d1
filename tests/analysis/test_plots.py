"""Each plot writes one non-empty PNG."""

import numpy as np
import pytest
import torch

from gti.analysis import plot_cosine_heatmap, plot_effective_rank, plot_spectrum
from gti.analysis.plots import _stage_order, plot_pool_metrics
from gti.errors import GtiError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.stat().st_size > 0 and path.read_bytes()[:8] == PNG_MAGIC


def test_plot_cosine_heatmap(tmp_path):
    embeddings = torch.randn(120, 16)
    path = plot_cosine_heatmap(embeddings, torch.arange(100, 120), tmp_path / "maps" / "cosine.png", n=30)
    assert path == tmp_path / "maps" / "cosine.png" and _is_png(path)


def test_plot_spectrum(tmp_path):
    spectra = {"mean/init": [5.0, 1e-6, 0.0], "gti/grounded": list(np.linspace(3.0, 0.5, 10))}
    assert _is_png(plot_spectrum(spectra, tmp_path / "spectrum.png"))


def test_plot_effective_rank(tmp_path):
    ranks = {"mean": {"init": 1.0, "finetuned": 4.2}, "gti": {"init": 1.0, "grounded": 30.5, "finetuned": 28.0}}
    assert _is_png(plot_effective_rank(ranks, tmp_path / "rank.png"))


def test_stage_order_keeps_each_methods_order():
    ranks = {"mean": {"init": 1.0, "finetuned": 2.0}, "gti": {"init": 1.0, "grounded": 3.0, "finetuned": 2.5}}
    assert _stage_order(ranks) == ["init", "grounded", "finetuned"]


def test_plot_pool_metrics(tmp_path):
    metrics = {
        "1000": {"recall@10": 0.1, "ndcg@10": 0.05},
        "100": {"recall@10": 0.4, "ndcg@10": 0.2},
        "10": {"recall@10": 1.0, "ndcg@10": 0.6},
    }
    assert _is_png(plot_pool_metrics(metrics, tmp_path / "pool" / "recall.png"))
    assert _is_png(plot_pool_metrics(metrics, tmp_path / "both.png", metric=["recall@10", "ndcg@10"]))
    with pytest.raises(GtiError):
        plot_pool_metrics(metrics, tmp_path / "missing.png", metric="mrr")
