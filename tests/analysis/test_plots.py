"""Each plot writes one non-empty PNG."""

import numpy as np
import pytest
import torch

from gti.analysis import plot_cosine_heatmap, plot_effective_rank, plot_spectrum
from gti.analysis.plots import (
    HEATMAP_TITLE,
    SPECTRUM_FLOOR,
    _cosine_heatmap_figure,
    _spectrum_figure,
    _stage_order,
    plot_pool_metrics,
)
from gti.errors import GtiError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.stat().st_size > 0 and path.read_bytes()[:8] == PNG_MAGIC


def test_plot_cosine_heatmap(tmp_path):
    embeddings = torch.randn(120, 16)
    path = plot_cosine_heatmap(embeddings, torch.arange(100, 120), tmp_path / "maps" / "cosine.png", n=30)
    assert path == tmp_path / "maps" / "cosine.png" and _is_png(path)


def test_plot_cosine_heatmap_title_names_method_and_stage(tmp_path):
    embeddings = torch.randn(120, 16)
    figure = _cosine_heatmap_figure(embeddings, torch.arange(100, 120), 30, 0, "gti, grounded: cosine")
    assert figure.get_suptitle() == "gti, grounded: cosine"
    assert _cosine_heatmap_figure(embeddings, torch.arange(100, 120), 30, 0, HEATMAP_TITLE).get_suptitle()
    path = plot_cosine_heatmap(embeddings, torch.arange(100, 120), tmp_path / "c.png", title="mean, init: cosine")
    assert _is_png(path)


def test_plot_spectrum(tmp_path):
    spectra = {"mean/init": [5.0, 1e-6, 0.0], "gti/grounded": list(np.linspace(3.0, 0.5, 10))}
    assert _is_png(plot_spectrum(spectra, tmp_path / "spectrum.png"))


def test_spectrum_drops_values_below_float_precision():
    """A mean-init spectrum: one real value, the rest rounding noise down to 1e-279."""
    spectra = {"mean/init": [8e7, 3.0, 1e-3, 1e-279], "gti/grounded": [4.0, 2.0, 1.0, 0.5]}
    axes = _spectrum_figure(spectra, SPECTRUM_FLOOR).axes[0]
    mean_line, gti_line = axes.lines[:2]
    assert list(mean_line.get_ydata()) == [1.0]  # 3 / 8e7 = 3.75e-8 is below the floor
    assert list(gti_line.get_ydata()) == [1.0, 0.5, 0.25, 0.125]
    low, high = axes.get_ylim()
    assert low == pytest.approx(SPECTRUM_FLOOR / 2) and high == pytest.approx(2.0)
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["mean/init (1 of 4 above the floor)", "gti/grounded"]


def test_spectrum_limits_follow_the_values_when_nothing_is_dropped():
    axes = _spectrum_figure({"gti/grounded": [4.0, 2.0, 0.04]}, SPECTRUM_FLOOR).axes[0]
    assert axes.get_ylim()[0] == pytest.approx(0.005) and len(axes.lines) == 1  # no floor line


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
