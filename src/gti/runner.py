"""The recipe: which stages a method runs, in which folders, for which seeds, and the comparison.

    shared  = data -> sids                                  once per run folder
    method  = init -> [ground] -> finetune -> evaluate      per method and seed (see gti.methods)
    compare = every method, then budget curves, paired tests and the report

Caching is the stages' (`gti.artifacts.run_stage`): re-running a finished run reads every
stage back; an interrupted one resumes at the stage it was in.
"""

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from gti.analysis.html import write_html_report
from gti.analysis.report import write_report
from gti.artifacts import MANIFEST, read_json, write_json
from gti.budget import (
    budget_curve,
    compute_matched,
    curve_ranks,
    mean_of,
    read_ranks,
    seed_averaged_values,
    training_compute,
)
from gti.checks import budget_overrides, check_methods, check_seeds
from gti.config import RunConfig, differences, from_dict, load_config, to_dict
from gti.data import Dataset
from gti.distributed import is_main
from gti.errors import GtiError
from gti.layout import STAGE_LABELS, RunLayout
from gti.methods import METHODS, grounded
from gti.rec import bootstrap_ci, paired_test, per_user_values
from gti.results import Comparison, MethodResult
from gti.stages import Shared, run_data, run_eval, run_finetune, run_ground, run_init, run_sids
from gti.stages.data import load
from gti.stages.sids import adopt

STAGES = ("init", "ground", "finetune", "eval")


def seeded(config: RunConfig, seed: int | None) -> RunConfig:
    """The config with one training seed for every random choice after the SIDs (init, grounding, fine-tuning)."""
    if seed is None:
        return config
    return dataclasses.replace(
        config, init=dataclasses.replace(config.init, seed=seed),
        ground=dataclasses.replace(config.ground, seed=seed),
        finetune=dataclasses.replace(config.finetune, seed=seed),
    )


def import_sids(sids_dir: Path, layout: RunLayout) -> None:
    """Copy a `gti sids` folder into the run as its `sids` stage (its key then matches: nothing is rebuilt)."""
    sids_dir = Path(sids_dir)
    if sids_dir.resolve() == layout.sids.resolve() or not is_main():
        return
    if layout.sids.exists():
        shutil.rmtree(layout.sids)
    shutil.copytree(sids_dir, layout.sids)


def prepare(config: RunConfig, layout: RunLayout, dataset: Dataset | None = None) -> Shared:
    """The stages every method shares: data and SIDs (`dataset`: already loaded with `load(config.data)`)."""
    dataset = dataset if dataset is not None else load(config.data)
    data = run_data(config.data, layout.data, dataset)
    sids = run_sids(config.sids, config.data.text_fields, dataset, data.key, layout.sids, to_dict(config.data))
    return Shared(data, sids, config.prompts)


def run_method(config: RunConfig, layout: RunLayout, name: str, shared: Shared, until: str = "eval") -> MethodResult:
    """Stages init, [ground], finetune, eval of one method, stopping after `until`; its result read back."""
    method = METHODS[name]
    weights = run_init(method.init, config, shared.sids, shared.data.dataset, layout.stage(name, "init"))
    if method.ground and until != "init":
        weights = run_ground(config, weights, shared, layout.stage(name, "ground"))
    if until in ("finetune", "eval"):
        weights = run_finetune(config, method, weights, shared, layout.stage(name, "finetune"))
    if until == "eval":
        run_eval(config, weights, shared, layout.stage(name, "eval"))
    return method_result(layout, name, evaluated=until == "eval")


def method_result(layout: RunLayout, name: str, evaluated: bool) -> MethodResult:
    """What one method's stage folders hold: seconds, diagnostics, compute and, once evaluated, metrics."""
    result = MethodResult()
    for stage in STAGES:
        folder = layout.stage(name, stage)
        if (folder / MANIFEST).is_file():
            result.seconds[stage] = read_json(folder / MANIFEST)["seconds"]
        if (folder / "diagnostics.json").is_file():
            result.diagnostics[STAGE_LABELS[stage]] = read_json(folder / "diagnostics.json")
    ground = training_compute(layout.stage(name, "ground") / MANIFEST)
    finetuned = training_compute(layout.stage(name, "finetune") / MANIFEST)
    result.compute = {"ground": {"train_tokens": ground[0], "train_seconds": ground[1]},
                      "finetune": {"train_tokens": finetuned[0], "train_seconds": finetuned[1]}}
    result.train_tokens = ground[0] + finetuned[0]
    result.train_seconds = round(ground[1] + finetuned[1], 3)
    if not evaluated:
        return result
    finetune, evaluation = layout.stage(name, "finetune"), layout.stage(name, "eval")
    result.by_budget = budget_curve([(finetune, evaluation)], [ground])[0]
    losses = read_json(finetune / "losses.json")[-10:]
    result.finetune_final_loss = round(sum(losses) / len(losses), 4) if losses else None
    result.metrics = read_json(evaluation / "metrics.json")
    result.output = read_json(evaluation / "output.json")
    ranks = read_ranks(evaluation)
    result.metrics_ci = {metric: bootstrap_ci(per_user_values(ranks, metric)) for metric in result.metrics}
    if is_main():
        write_json(layout.method(name) / "metrics.json", result.metrics)
    return result


def run(config: RunConfig, out: str | None, overwrite: bool, name: str, until: str = "eval",
        sids_dir: str | None = None) -> MethodResult:
    """`gti run` / `gti ground`: one method in a run folder, optionally on the SIDs of a `gti sids` folder."""
    if sids_dir is not None:
        config = from_dict(to_dict(config) | {"sids": adopt(Path(sids_dir), config.data)}, str(sids_dir))
    dataset = load(config.data)  # before the folder is claimed: a bad source leaves nothing behind
    layout = open_run_dir(config, out, overwrite)
    if sids_dir is not None:
        import_sids(Path(sids_dir), layout)
    result = run_method(config, layout, name, prepare(config, layout, dataset), until)
    if until == "eval" and is_main():
        write_json(layout.root / "metrics.json", result.metrics)
        result.folder = str(layout.method(name).relative_to(layout.root))
        write_html_report(Comparison(to_dict(config), None, {name: result}, read_json(layout.sids / "report.json")),
                          layout.root)
    return result


def open_run_dir(config: RunConfig, out: str | None, overwrite: bool) -> RunLayout:
    """The run folder, with the config saved in it; a folder holding stages made with another config is refused.

    Callers claim the folder only once the config validates and the data loads. A folder whose
    config.json has no finished stage beside it (a run that stopped before its first stage) is
    not protected: there is nothing in it to mix up.
    """
    layout = RunLayout(Path(out or config.out))
    if layout.root.exists() and not layout.root.is_dir():
        raise GtiError(f"{layout.root}: exists and is not a folder; choose another --out")
    if layout.config.exists() and not overwrite and any(layout.root.glob(f"**/{MANIFEST}")):
        try:
            before = read_json(layout.config)
        except ValueError:
            before = None
        if before != to_dict(config):
            changed = differences(before, to_dict(config)) if isinstance(before, dict) else "its config.json is unreadable"
            raise GtiError(f"{layout.root}: holds a run with another config ({changed}); pass --overwrite or choose --out")
    if is_main():
        write_json(layout.config, to_dict(config))
    return layout


def compare(
    config_path: str | None, overrides: list[str], methods: list[str], out: str | None = None, overwrite: bool = False,
    seeds: list[int] | None = None, budgets: list[int] | None = None,
) -> Path:
    """Run several methods on the same data, SIDs and split; write results.json, results.md, report.html, plots.

    Args:
        seeds: training seeds (init, grounding and fine-tuning); each method then runs once per
            seed in `<method>/seed-<s>/`, and its metrics are the mean over seeds with a 95% CI
            over users of the per-user values averaged over seeds. None: one run per method in
            `<method>/` with the config's seeds.
        budgets: fine-tuning steps at which to evaluate every method (the largest is
            `finetune.steps`, the others `eval.at_steps`); None keeps the config's.

    Returns:
        The path of `results.json` in the run folder.
    """
    config = load_config(config_path, [*overrides, *budget_overrides(budgets)])
    check_methods(methods)
    check_seeds(seeds)
    dataset = load(config.data)  # before the folder is claimed
    layout = open_run_dir(config, out, overwrite)
    shared = prepare(config, layout, dataset)
    layouts = [layout] if seeds is None else [layout.with_seed(seed) for seed in seeds]
    comparison = Comparison(to_dict(config), seeds, {})
    ranks, budget_ranks = {}, {}  # method -> per-seed per-user ranks; method -> step -> the same
    for name in methods:
        runs = []
        for run_layout in layouts:
            print(f"== {name}" + ("" if run_layout.seed is None else f" (seed {run_layout.seed})"))
            runs.append(run_method(seeded(config, run_layout.seed), run_layout, name, shared))
        stages = [(run_layout.stage(name, "finetune"), run_layout.stage(name, "eval")) for run_layout in layouts]
        if seeds is None:  # the run's own budget curve is the method's
            result, budget_ranks[name] = runs[0], curve_ranks(stages)
            ranks[name] = budget_ranks[name][max(budget_ranks[name])]  # the last point is the evaluate stage
        else:
            before = [(run.compute["ground"]["train_tokens"], run.compute["ground"]["train_seconds"]) for run in runs]
            curve, budget_ranks[name] = budget_curve(stages, before)
            ranks[name] = budget_ranks[name][max(budget_ranks[name])]
            result = combine_seeds(runs, seeds, ranks[name])
            result.by_budget = curve
        result.folder = str(layouts[0].method(name).relative_to(layout.root))
        comparison.methods[name] = result
    comparison.compute_matched = compute_matched(
        {name: comparison.methods[name].by_budget for name in methods}, budget_ranks, grounded(methods)
    )
    comparison.sids = read_json(layout.sids / "report.json")
    if "mean" in methods:
        for metric in ("recall@10", "ndcg@10"):
            reference = seed_averaged_values(ranks["mean"], metric)
            for name in methods:
                values = seed_averaged_values(ranks[name], metric)
                tests = comparison.methods[name].paired_vs_mean or {}
                tests[metric] = paired_test(values, reference)
                comparison.methods[name].paired_vs_mean = tests
    if is_main():
        write_report(comparison, layout.root)
        write_json(layout.results, comparison.to_json())
    return layout.results


def combine_seeds(runs: list[MethodResult], seeds: list[int], seed_ranks: list[list[int | None]]) -> MethodResult:
    """One method's result over seeds: means (and seed std) of metrics, outputs, losses, seconds and compute."""
    metrics = list(runs[0].metrics)
    return MethodResult(
        metrics={name: mean_of([run.metrics[name] for run in runs]) for name in metrics},
        metrics_seed_std={name: float(np.std([run.metrics[name] for run in runs])) for name in metrics},
        metrics_ci={name: bootstrap_ci(seed_averaged_values(seed_ranks, name)) for name in metrics},
        output={key: mean_of([run.output[key] for run in runs]) for key in runs[0].output},
        finetune_final_loss=mean_of([run.finetune_final_loss for run in runs]),
        seconds={stage: mean_of([run.seconds.get(stage) for run in runs]) for stage in runs[0].seconds},
        compute=mean_of([run.compute for run in runs]),
        train_tokens=mean_of([run.train_tokens for run in runs]),
        train_seconds=mean_of([run.train_seconds for run in runs]),
        diagnostics=runs[0].diagnostics,
        by_seed={str(seed): run for seed, run in zip(seeds, runs)},
    )
