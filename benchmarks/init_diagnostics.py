"""The new rows' diagnostics right after initialization (and after grounding), for a config's methods.

Runs the shared stages and each method's stages up to `--until` (`init` or `ground`) in RUN_DIR
(cached there) and records every diagnostic (effective rank, mean cosine, RSA against the codebook
pooled and per level with Mantel p-values, RSA against the SID hierarchy) as RESULT_JSON.

Usage: python benchmarks/init_diagnostics.py CONFIG --methods mean,text,gti --out RESULT_JSON [--run-dir DIR] [--until init|ground]
"""

import argparse
from pathlib import Path

from gti.artifacts import write_json
from gti.config import load_config
from gti.layout import RunLayout
from gti.runner import prepare, run_method
from machine import invocation, machine  # benchmarks/machine.py, next to this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--methods", default="mean,text,gti")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/init_diagnostics")
    parser.add_argument("--until", choices=["init", "ground"], default="ground")
    args = parser.parse_args()
    config = load_config(args.config)
    layout = RunLayout(Path(args.run_dir))
    shared = prepare(config, layout)
    found = {}
    for name in args.methods.split(","):
        result = run_method(config, layout, name, shared, until=args.until)
        found[name] = {stage: {key: value for key, value in d.items() if key not in ("singular_values", "nearest_old")}
                       for stage, d in result.diagnostics.items()}
    write_json(args.out, {"benchmark": "new-row diagnostics after init/grounding", "config": args.config,
                          "methods": found, "machine": machine(), **invocation()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
