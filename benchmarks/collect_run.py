"""Record a finished `gti compare` run folder as a benchmark result (the demo's schema plus the machine).

Usage: python benchmarks/collect_run.py RUN_DIR RESULT_JSON [--wall SECONDS] [--note TEXT]
"""

import argparse
from pathlib import Path

import torch

from gti.artifacts import read_json, write_json
from machine import invocation, machine  # benchmarks/machine.py, next to this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--wall", type=float, help="wall-clock seconds of the whole run")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    results = read_json(args.run_dir / "results.json")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    write_json(args.result, {
        "benchmark": f"gti compare on {results['config']['data']['source']}",
        "note": args.note,
        "wall_s": args.wall,
        "gpu": gpu,
        **results,
        "machine": machine(),
        **invocation(),
    })
    print(f"wrote {args.result}")


if __name__ == "__main__":
    main()
