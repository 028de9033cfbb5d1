"""Time to build semantic ids for the Amazon Beauty catalog from scratch, and how each quantizer does on it.

`gti.sid.build_sids(texts, levels=3, codes=256, seed=0)`, cold: sentence encoding (loading the
encoder included, at the default precision, float32, since sid_stability.json; earlier results
record `auto`), RQ-KMeans and disambiguation.
The issue's target is TARGET_S seconds. The embeddings of that run are cached in a temporary
folder, so rq-kmeans-balanced and rq-vae then quantize the very same embeddings without encoding
again; `quantizers` holds every quantizer's seconds (quantization only) and quality.

Usage: python benchmarks/sids_beauty.py [--quick]
  --quick: the first QUICK_ITEMS items only, written to sids_beauty_quick.json instead.
"""

import argparse
import tempfile
import time
from pathlib import Path

import gti.data
import gti.sid
from gti.artifacts import write_json
from gti.sid.encoder import DEFAULT_BATCH_SIZE, DEFAULT_ENCODER
from machine import invocation, machine, repo_relative  # benchmarks/machine.py, next to this script

DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"  # ../shared beside the repo
RESULTS = Path(__file__).parent / "results"
TARGET_S = 60.0
QUICK_ITEMS = 2000
LEVELS, CODES, SEED = 3, 256, 0
QUALITY = (
    "collision_rate", "max_group_size", "utilization_per_level", "entropy_per_level", "largest_code_per_level",
    "relative_reconstruction_error", "sid_levels", "code_capacity", "semantic_check",
)


def summary(report: dict) -> dict:
    """One quantizer's entry: quantization seconds and the quality figures its report has."""
    return {"seconds": report["seconds"]["quantize"], **{key: report[key] for key in QUALITY if key in report}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_ITEMS} items")
    quick = parser.parse_args().quick

    dataset = gti.data.load_dataset(str(DATASET))
    items = list(dataset.items.values())[: QUICK_ITEMS if quick else None]
    texts = {item.item_id: gti.data.render_item_text(item) for item in items}
    categories = {item_id: path for item_id, path in dataset.category_paths().items() if item_id in texts}

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        sids, report, _ = gti.sid.build_sids(
            texts, levels=LEVELS, codes=CODES, seed=SEED, cache_dir=Path(cache), categories=categories or None
        )
        wall_s = time.perf_counter() - start
        quantizers = {"rq-kmeans": summary(report)}
        for quantizer in ("rq-kmeans-balanced", "rq-vae"):
            _, other, _ = gti.sid.build_sids(
                texts, levels=LEVELS, codes=CODES, seed=SEED, cache_dir=Path(cache), quantizer=quantizer,
                categories=categories or None, precision=report["encoder_precision"],
            )
            quantizers[quantizer] = summary(other)

    result = RESULTS / ("sids_beauty_quick.json" if quick else "sids_beauty.json")
    write_json(result, {
        "benchmark": "semantic ids for Amazon Beauty, cold (no embedding cache); quantizers on the same embeddings",
        "setting": {
            "dataset": repo_relative(str(DATASET)),
            "quick": quick,
            "levels": LEVELS,
            "codes": CODES,
            "seed": SEED,
            "encoder": DEFAULT_ENCODER,
            "encoder_precision": report["encoder_precision"],
            "encoder_batch_size": DEFAULT_BATCH_SIZE,
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
        "quantizers": quantizers,
        "machine": machine(),
        **invocation(),
    })
    print(f"{report['items']} items in {wall_s:.1f} s (target {TARGET_S:.0f} s, encoder {report['encoder_precision']})")
    for name, entry in quantizers.items():
        error = entry["relative_reconstruction_error"]
        print(f"  {name:<19} {entry['seconds']:6.1f} s  collision rate {entry['collision_rate']:.4f}  "
              f"largest group {entry['max_group_size']}  reconstruction error {error:.4f}")
    print(f"wrote {result}")


if __name__ == "__main__":
    main()
