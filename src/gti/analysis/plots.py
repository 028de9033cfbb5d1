"""Figures of the new-token embeddings (cosine map, singular value spectra, effective ranks) and of pool metrics.

Each function draws one figure with the Agg backend (no display, no pyplot state),
writes it as a PNG (atomically: temporary name, then rename) and returns its path.
"""

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gti.analysis.diagnostics import cosine_matrix
from gti.artifacts import atomic_write
from gti.errors import GtiError


def _save(figure: Figure, path: str | Path) -> Path:
    """Write `figure` as a PNG at `path` (parents created, atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write(path, buffer.getvalue())
    return path


HEATMAP_TITLE = "Cosine similarity: old vs new (SID) tokens"
SPECTRUM_FLOOR = 1e-7  # float32 resolves about 7 significant digits (eps 1.2e-7)


def plot_cosine_heatmap(
    embeddings: torch.Tensor | np.ndarray,
    new_token_ids: Sequence[int] | torch.Tensor | np.ndarray,
    path: str | Path,
    n: int = 50,
    seed: int = 0,
    title: str = HEATMAP_TITLE,
) -> Path:
    """Cosine similarity of n sampled old tokens and n sampled new (SID) tokens, old first.

    Args:
        embeddings: the full (V, H) input embedding matrix.
        new_token_ids: the row of each new token.
        path: where to write the PNG.
        n: tokens drawn from each group (fewer when a group is smaller).
        seed: seed for the draw.
        title: the figure's title; name the method and stage, e.g.
            "gti, grounded: cosine similarity of old and new (SID) tokens".

    Returns:
        The path written.
    """
    return _save(_cosine_heatmap_figure(embeddings, new_token_ids, n, seed, title), path)


def _cosine_heatmap_figure(embeddings, new_token_ids, n: int, seed: int, title: str) -> Figure:
    if isinstance(new_token_ids, torch.Tensor):
        new_token_ids = new_token_ids.cpu()
    new_ids = np.asarray(new_token_ids, dtype=np.int64).ravel()
    old_ids = np.setdiff1d(np.arange(embeddings.shape[0]), new_ids)
    if old_ids.size == 0 or new_ids.size == 0:
        raise GtiError("plot_cosine_heatmap needs both old and new token rows")
    rng = np.random.default_rng(seed)
    old_pick = np.sort(rng.choice(old_ids, size=min(n, old_ids.size), replace=False))
    new_pick = np.sort(rng.choice(new_ids, size=min(n, new_ids.size), replace=False))
    cosine = cosine_matrix(embeddings[np.concatenate([old_pick, new_pick])])  # (n_old + n_new,)*2

    figure = Figure(figsize=(6.4, 5.6))
    axes = figure.add_subplot()
    image = axes.imshow(cosine, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
    boundary = old_pick.size - 0.5
    axes.axhline(boundary, color="black", linewidth=1.2)
    axes.axvline(boundary, color="black", linewidth=1.2)
    ticks = [(old_pick.size - 1) / 2, old_pick.size + (new_pick.size - 1) / 2]
    axes.set_xticks(ticks, [f"old ({old_pick.size})", f"new SID ({new_pick.size})"])
    axes.set_yticks(ticks, [f"old ({old_pick.size})", f"new SID ({new_pick.size})"], rotation=90, va="center")
    axes.set_xlabel("token (sampled)")
    axes.set_ylabel("token (sampled)")
    figure.suptitle(title, fontsize=11, wrap=True)  # over the colorbar too: method and stage fit
    figure.colorbar(image, ax=axes, label="cosine")
    return figure


def plot_spectrum(spectra: dict[str, list[float]], path: str | Path, floor: float = SPECTRUM_FLOOR) -> Path:
    """Singular value spectra divided by their largest value, log scale, one line per label.

    Values below `floor` times the largest are rounding noise of float32 embeddings (a
    mean-initialized matrix has one true singular value and the rest fall to 1e-279 in
    float64 arithmetic), so they are not drawn and the y axis stops at the floor; a label
    says how many values of its spectrum are shown.

    Args:
        spectra: label (e.g. "mean/init", "gti/grounded") -> singular values, descending.
        path: where to write the PNG.
        floor: smallest value shown, relative to the largest.

    Returns:
        The path written.
    """
    return _save(_spectrum_figure(spectra, floor), path)


def _spectrum_figure(spectra: dict[str, list[float]], floor: float) -> Figure:
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.add_subplot()
    drawn, lowest, clipped = 0, 1.0, False
    for label, values in spectra.items():
        values = np.asarray(values, dtype=np.float64)
        if not values.size or values.max() <= 0:
            continue
        drawn += 1
        relative = np.sort(values)[::-1] / values.max()
        shown = relative[relative >= floor]
        lowest = min(lowest, float(shown[-1]))
        if shown.size < relative.size:
            clipped = True
            label = f"{label} ({shown.size} of {relative.size} above the floor)"
        axes.plot(np.arange(1, shown.size + 1), shown, label=label, marker="o" if shown.size < 4 else None)
    axes.set_yscale("log")
    axes.set_ylim((floor if clipped else lowest) / 2, 2.0)
    if clipped:  # where the values that are not drawn went
        axes.axhline(floor, color="grey", linestyle=":", linewidth=1.0)
        axes.annotate(f"floor: {floor:.0e} x largest (float32 precision)", (1.0, floor),
                      xycoords=("axes fraction", "data"), xytext=(-4, 3), textcoords="offset points", ha="right",
                      fontsize=7, color="grey")
    axes.set_xlabel("singular value index")
    axes.set_ylabel("singular value / largest")
    axes.set_title("Singular value spectrum of new-token embeddings")
    axes.grid(True, which="major", alpha=0.3)
    if drawn:
        axes.legend(fontsize=8)
    return figure


def _stage_order(ranks: dict[str, dict[str, float]]) -> list[str]:
    """Every stage once, each method's own order kept (init, grounded, finetuned)."""
    stages: list[str] = []
    for by_stage in ranks.values():
        previous = -1
        for stage in by_stage:
            if stage not in stages:
                stages.insert(previous + 1, stage)
            previous = stages.index(stage)
    return stages


def plot_effective_rank(ranks: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Grouped bars of effective rank: one group per method, one bar per stage.

    Args:
        ranks: method (e.g. "mean", "gti") -> stage (e.g. "init", "grounded") -> effective rank.
        path: where to write the PNG.

    Returns:
        The path written.
    """
    methods = list(ranks)
    stages = _stage_order(ranks)
    width = 0.8 / max(len(stages), 1)
    figure = Figure(figsize=(max(4.8, 1.6 * len(methods) + 2.0), 4.4))
    axes = figure.add_subplot()
    for index, stage in enumerate(stages):
        positions = [m for m, method in enumerate(methods) if stage in ranks[method]]
        heights = [ranks[methods[m]][stage] for m in positions]
        offsets = np.asarray(positions) + (index - (len(stages) - 1) / 2) * width
        bars = axes.bar(offsets, heights, width=width, label=stage)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(np.arange(len(methods)), methods)
    axes.set_xlabel("initialization method")
    axes.set_ylabel("effective rank")
    axes.set_title("Effective rank of new-token embeddings by stage")
    if stages:
        axes.legend(title="stage")
    return _save(figure, path)


def plot_pool_metrics(
    metrics: dict[str, dict[str, float]], path: str | Path, metric: str | Sequence[str] = "recall@10"
) -> Path:
    """Ranking metrics against candidate-pool size (log scale), one line per metric.

    Args:
        metrics: str(pool size) -> metric name -> value, as `gti.rec.pool.pool_metrics` returns.
        path: where to write the PNG.
        metric: the metric name, or names, to draw (e.g. "recall@10" or ["recall@10", "ndcg@10"]).

    Returns:
        The path written.

    Raises:
        GtiError: no pool sizes, no metric names, or a metric missing from some pool size.
    """
    names = [metric] if isinstance(metric, str) else list(metric)
    if not metrics or not names:
        raise GtiError("plot_pool_metrics needs at least one pool size and one metric name")
    sizes = sorted(metrics, key=int)
    missing = [(name, size) for name in names for size in sizes if name not in metrics[size]]
    if missing:
        name, size = missing[0]
        raise GtiError(f"metric {name!r} is missing for pool size {size}")
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.add_subplot()
    for name in names:
        axes.plot([int(size) for size in sizes], [metrics[size][name] for size in sizes], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("pool size (negatives per user)")
    axes.set_ylabel("metric")
    axes.set_title("Ranking metrics by candidate-pool size")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend()
    return _save(figure, path)


def _smoothed(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over `window` steps (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_training_curves(curves: dict[str, dict[str, list[float]]], path: str | Path, window: int = 10) -> Path:
    """Training loss by step, one panel per phase (e.g. grounding, fine-tuning), one line per method.

    Args:
        curves: phase -> method -> per-step losses; drawn as a `window`-step moving average.
    """
    phases = [phase for phase, lines in curves.items() if any(lines.values())]
    if not phases:
        raise GtiError("no training losses to plot")
    figure = Figure(figsize=(5.5 * len(phases), 3.6))
    for index, phase in enumerate(phases):
        axes = figure.add_subplot(1, len(phases), index + 1)
        for method, losses in curves[phase].items():
            if losses:
                axes.plot(np.arange(1, len(losses) + 1), _smoothed(losses, window), label=method)
        axes.set_title(f"{phase} loss ({window}-step mean)")
        axes.set_xlabel("step")
        axes.legend(fontsize=8)
    return _save(figure, path)
