"""Draw a committed budget benchmark's curves (recall@10 and NDCG@10 vs steps and vs training tokens).

Usage: python benchmarks/plot_budget.py benchmarks/results/beauty_budget_cpu.json docs/beauty_budget_curves.png
"""

import argparse
from dataclasses import asdict
from pathlib import Path

from gti.analysis.curves import plot_budget_curves
from gti.results import Comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    comparison = Comparison.read(args.result)
    curves = {name: [asdict(point) for point in result.by_budget] for name, result in comparison.methods.items()}
    print(f"wrote {plot_budget_curves(curves, args.out)}")


if __name__ == "__main__":
    main()
