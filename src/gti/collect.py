"""What a method's stage folders hold, as a `MethodResult`: seconds, diagnostics, compute, metrics; and over seeds."""

import numpy as np

from gti.artifacts import MANIFEST, read_json, write_json
from gti.budget import budget_curve, mean_of, read_ranks, seed_averaged_values, training_compute
from gti.coldstart import has_cold_start, method_section
from gti.distributed import is_main
from gti.layout import STAGE_LABELS, RunLayout
from gti.rec import metric_ci, per_user_values
from gti.results import MethodResult

STAGES = ("init", "ground", "finetune", "eval")
"""A language-model method's stages, in order."""
ANCHOR_STAGES = ("fit", "eval")
"""An anchor's stages, in order."""
FIT_RECORD = ("train_seconds", "interactions_processed", "epochs", "steps", "best_epoch")
"""What an anchor's fit manifest says about its training (`compute["fit"]`)."""


def _seconds(layout: RunLayout, name: str, stages: tuple[str, ...]) -> dict[str, float]:
    found = {}
    for stage in stages:
        manifest = layout.stage(name, stage) / MANIFEST
        if manifest.is_file():
            found[stage] = read_json(manifest)["seconds"]
    return found


def _evaluation(result: MethodResult, layout: RunLayout, name: str) -> MethodResult:
    """Test metrics, their CIs and output measures of the method's evaluate stage (also written to `<method>/metrics.json`),
    and its cold-start section in a cold-items split."""
    evaluation = layout.stage(name, "eval")
    result.metrics = read_json(evaluation / "metrics.json")
    result.output = read_json(evaluation / "output.json")
    ranks = read_ranks(evaluation)
    result.metrics_ci = {metric: metric_ci(per_user_values(ranks, metric), metric) for metric in result.metrics}
    if has_cold_start(evaluation):  # a cold-items split: `metrics` are the warm test set's
        result.cold_start = method_section([evaluation])
    if is_main():
        write_json(layout.method(name) / "metrics.json", result.metrics)
    return result


def method_result(layout: RunLayout, name: str, evaluated: bool) -> MethodResult:
    """What one LM method's stage folders hold: seconds, diagnostics, compute and, once evaluated, metrics."""
    result = MethodResult(seconds=_seconds(layout, name, STAGES))
    for stage in STAGES:
        if (layout.stage(name, stage) / "diagnostics.json").is_file():
            result.diagnostics[STAGE_LABELS[stage]] = read_json(layout.stage(name, stage) / "diagnostics.json")
    ground = training_compute(layout.stage(name, "ground") / MANIFEST)
    finetuned = training_compute(layout.stage(name, "finetune") / MANIFEST)
    result.compute = {"ground": {"train_tokens": ground[0], "train_seconds": ground[1]},
                      "finetune": {"train_tokens": finetuned[0], "train_seconds": finetuned[1]}}
    result.train_tokens = ground[0] + finetuned[0]
    result.train_seconds = round(ground[1] + finetuned[1], 3)
    if not evaluated:
        return result
    finetune = layout.stage(name, "finetune")
    manifest = read_json(finetune / MANIFEST)
    result.validations, result.best = manifest.get("validations"), manifest.get("best_step")
    result.by_budget = budget_curve([(finetune, layout.stage(name, "eval"))], [ground])[0]
    losses = read_json(finetune / "losses.json")[-10:]
    result.finetune_final_loss = round(sum(losses) / len(losses), 4) if losses else None
    return _evaluation(result, layout, name)


def anchor_result(layout: RunLayout, name: str, evaluated: bool) -> MethodResult:
    """What an anchor's fit and evaluate stages hold: seconds, its fit's record (no LM tokens) and metrics."""
    fit = read_json(layout.stage(name, "fit") / MANIFEST)
    result = MethodResult(kind="anchor", seconds=_seconds(layout, name, ANCHOR_STAGES), train_tokens=None,
                          train_seconds=fit["train_seconds"], compute={"fit": {key: fit.get(key) for key in FIT_RECORD}})
    curve = layout.stage(name, "fit") / "validations.json"
    if curve.is_file():
        result.validations, result.best = read_json(curve), fit.get("best_epoch")
    return _evaluation(result, layout, name) if evaluated else result


def combine_seeds(runs: list[MethodResult], seeds: list[int], seed_ranks: list[list[int | None]]) -> MethodResult:
    """One method's result over seeds: means (and seed std) of metrics, outputs, losses, seconds and compute."""
    metrics = list(runs[0].metrics)
    return MethodResult(
        kind=runs[0].kind,
        metrics={name: mean_of([run.metrics[name] for run in runs]) for name in metrics},
        metrics_seed_std={name: float(np.std([run.metrics[name] for run in runs])) for name in metrics},
        metrics_ci={name: metric_ci(seed_averaged_values(seed_ranks, name), name) for name in metrics},
        output={key: mean_of([run.output[key] for run in runs]) for key in runs[0].output},
        finetune_final_loss=mean_of([run.finetune_final_loss for run in runs]),
        seconds={stage: mean_of([run.seconds.get(stage) for run in runs]) for stage in runs[0].seconds},
        compute=mean_of([run.compute for run in runs]),
        train_tokens=mean_of([run.train_tokens for run in runs]),
        train_seconds=mean_of([run.train_seconds for run in runs]),
        diagnostics=runs[0].diagnostics,
        history=runs[0].history,
        by_seed={str(seed): run for seed, run in zip(seeds, runs)},
    )
