"""`make bench-quality`: does GTI help on real data? Amazon Beauty, low-data, on this CPU.

Runs `gti compare configs/beauty_lowdata.toml --methods mean,text,gti,lcrec` (2,000 users,
whole-catalog SIDs, a fixed step budget per method, one seed; significance from paired
tests over users) and records the run as benchmarks/results/beauty_lowdata_cpu.json.

Usage: python benchmarks/beauty_lowdata.py [--methods mean,text,gti,lcrec] [--seeds 1,2,3]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "beauty_lowdata_cpu.json"
RUN_DIR = ROOT / "runs" / "beauty_lowdata"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="mean,text,gti,lcrec")
    parser.add_argument("--seeds", default=None)
    args = parser.parse_args()
    command = [sys.executable, "-m", "gti.cli", "compare", str(ROOT / "configs" / "beauty_lowdata.toml"),
               "--methods", args.methods, "--out", str(RUN_DIR)]
    if args.seeds:
        command += ["--seeds", args.seeds]
    start = time.perf_counter()
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        sys.exit("beauty_lowdata: gti compare failed")
    wall = time.perf_counter() - start
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "collect_run.py"), str(RUN_DIR), str(RESULT),
                    "--wall", f"{wall:.1f}", "--note", f"configs/beauty_lowdata.toml, methods {args.methods}"], check=True)


if __name__ == "__main__":
    main()
