"""The recipe: which stages a method runs, in which folders, for which seeds, and the comparison.

    shared  = data -> sids                                  once per run folder
    method  = init -> [ground] -> finetune -> evaluate      per LM method and seed (see gti.methods)
    anchor  = fit -> evaluate                               mostpop, sasrec: per seed
    compare = [a grid per method on the validation targets] -> every method, then budget curves,
              paired tests (against mean init and against the anchors) and the report

Caching is the stages' (`gti.artifacts.run_stage`): re-running a finished run reads every
stage back; an interrupted one resumes at the stage it was in.
"""

import dataclasses
import os
import shutil
from pathlib import Path

from gti.analysis.html import write_html_report
from gti.analysis.report import write_report
from gti.artifacts import MANIFEST, read_json, write_json
from gti.budget import budget_curve, compute_matched, curve_ranks, read_ranks, seed_averaged_values
from gti.checks import budget_overrides, check_backbone, check_methods, check_seeds
from gti.coldstart import attach as attach_cold_start
from gti.collect import anchor_result, combine_seeds, method_result
from gti.config import RunConfig, from_dict, history_items, load_config, to_dict
from gti.data import Dataset
from gti.distributed import is_main
from gti.layout import RunLayout
from gti.methods import METHODS, anchors, grounded, language_models, stages_line, trains_like
from gti.rec import paired_test
from gti.results import Comparison, MethodResult
from gti.runfolder import check_adding, check_run_folder, clear_replaced, methods_on_disk
from gti.stages import Shared, Weights, run_data, run_eval, run_finetune, run_ground, run_init, run_sids
from gti.stages.anchor import run_anchor_eval, run_fit
from gti.stages.data import load
from gti.stages.sids import adopt
from gti.tuning import apply, description, settings_source, tune

PAIRED = ("recall@10", "ndcg@10")
"""Metrics of the paired tests against mean init and against the anchors."""


def seeded(config: RunConfig, seed: int | None) -> RunConfig:
    """The config with one training seed for every random choice after the SIDs (init, grounding, fine-tuning, SASRec,
    the scratch decoder's weights)."""
    if seed is None:
        return config
    return dataclasses.replace(
        config, init=dataclasses.replace(config.init, seed=seed),
        ground=dataclasses.replace(config.ground, seed=seed),
        finetune=dataclasses.replace(config.finetune, seed=seed),
        sasrec=dataclasses.replace(config.sasrec, seed=seed),
        model=dataclasses.replace(config.model, scratch_seed=seed),
    )


def for_method(config: RunConfig, name: str) -> RunConfig:
    """The config a method's stages run with: its own backbone (`Method.backbone`) in place of `model.name`."""
    backbone = METHODS[name].backbone
    if backbone is None or config.model.name == backbone:
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, name=backbone))


def adopting_sids(config: RunConfig, sids_dir: str | None) -> RunConfig:
    """`config` with the SID settings recorded in a `gti sids` folder (checked against its [data]); None: as it is."""
    if sids_dir is None:
        return config
    return from_dict(to_dict(config) | {"sids": adopt(Path(sids_dir), config.data)}, str(sids_dir))


def import_sids(sids_dir: Path, layout: RunLayout) -> None:
    """Copy a `gti sids` folder into the run as its `sids` stage (its key then matches: nothing is rebuilt)."""
    sids_dir = Path(sids_dir)
    if sids_dir.resolve() == layout.sids.resolve() or not is_main():
        return
    if layout.sids.exists():
        shutil.rmtree(layout.sids)
    shutil.copytree(sids_dir, layout.sids)


def prepare(config: RunConfig, layout: RunLayout, dataset: Dataset | None = None, methods: list[str] = ()) -> Shared:
    """The stages every method shares: data and SIDs (`dataset`: already loaded with `load(config.data)`).

    A run of anchors only (`methods` all `mostpop` or `sasrec`) builds no SIDs: none of them reads one.
    """
    dataset = dataset if dataset is not None else load(config.data)
    data = run_data(config.data, layout.data, dataset)
    if methods and not language_models(methods):
        return Shared(data, None, config.prompts)
    sids = run_sids(config.sids, config.data.text_fields, dataset, data.key, layout.sids, to_dict(config.data))
    return Shared(data, sids, config.prompts, config.finetune.samples == "sequence")


def sid_report(layout: RunLayout) -> dict:
    """The SIDs' report of a run folder, or {} for a run that built none (anchors only)."""
    path = layout.sids / "report.json"
    return read_json(path) if path.is_file() else {}


def _rows(config: RunConfig, layout: RunLayout, name: str, shared: Shared, until: str = "eval") -> Weights:
    """An LM method's rows before fine-tuning: its init stage, then its grounding (unless `until` is `init`)."""
    method = METHODS[name]
    weights = run_init(method.init, config, shared.sids, shared.data.dataset, layout.stage(name, "init"))
    if method.ground and until != "init":
        weights = run_ground(config, weights, shared, layout.stage(name, "ground"), method.ground_on)
    return weights


def run_method(config: RunConfig, layout: RunLayout, name: str, shared: Shared, until: str = "eval") -> MethodResult:
    """Stages init, [ground], finetune, eval of one method (an anchor's: fit, eval), stopping after `until`;
    its result read back."""
    method, config = METHODS[name], for_method(config, name)
    if method.kind == "anchor":
        fitted = run_fit(name, config, shared.data, layout.stage(name, "fit"))
        if until == "eval":
            run_anchor_eval(name, config, fitted, shared.data, layout.stage(name, "eval"))
        result = anchor_result(layout, name, evaluated=until == "eval")
    else:
        weights = _rows(config, layout, name, shared, until)
        if until in ("finetune", "eval"):
            weights = run_finetune(config, method, weights, shared, layout.stage(name, "finetune"))
        if until == "eval":
            run_eval(config, weights, shared, layout.stage(name, "eval"))
        result = method_result(layout, name, evaluated=until == "eval")
    result.history = None if name == "mostpop" else history_items(config)
    return result


def reuse(source: Path, target: Path) -> bool:
    """Hard-link the finished stage in `source` into `target` when `target` holds no finished stage.

    The stage's own cache check then decides: `run_stage` keeps the linked folder only when its key
    (config and inputs, never the folder) is the one `target` needs, and rebuilds it otherwise. So a
    grid point whose settings are the method's own run is trained once. Returns whether it linked.
    """
    if not is_main() or not (source / MANIFEST).is_file() or (target / MANIFEST).is_file():
        return False
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, copy_function=os.link)
    return True


def _trained_stage(name: str) -> str:
    """The stage in which `name` trains what a grid point varies: an anchor's `fit`, an LM method's `finetune`."""
    return "fit" if METHODS[name].kind == "anchor" else "finetune"


def run_point(config: RunConfig, layout: RunLayout, name: str, shared: Shared, folder: Path) -> dict:
    """One grid point of a method: fine-tune (an anchor: fit) into `folder` from the method's shared stages, then
    evaluate on the validation targets into `folder/valid`. A finished fine-tuning (fit) of the method that
    trains like `name` (`mean` for `mean-rowlr`) is reused when its key is the point's (`reuse`).

    Returns:
        {"valid": validation metrics, "compute": what the point's training cost (grounding, shared, excluded)}.
    """
    method, config = METHODS[name], for_method(config, name)
    trained = _trained_stage(name)
    reuse(layout.stage(trains_like(name), trained), folder / trained)
    if method.kind == "anchor":
        fitted = run_fit(name, config, shared.data, folder / "fit")
        run_anchor_eval(name, config, fitted, shared.data, folder / "valid", on="valid")
        fit = read_json(folder / "fit" / MANIFEST)
        compute = {key: fit.get(key) for key in ("train_seconds", "interactions_processed", "epochs", "best_epoch")}
    else:
        tuned = run_finetune(config, method, _rows(config, layout, name, shared), shared, folder / "finetune")
        run_eval(config, tuned, shared, folder / "valid", on="valid")
        manifest = read_json(folder / "finetune" / MANIFEST)
        compute = {"train_tokens": manifest["train_tokens"], "train_seconds": manifest["train_seconds"]}
    return {"valid": read_json(folder / "valid" / "metrics.json"), "compute": compute}


def run(config: RunConfig, out: str | None, overwrite: bool, name: str, until: str = "eval",
        sids_dir: str | None = None) -> MethodResult:
    """`gti run` / `gti ground`: one method in a run folder, optionally on the SIDs of a `gti sids` folder.

    When the folder holds other methods' finished runs (a `gti compare` folder, or earlier `gti run`s of other
    methods), its results.json, results.md and report.html are rewritten from every method on disk, as `gti compare`
    of those methods would write them, so no results file describes a different set of methods."""
    check_backbone(config.model.name, [name])
    root = Path(out or config.out)
    check_adding(root, overwrite)
    config = adopting_sids(config, sids_dir)
    dataset = load(config.data)  # before the folder is claimed: a bad source leaves nothing behind
    layout = open_run_dir(config, out, overwrite)
    if sids_dir is not None:
        import_sids(Path(sids_dir), layout)
    result = run_method(config, layout, name, prepare(config, layout, dataset, [name]), until)
    if until == "eval":
        if is_main():
            write_json(layout.root / "metrics.json", result.metrics)
            if result.cold_start:
                write_json(layout.root / "cold_start.json", result.cold_start)
        result.folder = str(layout.method(name).relative_to(layout.root))
        on_disk = methods_on_disk(layout.root)
        if on_disk != [name] or layout.results.is_file():  # every process: the stages' barriers need them all
            compare_config(config, on_disk, str(layout.root), dataset=dataset)
        elif is_main():
            write_html_report(Comparison(to_dict(config), None, {name: result}, sid_report(layout)), layout.root)
    return result


def open_run_dir(config: RunConfig, out: str | None, overwrite: bool) -> RunLayout:
    """The run folder, with the config saved in it (`gti.runfolder`): a folder holding stages made with another
    config is refused, or with `overwrite` cleared of them first.

    Callers claim the folder only once the config validates and the data loads. A folder whose
    config.json has no finished stage beside it (a run that stopped before its first stage) is
    not protected: there is nothing in it to mix up.
    """
    layout = RunLayout(Path(out or config.out))
    if check_run_folder(config, layout.root, overwrite) and is_main():
        removed = clear_replaced(layout.root)
        if removed:
            print(f"--overwrite: removed what the old config made in {layout.root}: {', '.join(removed)}", flush=True)
    if is_main():
        write_json(layout.config, to_dict(config))
    return layout


def compare(
    config_path: str | None, overrides: list[str], methods: list[str], out: str | None = None, overwrite: bool = False,
    seeds: list[int] | None = None, budgets: list[int] | None = None, grid: list[str] | None = None,
    choices: str | None = None, sids_dir: str | None = None,
) -> Path:
    """Run several methods on the same data, SIDs and split; write results.json, results.md, report.html, plots.

    Args:
        seeds: training seeds (init, grounding, fine-tuning and SASRec); each method then runs once per
            seed in `<method>/seed-<s>/`, and its metrics are the mean over seeds with a 95% CI
            over users of the per-user values averaged over seeds. None: one run per method in
            `<method>/` with the config's seeds.
        budgets: fine-tuning steps at which to evaluate every method (the largest is
            `finetune.steps`, the others `eval.at_steps`); None keeps the config's.
        grid: `section.key=v1,v2,...` settings every method is tuned over on the validation targets
            before its run (`gti.tuning`); None: the config's settings.
        choices: instead of a grid, the results.json of an earlier `gti compare --grid` run: each method runs
            at the settings chosen there (`gti.tuning.read_choices`), and its grid record is copied into this
            run's `tuning` with `choices_from`; methods it has no record of run at the config's settings.
        sids_dir: a `gti sids` folder whose SIDs every method uses (its SID settings replace the config's, as in
            `gti run --sids`): the way to give runs on several machines the very same Semantic IDs.

    Returns:
        The path of `results.json` in the run folder.
    """
    config = load_config(config_path, [*overrides, *budget_overrides(budgets)])
    return compare_config(config, methods, out, overwrite, seeds, grid, choices, sids_dir)


def compare_config(config: RunConfig, methods: list[str], out: str | None = None, overwrite: bool = False,
                   seeds: list[int] | None = None, grid: list[str] | None = None, choices: str | None = None,
                   sids_dir: str | None = None, dataset: Dataset | None = None) -> Path:
    """`compare` on a loaded config (`dataset`: already loaded with `load(config.data)`); returns results.json's path."""
    check_methods(methods)
    check_backbone(config.model.name, methods)
    check_seeds(seeds)
    axes, reused = settings_source(grid, choices, config, methods)
    config = adopting_sids(config, sids_dir)
    dataset = dataset if dataset is not None else load(config.data)  # before the folder is claimed
    layout = open_run_dir(config, out, overwrite)
    if sids_dir is not None:
        import_sids(Path(sids_dir), layout)
    shared = prepare(config, layout, dataset, methods)
    layouts = [layout] if seeds is None else [layout.with_seed(seed) for seed in seeds]
    comparison = Comparison(to_dict(config), seeds, {})
    if axes is not None:
        comparison.tuning = {"grid": axes, **description(config), "methods": {}}
    elif reused is not None:
        comparison.tuning = reused
    ranks, budget_ranks = {}, {}  # method -> per-seed per-user ranks; LM method -> step -> the same
    for index, name in enumerate(methods, 1):
        method_config = config
        if reused is not None and name in reused["methods"]:
            method_config = apply(config, reused["methods"][name]["settings"])
        if axes is not None:
            search = seeded(config, layouts[0].seed)
            record = tune(name, search, axes, lambda label, name=name: layout.grid_point(name, label),
                          lambda point, folder, name=name: run_point(point, layouts[0], name, shared, folder), layout.root)
            if record is not None:
                method_config = apply(config, record["settings"])
                comparison.tuning["methods"][name] = record
                chosen = layout.root / record["points"][record["chosen"]]["folder"] / _trained_stage(name)
                reuse(chosen, layouts[0].stage(name, _trained_stage(name)))  # kept only if the run's key is the point's
        if trains_like(name) != name:  # `mean-rowlr` that chose `mean`'s point evaluates the same model
            reuse(layouts[0].stage(trains_like(name), "eval"), layouts[0].stage(name, "eval"))
        runs = []
        for run_layout in layouts:
            seed = "" if run_layout.seed is None else f", seed {run_layout.seed}"
            print(f"== [{index}/{len(methods)}] {name}{seed}: {stages_line(name)}", flush=True)
            runs.append(run_method(seeded(method_config, run_layout.seed), run_layout, name, shared))
        result = _combined(name, runs, layouts, seeds, ranks, budget_ranks)
        result.folder = str(layouts[0].method(name).relative_to(layout.root))
        comparison.methods[name] = result
    models = language_models(methods)
    comparison.compute_matched = compute_matched(
        {name: comparison.methods[name].by_budget for name in models}, budget_ranks, grounded(models)
    )
    comparison.sids = sid_report(layout)
    if shared.data.split.is_cold:
        attach_cold_start(comparison, {name: [seed.stage(name, "eval") for seed in layouts] for name in methods},
                          read_json(layout.data / "stats.json")["split"], "mean" if "mean" in methods else None)
    _paired_tests(comparison, methods, ranks)
    if is_main():
        write_report(comparison, layout.root)
        write_json(layout.results, comparison.to_json())
    return layout.results


def _combined(name: str, runs: list[MethodResult], layouts: list[RunLayout], seeds: list[int] | None, ranks: dict,
              budget_ranks: dict) -> MethodResult:
    """One method's result over its seeds; fills its per-seed ranks (and, for an LM method, its budget ranks)."""
    if METHODS[name].kind == "anchor":
        ranks[name] = [read_ranks(run_layout.stage(name, "eval")) for run_layout in layouts]
        return runs[0] if seeds is None else combine_seeds(runs, seeds, ranks[name])
    stages = [(run_layout.stage(name, "finetune"), run_layout.stage(name, "eval")) for run_layout in layouts]
    if seeds is None:  # the run's own budget curve is the method's
        budget_ranks[name] = curve_ranks(stages)
        ranks[name] = budget_ranks[name][max(budget_ranks[name])]  # the last point is the evaluate stage
        return runs[0]
    before = [(run.compute["ground"]["train_tokens"], run.compute["ground"]["train_seconds"]) for run in runs]
    curve, budget_ranks[name] = budget_curve(stages, before)
    ranks[name] = budget_ranks[name][max(budget_ranks[name])]
    result = combine_seeds(runs, seeds, ranks[name])
    result.by_budget = curve
    return result


def _paired_tests(comparison: Comparison, methods: list[str], ranks: dict) -> None:
    """Each method against mean init (when it ran) and against every anchor, user by user (`PAIRED` metrics)."""
    references = (["mean"] if "mean" in methods else []) + anchors(methods)
    for reference in references:
        for metric in PAIRED:
            values = seed_averaged_values(ranks[reference], metric)
            for name in methods:
                if reference != "mean" and name == reference:
                    continue
                test = paired_test(seed_averaged_values(ranks[name], metric), values)
                result = comparison.methods[name]
                if reference == "mean":
                    result.paired_vs_mean = {**(result.paired_vs_mean or {}), metric: test}
                else:
                    tests = result.paired_vs_anchors or {}
                    result.paired_vs_anchors = {**tests, reference: {**tests.get(reference, {}), metric: test}}
