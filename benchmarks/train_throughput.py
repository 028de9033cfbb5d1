"""Training throughput: gti's loop against a bare forward/backward/step loop on the same batches.

SmolLM2-135M with 192 SID tokens added; samples shaped like the CPU demo's prompts
(20-40 prompt tokens, a 4-token SID answer), batch 16. `loop_vs_bare` compares the loop
(`gti.train.loop.train`: Accelerate, length-grouped batches, logging, clipping, schedule)
with the plainest loop that does the same arithmetic on the same batches: both sides run
alternately (bare, loop, bare, loop, ...) after a short warm-up of each, --repeats rounds,
each on a freshly loaded model; the ratio of each round is kept, and the target (at least
TARGET) counts as met only when the median clears it by more than the ratios' spread
(`timing.ratio`). Then tokens/s of LoRA and grounding through the loop, and of full
fine-tuning in float32 beside the `auto` precision, one run each.

Usage: python benchmarks/train_throughput.py [--steps N] [--repeats N] [--quick] [--out PATH]
  --quick: a tiny random Llama (2 layers, hidden 16) and 3 steps, written to
  results/train_throughput_quick.json: a smoke test of the script, not a measurement.
"""

import argparse
import random
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gti.artifacts import write_json
from gti.config import FinetuneConfig, TrainConfig
from gti.device import resolve_precision
from gti.lm.backbone import load_backbone
from gti.lm.prompts import Sample
from gti.lm.vocab import extend_vocabulary, initialize
from gti.sid import sid_tokens
from gti.train.finetune import _train_lora
from gti.train.grounding import ground
from gti.train.loop import BatchPlan, answer_loss, collate, train
from machine import invocation, machine  # benchmarks/machine.py, next to this script
from timing import add_timing_arguments, interleaved, ratio, spread

RESULTS = Path(__file__).parent / "results"
TARGET = 0.9
BATCH = 16
LR = 1e-5
WARMUP_STEPS = 2


def make_samples(new_ids: torch.Tensor, vocab: int, count: int = 512) -> list[Sample]:
    rng = random.Random(0)
    return [
        Sample([rng.randrange(100, vocab) for _ in range(rng.randrange(20, 41))],
               [int(new_ids[rng.randrange(len(new_ids))]) for _ in range(4)])
        for _ in range(count)
    ]


def tiny_backbone():
    """A random 2-layer, hidden-16 Llama and a 300-word tokenizer: the quick mode's stand-in."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3} | {f"w{n}": n + 4 for n in range(296)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
    )
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(config), tokenizer


def fresh_model(quick: bool):
    model, tokenizer = tiny_backbone() if quick else load_backbone("smollm2-135m")
    n_old = len(tokenizer)
    new_ids = extend_vocabulary(model, tokenizer, sid_tokens([64, 64, 64]))
    initialize(model, new_ids, "mean", n_old)
    return model, tokenizer, new_ids


def bare(samples: list[Sample], steps: int, precision: str, quick: bool) -> dict:
    """The plainest loop over the batches `train` would draw: forward, backward, clip, step."""
    model, tokenizer, _ = fresh_model(quick)
    model.train()
    parameters = list(model.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=LR, weight_decay=0.0)
    plan = BatchPlan(samples, BATCH, seed=0, group_by_length=True)
    batches = [collate([samples[i] for i in plan.indices(step)], tokenizer.pad_token_id) for step in range(steps)]
    tokens, start = 0, time.perf_counter()
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = answer_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.tokens
    seconds = time.perf_counter() - start
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "steps": steps}


def through_loop(mode: str, samples: list[Sample], steps: int, precision: str, quick: bool) -> dict:
    model, tokenizer, new_ids = fresh_model(quick)
    options = TrainConfig(precision=precision)
    common = dict(steps=steps, lr=LR, batch_size=BATCH, pad_id=tokenizer.pad_token_id, options=options)
    if mode == "full":
        result = train(model, samples, list(model.parameters()), **common)
    elif mode == "lora":
        result = _train_lora(model, samples, new_ids, FinetuneConfig(mode="lora"), common)
    else:
        result = ground(model, new_ids, samples, **common)
    return {"tokens_per_s": result.tokens_per_second, "seconds": result.seconds, "steps": steps,
            "precision": result.precision, "final_loss": result.final_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    add_timing_arguments(parser, "rounds of bare and loop", "a tiny random model and 3 steps: a smoke test",
                         "results/train_throughput[_quick].json")
    args = parser.parse_args()
    quick, steps = args.quick, 3 if args.quick else args.steps
    out = args.out or RESULTS / ("train_throughput_quick.json" if quick else "train_throughput.json")
    precision = resolve_precision("auto")
    _, tokenizer, new_ids = fresh_model(quick)
    samples = make_samples(new_ids, len(tokenizer) - len(new_ids))

    records: dict[str, list[dict]] = {"bare_full": [], "loop_full": []}

    def side(name: str, run, steps_: int, keep: bool = True):
        def call() -> float:
            record = run(steps_)
            if keep:
                records[name].append(record)
            return record["tokens_per_s"]
        return call

    run_bare = lambda n: bare(samples, n, precision, quick)  # noqa: E731
    run_loop = lambda n: through_loop("full", samples, n, precision, quick)  # noqa: E731
    # the warm-up calls run WARMUP_STEPS steps and are not recorded
    warmup = {"bare_full": side("bare_full", run_bare, WARMUP_STEPS, keep=False),
              "loop_full": side("loop_full", run_loop, WARMUP_STEPS, keep=False)}
    for call in warmup.values():
        call()
    rates = interleaved({"bare_full": side("bare_full", run_bare, steps), "loop_full": side("loop_full", run_loop, steps)},
                        args.repeats, warmup=False)
    loop_vs_bare = ratio(rates["loop_full"], rates["bare_full"], TARGET)

    single = {}
    for name, mode, run_precision in [("loop_lora", "lora", precision), ("loop_grounding", "ground", precision),
                                      ("loop_full_float32", "full", "float32")]:
        single[name] = through_loop(mode, samples, steps, run_precision, quick)
        print(f"{name:<18} {single[name]['tokens_per_s']:9.1f} tokens/s", flush=True)

    write_json(out, {
        "benchmark": "training tokens/s: gti's loop vs a bare loop on the same batches; full, lora, grounding",
        "quick": quick,
        "setting": {"model": "tiny random llama" if quick else "smollm2-135m", "new_tokens": len(new_ids),
                    "batch_size": BATCH, "steps": steps, "warmup_steps": WARMUP_STEPS, "repeats": args.repeats,
                    "order": "bare, loop alternating, after one warm-up of each; lora, grounding, float32 once each",
                    "prompt_tokens": "20-40", "answer_tokens": 4, "precision": precision},
        "loop_vs_bare": loop_vs_bare,
        "target": TARGET,
        "met": loop_vs_bare["met"],
        "why": loop_vs_bare["why"],
        "tokens_per_s": {
            "full": spread(rates["loop_full"]),
            "bare_full": spread(rates["bare_full"]),
            "lora": single["loop_lora"]["tokens_per_s"],
            "grounding": single["loop_grounding"]["tokens_per_s"],
            "full_float32": single["loop_full_float32"]["tokens_per_s"],
        },
        "runs": {**records, **single},
        "machine": machine(),
        **invocation(),
    })
    print(f"loop_vs_bare median {loop_vs_bare['median']:.3f} (target {TARGET}): met={loop_vs_bare['met']}, "
          f"{loop_vs_bare['why']}; wrote {out}")


if __name__ == "__main__":
    main()
