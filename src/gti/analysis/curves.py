"""Budget curves (a metric against fine-tuning steps and against training tokens, one line per method) and
validation curves (each method's validation measure as it trained: did it converge?)."""

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from gti.analysis.plots import _save

_COLORS = {"mean": "#1f77b4", "gti": "#d62728", "lcrec": "#2ca02c", "gti+lcrec": "#9467bd",
           "text": "#ff7f0e", "random": "#8c564b", "mean-hf": "#17becf", "rows-first": "#6a3d9a",
           "mean-rowlr": "#7f7f7f", "scratch": "#bcbd22", "sasrec": "#e377c2"}


def plot_budget_curves(
    curves: dict[str, list[dict]], path: str | Path, metrics: Sequence[str] = ("recall@10", "ndcg@10")
) -> Path:
    """One row per metric; left against fine-tuning steps, right against training tokens (grounding included).

    Args:
        curves: method -> its `by_budget` points ({"finetune_steps", "train_tokens", "metrics", "ci"}).
        path: where to write the PNG.
        metrics: the metrics drawn, each with its 95% CI as a band.

    Returns:
        The path written.
    """
    most = max((p["train_tokens"] for points in curves.values() for p in points), default=0)
    scale, unit = next((s, u) for s, u in ((1e6, " (millions)"), (1e3, " (thousands)"), (1, "")) if most >= 10 * s or s == 1)
    figure = Figure(figsize=(11, 3.6 * len(metrics)))
    axes = figure.subplots(len(metrics), 2, squeeze=False)
    for row, metric in enumerate(metrics):
        for column, (x_key, x_label, divisor) in enumerate([("finetune_steps", "fine-tuning steps", 1),
                                                            ("train_tokens", f"training tokens{unit}", scale)]):
            ax = axes[row][column]
            for index, (method, points) in enumerate(curves.items()):
                color = _COLORS.get(method, f"C{index}")
                xs = [p[x_key] / divisor for p in points]
                ax.plot(xs, [p["metrics"][metric] for p in points], marker="o", color=color, label=method)
                low = [p["ci"][metric][0] for p in points]
                high = [p["ci"][metric][1] for p in points]
                ax.fill_between(xs, low, high, color=color, alpha=0.15, linewidth=0)
            ax.set_xlabel(x_label)
            ax.set_ylabel(metric)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.set_title(f"{metric} vs {x_label.split(' (')[0]}")
            if row == 0 and column == 0:
                ax.legend(loc="upper left")
    figure.text(0.5, -0.01, "bands: 95% CI over users (recall: Wilson score; NDCG: bootstrap); tokens: prompt + answer, padding excluded, every "
                "training stage (grounding included)", ha="center", fontsize=8, color="#555")
    figure.tight_layout()
    return _save(figure, path)


def plot_grounding_curve(
    points: dict[str, list[dict]], path: str | Path, anchor: dict | None = None, metric: str = "recall@10"
) -> Path:
    """What grounding costs against what it gains: `metric` by grounding steps (left) and by training tokens (right).

    Args:
        points: method -> its points, each {"ground_steps", "train_tokens", "value", "ci": [low, high]}.
        path: where to write the PNG.
        anchor: a method without grounding drawn as a horizontal line with its CI band, {"name", "value", "ci"}.
        metric: the metric's name, for the axis labels.

    Returns:
        The path written.
    """
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2)
    for ax, (x_key, x_label, divisor) in zip(axes, [("ground_steps", "grounding steps", 1),
                                                      ("train_tokens", "training tokens (thousands)", 1e3)]):
        for index, (method, series) in enumerate(points.items()):
            series = sorted(series, key=lambda p: p["ground_steps"])
            color = _COLORS.get(method, f"C{index + 3}")
            # on the log steps axis the methods are dodged a little apart so that their CI bars do not overlap
            dodge = 1.06 ** (index - (len(points) - 1) / 2) if x_key == "ground_steps" else 1.0
            xs = [p[x_key] / divisor * dodge for p in series]
            ys = [p["value"] for p in series]
            errors = [[y - p["ci"][0] for y, p in zip(ys, series)], [p["ci"][1] - y for y, p in zip(ys, series)]]
            ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=4, color=color, label=method)
            if x_key == "ground_steps":
                offset = (8, 6) if index % 2 else (-40, -12)
                for x, y in zip(xs, ys):
                    ax.annotate(f"{y:.4f}", (x, y), textcoords="offset points", xytext=offset, fontsize=8, color=color)
        if anchor is not None:
            ax.axhline(anchor["value"], color="#555", linestyle="--", label=anchor["name"])
            ax.axhspan(anchor["ci"][0], anchor["ci"][1], color="#888", alpha=0.15, linewidth=0)
        if x_key == "ground_steps":
            steps = sorted({p["ground_steps"] for series in points.values() for p in series})
            ax.set_xscale("log")
            ax.set_xticks(steps, [str(s) for s in steps])
            ax.minorticks_off()
        ax.set_xlabel(x_label)
        ax.set_ylabel(metric)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.set_title(f"{metric} vs {x_label.split(' (')[0]}")
    axes[0].legend(loc="lower right")
    figure.text(0.5, -0.02, "bars and band: 95% CI over test users; tokens: prompt + answer, padding excluded, grounding "
                "and fine-tuning; the fine-tuning budget is the same at every point", ha="center", fontsize=8, color="#555")
    figure.tight_layout()
    return _save(figure, path)


def plot_validation_curves(curves: dict[str, dict], path: str | Path) -> Path:
    """Each method's validation curve: LM methods by training tokens (left), SASRec by epoch (right).

    Args:
        curves: method -> {"x": [...], "y": [...], "measure": name, "best": x of the kept weights or None,
            "kind": "lm" or "anchor"}.
        path: where to write the PNG.

    Returns:
        The path written.
    """
    panels = [kind for kind in ("lm", "anchor") if any(c["kind"] == kind for c in curves.values())]
    figure = Figure(figsize=(5.8 * len(panels), 3.8))
    for index, kind in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        measures = set()
        largest = max((x for curve in curves.values() if curve["kind"] == kind for x in curve["x"]), default=0)
        scale = 1e3 if kind == "lm" and largest >= 10_000 else 1  # thousands: tick labels that do not run together
        for method, curve in curves.items():
            if curve["kind"] != kind:
                continue
            measures.add(curve["measure"])
            xs = [x / scale for x in curve["x"]]
            line, = axes.plot(xs, curve["y"], marker="o", markersize=3, label=method, color=_COLORS.get(method))
            if curve.get("best") is not None:
                best = curve["x"].index(curve["best"])
                axes.plot([xs[best]], [curve["y"][best]], marker="*", markersize=12, color=line.get_color())
        axes.set_xlabel(("fine-tuning tokens" + (" (thousands)" if scale > 1 else "")) if kind == "lm" else "epoch")
        axes.set_ylabel(f"validation {', '.join(sorted(measures))}")
        axes.set_title(("LM methods" if kind == "lm" else "SASRec") + " (star: weights kept)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return _save(figure, path)
