"""`gti export`: one trained method of a run folder as a self-contained folder.

    DIR/model/            the fine-tuned Hugging Face model and tokenizer (safetensors)
    DIR/sids.json         the catalog's semantic ids
    DIR/items.jsonl       item id and title of every catalog item
    DIR/gti_config.json   prompt settings, history length, beams, batch size, precision
    DIR/training_config.json  the run's resolved config, for provenance
    DIR/README.md         a model card: how it was trained and its test metrics

`Recommender.from_pretrained(DIR)` loads it; `DIR/model` alone loads with
`transformers.AutoModelForCausalLM.from_pretrained`.
"""

import json
import shutil
from pathlib import Path

from gti import __version__
from gti.config import RunConfig, to_dict
from gti.errors import GtiError
from gti.folders import check_output, staged_folder
from gti.recommend import ITEMS_FILE, SETTINGS_FILE, Settings, catalog_titles, model_folder, read_run_config
from gti.sid import SemanticIds

EXPORT_FORMAT = 1
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (ValueError, OSError):
        return None


def export(run_dir: str | Path, out: str | Path, method: str = "gti", seed: int | None = None,
           overwrite: bool = False) -> Path:
    """Write `out` (atomically) from `<run>/<method>[/seed-<seed>]`; an existing non-empty `out` needs `overwrite`.

    Raises:
        GtiError: not a run folder, no fine-tuned model for the method, non-safetensors weights,
            or `out` exists.
    """
    run_dir, out = Path(run_dir), Path(out)
    check_output(out, overwrite)
    config = read_run_config(run_dir)
    source = model_folder(run_dir, method, seed)
    if not any(source.glob("*.safetensors")) or any(p for pattern in PICKLE_PATTERNS for p in source.glob(pattern)):
        raise GtiError(f"{source}: expected safetensors weights only")
    sids = SemanticIds.load(run_dir / "sids")
    titles = catalog_titles(config, sids, run_dir)
    method_dir = source.parent.parent
    with staged_folder(out, overwrite) as staging:
        shutil.copytree(source, staging / "model")
        sids.save(staging)
        with (staging / ITEMS_FILE).open("w", encoding="utf-8") as file:
            for item_id in sids.item_ids:
                file.write(json.dumps({"item_id": item_id, "title": titles[item_id]}, ensure_ascii=False) + "\n")
        settings = {"format": EXPORT_FORMAT, "gti_version": __version__, "method": method, "seed": seed,
                    **Settings.from_config(config).to_json()}
        (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        (staging / "training_config.json").write_text(json.dumps(to_dict(config), indent=2) + "\n")
        card = model_card(config, run_dir, method_dir, method, seed, len(sids.item_ids), out.name)
        (staging / "README.md").write_text(card)
    return out


def _table(rows: list[tuple[str, object]]) -> str:
    return "\n".join(["| setting | value |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)])


def model_card(config: RunConfig, run_dir: Path, method_dir: Path, method: str, seed: int | None, items: int,
               name: str) -> str:
    """The export's README.md: training setup from the config and manifests, test metrics from the run."""
    stats = _read(run_dir / "data" / "stats.json") or {}
    evaluation = _read(method_dir / "eval" / "manifest.json") or {}
    metrics = _read(method_dir / "eval" / "metrics.json")
    finetune = _read(method_dir / "finetune" / "manifest.json") or {}
    methods = sorted(p.parent.parent.relative_to(run_dir).as_posix() for p in run_dir.glob("**/finetune/manifest.json"))
    data, sids, train = config.data, config.sids, config.finetune
    seeds = (f"training seed {seed} (init, grounding, fine-tuning)" if seed is not None else
             f"init {config.init.seed}, grounding {config.ground.seed}, fine-tuning {train.seed}")
    rows = [
        ("dataset", f"`{data.source}` ({data.format or 'format detected'})"),
        ("users", f"{stats.get('users', '?')} ({'all' if data.users is None else f'{data.users} sampled, seed {data.seed}'})"),
        ("catalog items", items),
        ("split", (data.split if data.split == "leave-one-out" else f"cold-items ({data.cold_fraction} of the catalog "
                   "cold; test metrics are the warm test set's)")
         + f"; histories up to {data.max_history} items, prompts use the last {config.prompts.history}"),
        ("semantic ids", f"{sids.levels} levels x {sids.codes} codes, {sids.quantizer}, encoder `{sids.encoder}`, seed {sids.seed}"),
        ("backbone", f"`{config.model.name}`"),
        ("method", f"`{method}`" + (f" (init base `{config.init.base}`)" if "gti" in method else "")),
        ("methods in the run", ", ".join(f"`{m}`" for m in methods)),
    ]
    if "gti" in method:
        rows.append(("grounding", f"{config.ground.steps} steps, lr {config.ground.lr}, batch {config.ground.batch_size}, "
                                  f"directions {config.ground.directions}"))
    rows += [
        ("fine-tuning", f"{train.mode}, {train.steps} steps, lr {train.lr}, batch {train.batch_size}, samples {train.samples}"
                        + (f"; final loss {finetune['final_loss']}" if "final_loss" in finetune else "")),
        ("seeds", seeds),
        ("training precision", finetune.get("precision", config.train.precision)),
        ("evaluation precision", config.eval.precision),
        ("prompt style", f"{config.prompts.style} (chat template {'on' if config.prompts.chat else 'off'})"),
    ]
    if metrics:
        users = evaluation.get("users", "?")
        results = (f"Leave-one-out test set, {users} users, trie-constrained beam search with {config.eval.beams} beams "
                   "over the whole catalog:\n\n| metric | value |\n|---|---|\n"
                   + "\n".join(f"| {key} | {value:.4f} |" for key, value in metrics.items()))
    else:
        results = "The run holds no evaluation for this method."
    return f"""---
library_name: transformers
tags:
- gti
- generative-recommendation
- semantic-ids
---

# {name}

A generative recommender exported by gti {__version__} from the run folder `{run_dir.name}` (method `{method}`).
Each catalog item is a semantic id: a few new tokens (`sids.json`); the model reads a user's history as
semantic ids and writes the next item's, decoded with a trie so only catalog items come out.

## Training

{_table(rows)}

The whole resolved config is in `training_config.json`.

## Test metrics

{results}

## Use

```python
from gti import Recommender

recommender = Recommender.from_pretrained("{name}")
recommender.recommend(["<item id>", "<item id>"], k=10)  # [{{"item_id", "title", "score"}}, ...]
```

or `gti recommend {name} --history ID,ID --k 10`, or `gti serve {name}` for an HTTP API. `model/` alone is a
plain Hugging Face causal LM (`AutoModelForCausalLM.from_pretrained("{name}/model")`).

## Files

- `model/`: weights (safetensors) and tokenizer with the semantic-id tokens
- `sids.json`: item id -> codes; `items.jsonl`: item id and title
- `gti_config.json`: prompt settings, history length, beams, batch size, precision
- `training_config.json`: the run's config
"""
