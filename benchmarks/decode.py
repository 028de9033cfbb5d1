"""Constrained beam search speed: ours against `generate(num_beams=...)` and the bare forward passes.

The setting of the issue: SmolLM2-135M, ml-100k items with 4-token semantic ids (3 levels of
64 codes plus the disambiguation level), 20 beams, batches of 8 prompts of about 85 tokens
(left-padded: lengths alternate just below and just above 85). Three ways to do the same work:

- ours: `gti.rec.constrained_beam_search` (prompt prefill once per prompt, then the beams);
- hf: `model.generate(num_beams=20, prefix_allowed_tokens_fn=...)` walking the same trie
  (it runs the prefill on all 8 x 20 beam rows);
- floor: only the model calls of ours (prefill of 8 rows, 3 cached steps on 8 x 20 rows), no search.

Each is warmed up once on the first batch, then all three run in turn (ours, floor, hf, ours,
...) for --repeats rounds on all prompts. Ratios are taken per round and claimed only beyond
their spread (`timing.ratio`): ours at least SPEEDUP_TARGET times faster than hf, and ours at
most FLOOR_TARGET times the floor's seconds. Both searches must return the same top-20 items
per prompt; disagreements are recorded.

Then candidate-pool scoring, on the first prompt and POOL_CANDIDATES seeded catalog rows (the
same interleaving after one warm-up each):

- naive: each candidate as a full sequence (prompt + SID) through the model, 20 at a time (decode_pool.py), no
  cache, log-probabilities of the SID tokens over the full vocabulary;
- ours: `gti.rec.score_candidates` (the prompt runs once, its KV cache is shared by all candidates).

Both must give the same scores; the largest gap is recorded.

Then the benchmark setting (`benchmark_setting`): 10 beams, sequence-layout prompts of 20-item histories
(`finetune.samples = "sequence"`), for float32 and, on a CPU with native bf16, bfloat16 layers (SID
log-probabilities stay float32), at batch sizes 8, 16 and 32: ours against its floor, interleaved per mode; the
largest gap between a prompt's scores batched and alone per precision; the best batch per precision and a
full-Beauty test pass (22,363 users) at its rate.

Usage: python benchmarks/decode.py [--repeats N] [--quick] [--out PATH] [--setting-only]
  --quick: a tiny random Llama, random semantic ids, 8 prompts and 5 beams, written to
  results/decode_quick.json: a smoke test of the script, not a measurement.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from transformers import DynamicCache

import gti.data
import gti.rec
import gti.sid
from decode_pool import pool_speed  # benchmarks/decode_pool.py, next to this script
from gti.artifacts import read_json, write_json
from gti.config import PromptConfig
from gti.device import autocast, resolve_precision
from gti.lm.backbone import load_backbone
from gti.lm.prompts import PromptBuilder
from gti.lm.vocab import extend_vocabulary, initialize
from machine import invocation, machine  # benchmarks/machine.py, next to this script
from timing import add_timing_arguments, interleaved, ratio, spread
from train_throughput import tiny_backbone

RESULTS = Path(__file__).parent / "results"
SID_CACHE = Path("/tmp/gti_bench_cache")
MODEL = "smollm2-135m"
BEAMS = 20
BATCH = 8
N_PROMPTS = 24
PROMPT_TOKENS = 85
POOL_CANDIDATES = 100
SPEEDUP_TARGET = 1.0  # ours at least as fast as generate
FLOOR_TARGET = 1.1  # ours' seconds at most 10% above its own forward passes
MODES_BEAMS = 10  # the benchmark setting of issue 30: 10 beams, 20-item histories in the sequence layout
MODES_ITEMS = 20
MODES_PROMPTS = 32
MODES_BATCHES = [8, 16, 32]
MODES_ALONE = 16  # prompts compared batched against alone
BEAUTY_TEST_USERS = 22363
QUICK = {"beams": 5, "batch": 4, "prompts": 8, "pool_candidates": 20}
TEMPLATE = "The user has interacted with items {history} in chronological order. Can you predict the next item?"


def build_prompts(tokenizer, sids: gti.sid.SemanticIds, examples: list[gti.data.Example]) -> list[list[int]]:
    """One prompt per example from its most recent history items, lengths straddling PROMPT_TOKENS.

    Even prompts hold the most items that keep them within PROMPT_TOKENS, odd prompts one item
    more, so every batch mixes two lengths and is left-padded as real batches are.
    """
    prompts = []
    for index, example in enumerate(examples):
        def prompt(count: int, example=example) -> list[int]:
            history = ", ".join(sids.tokens(item) for item in example.history[-count:])
            return tokenizer(TEMPLATE.format(history=history), add_special_tokens=False).input_ids

        count = 1
        while count < len(example.history) and len(prompt(count + 1)) <= PROMPT_TOKENS:
            count += 1
        prompts.append(prompt(min(count + index % 2, len(example.history))))
    return prompts


def left_pad(prompts: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) left-padded input ids and their (B, T) attention mask."""
    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return input_ids, mask


def run_ours(model, prompts, trie, token_ids, pad_token_id, beams: int | None = None, batch: int | None = None,
             precision: str = "float32") -> list[list[tuple[int, float]]]:
    """(item row, score) lists from our constrained beam search (default: the module's beams and batch, float32)."""
    return gti.rec.constrained_beam_search(
        model, prompts, trie, token_ids, beams=beams or BEAMS, batch_size=batch or BATCH, pad_token_id=pad_token_id,
        precision=precision,
    )


@torch.no_grad()
def run_hf(model, prompts, trie, token_ids, pad_token_id) -> list[list[tuple[int, float]]]:
    """(item row, score) lists from `generate` with a prefix function walking the trie's child tables."""
    children = [table.numpy() for table in trie.children]  # per level: (nodes, K_l) child node or -1
    code_of = [{int(token): code for code, token in enumerate(ids)} for ids in token_ids]  # per level: token -> code
    allowed_cache: dict[tuple[int, int], list[int]] = {}

    def walk(generated: list[int]) -> int:
        """The trie node (an item row after the last level) reached by the generated SID tokens."""
        node = 0
        for level, token in enumerate(generated):
            node = int(children[level][node, code_of[level][token]])
        return node

    def allowed(level: int, node: int) -> list[int]:
        if (level, node) not in allowed_cache:
            allowed_cache[level, node] = token_ids[level][children[level][node] >= 0].tolist()
        return allowed_cache[level, node]

    results = []
    for start in range(0, len(prompts), BATCH):
        input_ids, mask = left_pad(prompts[start : start + BATCH], pad_token_id)  # (B, T), (B, T)
        width = input_ids.shape[1]

        def prefix_allowed_tokens_fn(_batch_id: int, ids: torch.Tensor, width: int = width) -> list[int]:
            generated = ids[width:].tolist()
            return allowed(len(generated), walk(generated))

        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
            num_beams=BEAMS,
            num_return_sequences=BEAMS,
            max_new_tokens=trie.levels,
            do_sample=False,
            length_penalty=0.0,
            pad_token_id=pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        items = [walk(row) for row in out.sequences[:, width:].tolist()]  # (B*beams,) best first per prompt
        scores = out.sequences_scores.tolist()  # (B*beams,)
        for row in range(0, len(items), BEAMS):
            results.append(list(zip(items[row : row + BEAMS], scores[row : row + BEAMS])))
    return results


@torch.no_grad()
@torch.no_grad()
def run_floor(model, prompts, trie, token_ids, pad_token_id, beams: int | None = None, batch: int | None = None,
              precision: str = "float32") -> None:
    """The forward passes of our search alone: prefill B rows, expand the cache, L-1 steps on B*beams rows."""
    beams, batch = beams or BEAMS, batch or BATCH
    with autocast(precision, model.device):
        for start in range(0, len(prompts), batch):
            input_ids, mask = left_pad(prompts[start : start + batch], pad_token_id)  # (B, T), (B, T)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
            cache = DynamicCache(config=model.config)
            model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache, logits_to_keep=1)
            cache.batch_repeat_interleave(beams)
            mask = mask.repeat_interleave(beams, dim=0)  # (B*beams, T)
            next_position = positions[:, -1].repeat_interleave(beams) + 1  # (B*beams,)
            for level in range(trie.levels - 1):
                tokens = token_ids[level][:beams].repeat(len(input_ids))[:, None]  # (B*beams, 1)
                mask = torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)  # (B*beams, T+level+1)
                positions = next_position[:, None]  # (B*beams, 1)
                model(input_ids=tokens, attention_mask=mask, position_ids=positions, cache=cache)
                next_position = next_position + 1


def sequence_prompts(tokenizer, sids: gti.sid.SemanticIds, examples: list[gti.data.Example], items: int) -> list[list[int]]:
    """Sequence-layout prompts (`finetune.samples = "sequence"`): the compact prefix, then the SIDs of the last
    `items` history items, as `gti.lm.prompts.PromptBuilder` writes them (chat template off)."""
    builder = PromptBuilder(tokenizer, sids, {}, PromptConfig(style="compact", chat=False, history=items), sequence=True)
    return [builder.seqrec(example.history).prompt for example in examples]


def eval_modes(model, tokenizer, sids, trie, token_ids, repeats: int, quick: bool) -> dict:
    """The benchmark setting (`MODES_BEAMS` beams, `MODES_ITEMS`-item histories, sequence layout): prompts per second
    of our search and of its floor per precision and batch size (interleaved, after a warm-up), the ratio to the
    floor, the gap between batched and alone scores per precision, and a full-Beauty test pass at the best batch."""
    examples = [e for e in gti.data.leave_one_out(gti.data.load_dataset("ml-100k")).test if len(e.history) >= MODES_ITEMS]
    prompts = sequence_prompts(tokenizer, sids, examples[:8 if quick else MODES_PROMPTS], MODES_ITEMS)
    beams = QUICK["beams"] if quick else MODES_BEAMS
    precisions = ["float32"] + (["bfloat16"] if resolve_precision("auto") == "bfloat16" or quick else [])
    batches = [2, 4] if quick else MODES_BATCHES
    pad = tokenizer.pad_token_id
    found: dict = {"beams": beams, "history_items": MODES_ITEMS, "prompts": len(prompts),
                   "prompt_tokens": float(np.mean([len(p) for p in prompts])), "precisions": precisions,
                   "batch_sizes": batches, "by_mode": {}}
    compared = prompts[:MODES_ALONE]
    for precision in precisions:
        alone = run_ours(model, compared, trie, token_ids, pad, beams, 1, precision)
        batched = run_ours(model, compared, trie, token_ids, pad, beams, len(compared), precision)
        gap = max(abs(a[1] - b[1]) for one, many in zip(alone, batched) for a, b in zip(one, many))
        same = sum([r for r, _ in one] == [r for r, _ in many] for one, many in zip(alone, batched))
        for batch in batches:
            sides = {side: (lambda run=run, batch=batch, precision=precision: run(
                model, prompts, trie, token_ids, pad, beams, batch, precision) and None)  # timed by wall clock
                     for side, run in (("ours", run_ours), ("floor", run_floor))}
            seconds = interleaved(sides, repeats)
            found["by_mode"][f"{precision}/batch-{batch}"] = {
                "precision": precision, "batch_size": batch,
                "ours_prompts_per_s": len(prompts) / float(np.median(seconds["ours"])),
                "floor_prompts_per_s": len(prompts) / float(np.median(seconds["floor"])),
                "ratio_to_floor": ratio(seconds["ours"], seconds["floor"], FLOOR_TARGET, at_least=False),
                "seconds": {side: spread(values) for side, values in seconds.items()},
            }
        found[f"{precision}_batched_vs_alone"] = {"prompts": len(compared), "max_abs_score_diff": gap,
                                                  "same_ranked_lists": same}
    for precision in precisions:
        rows = [row for row in found["by_mode"].values() if row["precision"] == precision]
        best = max(rows, key=lambda row: row["ours_prompts_per_s"])
        found[f"{precision}_best_batch"] = best["batch_size"]
        found[f"{precision}_full_beauty_test_pass_minutes"] = round(BEAUTY_TEST_USERS / best["ours_prompts_per_s"] / 60, 1)
    found["full_beauty_note"] = (f"{BEAUTY_TEST_USERS:,} test users at the best batch's measured rate (an extrapolation "
                                 "from these prompts: Beauty's SIDs have the same 4 tokens, its histories are shorter)")
    return found


def compare(ours: list[list[tuple[int, float]]], hf: list[list[tuple[int, float]]], item_ids: list[str]) -> dict:
    """Whether both searches return the same items in the same order, where they first differ, and the
    largest gap between their scores at the same rank."""
    differing = [index for index, (a, b) in enumerate(zip(ours, hf)) if [i for i, _ in a] != [i for i, _ in b]]
    score_gap = max(abs(sa - sb) for a, b in zip(ours, hf) for (_, sa), (_, sb) in zip(a, b))
    agreement = {
        "identical_topk": not differing, "prompts_differing": len(differing), "max_abs_score_diff_same_rank": score_gap
    }
    if differing:
        index = differing[0]
        a, b = ours[index], hf[index]
        rank = next((r for r, ((ia, _), (ib, _)) in enumerate(zip(a, b)) if ia != ib), min(len(a), len(b)))
        agreement["first_difference"] = {
            "prompt": index,
            "rank": rank,
            "ours": [(item_ids[item], score) for item, score in a[rank : rank + 3]],
            "hf": [(item_ids[item], score) for item, score in b[rank : rank + 3]],
            "same_item_set": {i for i, _ in a} == {i for i, _ in b},
        }
    return agreement


def setup(quick: bool) -> tuple:
    """The model with SID tokens, the semantic ids, the prompts, the trie and each level's token ids."""
    torch.manual_seed(0)
    dataset = gti.data.load_dataset("ml-100k")
    if quick:  # random, distinct ids: no encoder to load
        item_ids = list(dataset.items)
        sizes = [16, 16, 8]
        rows = np.random.default_rng(0).permutation(int(np.prod(sizes)))[: len(item_ids)]
        sids = gti.sid.SemanticIds(item_ids, np.stack(np.unravel_index(rows, sizes), axis=1), sizes)
        model, tokenizer = tiny_backbone()
    else:
        texts = {item_id: gti.data.render_item_text(item) for item_id, item in dataset.items.items()}
        sids, _, _ = gti.sid.build_sids(texts, levels=3, codes=64, seed=0, cache_dir=SID_CACHE)
        model, tokenizer = load_backbone(MODEL)
    n_old = len(tokenizer)
    new_ids = extend_vocabulary(model, tokenizer, sids.new_tokens())
    initialize(model, new_ids, "random", n_old)

    examples = gti.data.leave_one_out(dataset).test[:N_PROMPTS]
    prompts = build_prompts(tokenizer, sids, examples)
    token_ids = gti.rec.level_token_ids(tokenizer, sids.codebook_sizes)
    return model, tokenizer, sids, prompts, sids.trie(), token_ids


def main() -> None:
    global BEAMS, BATCH, N_PROMPTS, POOL_CANDIDATES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_timing_arguments(parser, "timed rounds", "a tiny random model: a smoke test", "results/decode[_quick].json")
    parser.add_argument("--setting-only", action="store_true",
                        help="measure only the benchmark setting and add it to the existing result file (its earlier "
                             "sections keep their own machine and command; this one records its own)")
    args = parser.parse_args()
    if args.quick:
        BEAMS, BATCH, N_PROMPTS, POOL_CANDIDATES = (QUICK[k] for k in ("beams", "batch", "prompts", "pool_candidates"))
    out = args.out or RESULTS / ("decode_quick.json" if args.quick else "decode.json")

    model, tokenizer, sids, prompts, trie, token_ids = setup(args.quick)
    pad = tokenizer.pad_token_id
    if args.setting_only:
        record = read_json(out) if out.is_file() else {}
        setting = eval_modes(model, tokenizer, sids, trie, token_ids, args.repeats, args.quick)
        write_json(out, {**record, "benchmark_setting": {**setting, "machine": machine(), **invocation()}})
        print(f"wrote the benchmark setting into {out}")
        return
    found = {}

    def search(name: str, method, prompt_list):
        def call() -> None:
            found[name] = method(model, prompt_list, trie, token_ids, pad)
        return call

    for method in (run_ours, run_floor, run_hf):  # warm-up on the first batch
        method(model, prompts[:BATCH], trie, token_ids, pad)
    seconds = interleaved(
        {name: search(name, method, prompts) for name, method in (("ours", run_ours), ("floor", run_floor), ("hf", run_hf))},
        args.repeats, warmup=False,
    )
    speedup = ratio(seconds["hf"], seconds["ours"], SPEEDUP_TARGET)
    to_floor = ratio(seconds["ours"], seconds["floor"], FLOOR_TARGET, at_least=False)
    lengths = [len(prompt) for prompt in prompts]
    write_json(out, {
        "benchmark": "constrained beam search over semantic ids",
        "quick": args.quick,
        "setting": {
            "model": "tiny random llama" if args.quick else MODEL,
            "dataset": "ml-100k",
            "catalog_items": len(sids.item_ids),
            "codebook_sizes": sids.codebook_sizes,
            "sid_tokens": trie.levels,
            "beams": BEAMS,
            "batch_size": BATCH,
            "prompts": len(prompts),
            "prompt_tokens": {"mean": float(np.mean(lengths)), "min": min(lengths), "max": max(lengths)},
            "new_token_init": "random",
            "dtype": str(model.dtype),
            "repeats": args.repeats,
            "order": "ours, floor, hf in turn after one warm-up of each on the first batch",
        },
        "ours_prompts_per_s": len(prompts) / float(np.median(seconds["ours"])),
        "hf_prompts_per_s": len(prompts) / float(np.median(seconds["hf"])),
        "floor_prompts_per_s": len(prompts) / float(np.median(seconds["floor"])),
        "speedup_vs_hf": speedup,
        "ratio_to_floor": to_floor,
        "seconds": {name: spread(values) for name, values in seconds.items()},
        **compare(found["ours"], found["hf"], sids.item_ids),
        **pool_speed(model, prompts[0], sids.codes, token_ids, args.repeats, POOL_CANDIDATES),
        "benchmark_setting": eval_modes(model, tokenizer, sids, trie, token_ids, args.repeats, args.quick),
        "machine": machine(),
        **invocation(),
    })
    print(f"speedup vs hf: {speedup['why']}; ratio to floor: {to_floor['why']}; wrote {out}")


if __name__ == "__main__":
    main()
