"""Draw the converged benchmark's validation curves: LM methods' validation recall@10 by fine-tuning tokens, SASRec's
by epoch, the kept weights starred (did each method converge under the cap?).

Usage: python benchmarks/plot_converged.py benchmarks/results/beauty_converged_cpu.json docs/beauty_converged_curves.png
"""

import argparse
from pathlib import Path

from gti.analysis.curves import plot_validation_curves
from gti.artifacts import read_json


def curves(result: dict) -> dict[str, dict]:
    """Method -> its curve for `plot_validation_curves`, from the merged JSON's rows (exploratory ones included)."""
    monitor = result["config"]["train"]["monitor"]
    found = {}
    for name, row in {**result["methods"], **result.get("exploratory", {})}.items():
        points = row.get("validations") or []
        if not points:
            continue
        if row["kind"] == "anchor":
            found[name] = {"kind": "anchor", "measure": "recall@10", "x": [p["epoch"] for p in points],
                           "y": [p["recall@10"] for p in points], "best": row["best_step"]}
        else:
            steps = [p["step"] for p in points]
            xs = [p["train_tokens"] for p in points]
            found[name] = {"kind": "lm", "measure": monitor, "x": xs, "y": [p[monitor] for p in points],
                           "best": xs[steps.index(row["best_step"])] if row["best_step"] in steps else None}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(f"wrote {plot_validation_curves(curves(read_json(args.result)), args.out)}")


if __name__ == "__main__":
    main()
