"""Time to build semantic ids for the Amazon Beauty catalog from scratch (no embedding cache).

`gti.sid.build_sids(texts, levels=3, codes=256, seed=0)`: sentence encoding (loading the
encoder included), RQ-KMeans and disambiguation. The issue's target is TARGET_S seconds.

Usage: python benchmarks/sids_beauty.py [--quick]
  --quick: the first QUICK_ITEMS items only, written to sids_beauty_quick.json instead.
"""

import argparse
import time
from pathlib import Path

from machine import invocation, machine  # benchmarks/machine.py, next to this script

import gti.data
import gti.sid
from gti.artifacts import write_json

DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"  # ../shared beside the repo
RESULTS = Path(__file__).parent / "results"
TARGET_S = 60.0
QUICK_ITEMS = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_ITEMS} items")
    quick = parser.parse_args().quick

    dataset = gti.data.load_dataset(str(DATASET))
    items = list(dataset.items.values())[: QUICK_ITEMS if quick else None]
    texts = {item.item_id: gti.data.render_item_text(item) for item in items}

    start = time.perf_counter()
    sids, report, _ = gti.sid.build_sids(texts, levels=3, codes=256, seed=0)
    wall_s = time.perf_counter() - start

    result = RESULTS / ("sids_beauty_quick.json" if quick else "sids_beauty.json")
    write_json(result, {
        "benchmark": "semantic ids for Amazon Beauty, cold (no embedding cache)",
        "setting": {
            "dataset": str(DATASET),
            "quick": quick,
            "levels": 3,
            "codes": 256,
            "seed": 0,
            "encoder": gti.sid.encoder.DEFAULT_ENCODER,
        },
        "items": report["items"],
        "wall_s": wall_s,
        "target_s": TARGET_S,
        "met_target": wall_s <= TARGET_S,
        "items_per_s": report["items"] / wall_s,
        "seconds": report["seconds"],
        "collision_rate": report["collision_rate"],
        "utilization_per_level": report["utilization_per_level"],
        "codebook_sizes": sids.codebook_sizes,
        "report": report,
        "machine": machine(),
        **invocation(),
    })
    print(f"{report['items']} items in {wall_s:.1f} s (target {TARGET_S:.0f} s); wrote {result}")


if __name__ == "__main__":
    main()
