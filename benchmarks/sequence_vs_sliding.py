"""Does training on whole sequences beat one target per prompt at equal training seconds? (issue 30)

Runs `gti run configs/beauty_sequence.toml` twice on the same Semantic IDs (the second adopts the first's with
`--sids`): once with
`finetune.samples = "sliding"` (every prefix of a training sequence is a prompt with one target) and once with
`"sequence"` (one example per user window, every item after the first a target, in one forward pass), both
capped at the same training seconds (`train.max_seconds`; `finetune.epochs` is a cap that is not reached), both
validated every `train.validate_every` steps on the same validation users with the best weights kept. Records
benchmarks/results/sequence_vs_sliding_cpu.json: per variant the test metrics with CIs, training tokens and
seconds, steps, the validation curve and the kept step; sequence minus sliding paired over the test users
(recall@10, NDCG@10); the machine and the commands.

Usage: python benchmarks/sequence_vs_sliding.py [--set KEY=VALUE ...] [--run-dir DIR] [--out PATH] [--quick]
  --quick: a tiny random model and catalog in a temporary folder, written to results/sequence_vs_sliding_quick.json:
  a smoke test of the script, not a measurement.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gti.artifacts import read_json, write_json
from gti.budget import read_ranks, read_users
from gti.rec import paired_test, per_user_values
from machine import invocation, machine, relative_command, without_paths  # benchmarks/machine.py, next to this script
from tiny_catalog import tiny_inputs  # benchmarks/tiny_catalog.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path("configs/beauty_sequence.toml")
VARIANTS = ("sliding", "sequence")
QUICK_SETTINGS = ["data.users=null", "sids.levels=2", "sids.codes=4", "finetune.epochs=2", "finetune.batch_size=4",
                  "eval.beams=5", "eval.batch_size=8", "train.validate_every=2", "train.validate_users=4",
                  "train.max_seconds=30", "prompts.history=4", "train.monitor=recall@5"]


def variant(result_dir: Path, name: str) -> dict:
    """One variant's record from its run folder."""
    method = read_json(result_dir / "config.json")["init"]["method"]
    finetune = read_json(result_dir / method / "finetune" / "manifest.json")
    metrics = read_json(result_dir / method / "eval" / "metrics.json")
    losses = read_json(result_dir / method / "finetune" / "losses.json")
    return {"samples": name, "metrics": metrics, "examples": finetune["examples"], "steps": len(losses),
            "train_tokens": finetune["train_tokens"], "train_seconds": finetune["train_seconds"],
            "tokens_per_second": finetune["tokens_per_second"], "best_step": finetune.get("best_step"),
            "stopped_early": finetune.get("stopped_early"), "validations": finetune.get("validations", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--run-dir", type=Path, help="run folders' parent (default: runs/sequence_vs_sliding)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sequence_")) if args.quick else None
    try:
        overrides = (tiny_inputs(scratch, users=16, lengths=(5, 9), brand=True) + QUICK_SETTINGS if args.quick else []) + args.set
        run_dir = args.run_dir or (scratch / "runs" if args.quick else Path("runs/sequence_vs_sliding"))
        out = args.out or Path("benchmarks/results") / ("sequence_vs_sliding_quick.json" if args.quick
                                                        else "sequence_vs_sliding_cpu.json")
        flags = [word for setting in overrides for word in ("--set", setting)]
        sids = ROOT / run_dir / VARIANTS[0] / "sids"  # the first run's SIDs stage; the second adopts it
        commands = [[sys.executable, "-m", "gti.cli", "run", str(CONFIG), "--out", str(ROOT / run_dir / name),
                     "--overwrite", *flags, "--set", f"finetune.samples={name}"] + (["--sids", str(sids)] if index else [])
                    for index, name in enumerate(VARIANTS)]
        start = time.perf_counter()
        for command in commands:
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                sys.exit(f"sequence_vs_sliding: {relative_command(command[3:], str(ROOT))} failed")
        wall = time.perf_counter() - start
        variants = {name: variant(ROOT / run_dir / name, name) for name in VARIANTS}
        method = read_json(ROOT / run_dir / "sequence" / "config.json")["init"]["method"]
        ranks = {name: read_ranks(ROOT / run_dir / name / method / "eval") for name in VARIANTS}
        users = {name: read_users(ROOT / run_dir / name / method / "eval") for name in VARIANTS}
        if users["sliding"] != users["sequence"]:
            sys.exit("sequence_vs_sliding: the two runs evaluated other users")
        paired = {metric: paired_test(per_user_values(ranks["sequence"], metric), per_user_values(ranks["sliding"], metric))
                  for metric in ("recall@10", "ndcg@10") if metric in variants["sequence"]["metrics"]}
        write_json(ROOT / out, without_paths({
            "benchmark": "sequence vs sliding fine-tuning samples at equal training seconds", "quick": args.quick,
            "method": method, "config_file": str(CONFIG), "overrides": args.set, "wall_s": round(wall, 1),
            "variants": variants, "sequence_minus_sliding": paired, "test_users": len(users["sequence"]),
            "config": read_json(ROOT / run_dir / "sequence" / "config.json"),
            "commands": [relative_command(["python", *command[1:]], str(ROOT)) for command in commands],
            "machine": machine(), **invocation(),
        }))
        print(f"wrote {out}")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
