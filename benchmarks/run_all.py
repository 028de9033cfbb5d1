"""Run every benchmark, one after the other (they each need the whole machine), with this Python.

Usage: python benchmarks/run_all.py  (what `make bench` runs); results land in benchmarks/results/.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = ("decode.py", "sids_beauty.py", "train_throughput.py")


def main() -> None:
    for script in BENCHMARKS:
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)]).returncode != 0:
            sys.exit(f"{script} failed; later benchmarks not run")
    print(f"results in {HERE / 'results'}: " + ", ".join(sorted(p.name for p in (HERE / "results").glob("*.json"))))


if __name__ == "__main__":
    main()
