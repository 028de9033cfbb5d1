"""Draw the grounding-steps curve from fair-benchmark JSONs that differ only in `ground.steps`.

Usage: python benchmarks/plot_grounding.py benchmarks/results/beauty_fair_ground50_cpu.json \
    benchmarks/results/beauty_fair_cpu.json benchmarks/results/beauty_fair_ground800_cpu.json docs/beauty_grounding_curve.png

Each JSON's grounded methods (`gti`, `rows-first`) give one point each at its config's `ground.steps`:
recall@10 with its 95% CI against grounding steps and against training tokens; `mostpop` is the
horizontal anchor. The JSONs must share everything else (data, users, fine-tuning): a differing
setting is refused, one line.
"""

import argparse
import json
import sys
from pathlib import Path

from gti.analysis.curves import plot_grounding_curve

GROUNDED = ("rows-first", "gti")


def _without_ground_steps(config: dict) -> dict:
    config = json.loads(json.dumps(config))
    config.get("ground", {}).pop("steps", None)
    config.pop("out", None)
    return config


def collect(paths: list[Path], metric: str = "recall@10") -> tuple[dict[str, list[dict]], dict | None]:
    """The curve's points (method -> points) and the mostpop anchor from the benchmark JSONs."""
    points: dict[str, list[dict]] = {}
    anchor = None
    reference = None
    for path in paths:
        data = json.loads(path.read_text())
        try:
            config, methods = data["config"], data["summary"]["methods"]
            steps = config["ground"]["steps"]
        except KeyError as error:
            raise SystemExit(f"{path}: not a fair-benchmark JSON (missing {error})") from None
        rest = _without_ground_steps(config)
        if reference is None:
            reference = (path, rest)
        elif rest != reference[1]:
            differing = sorted(k for k in set(rest) | set(reference[1]) if rest.get(k) != reference[1].get(k))
            raise SystemExit(f"{path}: its config differs from {reference[0]}'s in more than ground.steps "
                             f"(sections: {', '.join(differing)})")
        for method in GROUNDED:
            if method in methods:
                m = methods[method]
                points.setdefault(method, []).append({"ground_steps": steps, "train_tokens": m["train_tokens"],
                                                      "value": m[metric], "ci": m[f"{metric}_ci"]})
        if anchor is None and "mostpop" in methods:
            anchor = {"name": "mostpop", "value": methods["mostpop"][metric], "ci": methods["mostpop"][f"{metric}_ci"]}
    for method, series in points.items():
        seen = [p["ground_steps"] for p in series]
        if len(set(seen)) != len(seen):
            raise SystemExit(f"{method}: two files at the same ground.steps ({sorted(seen)})")
    return points, anchor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="fair-benchmark JSONs, then the PNG to write")
    args = parser.parse_args()
    if len(args.results) < 2 or args.results[-1].suffix != ".png":
        sys.exit("usage: plot_grounding.py RESULT.json [RESULT.json ...] OUT.png")
    *inputs, out = args.results
    points, anchor = collect(inputs)
    if not points:
        sys.exit(f"none of {', '.join(map(str, inputs))} holds a grounded method ({', '.join(GROUNDED)})")
    print(f"wrote {plot_grounding_curve(points, out, anchor)}")


if __name__ == "__main__":
    main()
