"""`gti export`: one trained method of a run folder as a self-contained folder.

    DIR/model/            the fine-tuned Hugging Face model and tokenizer (safetensors)
    DIR/sids.json         the catalog's semantic ids
    DIR/items.jsonl       item id and title of every catalog item
    DIR/gti_config.json   how to ask the model: the next-item prompt template, the grounding templates, the SID
                          spelling (`<a_N><b_N>...`), and that answers need trie-constrained decoding (beams,
                          score); plus the prompt settings, history length, beams, batch size, precision
    DIR/training_config.json  the run's resolved config, for provenance
    DIR/README.md         a model card: how it was trained and its test metrics

`Recommender.from_pretrained(DIR)` loads it; `DIR/model` alone loads with
`transformers.AutoModelForCausalLM.from_pretrained`, and the model card's snippet (tested:
`tests/use/test_export.py`) reproduces `gti recommend`'s top k with plain transformers.
"""

import json
import shutil
from pathlib import Path

from gti import __version__
from gti.config import SMOLLM2, TINY_RANDOM, RunConfig, to_dict
from gti.errors import GtiError
from gti.folders import check_output, staged_folder
from gti.recommend import ITEMS_FILE, SETTINGS_FILE, Settings, catalog_titles, model_folder, read_run_config
from gti.sid import LEVEL_LETTERS, SemanticIds

EXPORT_FORMAT = 2
"""2: gti_config.json describes the prompt, the SIDs and the decoding (format 1 held the settings only)."""
BACKBONE_NAMES = {
    SMOLLM2: "SmolLM2-135M-Instruct de-quantized from its Q4_1 GGUF file (`smollm2-135m`): the 4-bit model's weights",
    TINY_RANDOM: "`tiny-random`: a tiny random Llama for smoke runs; its answers mean nothing",
}
EXPORT_FILES = ("model/", "sids.json", "items.jsonl", "gti_config.json", "training_config.json", "README.md")
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
                    **describe(config, sids, source), **Settings.from_config(config).to_json()}
        (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        (staging / "training_config.json").write_text(json.dumps(to_dict(config), indent=2) + "\n")
        card = model_card(config, run_dir, method_dir, method, seed, len(sids.item_ids), out.name, len(sids.codebook_sizes),
                          settings["next_item_prompt"]["chat_template"])
        (staging / "README.md").write_text(card)
    return out


def describe(config: RunConfig, sids: SemanticIds, model: Path) -> dict:
    """What a plain-transformers user needs to ask the model: prompt templates, SID spelling, decoding."""
    from transformers import AutoTokenizer

    from gti.config import history_items
    from gti.lm.prompts import SEQREC, SEQUENCE_PREFIX, history_separator

    prompts = config.prompts
    chat = prompts.chat and bool(AutoTokenizer.from_pretrained(model).chat_template)
    letters = LEVEL_LETTERS[: len(sids.codebook_sizes)]
    example = sids.item_ids[0]
    tokenize = ("tokenizer.apply_chat_template([{'role': 'user', 'content': text}], add_generation_prompt=True)"
                if chat else "tokenizer(text, add_special_tokens=False)")
    if config.finetune.samples == "sequence":
        prompt = {"layout": "sequence", "prefix": SEQUENCE_PREFIX[prompts.style],
                  "history": "token ids: the prefix's (text = prefix, tokenized as `tokenize` says), then each of the "
                             "history's last `history_items` items' SID token ids, oldest first, with the separator's "
                             "ids between two items and after the last",
                  "tokenize": tokenize}
    else:
        prompt = {"layout": "template", "template": SEQREC[prompts.style][0],
                  "history": "the semantic ids of the history's last `history_items` items, oldest first, joined by "
                             "`separator`, put in the template's {history}; text = the template so filled",
                  "tokenize": tokenize}
    return {
        "next_item_prompt": {
            **prompt,
            "separator": history_separator(prompts.style),
            "history_items": history_items(config),
            "chat_template": chat,
            "answer": "the next item's semantic id",
        },
        "grounding_prompts": {"text_to_sid": prompts.text_to_sid, "sid_to_text": prompts.sid_to_text,
                              "fields": "{title}, {description}: the item's text, cut to max_text_tokens tokens; "
                                        "{sid}: its semantic id"},
        "semantic_ids": {
            "spelling": "".join(f"<{letter}_N>" for letter in letters),
            "levels": len(sids.codebook_sizes),
            "codes_per_level": list(sids.codebook_sizes),
            "tokens": "one added token per (level, code): level letters a, b, c, ... and the code, e.g. "
                      + sids.tokens(example) + f" for item {example}",
            "file": "sids.json: {\"sids\": {item_id: [one code per level]}}",
        },
        "decoding": {
            "constrained": True,
            "method": "trie-constrained beam search: at each step only the tokens that continue some catalog "
                      "item's semantic id are allowed, so every answer is a catalog item; unconstrained "
                      "generation can write SIDs that name no item",
            "beams": config.eval.beams,
            "beams_rule": "max(k, beams), at most the catalog size",
            "score": "sum of the semantic-id tokens' log-probabilities (full-vocabulary softmax, no length penalty)",
        },
    }


SNIPPET = """\
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder = Path("EXPORT_FOLDER")
history = ["<item id>", "<item id>"]  # item ids of sids.json, oldest first
k = 10

config = json.loads((folder / "gti_config.json").read_text())
codes = json.loads((folder / "sids.json").read_text())["sids"]  # item id -> one code per level
tokenizer = AutoTokenizer.from_pretrained(folder / "model")
model = AutoModelForCausalLM.from_pretrained(folder / "model", dtype=torch.float32).eval()


def sid_tokens(item):  # e.g. ["<a_12>", "<b_7>", "<c_200>", "<d_0>"]
    return [f"<{chr(ord('a') + level)}_{code}>" for level, code in enumerate(codes[item])]


prompt = config["next_item_prompt"]
shown = history[-prompt["history_items"]:]
sequence = prompt.get("layout") == "sequence"  # a model fine-tuned on whole sequences
if sequence:
    text = prompt["prefix"]
else:
    text = prompt["template"].format(history=prompt["separator"].join("".join(sid_tokens(item)) for item in shown))
if prompt["chat_template"]:
    messages = [{"role": "user", "content": text}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
else:
    ids = tokenizer(text, add_special_tokens=False).input_ids
if sequence:  # then the SIDs as token ids, the separator between items and after the last
    separator = tokenizer(prompt["separator"], add_special_tokens=False).input_ids if prompt["separator"] else []
    for item in shown:
        ids = ids + tokenizer.convert_tokens_to_ids(sid_tokens(item)) + separator

# the trie: which token may follow each prefix of a catalog item's semantic id
allowed, item_of = {}, {}
for item in codes:
    sid = tuple(tokenizer.convert_tokens_to_ids(sid_tokens(item)))
    for depth in range(len(sid)):
        allowed.setdefault(sid[:depth], set()).add(sid[depth])
    item_of[sid] = item


def prefix_allowed_tokens_fn(_batch, sequence):
    return sorted(allowed.get(tuple(sequence[len(ids):].tolist()), [tokenizer.eos_token_id]))


beams = min(max(k, config["decoding"]["beams"]), len(codes))
with torch.no_grad():
    out = model.generate(
        torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        prefix_allowed_tokens_fn=prefix_allowed_tokens_fn, num_beams=beams, num_return_sequences=beams,
        max_new_tokens=config["semantic_ids"]["levels"], do_sample=False, length_penalty=0.0,
        output_scores=True, return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id,
    )
for sequence, score in list(zip(out.sequences, out.sequences_scores))[:k]:
    print(item_of[tuple(sequence[len(ids):].tolist())], round(float(score), 4))  # best first: item id, log-probability
"""
"""The model card's plain-transformers recipe (EXPORT_FOLDER becomes the export's name)."""


def _table(rows: list[tuple[str, object]]) -> str:
    return "\n".join(["| setting | value |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)])


def model_card(config: RunConfig, run_dir: Path, method_dir: Path, method: str, seed: int | None, items: int,
               name: str, levels: int, chat: bool) -> str:
    """The export's README.md: training setup from the config and manifests, test metrics from the run (`levels`: tokens
    per SID, extra disambiguation levels included; `chat`: whether prompts go through the chat template, as
    gti_config.json says: `prompts.chat` and a tokenizer that has one)."""
    stats = _read(run_dir / "data" / "stats.json") or {}
    evaluation = _read(method_dir / "eval" / "manifest.json") or {}
    metrics = _read(method_dir / "eval" / "metrics.json")
    finetune = _read(method_dir / "finetune" / "manifest.json") or {}
    methods = sorted(p.parent.parent.relative_to(run_dir).as_posix() for p in run_dir.glob("**/eval/manifest.json"))
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
        ("semantic ids", f"{sids.levels} levels x {sids.codes} codes, {sids.quantizer}, encoder `{sids.encoder}`, seed {sids.seed}"
                         + (f"; plus {levels - sids.levels} extra level{'s' if levels - sids.levels > 1 else ''} that tell apart "
                            f"items whose codes collide (sids.collisions = extra-level): {levels} tokens per item"
                            if levels > sids.levels else "")),
        ("backbone", BACKBONE_NAMES.get(config.model.name, f"`{config.model.name}`")),
        ("method", f"`{method}`" + (f" (init base `{config.init.base}`)" if "gti" in method else "")),
        ("methods in the run (evaluated)", ", ".join(f"`{m}`" for m in methods)),
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
        ("prompt style", f"{config.prompts.style} (chat template {'on' if chat else 'off'}"
                         + (": prompts.chat is set but the tokenizer has no chat template" if config.prompts.chat and not chat else "")
                         + ")"),
    ]
    if metrics:
        users = evaluation.get("users", "?")
        results = (f"Leave-one-out test set, {users} users, trie-constrained beam search with {config.eval.beams} beams "
                   "over the whole catalog:\n\n| metric | value |\n|---|---|\n"
                   + "\n".join(f"| {key} | {value:.4f} |" for key, value in metrics.items()))
    else:
        results = "The run holds no evaluation for this method."
    spelling = "".join(f"<{letter}_N>" for letter in LEVEL_LETTERS[:levels])
    snippet = SNIPPET.replace("EXPORT_FOLDER", name)
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

or `gti recommend {name} --history ID,ID --k 10`, or `gti serve {name}` for an HTTP API (its
OpenAPI page is `/docs`).

## Use with plain transformers

`model/` is a plain Hugging Face causal LM, but its answers are semantic ids and need
trie-constrained decoding: only tokens that continue some catalog item's semantic id may be
generated (`gti_config.json` holds the prompt template, the SID spelling `{spelling}` and the
decoding settings; `sids.json` every item's codes). This gives the same top k as `gti recommend`
(which scores in float32, `eval.precision`; items whose scores are exactly equal may come in
another order):

```python
{snippet}```

## Files

- `model/`: weights (safetensors) and tokenizer with the semantic-id tokens
- `sids.json`: item id -> codes; `items.jsonl`: item id and title
- `gti_config.json`: the next-item prompt template, the grounding templates, the SID spelling, the decoding
  (trie-constrained beam search, beams, score); prompt settings, history length, batch size, precision
- `training_config.json`: the run's config
"""
