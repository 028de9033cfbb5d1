"""Stage `finetune`: next-item prompts (plus the LC-Rec tasks where the method mixes them in), full or LoRA.

With `eval.at_steps`, the model is evaluated at those steps during this stage (budget points,
`finetune/points/step-NNNNNN/`), exactly as the `evaluate` stage would evaluate a run of that
many steps; a point already evaluated before an interruption is not evaluated again.
"""

import shutil
from pathlib import Path

from gti.artifacts import write_json
from gti.config import RunConfig, to_dict
from gti.distributed import is_main
from gti.methods import Method
from gti.stages.artifacts import Shared, Weights
from gti.stages.common import (
    extended_backbone,
    save_model,
    train_key,
    training_stage,
    training_summary,
    write_diagnostics,
)
from gti.stages.evaluate import eval_key, evaluate_into, validator
from gti.train.finetune import finetune, seqrec_examples
from gti.train.loop import TrainResult


def point_folder(points: Path, step: int) -> Path:
    return points / f"step-{step:06d}"


def run_finetune(config: RunConfig, method: Method, previous: Weights, shared: Shared, folder: Path) -> Weights:
    """Fine-tune from `previous` into `folder` (once); return the fine-tuned model folder."""
    split, sids = shared.data.split, shared.sids
    tasks = config.lcrec if method.lcrec_tasks else None
    at_steps = [step for step in config.eval.at_steps if step < config.finetune.steps]

    def build(out: Path, work: Path) -> dict:
        model, tokenizer, new_ids, _ = extended_backbone(config.model, sids.sids, previous.path)
        builder = shared.builder(tokenizer, config.model.name)
        examples = seqrec_examples(split.train, config.finetune.samples, config.prompts.history)

        def snapshot(step: int, trained, progress: TrainResult) -> None:
            """Evaluate the model as it is after `step` into `work/points/step-N` (kept across a resume)."""
            done = point_folder(work / "points", step)
            if done.is_dir():
                return
            staging = done.with_name(f".{done.name}.tmp")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            evaluate_into(trained, tokenizer, builder, config.eval, split, sids.sids, staging)
            write_json(staging / "point.json", {"finetune_steps": step, "train_tokens": progress.tokens,
                                                "train_seconds": round(progress.seconds, 3)})
            staging.rename(done)

        result = finetune(
            model, builder, examples, config.finetune, tokenizer.pad_token_id, tasks=tasks,
            options=config.train, workdir=work, validate=validator(config, builder, tokenizer, split, sids.sids),
            snapshot_steps=at_steps, snapshot=snapshot,
        )
        if is_main():
            save_model(model, tokenizer, out / "model")
            write_diagnostics(model, tokenizer, new_ids, sids, out, folder)
            write_json(out / "losses.json", result.losses)
            if at_steps:
                shutil.copytree(work / "points", out / "points")
        return {"examples": len(examples), **training_summary(result)}

    finetune_settings = to_dict(config.finetune)
    if finetune_settings["new_rows_lr"] is None:  # unset: the key of a run made before the setting existed
        del finetune_settings["new_rows_lr"]
    key_config = {"finetune": finetune_settings, "prompts": to_dict(config.prompts),
                  "train": train_key(config.train, True)}
    if tasks is not None:
        key_config["lcrec"] = to_dict(tasks)
    if at_steps:  # the points are evaluated inside the stage
        key_config["points"] = {"at_steps": at_steps, "eval": eval_key(config.eval, config.train, split.is_cold)}
    manifest = training_stage(folder, key_config, {"previous": previous.key}, config.train, build)
    return Weights(manifest["key"], folder / "model")
