"""Training tokens of each method of a config, counted from its batch plan without training.

Batches are a pure function of (seed, step), so the tokens a method's training stages process
(prompt + answer, padding excluded; grounding included) can be counted exactly from the config.
This gives the compute of runs recorded before the stages recorded their tokens (e.g.
benchmarks/results/beauty_lowdata_cpu.json). The data and SID stages are computed (or read back)
in RUN_DIR.

Usage: python benchmarks/train_tokens.py CONFIG --methods mean,text,gti,lcrec --out RESULT_JSON [--run-dir DIR]
"""

import argparse
import math
import sys
from pathlib import Path

from gti.artifacts import write_json
from gti.config import load_config
from gti.layout import RunLayout
from gti.lm.backbone import load_backbone
from gti.lm.vocab import extend_vocabulary
from gti.methods import METHODS
from gti.runner import prepare
from gti.stages.ground import grounding_samples
from gti.train.batches import planned_tokens
from gti.train.finetune import finetune_samples, seqrec_examples
from machine import machine  # benchmarks/machine.py, next to this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--methods", default="mean,text,gti,lcrec")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/train_tokens")
    args = parser.parse_args()
    config = load_config(args.config)
    shared = prepare(config, RunLayout(Path(args.run_dir)))
    model, tokenizer = load_backbone(config.model.name, config.model.trust_remote_code)
    extend_vocabulary(model, tokenizer, shared.sids.sids.new_tokens())
    builder = shared.builder(tokenizer)
    group = config.train.group_by_length
    ground = config.ground

    def ground_tokens(on: str) -> int:
        samples = grounding_samples(config, shared, builder, on)
        steps = ground.steps if ground.epochs is None else math.ceil(ground.epochs * len(samples) / ground.batch_size)
        return (planned_tokens(samples, steps, ground.batch_size, ground.seed, group)
                + planned_tokens(samples, ground.unfreeze_steps, ground.batch_size, ground.seed + 1, group))

    grounding = grounding_samples(config, shared, builder, "text")
    examples = seqrec_examples(shared.data.split.train, config.finetune.samples, config.prompts.history)
    found = {}
    for name in args.methods.split(","):
        method = METHODS[name]
        if method.kind == "anchor":
            sys.exit(f"train_tokens: {name} is an anchor; it processes no LM tokens")
        samples = finetune_samples(builder, examples, config.finetune, config.lcrec if method.lcrec_tasks else None)
        tuned = planned_tokens(samples, config.finetune.steps, config.finetune.batch_size, config.finetune.seed, group)
        grounded = ground_tokens(method.ground_on) if method.ground else 0
        found[name] = {"ground_tokens": grounded, "finetune_tokens": tuned, "train_tokens": grounded + tuned,
                       "finetune_samples": len(samples)}
        print(f"{name:<10} ground {grounded:>10,}  finetune {tuned:>10,}  total {grounded + tuned:>10,}")
    write_json(args.out, {
        "benchmark": "training tokens counted from the batch plan", "config": args.config, "methods": found,
        "grounding_samples": len(grounding), "machine": machine(),
        "command": f"python benchmarks/train_tokens.py {args.config} --methods {args.methods} --out {args.out}",
    })


if __name__ == "__main__":
    main()
