"""Stage `ground` (GTI): only the new rows train on paired text<->SID prompts; optionally then every parameter.

The `rows-first` control runs this same stage (same rows, optimizer, learning rate, steps, batch
size and seed, from the same `init.base` rows) on the fine-tuning's next-item prompts instead
(`ground_on="next-item"`): it differs from GTI's grounding only in what the prompts say.
"""

import math
from pathlib import Path

from gti.artifacts import write_json
from gti.config import RunConfig, to_dict
from gti.distributed import is_main
from gti.lm.prompts import PromptBuilder, Sample
from gti.stages.artifacts import Shared, Weights
from gti.stages.common import (
    extended_backbone,
    save_model,
    save_rows,
    train_key,
    training_stage,
    training_summary,
    write_diagnostics,
)
from gti.train.finetune import finetune_samples, seqrec_examples
from gti.train.grounding import ground
from gti.train.loop import train


def grounding_samples(config: RunConfig, shared: Shared, builder: PromptBuilder, ground_on: str = "text") -> list[Sample]:
    """What grounding trains on: every item's text<->SID prompts (`text`), or the fine-tuning's next-item
    samples (`next-item`: the examples of `finetune.samples` and their phrasings drawn with `finetune.seed`)."""
    if ground_on == "text":
        return [s for item in shared.sids.sids.item_ids for s in builder.grounding(item, config.ground.directions)]
    examples = seqrec_examples(shared.data.split.train, config.finetune.samples, config.prompts.history)
    return finetune_samples(builder, examples, config.finetune)


def run_ground(config: RunConfig, previous: Weights, shared: Shared, folder: Path, ground_on: str = "text") -> Weights:
    """Ground the rows of `previous` into `folder` (once); return the grounded rows (or model, when unfrozen).

    Args:
        ground_on: `text` (GTI: text<->SID prompts) or `next-item` (the `rows-first` control).
    """
    settings = config.ground
    sids = shared.sids

    def build(out: Path, work: Path) -> dict:
        model, tokenizer, new_ids, _ = extended_backbone(config.model, sids.sids, previous.path)
        builder = shared.builder(tokenizer, config.model.name)
        samples = grounding_samples(config, shared, builder, ground_on)
        steps = settings.steps if settings.epochs is None else math.ceil(settings.epochs * len(samples) / settings.batch_size)
        result = ground(
            model, new_ids, samples, steps=steps, lr=settings.lr, batch_size=settings.batch_size,
            pad_id=tokenizer.pad_token_id, seed=settings.seed, options=config.train, workdir=work,
        )
        summary = training_summary(result)
        losses = {"ground": result.losses}
        if settings.unfreeze_steps:
            model.requires_grad_(True)
            unfrozen = train(
                model, samples, list(model.parameters()), steps=settings.unfreeze_steps, lr=settings.unfreeze_lr,
                batch_size=settings.batch_size, pad_id=tokenizer.pad_token_id, seed=settings.seed + 1,
                description="ground (unfrozen)", options=config.train, workdir=work / "unfrozen",
            )
            losses["unfrozen"] = unfrozen.losses
            summary["train_tokens"] += unfrozen.tokens
            summary["train_seconds"] = round(summary["train_seconds"] + unfrozen.seconds, 3)
        if is_main():
            if settings.unfreeze_steps:
                save_model(model, tokenizer, out / "model")
            else:
                save_rows(model, new_ids, out / "new_rows.safetensors")
            write_diagnostics(model, tokenizer, new_ids, sids, out, folder)
            write_json(out / "losses.json", losses)
        return {"samples": len(samples), **summary}

    key_config = {"ground": to_dict(settings), "prompts": to_dict(config.prompts), "train": train_key(config.train, False)}
    if ground_on != "text":  # GTI's key stays as it was
        key_config["samples"] = {"on": ground_on, "finetune": {"samples": config.finetune.samples, "seed": config.finetune.seed}}
    manifest = training_stage(folder, key_config, {"init": previous.key}, config.train, build)
    return Weights(manifest["key"], folder / "model" if settings.unfreeze_steps else folder / "new_rows.safetensors")
