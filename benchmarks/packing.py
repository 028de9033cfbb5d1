"""Packing (`train.pack`): training tokens per second with whole-sequence samples, packed against padded.

SmolLM2-135M with SID tokens added; samples shaped as `finetune.samples = "sequence"` makes them on
the 2,000-user Beauty slice (seed 0, leave-one-out, windows of at most 20 + 1 items): a 3-token prefix,
then 4 SID tokens per item, the loss on every item after the first. Token ids are drawn at random
(throughput does not depend on them). Both sides run gti's training loop (`gti.train.loop.train`) on the
same samples, batch 16, length-grouped batches (the default), `auto` precision; they alternate (padded,
packed, ...) after a warm-up of each, --repeats rounds of --steps steps. Each round's tokens per second
come from the loop's own count (prompt + answer, padding excluded), so the ratio is the gain in useful
tokens per second; it is claimed only beyond its spread (`timing.ratio`).

Usage: python benchmarks/packing.py [--steps N] [--repeats N] [--quick] [--out PATH]
  --quick: a tiny random Llama and a tiny random catalog, 3 steps: a smoke test of the script, not a measurement.
"""

import argparse
import random
import tempfile
from pathlib import Path

from gti.artifacts import write_json
from gti.config import TrainConfig
from gti.data import leave_one_out, load_dataset, sample_users, windows
from gti.device import resolve_precision
from gti.lm.prompts import Sample
from gti.train.loop import train
from machine import invocation, machine  # benchmarks/machine.py, next to this script
from timing import add_timing_arguments, interleaved, ratio, spread
from tiny_catalog import tiny_inputs  # benchmarks/tiny_catalog.py, next to this script
from train_throughput import fresh_model

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
BEAUTY = ROOT.parent / "shared" / "data" / "beauty"
BATCH, HISTORY, PREFIX, SID = 16, 20, 3, 4
TARGET = 1.0  # packing at least as fast in useful tokens per second


def window_lengths(source: str, users: int | None) -> list[int]:
    """Items per training window, as the sequence objective cuts the slice's training sequences."""
    split = leave_one_out(sample_users(load_dataset(source), users, 0))
    return [len(window) for sequence in split.train.values() for window in windows(sequence, HISTORY)]


def samples_of(lengths: list[int], token_ids: list[int]) -> list[Sample]:
    """One sequence-shaped sample per window: prefix + first item's SID as the prompt, the others' SIDs as answer."""
    rng = random.Random(0)
    def ids(count: int) -> list[int]:
        return [rng.choice(token_ids) for _ in range(count)]
    return [Sample(ids(PREFIX + SID), ids(SID * (items - 1))) for items in lengths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    add_timing_arguments(parser, "timed rounds", "a tiny random model: a smoke test", "results/packing[_quick].json")
    args = parser.parse_args()
    steps = 3 if args.quick else args.steps
    out = args.out or RESULTS / ("packing_quick.json" if args.quick else "packing.json")
    with tempfile.TemporaryDirectory() as scratch:
        if args.quick:
            tiny_inputs(Path(scratch), users=40, lengths=(3, 30), brand=True)
        lengths = window_lengths(str(Path(scratch) / "data") if args.quick else str(BEAUTY), None if args.quick else 2000)
    model, tokenizer, new_ids = fresh_model(args.quick)
    samples = samples_of(lengths, new_ids.tolist())
    precision = resolve_precision("auto")
    parameters = [p for p in model.parameters() if p.requires_grad]

    def side(pack: bool):
        def run() -> float:
            options = TrainConfig(precision="auto", pack=pack)
            result = train(model, samples, parameters, steps=steps, lr=1e-5, batch_size=BATCH,
                           pad_id=tokenizer.pad_token_id, options=options)
            return result.tokens_per_second
        return run

    rates = interleaved({"padded": side(False), "packed": side(True)}, args.repeats)
    gain = ratio(rates["packed"], rates["padded"], TARGET)
    write_json(out, {
        "benchmark": "packing: training tokens per second, sequence samples packed against padded",
        "quick": args.quick,
        "setting": {"model": "tiny random llama" if args.quick else "smollm2-135m",
                    "samples": "Beauty 2,000 users (seed 0), sequence windows of at most 21 items" if not args.quick
                    else "tiny random catalog", "windows": len(samples),
                    "items_per_window": {"mean": sum(lengths) / len(lengths), "max": max(lengths)},
                    "batch_size": BATCH, "steps_per_round": steps, "precision": precision, "group_by_length": True,
                    "repeats": args.repeats, "order": "padded, packed in turn after one warm-up of each"},
        "tokens_per_second": {name: spread(values) for name, values in rates.items()},
        "packed_vs_padded": gain,
        "machine": machine(), **invocation(),
    })
    print(f"packed vs padded: {gain['why']}; wrote {out}")


if __name__ == "__main__":
    main()
