"""Budget curves and the compute-matched comparison.

A method's fine-tuning is evaluated at several steps (`eval.at_steps`, plus its last step), each
point with the training compute spent to reach it: tokens processed (prompt plus answer,
padding excluded) and training seconds, summed over every training stage of the method,
grounding included. A grounded method's point is then compared, user by user, with each
baseline's cheapest point that processed at least as many tokens.

Points live in the fine-tuning stage's `points/step-NNNNNN/` (the same files as an evaluate
stage, plus `point.json`) and, for the last step, in the evaluate stage's folder.
"""

import json
from pathlib import Path

import numpy as np

from gti.artifacts import MANIFEST, read_json
from gti.rec import metric_ci, paired_test, per_user_values
from gti.results import BudgetPoint, Matched

PAIRED_METRICS = ("recall@10", "ndcg@10")


def mean_of(values: list):
    """Mean of numbers, key by key for dicts; None when no value is given."""
    values = [v for v in values if v is not None]
    if values and isinstance(values[0], dict):
        return {key: mean_of([v.get(key) for v in values]) for key in values[0]}
    return float(np.mean(values)) if values else None


def read_ranks(folder: Path) -> list[int | None]:
    """Per-user target ranks of one evaluation (`predictions.jsonl`), in user order."""
    lines = (Path(folder) / "predictions.jsonl").read_text().splitlines()
    return [json.loads(line)["rank"] for line in lines if line]


def read_users(folder: Path) -> list[str]:
    """The evaluated users of one evaluation (`predictions.jsonl`), in the order `read_ranks` gives their ranks."""
    lines = (Path(folder) / "predictions.jsonl").read_text().splitlines()
    return [json.loads(line)["user_id"] for line in lines if line]


def seed_averaged_values(seed_ranks: list[list[int | None]], metric: str) -> np.ndarray:
    """(U,) per-user values of `metric`, averaged over seeds (each seed's ranks for the same users)."""
    return np.mean([per_user_values(ranks, metric) for ranks in seed_ranks], axis=0)


def training_compute(manifest_path: Path) -> tuple[int, float]:
    """(tokens, seconds) a training stage recorded in its manifest; (0, 0.0) when the stage does not exist."""
    if not Path(manifest_path).is_file():
        return 0, 0.0
    return _compute(read_json(manifest_path))


def _compute(manifest: dict) -> tuple[int, float]:
    return int(manifest.get("train_tokens", 0)), float(manifest.get("train_seconds", 0.0))


def points(finetune: Path, evaluation: Path) -> list[tuple[int, Path, int, float]]:
    """(fine-tuning step, evaluation folder, fine-tuning tokens, fine-tuning seconds) of each point, by step.

    Args:
        finetune: the fine-tuning stage folder (its `points/` and manifest).
        evaluation: the evaluate stage folder (the last step's point).
    """
    found = []
    for folder in sorted((Path(finetune) / "points").glob("step-*")):
        point = read_json(folder / "point.json")
        found.append((point["finetune_steps"], folder, point["train_tokens"], point["train_seconds"]))
    manifest = read_json(Path(finetune) / MANIFEST)
    found.append((manifest["config"]["finetune"]["steps"], Path(evaluation), *_compute(manifest)))
    return found


def curve_ranks(stages: list[tuple[Path, Path]]) -> dict[int, list[list[int | None]]]:
    """Per budget step, each seed's per-user ranks (stages: per seed, the fine-tuning and evaluate folders)."""
    per_seed = [points(finetune, evaluation) for finetune, evaluation in stages]
    return {step: [read_ranks(seed_points[index][1]) for seed_points in per_seed]
            for index, (step, *_) in enumerate(per_seed[0])}


def budget_curve(stages: list[tuple[Path, Path]], before: list[tuple[int, float]]) -> tuple[list[BudgetPoint], dict]:
    """One method's points over seeds, in increasing budget order.

    Args:
        stages: per seed, the method's (fine-tuning folder, evaluate folder).
        before: per seed, (tokens, seconds) of its training stages before fine-tuning (grounding).

    Returns:
        The budget points (tokens, seconds and metrics are means over seeds, CIs over users of
        the per-user values averaged over seeds) and, per step, each seed's per-user ranks.
    """
    per_seed = [points(finetune, evaluation) for finetune, evaluation in stages]
    ranks = curve_ranks(stages)
    curve = []
    for index, (step, *_) in enumerate(per_seed[0]):
        found = [seed_points[index] for seed_points in per_seed]
        folders = [folder for _, folder, _, _ in found]
        metrics = [read_json(folder / "metrics.json") for folder in folders]
        curve.append(BudgetPoint(
            finetune_steps=step,
            train_tokens=float(np.mean([base[0] + tokens for base, (_, _, tokens, _) in zip(before, found)])),
            seconds=round(float(np.mean([base[1] + seconds for base, (_, _, _, seconds) in zip(before, found)])), 3),
            metrics={name: float(np.mean([m[name] for m in metrics])) for name in metrics[0]},
            ci={name: metric_ci(seed_averaged_values(ranks[step], name), name) for name in metrics[0]},
            output=mean_of([read_json(folder / "output.json") for folder in folders]),
        ))
    return curve, ranks


def compute_matched(curves: dict[str, list[BudgetPoint]], ranks: dict[str, dict[int, list]],
                    grounded: list[str]) -> list[Matched]:
    """Each grounded method's point against every other method's cheapest point with at least as many tokens.

    Other grounded methods are baselines too, so GTI meets the `rows-first` control at matched tokens.

    Args:
        curves: LM method -> its budget points (anchors have no token axis and are left out by the caller).

    Returns:
        One entry per grounded point; `vs[baseline]` holds that point's steps and tokens and a
        paired test (diff, ci, p_value) per metric of `PAIRED_METRICS`, or None when the
        baseline has no point with as many tokens.
    """
    table = []
    for method in grounded:
        for point in curves.get(method, []):
            entry = Matched(method, point.finetune_steps, point.train_tokens, {})
            for baseline in (other for other in curves if other != method):
                matched = [p for p in curves[baseline] if p.train_tokens >= point.train_tokens]
                if not matched:
                    entry.vs[baseline] = None
                    continue
                other = matched[0]
                comparison = {"finetune_steps": other.finetune_steps, "train_tokens": other.train_tokens}
                for name in PAIRED_METRICS:
                    comparison[name] = paired_test(
                        seed_averaged_values(ranks[method][point.finetune_steps], name),
                        seed_averaged_values(ranks[baseline][other.finetune_steps], name),
                    )
                entry.vs[baseline] = comparison
            table.append(entry)
    return table
