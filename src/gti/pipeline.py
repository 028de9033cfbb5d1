"""Wire the stages together with caching: data -> sids -> init -> [ground] -> finetune -> evaluate.

Shared stages (data, sids) live at the top of the run folder; each initialization
method gets its own sub-folder with its init, ground, finetune and eval stages.
"""

import dataclasses
import json
import math
import shutil
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from gti.analysis import diagnose, plot_cosine_heatmap, plot_pool_metrics
from gti.analysis.report import write_report
from gti.artifacts import MANIFEST, read_json, run_stage, work_dir, write_json
from gti.budget import budget_curve, compute_matched, mean_of, read_ranks, seed_averaged_values, training_compute
from gti.config import GROUNDED_METHODS, LCREC_METHODS, METHODS, RunConfig, load_config, to_dict
from gti.data import (
    Dataset,
    Split,
    leave_one_out,
    load_dataset,
    render_item_text,
    sample_users,
    split_from_json,
    split_to_json,
)
from gti.device import autocast, compute_device, resolve_precision
from gti.distributed import is_main
from gti.errors import GtiError
from gti.lm.backbone import cache_dir, load_backbone
from gti.lm.prompts import PromptBuilder
from gti.lm.vocab import embedding_matrices, extend_vocabulary, initialize, token_item_texts
from gti.rec import (
    bootstrap_ci,
    catalog_coverage,
    evaluate,
    invalid_sid_rate,
    paired_test,
    per_user_values,
    pool_metrics,
    pool_ranks,
    popularity_bias,
)
from gti.sid import SemanticIds, build_sids, format_report, load_codebooks, save_codebooks
from gti.train.finetune import finetune, seqrec_examples
from gti.train.grounding import ground
from gti.train.loop import TrainResult, answer_loss, collate, train

STAGE_NAMES = {"init": "init", "ground": "grounded", "finetune": "finetuned"}


class Pipeline:
    """One run folder: shared stages computed once, then any number of methods.

    Args:
        config: the run's config (its `init` section is overridden per method).
        run_dir: the run folder.
    """

    def __init__(self, config: RunConfig, run_dir: Path, seed: int | None = None):
        if seed is not None:  # one training seed for every random choice after the SIDs
            config = dataclasses.replace(
                config, init=dataclasses.replace(config.init, seed=seed),
                ground=dataclasses.replace(config.ground, seed=seed),
                finetune=dataclasses.replace(config.finetune, seed=seed),
            )
        self.config = config
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.keys: dict[str, str] = {}
        self._builder: PromptBuilder | None = None

    def method_dir(self, method: str) -> Path:
        """`<run>/<method>`, or `<run>/<method>/seed-<s>` when the pipeline runs one of several seeds."""
        folder = self.run_dir / method
        return folder if self.seed is None else folder / f"seed-{self.seed}"

    @cached_property
    def dataset(self) -> Dataset:
        data = self.config.data
        return sample_users(load_dataset(data.source, data.format), data.users, data.seed)

    @cache
    def data(self) -> Split:
        """Stage `data`: load, sample users, leave-one-out split (checked and read once per pipeline)."""
        def build(folder: Path) -> dict:
            split = leave_one_out(self.dataset, self.config.data.max_history)
            write_json(folder / "stats.json", self.dataset.stats())
            write_json(folder / "split.json", split_to_json(split))
            return {"users": len(self.dataset.sequences), "test_examples": len(split.test)}

        manifest, _ = run_stage(self.run_dir / "data", to_dict(self.config.data), {}, build)
        self.keys["data"] = manifest["key"]
        return split_from_json(read_json(self.run_dir / "data" / "split.json"))

    @cache
    def sids(self) -> SemanticIds:
        """Stage `sids`: item text -> embeddings -> residual k-means codes -> unique SIDs (read once)."""
        self.data()
        def build(folder: Path) -> dict:
            fields = self.config.data.text_fields
            texts = {item_id: render_item_text(item, fields) for item_id, item in self.dataset.items.items()}
            settings = self.config.sids
            sids, report, codebooks = build_sids(
                texts, levels=settings.levels, codes=settings.codes, seed=settings.seed, encoder=settings.encoder,
                cache_dir=cache_dir() / "embeddings", quantizer=settings.quantizer, collisions=settings.collisions,
                categories=self.dataset.top_categories() or None, precision=settings.precision,
            )
            sids.save(folder)
            save_codebooks(codebooks, folder / "codebooks.safetensors")
            write_json(folder / "report.json", report)
            print(format_report(report))
            return {"collision_rate": report["collision_rate"]}

        manifest, _ = run_stage(self.run_dir / "sids", to_dict(self.config.sids), {"data": self.keys["data"]}, build)
        self.keys["sids"] = manifest["key"]
        return SemanticIds.load(self.run_dir / "sids")

    def _extended_backbone(self, sids: SemanticIds, start: Path | None = None):
        """The backbone with the SID tokens added; new rows (or the whole model) taken from a stage's output.

        `start` is a `new_rows.safetensors` file, a model folder, or None (rows left to `initialize`).
        """
        if start is not None and start.is_dir():
            tokenizer = AutoTokenizer.from_pretrained(start)
            model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32, use_safetensors=True).eval()
            new_ids = torch.tensor(tokenizer.convert_tokens_to_ids(sids.new_tokens()), dtype=torch.long)
            return model, tokenizer, new_ids, int(new_ids.min())
        model, tokenizer = load_backbone(self.config.model.name, self.config.model.trust_remote_code)
        n_old = len(tokenizer)
        new_ids = extend_vocabulary(model, tokenizer, sids.new_tokens())
        if start is not None:
            rows = load_file(start)
            with torch.no_grad():
                for i, weight in enumerate(embedding_matrices(model)):
                    weight[new_ids] = rows[f"matrix_{i}"].to(weight.dtype)
        return model, tokenizer, new_ids, n_old

    def _prompt_builder(self, tokenizer, sids: SemanticIds) -> PromptBuilder:
        """One prompt builder per run (the extended tokenizer is the same in every stage), so prompts are tokenized once."""
        if self._builder is None:
            self._builder = PromptBuilder(tokenizer, sids, self.dataset.items, self.config.prompts)
        return self._builder

    def _diagnose(self, model, tokenizer, new_ids: torch.Tensor, sids: SemanticIds, out: Path) -> None:
        """Write the new rows' diagnostics and a cosine heatmap (old vs SID tokens) into a stage folder."""
        codebooks = load_codebooks(self.run_dir / "sids" / "codebooks.safetensors")
        embeddings = model.get_input_embeddings().weight.detach()
        diagnostics = diagnose(
            embeddings, new_ids, sids.codes, sids.codebook_sizes,
            codebooks=codebooks, decode=lambda i: tokenizer.decode([int(i)]),
        )
        write_json(out / "diagnostics.json", diagnostics)
        plot_cosine_heatmap(embeddings, new_ids, out / "cosine_heatmap.png")

    @staticmethod
    def _save_rows(model, new_ids: torch.Tensor, path: Path) -> None:
        save_file({f"matrix_{i}": w.detach()[new_ids].contiguous() for i, w in enumerate(embedding_matrices(model))}, path)

    @staticmethod
    def _save_model(model, tokenizer, folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    def _text_ids(self, tokenizer, sids: SemanticIds) -> list[list[int]]:
        fields, limit = self.config.data.text_fields, self.config.prompts.max_text_tokens
        return [
            tokenizer(render_item_text(self.dataset.items[item], fields), add_special_tokens=False).input_ids[:limit]
            for item in sids.item_ids
        ]

    def init_stage(self, method: str) -> tuple[str, Path]:
        """Stage `<method>/init`: new rows set by `method` (`gti` starts from `init.base`)."""
        sids = self.sids()
        start_method = self.config.init.base if method == "gti" else method

        def build(out: Path) -> dict:
            model, tokenizer, new_ids, n_old = self._extended_backbone(sids)
            token_texts = None
            if start_method == "text":
                token_texts = token_item_texts(sids.codes, self._text_ids(tokenizer, sids), sids.codebook_sizes)
            initialize(model, new_ids, start_method, n_old, seed=self.config.init.seed, token_texts=token_texts)
            self._save_rows(model, new_ids, out / "new_rows.safetensors")
            self._diagnose(model, tokenizer, new_ids, sids, out)
            return {}

        config = {"method": start_method, "seed": self.config.init.seed, "model": to_dict(self.config.model)}
        if start_method == "text":
            config["text"] = {"fields": self.config.data.text_fields, "max_tokens": self.config.prompts.max_text_tokens}
        folder = self.method_dir(method) / "init"
        manifest, _ = run_stage(folder, config, {"sids": self.keys["sids"]}, build)
        return manifest["key"], folder / "new_rows.safetensors"

    def ground_stage(self, previous: tuple[str, Path]) -> tuple[str, Path]:
        """Stage `gti/ground`: only the new rows train on text<->SID prompts; optionally then all parameters."""
        sids, settings = self.sids(), self.config.ground

        def build(out: Path, work: Path) -> dict:
            model, tokenizer, new_ids, _ = self._extended_backbone(sids, previous[1])
            builder = self._prompt_builder(tokenizer, sids)
            samples = [s for item in sids.item_ids for s in builder.grounding(item, settings.directions)]
            steps = settings.steps if settings.epochs is None else math.ceil(settings.epochs * len(samples) / settings.batch_size)
            result = ground(
                model, new_ids, samples, steps=steps, lr=settings.lr, batch_size=settings.batch_size,
                pad_id=tokenizer.pad_token_id, seed=settings.seed, options=self.config.train, workdir=work,
            )
            losses = {"ground": result.losses}
            if settings.unfreeze_steps:
                model.requires_grad_(True)
                unfrozen = train(
                    model, samples, list(model.parameters()), steps=settings.unfreeze_steps, lr=settings.unfreeze_lr,
                    batch_size=settings.batch_size, pad_id=tokenizer.pad_token_id, seed=settings.seed + 1,
                    description="ground (unfrozen)", options=self.config.train, workdir=work / "unfrozen",
                )
                losses["unfrozen"] = unfrozen.losses
            if is_main():
                if settings.unfreeze_steps:
                    self._save_model(model, tokenizer, out / "model")
                else:
                    self._save_rows(model, new_ids, out / "new_rows.safetensors")
                self._diagnose(model, tokenizer, new_ids, sids, out)
                write_json(out / "losses.json", losses)
            summary = _training_summary(result)
            if settings.unfreeze_steps:
                summary["train_tokens"] += unfrozen.tokens
                summary["train_seconds"] = round(summary["train_seconds"] + unfrozen.seconds, 3)
            return {"samples": len(samples), **summary}

        folder = self.method_dir("gti") / "ground"
        config = {"ground": to_dict(settings), "prompts": to_dict(self.config.prompts), "train": self._train_key(False)}
        manifest = self._training_stage(folder, config, {"init": previous[0]}, build)
        output = folder / "model" if settings.unfreeze_steps else folder / "new_rows.safetensors"
        return manifest["key"], output

    def finetune_stage(self, method: str, previous: tuple[str, Path]) -> tuple[str, Path]:
        """Stage `<method>/finetune`: next-item prompts (plus the LC-Rec tasks for `lcrec` methods), full or LoRA."""
        split, sids = self.data(), self.sids()
        tasks = self.config.lcrec if method in LCREC_METHODS else None

        at_steps = [step for step in self.config.eval.at_steps if step < self.config.finetune.steps]

        def build(out: Path, work: Path) -> dict:
            model, tokenizer, new_ids, _ = self._extended_backbone(sids, previous[1])
            builder = self._prompt_builder(tokenizer, sids)
            examples = seqrec_examples(split.train, self.config.finetune.samples, self.config.prompts.history)

            def snapshot(step: int, trained, progress: TrainResult) -> None:
                """Evaluate the model as it is after `step` into `work/points/step-N` (kept across a resume)."""
                done = work / "points" / f"step-{step:06d}"
                if done.is_dir():
                    return
                staging = done.with_name(f".{done.name}.tmp")
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                self._evaluate(trained, tokenizer, split, sids, staging)
                write_json(staging / "point.json", {"finetune_steps": step, "train_tokens": progress.tokens,
                                                    "train_seconds": round(progress.seconds, 3)})
                staging.rename(done)

            result = finetune(
                model, builder, examples, self.config.finetune, tokenizer.pad_token_id, tasks=tasks,
                options=self.config.train, workdir=work, validate=self._validator(builder, tokenizer, split, sids),
                snapshot_steps=at_steps, snapshot=snapshot,
            )
            if is_main():
                self._save_model(model, tokenizer, out / "model")
                self._diagnose(model, tokenizer, new_ids, sids, out)
                write_json(out / "losses.json", result.losses)
                if at_steps:
                    shutil.copytree(work / "points", out / "points")
            return {"examples": len(examples), **_training_summary(result)}

        folder = self.method_dir(method) / "finetune"
        config = {"finetune": to_dict(self.config.finetune), "prompts": to_dict(self.config.prompts),
                  "train": self._train_key(True)}
        if tasks is not None:
            config["lcrec"] = to_dict(tasks)
        if at_steps:  # the points are evaluated inside the stage
            config["points"] = {"at_steps": at_steps, "eval": self._eval_key()}
        manifest = self._training_stage(folder, config, {"previous": previous[0]}, build)
        return manifest["key"], folder / "model"

    def _train_key(self, validation: bool) -> dict:
        """The [train] settings that change a training stage's result (checkpoints and logs do not)."""
        options = self.config.train
        key = {"precision": resolve_precision(options.precision, compute_device()), "grad_accum": options.grad_accum,
               "group_by_length": options.group_by_length}
        if validation and options.validate_every:
            key.update(validate_every=options.validate_every, validate_users=options.validate_users,
                       monitor=options.monitor, patience=options.patience)
        return key

    def _training_stage(self, folder: Path, config: dict, inputs: dict, build) -> dict:
        """`run_stage` for a training stage: `build(out, work)` gets a work folder for checkpoints and logs.

        An interrupted stage resumes from the checkpoint in its work folder; the training log
        is copied into the stage folder; the work folder goes once the stage is done
        (unless `train.keep_checkpoints`).
        """
        work = work_dir(folder, config, inputs)

        def build_with_work(out: Path) -> dict:
            summary = build(out, work)
            for log in () if not is_main() else ("train_log.jsonl", "tensorboard", "unfrozen/train_log.jsonl"):
                if (work / log).is_file():
                    shutil.copy2(work / log, out / log.replace("/", "_"))
                elif (work / log).is_dir():
                    shutil.copytree(work / log, out / log)
            return summary

        manifest, _ = run_stage(folder, config, inputs, build_with_work, collective=True)
        if is_main() and not self.config.train.keep_checkpoints:
            shutil.rmtree(work.parent, ignore_errors=True)
        return manifest

    def _validator(self, builder: PromptBuilder, tokenizer, split: Split, sids: SemanticIds):
        """Validation for fine-tuning: answer loss and, unless monitoring loss, beam-search metrics."""
        options = self.config.train
        if not options.validate_every:
            return None
        examples = split.valid[: options.validate_users]
        if not examples:
            raise GtiError("train.validate_every: the split has no validation examples (users need 3+ items)")
        prompts = [builder.seqrec(e.history).prompt for e in examples]
        samples = [builder.seqrec(e.history, e.target) for e in examples]

        def validate(model) -> dict[str, float]:
            total, count = 0.0, 0
            for start in range(0, len(samples), self.config.eval.batch_size):
                chunk = samples[start:start + self.config.eval.batch_size]
                batch = collate(chunk, tokenizer.pad_token_id).to(model.device)
                total += float(answer_loss(model, batch, reduction="sum"))
                count += sum(len(s.answer) for s in chunk)
            measures = {"loss": total / count}
            if options.monitor != "loss":
                result = evaluate(
                    model, prompts, [sids.row(e.target) for e in examples], sids.trie(), builder.level_ids,
                    beams=self.config.eval.beams, batch_size=self.config.eval.batch_size,
                    pad_token_id=tokenizer.pad_token_id,
                )
                measures.update(result.metrics)
            return measures

        return validate

    def eval_stage(self, method: str, previous: tuple[str, Path]) -> str:
        """Stage `<method>/eval`: trie-constrained beam search over the test users, ranking metrics."""
        split, sids = self.data(), self.sids()

        def build(out: Path) -> dict:
            model, tokenizer, _, _ = self._extended_backbone(sids, previous[1])
            model.to(compute_device())
            with autocast(self.config.train.precision, model.device):
                return self._evaluate(model, tokenizer, split, sids, out)

        manifest, _ = run_stage(self.method_dir(method) / "eval", self._eval_key(), {"finetune": previous[0]}, build)
        return manifest["key"]

    def _eval_key(self) -> dict:
        """The settings that change an evaluation's result (the budget points are the fine-tuning stage's)."""
        settings = {key: value for key, value in to_dict(self.config.eval).items() if key != "at_steps"}
        return {**settings, "precision": resolve_precision(self.config.train.precision, compute_device())}

    def _evaluate(self, model, tokenizer, split: Split, sids: SemanticIds, out: Path) -> dict:
        """Beam-search the test users; write predictions, metrics, output measures and pool curves into `out`."""
        builder = self._prompt_builder(tokenizer, sids)
        examples = split.test[: self.config.eval.users] if self.config.eval.users else split.test
        prompts = [builder.seqrec(e.history).prompt for e in examples]
        targets = [sids.row(e.target) for e in examples]
        result = evaluate(
            model, prompts, targets,
            sids.trie(), builder.level_ids, beams=self.config.eval.beams, batch_size=self.config.eval.batch_size,
            pad_token_id=tokenizer.pad_token_id, progress=True,
        )
        lines = [
            json.dumps({"user_id": e.user_id, "target": e.target, "rank": rank,
                        "top10": [sids.item_ids[row] for row, _ in ranked[:10]]})
            for e, rank, ranked in zip(examples, result.ranks, result.ranked)
        ]
        (out / "predictions.jsonl").write_text("\n".join(lines) + "\n")
        write_json(out / "metrics.json", result.metrics)
        counts = np.zeros(len(sids.item_ids))
        for sequence in split.train.values():
            for item in sequence:
                counts[sids.row(item)] += 1
        top = [[row for row, _ in ranked] for ranked in result.ranked]
        write_json(out / "output.json", {
            "catalog_coverage@10": catalog_coverage(top, len(sids.item_ids), k=10),
            "popularity_bias@10": popularity_bias(top, counts, k=10),
            "invalid_sid_rate": invalid_sid_rate(
                model, prompts, sids.trie(), builder.level_ids, pad_token_id=tokenizer.pad_token_id,
                batch_size=self.config.eval.batch_size,
            ),
        })
        if self.config.eval.pool_sizes:
            ranks_by_size = {
                size: pool_ranks(
                    model, prompts, targets, sids.codes, builder.level_ids,
                    min(size, len(sids.item_ids) - 1), len(sids.item_ids), self.config.eval.seed,
                )
                for size in self.config.eval.pool_sizes
            }
            pool = pool_metrics(ranks_by_size)
            write_json(out / "pool.json", pool)
            plot_pool_metrics(pool, out / "pool.png", ["recall@10", "ndcg@10"])
        return {"users": len(examples)}

    def run_method(self, method: str, until: str = "eval") -> dict:
        """Stages init, [ground], finetune, eval for one method, stopping after `until`.

        `lcrec` and `gti+lcrec` share the init (and ground) stages of `mean` and `gti`, so one
        run folder grounds once for both `gti` and `gti+lcrec`.

        Returns:
            {"diagnostics": {stage: ...}, "seconds": {stage: ...}, and once evaluated "metrics" and
            "finetune_final_loss"}, read back from the stage folders.
        """
        folder = self.method_dir(method)
        base = {"lcrec": "mean", "gti+lcrec": "gti"}.get(method, method)
        previous = self.init_stage(base)
        if base == "gti" and until != "init":
            previous = self.ground_stage(previous)
        if until in ("finetune", "eval"):
            previous = self.finetune_stage(method, previous)
        if until == "eval":
            self.eval_stage(method, previous)
        results: dict = {"diagnostics": {}, "seconds": {}}
        for stage in ("init", "ground", "finetune", "eval"):
            stage_dir = (self.method_dir(base) if stage in ("init", "ground") else folder) / stage
            if (stage_dir / MANIFEST).is_file():
                results["seconds"][stage] = read_json(stage_dir / MANIFEST)["seconds"]
            if (stage_dir / "diagnostics.json").is_file():
                results["diagnostics"][STAGE_NAMES[stage]] = read_json(stage_dir / "diagnostics.json")
        ground = training_compute(self.method_dir(base) / "ground" / MANIFEST)
        finetuned = training_compute(folder / "finetune" / MANIFEST)
        results["compute"] = {"ground": {"train_tokens": ground[0], "train_seconds": ground[1]},
                              "finetune": {"train_tokens": finetuned[0], "train_seconds": finetuned[1]}}
        results["train_tokens"] = ground[0] + finetuned[0]
        results["train_seconds"] = round(ground[1] + finetuned[1], 3)
        if until == "eval":
            results["by_budget"] = budget_curve([folder], [ground])[0]
            losses = read_json(folder / "finetune" / "losses.json")[-10:]
            results["finetune_final_loss"] = round(sum(losses) / len(losses), 4) if losses else None
            results["metrics"] = read_json(folder / "eval" / "metrics.json")
            results["output"] = read_json(folder / "eval" / "output.json")
            ranks = eval_ranks(folder)
            results["metrics_ci"] = {
                name: bootstrap_ci(per_user_values(ranks, name)) for name in results["metrics"]
            }
            if is_main():
                write_json(folder / "metrics.json", results["metrics"])
        return results


def _training_summary(result: TrainResult) -> dict:
    """What a training stage's manifest records about its training."""
    summary = {"train_tokens": result.tokens, "train_seconds": round(result.seconds, 3),
               "tokens_per_second": round(result.tokens_per_second, 1), "final_loss": result.final_loss,
               "precision": result.precision, "processes": result.processes}
    if result.resumed_from is not None:
        summary["resumed_from_step"] = result.resumed_from
    if result.validations:
        summary.update(validations=result.validations, best_step=result.best_step, stopped_early=result.stopped_early)
    return summary


def eval_ranks(method_dir: Path) -> list[int | None]:
    """Per-user target ranks of a method's evaluation, in user order."""
    return read_ranks(Path(method_dir) / "eval")


def open_run_dir(config: RunConfig, out: str | None, overwrite: bool) -> Path:
    """The run folder, with the config saved in it; a folder made with another config is refused."""
    run_dir = Path(out or config.out)
    saved = run_dir / "config.json"
    if saved.exists() and read_json(saved) != to_dict(config) and not overwrite:
        raise GtiError(f"{run_dir}: holds a run with another config; pass --overwrite or choose --out")
    if is_main():
        write_json(saved, to_dict(config))
    return run_dir


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
    if budgets is not None:
        if not budgets or sorted(set(budgets)) != budgets or budgets[0] < 1:
            raise GtiError(f"--budgets: expected increasing distinct positive step counts, got {budgets}")
        overrides = [*overrides, f"finetune.steps={budgets[-1]}", f"eval.at_steps={budgets[:-1]}"]
    config = load_config(config_path, overrides)
    for method in methods:
        if method not in METHODS:
            raise GtiError(f"--methods: {method!r} is not one of {', '.join(METHODS)}")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
        raise GtiError(f"--seeds: expected distinct non-negative integers, got {seeds}")
    run_dir = open_run_dir(config, out, overwrite)
    pipelines = [Pipeline(config, run_dir)] if seeds is None else [Pipeline(config, run_dir, seed) for seed in seeds]
    results = {"config": to_dict(config), "seeds": seeds, "methods": {}}
    ranks = {}  # method -> per-seed lists of per-user ranks, read once
    budget_ranks = {}  # method -> step -> per-seed lists of per-user ranks
    for method in methods:
        runs = []
        for pipeline in pipelines:
            print(f"== {method}" + ("" if pipeline.seed is None else f" (seed {pipeline.seed})"))
            runs.append(pipeline.run_method(method))
        folders = [pipeline.method_dir(method) for pipeline in pipelines]
        ranks[method] = [eval_ranks(folder) for folder in folders]
        results["methods"][method] = runs[0] if seeds is None else _combine_seeds(runs, seeds, ranks[method])
        results["methods"][method]["folder"] = str(folders[0].relative_to(run_dir))
        before = [run["compute"]["ground"] for run in runs]
        curve, budget_ranks[method] = budget_curve(folders, [(b["train_tokens"], b["train_seconds"]) for b in before])
        results["methods"][method]["by_budget"] = curve
    grounded = [method for method in methods if method in GROUNDED_METHODS]
    results["compute_matched"] = compute_matched(
        {m: results["methods"][m]["by_budget"] for m in methods}, budget_ranks, grounded
    )
    results["sids"] = read_json(run_dir / "sids" / "report.json")
    if "mean" in methods:
        for name in ("recall@10", "ndcg@10"):
            reference = seed_averaged_values(ranks["mean"], name)
            for method in methods:
                values = seed_averaged_values(ranks[method], name)
                results["methods"][method].setdefault("paired_vs_mean", {})[name] = paired_test(values, reference)
    path = run_dir / "results.json"
    if is_main():
        write_report(results, run_dir)
        write_json(path, results)
    return path


def _combine_seeds(runs: list[dict], seeds: list[int], seed_ranks: list[list[int | None]]) -> dict:
    """One method's results over seeds: means (and seed std) of metrics, outputs, losses and seconds."""
    metrics = list(runs[0]["metrics"])
    return {
        "metrics": {name: mean_of([run["metrics"][name] for run in runs]) for name in metrics},
        "metrics_seed_std": {name: float(np.std([run["metrics"][name] for run in runs])) for name in metrics},
        "metrics_ci": {name: bootstrap_ci(seed_averaged_values(seed_ranks, name)) for name in metrics},
        "output": {key: mean_of([run["output"][key] for run in runs]) for key in runs[0]["output"]},
        "finetune_final_loss": mean_of([run["finetune_final_loss"] for run in runs]),
        "seconds": {stage: mean_of([run["seconds"].get(stage) for run in runs]) for stage in runs[0]["seconds"]},
        "compute": mean_of([run["compute"] for run in runs]),
        "train_tokens": mean_of([run["train_tokens"] for run in runs]),
        "train_seconds": mean_of([run["train_seconds"] for run in runs]),
        "diagnostics": runs[0]["diagnostics"],
        "by_seed": {str(seed): run for seed, run in zip(seeds, runs)},
    }
