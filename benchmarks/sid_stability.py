"""Do the same item texts give the same Semantic IDs on another machine? RQ-KMeans under encoder rounding.

Two CPUs' kernels round differently, so the text encoder's embeddings of one catalog differ between
machines: in the last bits in float32, by whole bfloat16 steps (about 0.4%) in bfloat16. This script
encodes Amazon Beauty's item texts once in float32 (and once in bfloat16 where the CPU has native
bf16), quantizes with RQ-KMeans (3 levels of 256 codes, seed 0, the benchmarks' setting), and
quantizes again after perturbations of each kind's size: every element moved by up to +-k float32
ulps (k = 1, 16, 256), and 5% of elements moved by one bfloat16 step. `items_with_other_codes` is
the share of items whose 3-level code changed; `float32_vs_bfloat16_encoding` compares the codes of
the two real encodings (what `auto` gives a float32-only and a native-bf16 CPU).

Usage: python benchmarks/sid_stability.py [--out benchmarks/results/sid_stability.json]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import gti.data
from gti.artifacts import write_json
from gti.device import cpu_has_native_bf16
from gti.sid.encoder import DEFAULT_ENCODER, encode_texts
from gti.sid.quantize import rq_kmeans
from machine import invocation, machine, repo_relative  # benchmarks/machine.py, next to this script

DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"  # ../shared beside the repo
RESULTS = Path(__file__).parent / "results"
LEVELS, CODES, SEED = 3, 256, 0
BF16_SHARE = 0.05


def codes_of(x: np.ndarray) -> np.ndarray:
    return rq_kmeans(np.ascontiguousarray(x, dtype=np.float32), LEVELS, CODES, seed=SEED)[0]


def moved(codes: np.ndarray, base: np.ndarray) -> dict:
    """Shares of items whose codes differ from `base`'s: any level, and the first level."""
    return {"items_with_other_codes": float((codes != base).any(1).mean()),
            "items_with_other_first_code": float((codes[:, 0] != base[:, 0]).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "sid_stability.json")
    args = parser.parse_args()
    dataset = gti.data.load_dataset(str(DATASET))
    texts = [gti.data.render_item_text(item) for item in dataset.items.values()]
    encodings, seconds = {}, {}
    with tempfile.TemporaryDirectory() as cache:
        for precision in ("float32", *(["bfloat16"] if cpu_has_native_bf16() else [])):
            start = time.perf_counter()
            encodings[precision] = encode_texts(texts, cache_dir=Path(cache), precision=precision, progress=False)
            seconds[precision] = round(time.perf_counter() - start, 1)
    x = encodings["float32"]
    base = codes_of(x)
    rng = np.random.default_rng(0)
    ulp = np.spacing(np.abs(x))
    perturbations = {"unchanged (control)": codes_of(x.copy())}
    for k in (1, 16, 256):
        perturbations[f"float32: every element moved by up to {k} ulp"] = codes_of(x + ulp * rng.integers(-k, k + 1, x.shape))
    step = ulp * 2.0**16  # one bfloat16 step: 16 fewer mantissa bits
    flips = (rng.random(x.shape) < BF16_SHARE) * rng.choice([-1.0, 1.0], x.shape)
    perturbations[f"bfloat16: {BF16_SHARE:.0%} of elements moved by one bf16 step"] = codes_of(x + step * flips)
    result = {name: moved(codes, base) for name, codes in perturbations.items()}
    real = None
    if "bfloat16" in encodings:
        y = encodings["bfloat16"]
        real = {**moved(codes_of(y), base),
                "max_abs_difference": float(np.abs(y - x).max()),
                "median_abs_difference": float(np.median(np.abs(y - x)))}
    write_json(args.out, {
        "benchmark": "Semantic-ID stability under encoder rounding (Amazon Beauty, RQ-KMeans 3x256, seed 0)",
        "setting": {"dataset": repo_relative(str(DATASET)), "items": len(texts), "levels": LEVELS, "codes": CODES,
                    "seed": SEED, "encoder": DEFAULT_ENCODER, "torch_threads": torch.get_num_threads()},
        "encode_seconds": seconds,
        "perturbations": result,
        "float32_vs_bfloat16_encoding": real,
        "machine": machine(),
        **invocation(),
    })
    for name, entry in result.items():
        print(f"{name:<55} other codes {entry['items_with_other_codes']:.4f}")
    if real:
        print(f"{'real bfloat16 encoding vs float32':<55} other codes {real['items_with_other_codes']:.4f}")
    print(f"encode seconds {seconds}; wrote {args.out}")


if __name__ == "__main__":
    main()
