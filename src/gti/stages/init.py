"""Stage `init`: add the SID tokens to the backbone and set their rows (mean, mean-hf, random or text)."""

from pathlib import Path

from gti.artifacts import run_stage
from gti.config import RunConfig, to_dict
from gti.data import Dataset, render_item_text
from gti.lm.vocab import initialize, token_item_texts
from gti.stages.artifacts import SidsArtifact, Weights
from gti.stages.common import extended_backbone, save_rows, write_diagnostics


def run_init(how: str, config: RunConfig, sids: SidsArtifact, dataset: Dataset, folder: Path) -> Weights:
    """Write `new_rows.safetensors` and the rows' diagnostics into `folder` (once); return the rows.

    Args:
        how: `mean`, `mean-hf`, `random`, `text`, or `base` for the config's `init.base`.
        config: the model, `init.seed`, and for `text` the item text settings.
        dataset: the items, whose texts `text` initialization averages.
    """
    how = config.init.base if how == "base" else how

    def build(out: Path) -> dict:
        model, tokenizer, new_ids, n_old = extended_backbone(config.model, sids.sids)
        token_texts = None
        if how == "text":
            fields, limit = config.data.text_fields, config.prompts.max_text_tokens
            item_text_ids = [
                tokenizer(render_item_text(dataset.items[item], fields), add_special_tokens=False).input_ids[:limit]
                for item in sids.sids.item_ids
            ]
            token_texts = token_item_texts(sids.sids.codes, item_text_ids, sids.sids.codebook_sizes)
        initialize(model, new_ids, how, n_old, seed=config.init.seed, token_texts=token_texts)
        save_rows(model, new_ids, out / "new_rows.safetensors")
        write_diagnostics(model, tokenizer, new_ids, sids, out, folder)
        return {}

    key_config = {"method": how, "seed": config.init.seed, "model": to_dict(config.model)}
    if how == "text":
        key_config["text"] = {"fields": config.data.text_fields, "max_tokens": config.prompts.max_text_tokens}
    manifest, _ = run_stage(folder, key_config, {"sids": sids.key}, build)
    return Weights(manifest["key"], folder / "new_rows.safetensors")
