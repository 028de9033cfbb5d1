"""Speed comparisons that can tell: interleaved repeats after a warm-up, and a ratio claimed only beyond its spread.

A shared machine drifts (other processes, frequency, caches), so the two sides of a
comparison run alternately, A, B, A, B, ..., after one untimed warm-up call of each, and
every repeat is kept. A ratio target counts as met only when the median ratio clears the
target by more than the ratios' own spread (max - min over the paired repeats): otherwise
the measurement cannot tell, and the result says so.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

MIN_REPEATS = 5


def add_timing_arguments(parser, repeats_help: str, quick_help: str, default_out: str) -> None:
    """`--repeats` (at least MIN_REPEATS), `--quick` and `--out`, as every speed benchmark takes them."""
    def repeats(text: str) -> int:
        value = int(text)
        if value < MIN_REPEATS:
            raise argparse.ArgumentTypeError(f"must be at least {MIN_REPEATS}")
        return value

    parser.add_argument("--repeats", type=repeats, default=MIN_REPEATS, help=f"{repeats_help} (at least {MIN_REPEATS})")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", type=Path, help=f"result file (default: {default_out})")


def interleaved(
    sides: dict[str, Callable[[], float | None]], repeats: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Warm each side up once, then time them in turn, `repeats` rounds.

    Args:
        sides: name -> a call doing one unit of work; it may return its own rate (e.g. tokens/s
            measured inside), else its wall-clock seconds are the measurement.
        repeats: rounds after the warm-up.
        warmup: call each side once, untimed, first (False when the caller warmed up already,
            e.g. with a shorter call).

    Returns:
        name -> one measurement per round (a returned rate, or seconds), in round order.
    """
    if warmup:
        for run in sides.values():
            run()
    measured: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeats):
        for name, run in sides.items():
            start = time.perf_counter()
            value = run()
            seconds = time.perf_counter() - start
            measured[name].append(seconds if value is None else float(value))
            print(f"round {round_ + 1}/{repeats} {name}: {measured[name][-1]:.3f}", flush=True)
    return measured


def spread(values: list[float]) -> dict:
    """min, median and max of repeated measurements, with the measurements."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": list(values)}


def ratio(numerator: list[float], denominator: list[float], target: float | None, at_least: bool = True) -> dict:
    """The per-round ratio numerator / denominator, its spread and whether it meets `target`.

    Args:
        numerator: one measurement per round.
        denominator: one per round, the same rounds.
        target: the ratio to reach (None: no target, only the figures).
        at_least: the ratio must be at least `target` (else at most).

    Returns:
        {"min", "median", "max", "runs", "spread", "target", "margin", "met", "why"}: margin is
        how far the median clears the target (negative when it misses); met is true only when
        the margin is positive and larger than the spread; why says which case it is.
    """
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    result = spread(ratios)
    result["spread"] = result["max"] - result["min"]
    result["target"] = target
    if target is None:
        return {**result, "margin": None, "met": None, "why": "no target"}
    margin = result["median"] - target if at_least else target - result["median"]
    side = "at least" if at_least else "at most"
    if margin <= 0:
        why = f"median {result['median']:.3f} misses the target ({side} {target})"
    elif result["spread"] >= margin:
        why = (f"median {result['median']:.3f} clears {side} {target} by {margin:.3f}, but the ratios spread "
               f"over {result['spread']:.3f}: the measurement cannot tell")
    else:
        why = f"median {result['median']:.3f} clears {side} {target} by {margin:.3f}, more than the spread {result['spread']:.3f}"
    return {**result, "margin": margin, "met": margin > 0 and result["spread"] < margin, "why": why}
