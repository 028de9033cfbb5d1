"""`make bench-cold`: can text grounding place items no training sequence holds? Cold-start items on Beauty.

Runs `gti compare configs/beauty_cold.toml --methods mostpop,sasrec,mean,mean-rowlr,text,gti,rows-first,lcrec`: a
cold-items split of the 2,000-user Beauty slice (10% of the catalog cold: in no training or validation
example; the users whose last item is cold are the cold test set, the others the warm one), every method
ranked by the plain beam search, with reserved beams for cold items, and (cold test set) over the cold
items alone (the anchors rank their scores of every item by the same rules). Records
benchmarks/results/beauty_cold_cpu.json: the run's results (config, each method's warm and cold metrics
with CIs, cold shares and paired tests against mean init, every text method against every text-free
method with Holm over them), per method its training tokens (null for the anchors) and seconds (grounding
included) and seconds per stage, `gti_vs_text_free`: GTI against every text-free method, per test set and
decoding (paired difference over users of recall@10 and NDCG@10, 95% CI, raw and Holm p-values; no
comparator picked on test results), `gti_vs_each`: the same without Holm
against every other method with both sides' training tokens and seconds, `stage_seconds`: what every stage of
the run folder took when it was computed (the cost from nothing, also when a re-run read them from cache);
the machine, the versions and the commands, with repository-relative paths.

Usage: python benchmarks/beauty_cold.py [--methods M,M,...] [--set KEY=VALUE ...] [--grid KEY=V1,V2 ... | --choices JSON]
                                        [--seeds 1,2] [--sids DIR] [--run-dir DIR] [--out PATH] [--quick]
  --methods: any methods of `gti compare --methods` (the text-free ones, `gti.methods.uses_text`, are the
  controls GTI is compared with).
  --choices: a `gti compare --grid` results.json (or a benchmark JSON holding its `tuning`) whose chosen settings
  each method runs at (default: benchmarks/results/beauty_fair_cpu.json, the fair benchmark's choices; `none`:
  the config's settings, so `mean-rowlr` trains exactly as `mean`).
  --grid: instead of --choices, passed to `gti compare --grid` (every method tuned here on the validation targets,
  which hold no cold item).
  --set: any config override, e.g. --set data.cold_fraction=0.2 --set eval.users=null.
  --quick: a tiny random Llama and a tiny random catalog in a temporary folder, written to
  results/beauty_cold_quick.json: a smoke test of the script, not a measurement.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gti.artifacts import read_json, write_json
from gti.coldstart import paired
from machine import invocation, machine, relative_command, repo_relative, stage_seconds, without_paths  # benchmarks/machine.py, next to this script
from tiny_catalog import tiny_inputs  # benchmarks/tiny_catalog.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path("configs/beauty_cold.toml")
RESULTS = Path("benchmarks/results")
METHODS = "mostpop,sasrec,mean,mean-rowlr,text,gti,rows-first,lcrec"
CHOICES = Path("benchmarks/results/beauty_fair_cpu.json")
"""Where the learning rates come from by default: the fair benchmark's grid, chosen on the validation targets."""
QUICK_SETTINGS = [
    "data.users=null", "data.cold_fraction=0.2", "sids.levels=2", "sids.codes=4", "ground.steps=2",
    "ground.batch_size=4", "finetune.steps=2", "finetune.batch_size=4", "eval.users=null", "eval.beams=5",
    "eval.batch_size=8", "eval.cold_beams=0.4", "sasrec.hidden=8", "sasrec.heads=1", "sasrec.epochs=2",
    "sasrec.batch_size=8",
]
def gti_vs_text_free(results: dict, method: str = "gti") -> dict | None:
    """`method` against every text-free method (Holm over them), per test set and decoding, from results.json's tests."""
    versus = (results.get("cold_start") or {}).get("text_vs_text_free", {})
    found = {test_set: {decoding: by_method[method] for decoding, by_method in by_decoding.items() if method in by_method}
             for test_set, by_decoding in versus.items()}
    return found if any(found.values()) else None


def gti_vs_each(results: dict, run_dir: Path, method: str = "gti") -> dict | None:
    """`method` against every other method, per test set and decoding: the paired difference over users of
    recall@10 and NDCG@10 (95% CI, p-value), beside both sides' training tokens and seconds (grounding included)."""
    methods = results["methods"]
    if method not in methods or results.get("seeds"):
        return None  # with seeds: results.json's paired tests (per-seed ranks)
    own = [run_dir / methods[method]["folder"] / "eval"]
    found: dict = {}
    for test_set, by_decoding in methods[method]["cold_start"].items():
        for decoding, entry in by_decoding.items():
            if not entry["users"]:
                continue
            found.setdefault(test_set, {})[decoding] = {
                name: {**paired(own, [run_dir / result["folder"] / "eval"], test_set, decoding),
                       "train_tokens": [methods[method]["train_tokens"], result["train_tokens"]],
                       "train_seconds": [methods[method]["train_seconds"], result["train_seconds"]]}
                for name, result in methods.items() if name != method
            }
    return found


def compute(results: dict) -> dict:
    """Per method: training tokens and seconds of every training stage (grounding included), seconds per stage."""
    return {name: {"train_tokens": result.get("train_tokens"), "train_seconds": result.get("train_seconds"),
                   "stage_seconds": result.get("seconds", {})}
            for name, result in results["methods"].items()}


def shown_setting(setting: str) -> str:
    """A `--set KEY=VALUE` as a result records it: a path value written repository-relative."""
    key, _, value = setting.partition("=")
    path = value.strip('"')
    return f"{key}={json.dumps(repo_relative(path))}" if path.startswith("/") else setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--sids", help="a `gti sids` folder every method uses (the same SIDs on every machine; its settings replace the config's)")
    parser.add_argument("--choices", default=None, help=f"default: {CHOICES} (none with --grid or --quick); `none`: no choices")
    parser.add_argument("--seeds", default=None)
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/beauty_cold (a temporary one with --quick)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/beauty_cold_cpu.json (beauty_cold_quick.json with --quick)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    out = args.out or ROOT / RESULTS / ("beauty_cold_quick.json" if args.quick else "beauty_cold_cpu.json")
    with tempfile.TemporaryDirectory(prefix="beauty_cold_") as scratch:
        settings = [*(QUICK_SETTINGS + tiny_inputs(Path(scratch), users=30, lengths=(4, 8), brand=False) if args.quick else []), *args.overrides]
        run_dir = args.run_dir or (Path(scratch) / "run" if args.quick else Path("runs/beauty_cold"))
        choices = None if args.grid or args.quick or args.choices == "none" else (args.choices or str(CHOICES))
        command = [sys.executable, "-m", "gti.cli", "compare", str(CONFIG), "--methods", args.methods,
                   "--out", str(run_dir), *(["--seeds", args.seeds] if args.seeds else []),
                   *(["--choices", choices] if choices else []), *(["--sids", args.sids] if args.sids else []),
                   *(word for flag in args.grid for word in ("--grid", flag)),
                   *(word for setting in settings for word in ("--set", setting))]
        start = time.perf_counter()
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            sys.exit("beauty_cold: gti compare failed")
        wall = time.perf_counter() - start
        results = read_json((ROOT / run_dir) / "results.json")
        record = {
            "benchmark": "cold-start items: gti compare on a cold-items split of "
                         + repo_relative(str(results["config"]["data"]["source"]), str(ROOT)),
            "quick": args.quick,
            "note": f"{CONFIG}, methods {args.methods}" + "".join(f", --grid {g}" for g in args.grid)
                    + (f", --choices {repo_relative(choices)}" if choices else "")
                    + "".join(f", --set {s}" for s in args.overrides)
                    + (" (a tiny random model on a tiny random catalog: a smoke test, not a measurement)" if args.quick else ""),
            "wall_s": round(wall, 1),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gti_vs_text_free": gti_vs_text_free(results),
            "gti_vs_each": gti_vs_each(results, ROOT / run_dir),
            "compute": compute(results),
            "stage_seconds": stage_seconds(ROOT / run_dir),
            **results,
            "compare_command": relative_command(["python", *command[1:-2 * len(settings)],
                                                 *(w for s in settings for w in ("--set", shown_setting(s)))], str(ROOT)),
            "machine": machine(),
            **invocation(),
        }
        write_json(out, without_paths(record, str(ROOT)))
    print(f"wrote {repo_relative(str(out))}")


if __name__ == "__main__":
    main()
