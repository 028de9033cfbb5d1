"""Stage `ground` (GTI): only the new rows train on paired text<->SID prompts; optionally then every parameter."""

import math
from pathlib import Path

from gti.artifacts import write_json
from gti.config import RunConfig, to_dict
from gti.distributed import is_main
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
from gti.train.grounding import ground
from gti.train.loop import train


def run_ground(config: RunConfig, previous: Weights, shared: Shared, folder: Path) -> Weights:
    """Ground the rows of `previous` into `folder` (once); return the grounded rows (or model, when unfrozen)."""
    settings = config.ground
    sids = shared.sids

    def build(out: Path, work: Path) -> dict:
        model, tokenizer, new_ids, _ = extended_backbone(config.model, sids.sids, previous.path)
        builder = shared.builder(tokenizer)
        samples = [s for item in sids.sids.item_ids for s in builder.grounding(item, settings.directions)]
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
    manifest = training_stage(folder, key_config, {"init": previous.key}, config.train, build)
    return Weights(manifest["key"], folder / "model" if settings.unfreeze_steps else folder / "new_rows.safetensors")
