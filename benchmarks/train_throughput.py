"""Training throughput: gti's loop against a bare forward/backward/step loop on the same batches.

SmolLM2-135M with 192 SID tokens added; samples shaped like the CPU demo's prompts
(20-40 prompt tokens, a 4-token SID answer), batch 16. `loop_vs_bare` compares the loop
(`gti.train.loop.train`: Accelerate, length-grouped batches, logging, clipping, schedule)
with the plainest loop that does the same arithmetic on the same batches; the issue's
target is at least TARGET. Then tokens/s of full fine-tuning, LoRA and grounding through
the loop, and of full fine-tuning in float32 beside the `auto` precision.

Usage: python benchmarks/train_throughput.py [--steps N]
"""

import argparse
import random
import time
from pathlib import Path

import torch
from machine import invocation, machine  # benchmarks/machine.py, next to this script

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

RESULTS = Path(__file__).parent / "results"
TARGET = 0.9
BATCH = 16
LR = 1e-5


def make_samples(new_ids: torch.Tensor, vocab: int, count: int = 512) -> list[Sample]:
    rng = random.Random(0)
    return [
        Sample([rng.randrange(100, vocab) for _ in range(rng.randrange(20, 41))],
               [int(new_ids[rng.randrange(len(new_ids))]) for _ in range(4)])
        for _ in range(count)
    ]


def fresh_model():
    model, tokenizer = load_backbone("smollm2-135m")
    n_old = len(tokenizer)
    new_ids = extend_vocabulary(model, tokenizer, sid_tokens([64, 64, 64]))
    initialize(model, new_ids, "mean", n_old)
    return model, tokenizer, new_ids


def bare(samples: list[Sample], steps: int, precision: str) -> dict:
    """The plainest loop over the batches `train` would draw: forward, backward, clip, step."""
    model, tokenizer, _ = fresh_model()
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


def through_loop(mode: str, samples: list[Sample], steps: int, precision: str) -> dict:
    model, tokenizer, new_ids = fresh_model()
    options = TrainConfig(precision=precision)
    common = dict(steps=steps, lr=LR, batch_size=BATCH, pad_id=tokenizer.pad_token_id, options=options)
    if mode == "full":
        result = train(model, samples, list(model.parameters()), **common)
    elif mode == "lora":
        result = _train_lora(model, samples, new_ids, FinetuneConfig(mode="lora"), common)
    else:
        result = ground(model, new_ids, samples, **{k: v for k, v in common.items()})
    return {"tokens_per_s": result.tokens_per_second, "seconds": result.seconds, "steps": steps,
            "precision": result.precision, "final_loss": result.final_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    steps = parser.parse_args().steps
    precision = resolve_precision("auto")
    _, tokenizer, new_ids = fresh_model()
    samples = make_samples(new_ids, len(tokenizer) - len(new_ids))

    runs = {}
    for name, run in [
        ("bare_full", lambda: bare(samples, steps, precision)),
        ("loop_full", lambda: through_loop("full", samples, steps, precision)),
        ("loop_lora", lambda: through_loop("lora", samples, steps, precision)),
        ("loop_grounding", lambda: through_loop("ground", samples, steps, precision)),
        ("loop_full_float32", lambda: through_loop("full", samples, steps, "float32")),
    ]:
        runs[name] = run()
        print(f"{name:<18} {runs[name]['tokens_per_s']:7.1f} tokens/s", flush=True)

    ratio = runs["loop_full"]["tokens_per_s"] / runs["bare_full"]["tokens_per_s"]
    write_json(RESULTS / "train_throughput.json", {
        "benchmark": "training tokens/s: gti's loop vs a bare loop on the same batches; full, lora, grounding",
        "setting": {"model": "smollm2-135m", "new_tokens": len(new_ids), "batch_size": BATCH, "steps": steps,
                    "prompt_tokens": "20-40", "answer_tokens": 4, "precision": precision},
        "loop_vs_bare": ratio,
        "target": TARGET,
        "met_target": ratio >= TARGET,
        "tokens_per_s": {
            "full": runs["loop_full"]["tokens_per_s"],
            "lora": runs["loop_lora"]["tokens_per_s"],
            "grounding": runs["loop_grounding"]["tokens_per_s"],
            "full_float32": runs["loop_full_float32"]["tokens_per_s"],
            "bare_full": runs["bare_full"]["tokens_per_s"],
        },
        "runs": runs,
        "machine": machine(),
        **invocation(),
    })
    print(f"loop_vs_bare {ratio:.3f} (target {TARGET}); wrote {RESULTS / 'train_throughput.json'}")


if __name__ == "__main__":
    main()
