"""Serving: latency of one client, and throughput of concurrent clients against one request at a time.

`gti serve`'s app (FastAPI + uvicorn, one model thread that micro-batches) runs in this process on
a free localhost port; clients are threads sending real HTTP requests with urllib.

- sequential: one client sends the requests one after another (p50/p95 latency, requests/s);
- concurrent: CLIENTS clients each send their next request as soon as the last is answered
  (requests/s, latency, mean batch size the server formed).

Both modes answer the same REQUESTS histories (random catalog items, as many as the prompt keeps,
seed 0; k 10). After a warm-up round of each mode, they alternate over REPEATS repeats (the order flips
every repeat); min, median and max are kept. Target: concurrent throughput >= 2x sequential
(median over repeats). Both modes must return the same items for each history.

Usage (from the repository root; `make demo` makes runs/demo):
    python benchmarks/serve.py [PATH] [--method gti] [--requests 24] [--clients 8] [--repeats 5] [--out FILE]
PATH: a run folder or a folder written by `gti export` (default runs/demo). Writes
benchmarks/results/serve.json.
"""

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

from transformers.utils import logging as transformers_logging

from gti.artifacts import write_json
from gti.recommend import load_recommender
from gti.serve import BackgroundServer, create_app
from machine import SETTINGS, machine  # benchmarks/machine.py, next to this script
from timing import ratio  # benchmarks/timing.py, next to this script

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "benchmarks" / "results" / "serve.json"


def shown_path(path: str | Path) -> str:
    """A path relative to the repository root; a path outside it is shown by its name only."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(REPO).as_posix()
    except ValueError:
        return f"<outside the repository>/{resolved.name}"


def environment() -> dict:
    """The settings in effect (unset ones null), paths shown relative to the repository root."""
    values = {name: os.environ.get(name) for name in SETTINGS}
    return {name: shown_path(value) if value and value.startswith("/") else value for name, value in values.items()}


def command() -> str:
    """The command line with every path made relative to the repository root."""
    settings = [f"{name}={value}" for name, value in environment().items() if value is not None]
    args = [shown_path(arg) if arg.startswith("/") or Path(arg).exists() else arg for arg in sys.argv[1:]]
    return shlex.join([*settings, "python", "benchmarks/serve.py", *args])


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url + "/recommend", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/health", timeout=60) as response:
        return json.loads(response.read())


def run_mode(url: str, bodies: list[dict], clients: int) -> dict:
    """Send every body, `clients` at a time; requests/s, latencies, and each body's answered item ids."""
    latencies = [0.0] * len(bodies)
    answers: list[list[str] | None] = [None] * len(bodies)
    scores: list[list[float] | None] = [None] * len(bodies)
    following = iter(range(len(bodies)))
    lock = threading.Lock()
    errors = []

    def client() -> None:
        while True:
            with lock:
                index = next(following, None)
            if index is None:
                return
            start = time.perf_counter()
            try:
                items = post(url, bodies[index])["items"]
            except Exception as error:  # noqa: BLE001 - recorded and raised after the threads end
                errors.append(error)
                return
            latencies[index] = time.perf_counter() - start
            answers[index] = [item["item_id"] for item in items]
            scores[index] = [item["score"] for item in items]

    before = health(url)
    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    after = health(url)
    ordered = sorted(latencies)
    return {
        "requests_per_s": len(bodies) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "mean_batch": (after["requests"] - before["requests"]) / max(1, after["batches"] - before["batches"]),
        "answers": answers,
        "scores": scores,
    }


def spread(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="runs/demo", help="run folder or export (default runs/demo)")
    parser.add_argument("--method", default="gti")
    parser.add_argument("--requests", type=int, default=24, help="requests per mode and repeat")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()

    transformers_logging.disable_progress_bar()
    start = time.perf_counter()
    recommender = load_recommender(args.path, args.method)
    load_seconds = time.perf_counter() - start
    rng = random.Random(0)
    catalog = list(recommender.sids.item_ids)
    length = min(recommender.settings.prompts["history"], len(catalog))
    bodies = [{"history": rng.sample(catalog, length), "k": args.k} for _ in range(args.requests)]

    app = create_app(recommender, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    modes = {"sequential": 1, "concurrent": args.clients}
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    with BackgroundServer(app) as server:
        for clients in modes.values():  # warm-up, one whole round per mode: kernels per shape, allocator, HTTP
            run_mode(server.url, bodies, clients)
        for repeat in range(args.repeats):
            order = list(modes) if repeat % 2 == 0 else list(reversed(modes))
            for mode in order:
                runs[mode].append(run_mode(server.url, bodies, modes[mode]))
                print(f"repeat {repeat + 1}/{args.repeats} {mode:<10} {runs[mode][-1]['requests_per_s']:6.2f} req/s "
                      f"p50 {runs[mode][-1]['p50_ms']:8.1f} ms", flush=True)

    reference = runs["sequential"][0]["answers"]
    same = sum(run["answers"] == reference for mode in modes for run in runs[mode])
    reference_scores = runs["sequential"][0]["scores"]
    score_gap = max(abs(a - b) for mode in modes for run in runs[mode]
                    for got, want in zip(run["scores"], reference_scores) for a, b in zip(got, want))
    summary = {
        mode: {key: spread([run[key] for run in runs[mode]]) for key in ("requests_per_s", "p50_ms", "p95_ms", "mean_batch")}
        for mode in modes
    }
    speedup = summary["concurrent"]["requests_per_s"]["median"] / summary["sequential"]["requests_per_s"]["median"]
    # met only beyond the spread of the per-repeat ratios (the modes alternate within each repeat)
    per_repeat = ratio([run["requests_per_s"] for run in runs["concurrent"]],
                       [run["requests_per_s"] for run in runs["sequential"]], 2.0)
    result = {
        "benchmark": "serve",
        "setting": {
            "model": shown_path(args.path), "method": args.method, "items": len(catalog),
            "beams": max(args.k, recommender.settings.beams), "k": args.k, "history_length": length,
            "requests_per_mode": args.requests, "clients": args.clients, "repeats": args.repeats,
            "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "precision": recommender.settings.precision,
            "server": "in-process uvicorn on 127.0.0.1, one model thread; clients are threads using urllib",
        },
        "load_seconds": round(load_seconds, 2),
        "sequential": summary["sequential"],
        "concurrent": summary["concurrent"],
        "speedup_concurrent_vs_sequential": round(speedup, 2),
        "target_speedup": 2.0,
        "speedup_per_repeat": per_repeat,
        "target_met": per_repeat["met"],
        "runs_with_identical_items": f"{same} of {2 * args.repeats}",
        "max_score_gap_vs_first_sequential_run": score_gap,
        "per_repeat": {mode: [{k: round(v, 3) for k, v in run.items() if k not in ("answers", "scores")}
                              for run in runs[mode]]
                       for mode in modes},
        "machine": machine(),
        "settings": environment(),
        "command": command(),
    }
    write_json(Path(args.out), result)
    print(f"sequential {summary['sequential']['requests_per_s']['median']:.2f} req/s "
          f"(p50 {summary['sequential']['p50_ms']['median']:.0f} ms, p95 {summary['sequential']['p95_ms']['median']:.0f} ms); "
          f"{args.clients} clients {summary['concurrent']['requests_per_s']['median']:.2f} req/s: {speedup:.2f}x")
    print(f"wrote {shown_path(args.out)}")


if __name__ == "__main__":
    main()
