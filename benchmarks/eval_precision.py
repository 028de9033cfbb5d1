"""Does bfloat16 evaluation rank as float32 does? (issue 30) One fine-tuned model, the same test users, both precisions.

Takes a finished run folder (e.g. a part of `benchmarks/beauty_converged.py`) and one LM method in it: its
float32 evaluation (`<method>/eval`, `eval.precision = "float32"`) is read back, and the same model is evaluated
again on the same test users with `eval.precision = "bfloat16"` (layers in bf16, SID log-probabilities float32)
into `<method>/eval_bf16`. Records benchmarks/results/eval_precision_cpu.json: both evaluations' metrics with CIs
and seconds, bf16 minus float32 paired over the users (recall@10, NDCG@10: CI, p-value), how many users got the
same target rank, and the machine. Benchmarks may evaluate in bf16 only where the two agree within their CIs.

Usage: python benchmarks/eval_precision.py RUN_DIR [--method gti] [--out PATH]
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from gti.artifacts import MANIFEST, read_json, write_json
from gti.budget import read_ranks, read_users
from gti.config import from_dict
from gti.layout import RunLayout
from gti.methods import METHODS
from gti.rec import paired_test, per_user_values
from gti.runner import _rows, for_method, prepare
from gti.stages import run_eval, run_finetune
from machine import invocation, machine, without_paths  # benchmarks/machine.py, next to this script

RESULTS = Path("benchmarks/results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--method", default="gti")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_precision_cpu.json")
    args = parser.parse_args()
    layout = RunLayout(args.run_dir)
    if args.method not in METHODS or METHODS[args.method].kind != "lm":
        sys.exit(f"eval_precision: --method {args.method}: expected an LM method")
    float32 = layout.stage(args.method, "eval")
    if not (float32 / MANIFEST).is_file():
        sys.exit(f"eval_precision: {float32}: no finished evaluation")
    config = for_method(from_dict(read_json(layout.config), str(layout.config)), args.method)
    if config.eval.precision != "float32":
        sys.exit(f"eval_precision: {layout.config}: eval.precision is {config.eval.precision}, expected float32")
    shared = prepare(config, layout, methods=[args.method])  # cached stages: read back, nothing recomputed
    weights = run_finetune(config, METHODS[args.method], _rows(config, layout, args.method, shared), shared,
                           layout.stage(args.method, "finetune"))
    bf16_config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, precision="bfloat16"))
    bf16 = layout.method(args.method) / "eval_bf16"
    run_eval(bf16_config, weights, shared, bf16)
    if read_users(bf16) != read_users(float32):
        sys.exit("eval_precision: the two evaluations ranked other users")
    ranks = {"float32": read_ranks(float32), "bfloat16": read_ranks(bf16)}
    same = sum(a == b for a, b in zip(ranks["float32"], ranks["bfloat16"]))
    evaluations = {}
    for name, folder in (("float32", float32), ("bfloat16", bf16)):
        metrics = read_json(folder / "metrics.json")
        evaluations[name] = {"metrics": metrics, "seconds": read_json(folder / MANIFEST).get("seconds")}
    paired = {metric: paired_test(per_user_values(ranks["bfloat16"], metric), per_user_values(ranks["float32"], metric))
              for metric in ("recall@10", "ndcg@10")}
    agree = all(test["ci"][0] <= 0.0 <= test["ci"][1] for test in paired.values())
    write_json(args.out, without_paths({
        "benchmark": "bfloat16 vs float32 evaluation of one fine-tuned model on the same test users",
        "run_dir": str(args.run_dir), "method": args.method, "test_users": len(ranks["float32"]),
        "evaluations": evaluations, "bf16_minus_float32": paired, "same_rank_users": same,
        "agree_within_ci": agree, "machine": machine(), **invocation(),
    }))
    print(f"bf16 vs float32: recall@10 diff {paired['recall@10']['diff']:+.4f} {paired['recall@10']['ci']}, "
          f"{same}/{len(ranks['float32'])} users with the same rank; wrote {args.out}")


if __name__ == "__main__":
    main()
