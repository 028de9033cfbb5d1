"""`make bench-budget`: does GTI help beyond extra compute? Budget curves on Amazon Beauty, low-data, this CPU.

Runs `gti compare configs/beauty_budget.toml --methods mean,gti,lcrec --budgets 100,200,350,500`:
each method fine-tunes once (every prefix of the 2,000 users' sequences, constant learning rate
after warmup) and is evaluated at every budget on the same test users; every point records the
training tokens and seconds of all the method's training stages, grounding included, and
results.json pairs each GTI point with the cheapest baseline point that processed at least as
many tokens. The run folder is recorded as benchmarks/results/beauty_budget_cpu.json.

Usage: python benchmarks/beauty_budget.py [--methods mean,gti,lcrec] [--budgets 100,200,350,500]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from gti.artifacts import read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
RESULT = Path("benchmarks/results/beauty_budget_cpu.json")
RUN_DIR = Path("runs/beauty_budget")
CONFIG = Path("configs/beauty_budget.toml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="mean,gti,lcrec")
    parser.add_argument("--budgets", default="100,200,350,500")
    args = parser.parse_args()
    command = [sys.executable, "-m", "gti.cli", "compare", str(CONFIG), "--methods", args.methods,
               "--budgets", args.budgets, "--out", str(RUN_DIR)]
    start = time.perf_counter()
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        sys.exit("beauty_budget: gti compare failed")
    wall = time.perf_counter() - start
    note = f"{CONFIG}, methods {args.methods}, budgets {args.budgets}"
    subprocess.run([sys.executable, "benchmarks/collect_run.py", str(RUN_DIR), str(RESULT), "--wall", f"{wall:.1f}",
                    "--note", note], check=True, cwd=ROOT)
    # the command that made the result (relative to the repo root), not the collector's
    result = read_json(ROOT / RESULT)
    settings = " ".join(f"{k}={v}" for k, v in result["settings"].items() if v is not None)
    result["command"] = f"{settings} python benchmarks/beauty_budget.py --methods {args.methods} --budgets {args.budgets}"
    result["cwd"] = "."
    write_json(ROOT / RESULT, result)


if __name__ == "__main__":
    main()
