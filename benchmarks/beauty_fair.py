"""`make bench-fair`: does a language model recommend better than popularity? Anchors, tuned baselines, a control.

Runs `gti compare configs/beauty_fair.toml` with the non-LM anchors (`mostpop`, `sasrec`), mean init
(`mean`: its new rows train at `finetune.lr`, standard practice, so the default grid leaves it nothing to
tune) and mean init with its new rows' learning rate tuned (`mean-rowlr`, whose grid includes `mean`),
text init (`text`), the `rows-first` control (GTI's grounding stage on next-item prompts), `gti` and `lcrec`, every
method tuned over the same small grid on the validation targets (`--grid`; SASRec over its own
learning rate; the chosen point's model is the method's run), every method's training tokens and seconds
beside its metrics (with `--budgets`, also budget points matched by training tokens in `compute_matched`).
Records benchmarks/results/beauty_fair_cpu.json: the
run's results (config, grid with every point's validation metrics and the choice, each method's
test metrics with CIs, training tokens or, for the anchors, interactions processed, seconds, the
paired tests against `mostpop` and `sasrec`, the compute-matched table), a summary, `per_user` (the test
users and each method's rank of their targets, so that a later run on the same users pairs with these rows),
the machine, the versions and the command (repository-relative).

Usage: python benchmarks/beauty_fair.py [--methods M,M,...] [--budgets 100,200,300] [--grid KEY=V1,V2 ... | --choices JSON]
                                        [--set KEY=VALUE ...] [--seeds 1,2] [--sids DIR] [--run-dir DIR] [--out PATH] [--quick]
  --grid: replaces the default grid (give every key wanted); --set: any config override, e.g.
  --set data.users=1000 --set finetune.steps=400.
  --choices: no grid; every method runs at the settings a finished run chose (a results.json or a benchmark
  JSON holding its `tuning`, e.g. benchmarks/results/beauty_fair_cpu.json): a confirmation of those choices in
  another setting (e.g. --set data.users=5000: more test users, tighter CIs), never a second tuning. Samples of
  one seed nest (5,000 Beauty users of seed 0 hold all 2,000 of the tuning run): for a confirmation on other users
  add --set data.exclude_users=2000 (and data.exclude_seed, the tuning run's data.seed).
  --quick: a tiny random Llama and a tiny random catalog in a temporary folder, written to
  results/beauty_fair_quick.json: a smoke test of the script, not a measurement.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gti.artifacts import read_json, write_json
from gti.budget import read_ranks, read_users
from gti.rec import holm, paired_test, per_user_values
from machine import invocation, machine, stage_seconds, without_paths  # benchmarks/machine.py, next to this script
from tiny_catalog import tiny_inputs  # benchmarks/tiny_catalog.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path("configs/beauty_fair.toml")
RESULTS = Path("benchmarks/results")
METHODS = "mostpop,sasrec,mean,mean-rowlr,text,rows-first,gti,lcrec"
"""`text` (new rows from the model's own embeddings of the item text, no grounding) is tuned here too, so the
cold-start benchmark, which reuses these choices (`--choices`), runs every method at a tuned setting."""
GRID = ["finetune.new_rows_lr=same,1e-2", "sasrec.lr=1e-3,3e-3"]
"""The default grid: the new rows' learning rate (the confound GTI's grounding carries: its rows train at 1e-2)
for every LM method that tunes it, SASRec's learning rate. `finetune.lr` stays at the config's 2e-4: a second
axis doubles the fine-tunings, which 2 cores cannot afford in a session (pass --grid to add it)."""
QUICK_GRID = ["finetune.lr=1e-2", "finetune.new_rows_lr=same,5e-2", "sasrec.lr=1e-3,1e-2"]
QUICK_SETTINGS = [
    "data.users=null", "sids.levels=2", "sids.codes=4", "ground.steps=2", "ground.batch_size=4", "finetune.steps=4",
    "finetune.batch_size=4", "finetune.warmup_steps=1", "eval.at_steps=[2]", "eval.batch_size=8",
    "sasrec.hidden=8", "sasrec.heads=1", "sasrec.epochs=3", "sasrec.batch_size=8",
]
def summary(results: dict) -> dict:
    """Per method: kind, test recall@10 and NDCG@10 with CIs, compute, the chosen grid point, tests against anchors."""
    records = (results.get("tuning") or {}).get("methods", {})
    rows = {}
    for name, result in results["methods"].items():
        rows[name] = {
            "kind": result["kind"],
            **{metric: result["metrics"].get(metric) for metric in ("recall@10", "ndcg@10", "mrr")},
            "recall@10_ci": result["metrics_ci"].get("recall@10"),
            "train_tokens": result["train_tokens"], "train_seconds": result["train_seconds"],
            "compute": result["compute"], "chosen": records.get(name, {}).get("settings"),
            "grid_search": records.get(name, {}).get("search"),
            "vs_anchors": {anchor: tests.get("recall@10") for anchor, tests in (result.get("paired_vs_anchors") or {}).items()},
        }
    models = [name for name, row in rows.items() if row["kind"] == "lm" and row["recall@10"] is not None]
    best = max(models, key=lambda name: rows[name]["recall@10"], default=None)
    best_vs_mostpop = None if best is None or "mostpop" not in results["methods"] else {
        "method": best, "recall@10": rows[best]["recall@10"], "mostpop_recall@10": rows["mostpop"]["recall@10"],
        "paired": rows[best]["vs_anchors"].get("mostpop"),
        "note": "the LM method with the highest test recall@10 (a description of the table; its learning rate was "
                "chosen on the validation targets), against mostpop on the same test users",
    }
    return {"methods": rows, "lm_vs_anchors_holm": family_tests(rows, models), "best_lm_vs_mostpop": best_vs_mostpop}


def family_tests(rows: dict, models: list[str]) -> dict:
    """Per anchor, every LM method's recall@10 test against it with its raw and Holm-adjusted p-value: the
    family is every LM method of the run (each is a claim "this method beats the anchor"), so a win among
    several methods tried is not read as if it had been the only test."""
    found = {}
    for anchor in ("mostpop", "sasrec"):
        tests = {name: rows[name]["vs_anchors"][anchor] for name in models if rows[name]["vs_anchors"].get(anchor)}
        if tests:
            adjusted = holm({name: test["p_value"] for name, test in tests.items()})
            found[anchor] = {name: {"diff": test["diff"], "ci": test["ci"], "p_value": test["p_value"],
                                    "p_holm": adjusted[name]} for name, test in tests.items()}
    return found


def against(results: dict, run_dir: Path, method: str = "gti") -> dict | None:
    """`method` against every other LM method on the same test users: the paired difference of recall@10 and
    NDCG@10 (95% CI, p-value) beside both methods' training tokens and seconds (grounding included), and
    whether `method` used at most the other's tokens (a comparison at matched or lower compute) or more."""
    methods = results["methods"]
    if method not in methods or results.get("seeds"):
        return None  # with seeds, per-seed ranks: see results.json's paired tests
    own = read_ranks(ROOT / run_dir / methods[method]["folder"] / "eval")
    found = {}
    for name, result in methods.items():
        if name == method or result["kind"] != "lm":
            continue
        other = read_ranks(ROOT / run_dir / result["folder"] / "eval")
        found[name] = {
            **{metric: paired_test(per_user_values(own, metric), per_user_values(other, metric))
               for metric in ("recall@10", "ndcg@10")},
            "train_tokens": [methods[method]["train_tokens"], result["train_tokens"]],
            "train_seconds": [methods[method]["train_seconds"], result["train_seconds"]],
            "at_most_its_tokens": methods[method]["train_tokens"] <= result["train_tokens"],
        }
    return found


def per_user(results: dict, run_dir: Path) -> dict | None:
    """The test users (in evaluation order) and every method's rank of each one's target (null: beyond the beams),
    so that a later run of some methods on the same users can be paired with these rows; None with seeds."""
    if results.get("seeds"):
        return None
    methods = {name: result for name, result in results["methods"].items() if result.get("folder")}
    if not methods:
        return None
    users = read_users(ROOT / run_dir / next(iter(methods.values()))["folder"] / "eval")
    return {"users": users, "ranks": {name: read_ranks(ROOT / run_dir / result["folder"] / "eval")
                                      for name, result in methods.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--budgets", help="fine-tuning steps to evaluate at (default: the config's at_steps and steps)")
    parser.add_argument("--grid", action="append", help=f"a grid key and its values (default: {' '.join(GRID)})")
    parser.add_argument("--choices", help="instead of a grid: the settings a finished run chose (its results JSON)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--seeds", help="training seeds, e.g. 1,2")
    parser.add_argument("--sids", help="a `gti sids` folder every method uses (the same SIDs on every machine; its settings replace the config's)")
    parser.add_argument("--run-dir", type=Path, help="run folder (default: runs/beauty_fair[_quick])")
    parser.add_argument("--out", type=Path, help="result file (default: benchmarks/results/beauty_fair_cpu[_quick].json)")
    parser.add_argument("--quick", action="store_true", help="a tiny random model and catalog: a smoke test of the script")
    args = parser.parse_args()
    if args.choices and args.grid:
        parser.error("--choices and --grid exclude each other: a run either tunes or reuses a tuning")
    scratch = Path(tempfile.mkdtemp(prefix="beauty_fair_")) if args.quick else None
    try:
        overrides = (tiny_inputs(scratch, users=16, lengths=(5, 9), brand=True) + QUICK_SETTINGS if args.quick else []) + args.set
        grid = [] if args.choices else args.grid or (QUICK_GRID if args.quick else GRID)
        run_dir = args.run_dir or (scratch / "run" if args.quick else Path("runs/beauty_fair"))
        out = args.out or RESULTS / ("beauty_fair_quick.json" if args.quick else "beauty_fair_cpu.json")
        command = [sys.executable, "-m", "gti.cli", "compare", str(CONFIG), "--methods", args.methods,
                   "--out", str(run_dir), "--overwrite"]
        command += [word for flag in grid for word in ("--grid", flag)] + [w for s in overrides for w in ("--set", s)]
        command += ["--choices", args.choices] if args.choices else []
        command += ["--budgets", args.budgets] if args.budgets else []
        command += ["--seeds", args.seeds] if args.seeds else []
        command += ["--sids", args.sids] if args.sids else []
        start = time.perf_counter()
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            sys.exit("beauty_fair: gti compare failed")
        wall = time.perf_counter() - start
        results = read_json(ROOT / run_dir / "results.json")
        write_json(ROOT / out, without_paths({
            "benchmark": "fair comparison: anchors, tuned baselines, the rows-first control, GTI, LC-Rec",
            "data_source": results["config"]["data"]["source"],
            "quick": args.quick, "wall_s": round(wall, 1),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "config_file": str(CONFIG), "grid_flags": grid, "choices_file": args.choices, "sids_dir": args.sids, "overrides": args.set, "run_dir": str(run_dir),
            "summary": summary(results), "gti_vs_lm_methods": against(results, run_dir),
            "stage_seconds": stage_seconds(ROOT / run_dir), **results, "per_user": per_user(results, run_dir),
            "machine": machine(), **invocation(),
        }))
        print(f"wrote {out}")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
