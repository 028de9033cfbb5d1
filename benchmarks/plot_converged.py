"""Draw the converged benchmark's validation curves (did each method converge under the cap?): the pretrained LM
methods' validation recall@10 and validation answer loss by fine-tuning tokens (every seed run as a thin line, the
seeds' mean dashed), the scratch decoder's answer loss, and SASRec's recall@10 by epoch; the kept weights starred,
and each curve's convergence verdict (`gti.analysis.convergence`, in the merged JSON) in its legend.

Usage: python benchmarks/plot_converged.py benchmarks/results/beauty_converged_cpu.json docs/beauty_converged_curves.png
                                           [--tuned]
  --tuned: the tuned family instead (the merged JSON's `tuned`): every method at the learning rate its grid chose (a
  confirmation: the one the confirmed benchmark chose), labelled with it.
"""

import argparse
from pathlib import Path

from matplotlib.figure import Figure

from gti.analysis.curves import _COLORS
from gti.analysis.plots import _save
from gti.artifacts import read_json

SHORT = {"still improving": "improving", "flat": "flat", "past its best": "past best"}


def curves(result: dict, tuned: bool = False) -> dict[str, dict]:
    """Label -> {"method", "points", "best_step", "convergence", "style"} for every validated row of the merged JSON:
    the main rows (`main`), the exploratory ones (`exploratory`) and the seed runs 1 and 2 (`seed`); with `tuned`,
    each method's point of the tuned family instead (`main`, labelled with its learning rate)."""
    found = {}
    if tuned:
        for method, grid in result["tuned"]["methods"].items():
            point = next(point for point in grid["points"] if point["value"] == grid["chosen"])
            if point.get("validations"):
                found[f"{method}, lr {grid['chosen']:g}"] = {
                    "method": method, "points": point["validations"], "best_step": point["best_step"],
                    "convergence": point.get("convergence") or {}, "style": "main", "seed": 0}
        return found
    rows = {name: (row, "exploratory" if ", exploratory" in name else "main")
            for name, row in {**result["methods"], **result.get("exploratory", {})}.items()}
    for name, (row, style) in rows.items():
        if row.get("validations"):
            found[name] = {"method": name.split(",")[0], "points": row["validations"], "best_step": row["best_step"],
                           "convergence": row.get("convergence") or {}, "style": style, "seed": 0}
    for method, spread in (result.get("seeds") or {}).get("methods", {}).items():
        for seed, points in spread.get("validations", {}).items():
            if str(seed) != "0" and points:
                found[f"{method}, seed {seed}"] = {"method": method, "points": points, "best_step": None, "seed": seed,
                                                   "convergence": spread["convergence"][seed] or {}, "style": "seed"}
    return found


def seed_mean(found: dict[str, dict], method: str, measure: str) -> tuple[list[str], list[float], list[float]] | None:
    """The seeds of a method's seed runs (its main row and its `seed` curves) and their mean curve, point by point,
    where there are 2+."""
    runs = [c for c in found.values() if c["method"] == method and c["style"] in ("main", "seed")]
    if len(runs) < 2:
        return None
    length = min(len(c["points"]) for c in runs)
    xs = [sum(c["points"][i]["train_tokens"] for c in runs) / len(runs) / 1e3 for i in range(length)]
    return [str(c["seed"]) for c in runs], xs, [sum(c["points"][i][measure] for c in runs) / len(runs)
                                                for i in range(length)]


def draw(axes, found: dict[str, dict], measure: str, keep, **legend) -> None:
    """One panel: every curve `keep` accepts, `measure` by fine-tuning tokens (thousands), verdict in the legend
    (`legend`: where it goes, matplotlib's legend arguments)."""
    means = set()
    for label, curve in found.items():
        if not keep(curve):
            continue
        points = [p for p in curve["points"] if p.get(measure) is not None]
        xs, ys = [p["train_tokens"] / 1e3 for p in points], [p[measure] for p in points]
        verdict = (curve["convergence"].get(measure) or {}).get("verdict")
        seed = curve["style"] == "seed"
        line, = axes.plot(xs, ys, marker="" if seed else "o", markersize=3, linewidth=0.8 if seed else 1.6,
                          alpha=0.45 if seed else 1.0, linestyle=":" if curve["style"] == "exploratory" else "-",
                          color=_COLORS.get(curve["method"]),
                          label=None if seed else f"{label} ({SHORT.get(verdict, 'too short')})")
        steps = [p["step"] for p in points]
        if curve["best_step"] in steps:
            best = steps.index(curve["best_step"])
            axes.plot([xs[best]], [ys[best]], marker="*", markersize=11, color=line.get_color())
        if curve["style"] == "seed" and curve["method"] not in means:
            means.add(curve["method"])
            mean = seed_mean(found, curve["method"], measure)
            if mean is not None:
                seeds, xs_mean, ys_mean = mean
                axes.plot(xs_mean, ys_mean, linestyle="--", linewidth=2.4, color=line.get_color(),
                          label=f"{curve['method']}, mean of seeds {', '.join(seeds)} (thin: seeds {', '.join(seeds[1:])})")
    axes.set_xlabel("fine-tuning tokens (thousands)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, **legend)


def plot(result: dict, out: Path, tuned: bool = False) -> Path:
    found = curves(result, tuned)
    monitor = result["config"]["train"]["monitor"]
    pretrained = lambda c: c["method"] not in ("scratch", "sasrec")  # noqa: E731
    figure = Figure(figsize=(13, 8.4))
    panels = figure.subplots(2, 2)
    draw(panels[0][0], found, monitor, pretrained, ncol=2, loc="lower center")
    panels[0][0].set_ylim(bottom=0)  # the recall curves sit above 0.015: the legend goes in the room below them
    panels[0][0].set(ylabel=f"validation {monitor}", title="Pretrained LM methods: validation recall (star: kept)")
    draw(panels[0][1], found, "loss", pretrained)
    panels[0][1].set(ylabel="validation answer loss (SID tokens)",
                     title="Pretrained LM methods: validation answer loss (star: kept by recall)")
    draw(panels[1][0], found, "loss", lambda c: c["method"] == "scratch")
    panels[1][0].set(ylabel="validation answer loss (SID tokens)", title="Scratch decoder: validation answer loss")
    label, sasrec = next(((label, c) for label, c in found.items() if c["method"] == "sasrec" and c["style"] == "main"),
                         (None, None))
    axes = panels[1][1]
    if sasrec is not None:
        verdict = sasrec["convergence"].get("recall@10") or {}
        points, best = sasrec["points"], sasrec["best_step"]
        epochs = [p["epoch"] for p in points]
        axes.plot(epochs, [p["recall@10"] for p in points], marker="o", markersize=3, color=_COLORS["sasrec"],
                  label=f"{label} ({SHORT.get(verdict.get('verdict'), 'too short')})")
        if best in epochs:
            axes.plot([best], [points[epochs.index(best)]["recall@10"]], marker="*", markersize=11, color=_COLORS["sasrec"])
        axes.legend(fontsize=7)
    axes.set(xlabel="epoch", ylabel="validation recall@10", title="SASRec: validation recall@10 (star: kept)")
    axes.grid(alpha=0.3)
    window = result["config"]["train"]["patience"]
    family = ("each method at its tuned learning rate (the grid's choice)" if tuned
              else "dotted: exploratory runs with a longer cap")
    figure.text(0.5, -0.01, f"In brackets: each curve's verdict over its last {window} validations (train.patience) "
                "against its best before them (gti.analysis.convergence): improving = better by more than 1%; "
                + family, ha="center", fontsize=8, color="#555")
    figure.tight_layout()
    return _save(figure, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tuned", action="store_true", help="the tuned family: each method at its chosen learning rate")
    args = parser.parse_args()
    print(f"wrote {plot(read_json(args.result), args.out, args.tuned)}")


if __name__ == "__main__":
    main()
